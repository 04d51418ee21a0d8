//! memblock's randomized tests (proptest): random operations checked
//! against a page-bitmap model after every step, and arbitrary inputs that
//! must never panic, break an invariant, or change anything when they fail.

use super::tests::{MIB, P, arrays, pa, snapshot};
use super::*;
use crate::test_support::phys::{FakePhys, POISON, leak_regions};
use proptest::prelude::*;

/// Pages in the model: 4 MiB of physical address space.
const MODEL_PAGES: u64 = 1024;

#[derive(Clone, Debug)]
enum Op {
    /// `(first page, pages)` for the four range operations.
    Add(u64, u64),
    Remove(u64, u64),
    Reserve(u64, u64),
    Free(u64, u64),
    Alloc {
        size: u64,
        align: u64,
        min: u64,
        max: u64,
        zero: bool,
    },
    BottomUp(bool),
    Limit(u64),
}

fn page_range() -> impl Strategy<Value = (u64, u64)> {
    (0..MODEL_PAGES, 0u64..80).prop_map(|(p, n)| (p, n.min(MODEL_PAGES - p)))
}

fn op() -> impl Strategy<Value = Op> {
    let bound = || {
        prop_oneof![
            3 => (0u64..MODEL_PAGES + 64).prop_map(|p| p * P),
            1 => Just(u64::MAX),
        ]
    };
    prop_oneof![
        4 => page_range().prop_map(|(p, n)| Op::Add(p, n)),
        1 => page_range().prop_map(|(p, n)| Op::Remove(p, n)),
        3 => page_range().prop_map(|(p, n)| Op::Reserve(p, n)),
        2 => page_range().prop_map(|(p, n)| Op::Free(p, n)),
        4 => (1u64..24, 0u32..17, 0u64..MODEL_PAGES + 64, bound(), any::<bool>()).prop_map(
            |(pages, align_log2, min_page, max, zero)| Op::Alloc {
                size: pages * P,
                align: 1 << align_log2,
                min: min_page * P,
                max,
                zero,
            }
        ),
        1 => any::<bool>().prop_map(Op::BottomUp),
        1 => prop_oneof![Just(u64::MAX), bound()].prop_map(Op::Limit),
    ]
}

/// One bit per page for `memory` and `reserved`, plus the pages of
/// allocations not freed since.
struct Model {
    memory: Vec<bool>,
    reserved: Vec<bool>,
    allocated: Vec<bool>,
    bottom_up: bool,
    limit: u64,
}

fn set(bits: &mut [bool], start: u64, end: u64, value: bool) {
    bits[(start / P) as usize..(end / P) as usize].fill(value);
}

fn bitmap(t: &MemblockType) -> Vec<bool> {
    let mut bits = vec![false; MODEL_PAGES as usize];
    for r in t.regions() {
        assert!(
            r.base.0.is_multiple_of(P) && r.size.is_multiple_of(P),
            "{r:?}"
        );
        assert!(r.end().0 <= MODEL_PAGES * P, "{r:?}");
        set(&mut bits, r.base.0, r.end().0, true);
    }
    bits
}

/// The set bits as half-open address ranges, for readable failures.
fn runs(bits: &[bool]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = Vec::new();
    for (page, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        let pa = page as u64 * P;
        match v.last_mut() {
            Some(last) if last.1 == pa => last.1 = pa + P,
            _ => v.push((pa, pa + P)),
        }
    }
    v
}

impl Model {
    fn free(&self, page: u64) -> bool {
        self.memory[page as usize] && !self.reserved[page as usize]
    }

    /// The answer by brute force: every aligned, page-aligned start in
    /// the window, highest or lowest first.
    fn find(&self, size: u64, align: u64, min: u64, max: u64) -> Option<u64> {
        let step = align.max(P);
        let start = min.max(P);
        let end = max.min(self.limit).min(MODEL_PAGES * P);
        if start >= end || end - start < size {
            return None;
        }
        let first = start.next_multiple_of(step);
        let last = (end - size) / step * step;
        if first > last {
            return None;
        }
        let fits = |s: &u64| (s / P..(s + size) / P).all(|p| self.free(p));
        let candidates = (0..=(last - first) / step).map(|k| first + k * step);
        if self.bottom_up {
            candidates.clone().find(fits)
        } else {
            candidates.rev().find(fits)
        }
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut ram = FakePhys::new(PhysAddr(0), (MODEL_PAGES * P) as usize);
    let mut mb = Memblock::new(leak_regions(4), leak_regions(4));
    let mut m = Model {
        memory: vec![false; MODEL_PAGES as usize],
        reserved: vec![false; MODEL_PAGES as usize],
        allocated: vec![false; MODEL_PAGES as usize],
        bottom_up: false,
        limit: u64::MAX,
    };
    for op in ops {
        let before = snapshot(&mb);
        let arrays_before = arrays(&mb);
        let expected = match op {
            Op::Alloc {
                size,
                align,
                min,
                max,
                ..
            } => m.find(size, align, min, max),
            _ => None,
        };
        let outcome = match op {
            Op::Add(p, n) => mb.add(pa(p * P), n * P, &mut ram).map(|()| None),
            Op::Remove(p, n) => mb.remove(pa(p * P), n * P, &mut ram).map(|()| None),
            Op::Reserve(p, n) => mb.reserve(pa(p * P), n * P, &mut ram).map(|()| None),
            Op::Free(p, n) => mb.free(pa(p * P), n * P, &mut ram).map(|()| None),
            Op::Alloc {
                size,
                align,
                min,
                max,
                zero: true,
            } => {
                if let Some(start) = expected {
                    ram.fill(pa(start), size, POISON);
                }
                mb.alloc_range(size, align, pa(min), pa(max), &mut ram)
                    .map(|got| Some(got.0))
            }
            Op::Alloc {
                size,
                align,
                min,
                max,
                zero: false,
            } => mb
                .phys_alloc_range(size, align, pa(min), pa(max), &mut ram)
                .map(|got| Some(got.0)),
            Op::BottomUp(b) => {
                mb.set_bottom_up(b);
                m.bottom_up = b;
                Ok(None)
            }
            Op::Limit(l) => {
                mb.set_current_limit(pa(l));
                m.limit = l;
                Ok(None)
            }
        };
        prop_assert_eq!(mb.check(), Ok(()));

        match outcome {
            Err(MemblockError::NoSpace { .. }) => {
                prop_assert_eq!(expected, None);
                prop_assert_eq!(snapshot(&mb), before);
            }
            Err(MemblockError::ArrayFull { .. }) => {
                prop_assert_eq!(snapshot(&mb), before);
            }
            Err(MemblockError::ArrayInUse { base, size }) => {
                let Op::Free(p, n) = op else {
                    return Err(TestCaseError::fail(
                        "ArrayInUse from an operation other than free",
                    ));
                };
                prop_assert!(p * P < base.0 + size && base.0 < (p + n) * P);
                prop_assert_eq!(snapshot(&mb), before);
            }
            Err(e) => prop_assert!(false, "unexpected error: {}", e),
            Ok(got) => {
                if let Op::Alloc { size, zero, .. } = op {
                    let start = got.unwrap();
                    prop_assert_eq!(Some(start), expected, "{:?}", op);
                    for page in start / P..(start + size) / P {
                        prop_assert!(m.free(page), "page {:#x} was not free", page * P);
                        prop_assert!(!m.allocated[page as usize]);
                    }
                    if zero {
                        prop_assert!(ram.all(pa(start), size, 0));
                    }
                }
                // Growth first, reserved before memory (as double_array()
                // installs them): the outgrown array is freed, the new one
                // reserved. A grown array is recognised by its capacity,
                // not its address: if a random free() released an array,
                // its successor can land at the same place.
                for (old, new) in arrays_before.into_iter().zip(arrays(&mb)).rev() {
                    if old.0 != new.0 {
                        if let Some((s, e)) = old.1 {
                            set(&mut m.reserved, s, e, false);
                        }
                        let (s, e) = new.1.unwrap();
                        set(&mut m.reserved, s, e, true);
                    }
                }
                match op {
                    Op::Add(p, n) => set(&mut m.memory, p * P, (p + n) * P, true),
                    Op::Remove(p, n) => set(&mut m.memory, p * P, (p + n) * P, false),
                    Op::Reserve(p, n) => set(&mut m.reserved, p * P, (p + n) * P, true),
                    Op::Free(p, n) => {
                        set(&mut m.reserved, p * P, (p + n) * P, false);
                        set(&mut m.allocated, p * P, (p + n) * P, false);
                    }
                    Op::Alloc { size, .. } => {
                        let start = got.unwrap();
                        set(&mut m.reserved, start, start + size, true);
                        set(&mut m.allocated, start, start + size, true);
                    }
                    Op::BottomUp(_) | Op::Limit(_) => {}
                }
            }
        }

        prop_assert_eq!(
            runs(&bitmap(&mb.memory)),
            runs(&m.memory),
            "memory after {:?}",
            op
        );
        prop_assert_eq!(
            runs(&bitmap(&mb.reserved)),
            runs(&m.reserved),
            "reserved after {:?}",
            op
        );
        let mut free = vec![false; MODEL_PAGES as usize];
        mb.for_each_free_range(|s, e| set(&mut free, s.0, e.0, true));
        let model_free: Vec<bool> = (0..MODEL_PAGES).map(|p| m.free(p)).collect();
        prop_assert_eq!(runs(&free), runs(&model_free), "free ranges after {:?}", op);
    }
    Ok(())
}

/// Any `u64`, biased towards the edges and small values.
fn any_addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0u64..0x10_0000,
        1 => any::<u64>(),
        1 => prop_oneof![Just(0), Just(1), Just(1 << 32), Just(u64::MAX), Just(u64::MAX - 0xfff)],
        1 => (0u64..0x1000).prop_map(|d| u64::MAX - d),
    ]
}

/// Runs arbitrary inputs: no panic, invariants hold, failures change
/// nothing.
fn run_arbitrary(ops: Vec<(u8, u64, u64, u64)>) -> Result<(), TestCaseError> {
    let mut ram = FakePhys::new(PhysAddr(0), MIB as usize);
    let mut mb = Memblock::new(leak_regions(2), leak_regions(2));
    for (kind, a, b, c) in ops {
        let before = snapshot(&mb);
        let result = match kind % 8 {
            0 => mb.add(pa(a), b, &mut ram),
            1 => mb.remove(pa(a), b, &mut ram),
            2 => mb.reserve(pa(a), b, &mut ram),
            3 => mb.free(pa(a), b, &mut ram),
            4 => mb
                .alloc_range(a, b, pa(c), pa(c.wrapping_add(a)), &mut ram)
                .map(drop),
            5 => mb
                .phys_alloc_range(
                    a % 0x10_0000,
                    1 << (b % 64),
                    pa(c),
                    MEMBLOCK_ALLOC_ANYWHERE,
                    &mut ram,
                )
                .map(drop),
            6 => {
                mb.set_bottom_up(a % 2 == 0);
                mb.set_current_limit(pa(b));
                Ok(())
            }
            _ => {
                let _ = mb.find_in_range(a, b, pa(c), MEMBLOCK_ALLOC_ANYWHERE);
                let _ = (
                    mb.is_region_memory(pa(a), b),
                    mb.is_region_reserved(pa(a), b),
                );
                mb.for_each_free_range(|s, e| assert!(s < e));
                mb.dump(|args| drop(args.to_string()));
                Ok(())
            }
        };
        prop_assert_eq!(mb.check(), Ok(()));
        if result.is_err() {
            prop_assert_eq!(snapshot(&mb), before);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_inputs_never_panic_or_break_invariants(
        ops in prop::collection::vec((any::<u8>(), any_addr(), any_addr(), any_addr()), 1..60)
    ) {
        run_arbitrary(ops)?;
    }

    #[test]
    fn random_operations_match_a_page_bitmap_model(
        ops in prop::collection::vec(op(), 1..100)
    ) {
        run(ops)?;
    }
}
