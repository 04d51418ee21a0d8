//! Randomized tests (proptest): random `mmap`/`munmap`/`mprotect`/`brk`/
//! stack-growth sequences keep the invariants ([`MmAreas::check`]: sorted,
//! non-overlapping, page-aligned, merged where alike) and agree with a
//! page-by-page model of who maps what.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const P: u32 = PAGE_SIZE;
/// The model's window: 64 pages from 0x1000_0000; `mmap_base` at its top.
const BASE: u32 = 0x1000_0000;
const PAGES: u32 = 64;

#[derive(Clone, Debug)]
enum Op {
    Mmap {
        hint: Option<u32>,
        pages: u32,
        prot: u32,
    },
    Munmap {
        page: u32,
        pages: u32,
    },
    Mprotect {
        page: u32,
        pages: u32,
        prot: u32,
    },
    Brk {
        bytes: u32,
    },
    Grow {
        page: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (proptest::option::of(0..PAGES), 1..8u32, 0..8u32)
            .prop_map(|(hint, pages, prot)| Op::Mmap { hint, pages, prot }),
        (0..PAGES, 1..10u32).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        (0..PAGES, 0..10u32, 0..8u32).prop_map(|(page, pages, prot)| Op::Mprotect {
            page,
            pages,
            prot
        }),
        (0..16 * P).prop_map(|bytes| Op::Brk { bytes }),
        (0..PAGES).prop_map(|page| Op::Grow { page }),
    ]
}

/// Page address → (flags, kind) of the page's area.
type Model = BTreeMap<u32, (VmFlags, VmKind)>;

fn model_of(mm: &MmAreas) -> Model {
    let mut m = Model::new();
    for a in mm.areas() {
        for p in (a.start.0..a.end.0).step_by(P as usize) {
            m.insert(p, (a.flags, a.kind));
        }
    }
    m
}

proptest! {
    #[test]
    fn random_operations_keep_the_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let mut mm = MmAreas::new(VirtAddr(BASE + PAGES * P));
        // A heap from the window's bottom and a stack above mmap_base.
        mm.set_brk_start(VirtAddr(BASE - 0x10_0000));
        let stack = VmArea::new(
            VirtAddr(BASE + (PAGES + 8) * P),
            VirtAddr(BASE + (PAGES + 9) * P),
            VmFlags::READ | VmFlags::WRITE | VmFlags::GROWSDOWN,
            VmKind::Stack,
        );
        mm.insert(stack).unwrap();
        for op in ops {
            let before = mm.clone();
            let mut model = model_of(&mm);
            match op {
                Op::Mmap { hint, pages, prot } => {
                    let flags = VmFlags::from_prot(prot).unwrap();
                    let hint = hint.map(|h| VirtAddr(BASE + h * P));
                    if let Ok(a) = mm.mmap_anon(hint, pages * P, flags) {
                        for i in 0..pages {
                            prop_assert!(model.insert(a.0 + i * P, (flags, VmKind::Anon)).is_none());
                        }
                    } else {
                        prop_assert_eq!(&mm, &before);
                    }
                }
                Op::Munmap { page, pages } => {
                    let start = BASE + page * P;
                    let removed = mm.munmap(VirtAddr(start), pages * P).unwrap();
                    let mut gone = 0;
                    for (s, e) in removed {
                        prop_assert!(s.0 >= start && e.0 <= start + pages * P && s < e);
                        gone += (e.0 - s.0) / P;
                    }
                    let before_len = model.len() as u32;
                    model.retain(|&p, _| p < start || p >= start + pages * P);
                    prop_assert_eq!(before_len - model.len() as u32, gone);
                }
                Op::Mprotect { page, pages, prot } => {
                    let start = BASE + page * P;
                    let flags = VmFlags::from_prot(prot).unwrap();
                    let all = (0..pages).all(|i| model.contains_key(&(start + i * P)));
                    let r = mm.mprotect(VirtAddr(start), pages * P, flags);
                    prop_assert_eq!(r.is_ok(), all);
                    if r.is_ok() {
                        for i in 0..pages {
                            let e = model.get_mut(&(start + i * P)).unwrap();
                            e.0 = (e.0 - VmFlags::from_bits_truncate(PROT_MASK)) | flags;
                        }
                    } else {
                        prop_assert_eq!(&mm, &before);
                    }
                }
                Op::Brk { bytes } => {
                    let new = VirtAddr(mm.start_brk().0 + bytes);
                    match mm.brk_to(new) {
                        Ok(_) => prop_assert_eq!(mm.brk(), new),
                        Err(_) => prop_assert_eq!(&mm, &before),
                    }
                    model = model_of(&mm);
                }
                Op::Grow { page } => {
                    let va = VirtAddr(BASE + page * P + 12);
                    match mm.expand_stack(va) {
                        Ok(s) => {
                            prop_assert_eq!(s, va.page_align_down());
                            prop_assert!(mm.find_vma(va).unwrap().flags.contains(VmFlags::GROWSDOWN));
                        }
                        Err(_) => prop_assert_eq!(&mm, &before),
                    }
                    model = model_of(&mm);
                }
            }
            if let Err((what, area)) = mm.check() {
                return Err(TestCaseError::fail(format!("{what}: {area:?} in {mm:?}")));
            }
            prop_assert_eq!(model_of(&mm), model);
            // Every area lies inside user space and stays findable.
            for a in mm.areas() {
                prop_assert_eq!(mm.find_vma(a.start), Some(a));
                prop_assert_eq!(mm.find_vma(VirtAddr(a.end.0 - 1)), Some(a));
            }
        }
    }
}
