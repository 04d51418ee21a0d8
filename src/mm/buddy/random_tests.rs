//! Seeded randomized test: 30,000 operations on each of four zone layouts
//! (120,000 in all), `check()` after every one.
//!
//! Every allocation "fills" its pages in a fake RAM (one word per pfn, the
//! allocation's tag) after asserting they were not owned; every free verifies
//! and clears them, so a page handed out twice is caught at once. Refused
//! frees (random or repeated pfns) must leave the allocator unchanged. The
//! run ends with everything freed and drained, and the free blocks must be
//! exactly those after the hand-off.

use super::tests::{free_blocks, leak_mem_map, record_zero, snapshot, take_zeroed};
use super::*;
use crate::mm::gfp::{GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL};
use crate::mm::zone::DEFAULT_MAX_LOW_PFN;
use crate::test_support::Rng;
use std::collections::HashMap;
use std::vec::Vec;

/// Operations per layout.
const OPS: u32 = 30_000;

/// A memory layout: `mem_map` size, `max_low_pfn`, RAM ranges, and the
/// reserved ranges inside them (pfn, half-open).
struct Layout {
    max_pfn: u32,
    max_low_pfn: Pfn,
    present: &'static [(u32, u32)],
    reserved: &'static [(u32, u32)],
}

/// How a live allocation was obtained, so it is freed the same way.
enum Held {
    Block(PageBlock),
    Exact { pfn: Pfn, size_bytes: u32 },
    Va { va: VirtAddr, order: u8 },
}

impl Held {
    /// `(first pfn, pages)`, the pfn raw: it indexes the harness's arrays.
    fn range(&self) -> (u32, u32) {
        match self {
            Held::Block(b) => (b.pfn().0, b.nr_pages()),
            Held::Exact { pfn, size_bytes } => (pfn.0, size_bytes.div_ceil(4096)),
            Held::Va { va, order } => ((*va - VirtAddr(PAGE_OFFSET)) >> PAGE_SHIFT, 1 << order),
        }
    }
}

struct Harness {
    b: BuddyAllocator<'static>,
    rng: Rng,
    /// One word per pfn: the tag of the allocation owning it, 0 if none.
    ram: Vec<u64>,
    held: Vec<(Held, u64)>,
    /// `pfn -> order` of every block a free would accept right now.
    heads: HashMap<u32, u8>,
    /// Recently freed `(pfn, order)`s, for double-free attempts.
    freed: Vec<(u32, u8)>,
    next_tag: u64,
    nr_allocs: u32,
    nr_refused: u32,
}

impl Harness {
    fn gfp(&mut self) -> Gfp {
        const BASES: [Gfp; 6] = [
            GFP_KERNEL,
            GFP_ATOMIC,
            GFP_DMA,
            GFP_HIGHUSER,
            GFP_ATOMIC.union(Gfp::DMA),
            GFP_HIGHUSER.union(Gfp::HIGH),
        ];
        let mut gfp = BASES[self.rng.below(6) as usize];
        if self.rng.chance(20) {
            gfp |= Gfp::ZERO;
        }
        if self.rng.chance(30) {
            gfp |= Gfp::NOWARN;
        }
        gfp
    }

    fn order(&mut self) -> u8 {
        match self.rng.below(100) {
            0..55 => 0,
            55..85 => 1 + self.rng.below(3) as u8,
            85..99 => 4 + self.rng.below(7) as u8,
            _ => 11,
        }
    }

    /// Checks the outcome of one allocation attempt and records it.
    fn allocated(&mut self, held: Option<Held>, gfp: Gfp, order: u8, highest: ZoneType) {
        let warning = self.b.take_warning();
        let zeroed = take_zeroed();
        let Some(held) = held else {
            let expected = (!gfp.contains(Gfp::NOWARN)).then_some(AllocFailure { order, gfp });
            assert_eq!(warning, expected);
            assert!(zeroed.is_empty());
            return;
        };
        assert_eq!(warning, None);
        let (pfn, nr_pages) = held.range();
        if gfp.contains(Gfp::ZERO) {
            assert_eq!(zeroed, [(Pfn(pfn), 1 << order)]);
        } else {
            assert!(zeroed.is_empty());
        }
        let zone = self.b.page(Pfn(pfn)).unwrap().zone();
        assert!(zone <= highest, "{gfp} got a page of zone {zone}");
        self.next_tag += 1;
        let tag = self.next_tag;
        for p in pfn..pfn + nr_pages {
            let word = &mut self.ram[p as usize];
            assert_eq!(*word, 0, "pfn {p:#x} handed out twice");
            *word = tag;
        }
        match &held {
            Held::Block(b) => drop(self.heads.insert(b.pfn().0, b.order())),
            Held::Va { order, .. } => drop(self.heads.insert(pfn, *order)),
            Held::Exact { .. } => {
                for p in pfn..pfn + nr_pages {
                    self.heads.insert(p, 0);
                }
            }
        }
        self.held.push((held, tag));
        self.nr_allocs += 1;
    }

    fn alloc(&mut self) {
        let gfp = self.gfp();
        match self.rng.below(10) {
            0..7 => {
                let order = self.order();
                let block = self.b.alloc_pages(gfp, order);
                self.allocated(block.map(Held::Block), gfp, order, gfp_zone(gfp));
            }
            7..9 => {
                let size_bytes = 1 + self.rng.below(40 * 4096);
                let got = self.b.alloc_pages_exact(gfp, size_bytes);
                if let Some((_, nr_pages)) = got {
                    assert_eq!(nr_pages, size_bytes.div_ceil(4096));
                }
                let lowmem = gfp.difference(Gfp::HIGHMEM);
                self.allocated(
                    got.map(|(pfn, _)| Held::Exact { pfn, size_bytes }),
                    lowmem,
                    get_order(size_bytes),
                    gfp_zone(lowmem),
                );
            }
            _ => {
                let order = self.order().min(4);
                let va = self.b.get_free_pages(gfp, order);
                // __GFP_HIGHMEM is stripped: the pages come from lowmem.
                let gfp = gfp.difference(Gfp::HIGHMEM);
                if let Some(va) = va {
                    assert!(va.is_kernel() && va.is_page_aligned());
                    let pfn = Pfn((va - VirtAddr(PAGE_OFFSET)) >> PAGE_SHIFT);
                    assert!(pfn < self.b.max_low_pfn());
                }
                self.allocated(
                    va.map(|va| Held::Va { va, order }),
                    gfp,
                    order,
                    gfp_zone(gfp),
                );
            }
        }
    }

    fn free(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let i = self.rng.below(self.held.len() as u32) as usize;
        let (held, tag) = self.held.swap_remove(i);
        let (pfn, nr_pages) = held.range();
        for p in pfn..pfn + nr_pages {
            let word = &mut self.ram[p as usize];
            assert_eq!(*word, tag, "pfn {p:#x} was overwritten by another owner");
            *word = 0;
        }
        let result = match held {
            Held::Block(b) => {
                self.freed.push((b.pfn().0, b.order()));
                self.heads.remove(&b.pfn().0);
                self.b.free_pages(b)
            }
            Held::Exact {
                pfn: first,
                size_bytes,
            } => {
                for p in pfn..pfn + nr_pages {
                    self.heads.remove(&p);
                }
                self.freed.push((pfn, 0));
                self.b.free_pages_exact(first, size_bytes)
            }
            Held::Va { va, order } => {
                self.heads.remove(&pfn);
                self.freed.push((pfn, order));
                self.b.free_pages_va(va, order)
            }
        };
        result.unwrap();
        if self.freed.len() > 64 {
            self.freed.remove(0);
        }
    }

    /// A free the allocator must refuse without changing anything.
    fn bad_free(&mut self) {
        let (pfn, order) = if !self.freed.is_empty() && self.rng.chance(50) {
            self.freed[self.rng.below(self.freed.len() as u32) as usize]
        } else {
            (
                self.rng.below(self.b.max_pfn().0 + 16),
                self.rng.below(12) as u8,
            )
        };
        if self.heads.get(&pfn) == Some(&order) {
            return; // a legitimate free
        }
        let before = snapshot(&self.b);
        let err = self.b.free_pages_raw(Pfn(pfn), order).unwrap_err();
        assert_eq!((err.pfn, err.order), (Pfn(pfn), order));
        assert_eq!(
            snapshot(&self.b),
            before,
            "refused free changed state: {err}"
        );
        self.nr_refused += 1;
    }

    fn step(&mut self) {
        let alloc_percent = if self.held.len() < 100 { 55 } else { 40 };
        match self.rng.below(1000) {
            0..5 => {
                let enabled = self.b.pcp_enabled();
                self.b.set_pcp_enabled(!enabled);
            }
            5..10 => self.b.drain_pages(),
            10..40 => self.bad_free(),
            n if n < 40 + alloc_percent * 10 => self.alloc(),
            _ => self.free(),
        }
        if let Err(e) = self.b.check() {
            panic!("check failed: {e}");
        }
    }
}

fn run(layout: &Layout, seed: u64) {
    let mut b = BuddyAllocator::new(
        leak_mem_map(layout.max_pfn as usize),
        layout.max_low_pfn,
        record_zero,
    );
    for &(s, e) in layout.present {
        b.mark_present(Pfn(s), Pfn(e));
    }
    // The hand-off: present minus reserved, as memblock's free ranges.
    let reserved = |pfn: u32| layout.reserved.iter().any(|&(s, e)| (s..e).contains(&pfn));
    for &(s, e) in layout.present {
        let mut pfn = s;
        while pfn < e {
            let start = pfn;
            while pfn < e && !reserved(pfn) {
                pfn += 1;
            }
            b.free_memory_range(Pfn(start), Pfn(pfn));
            pfn += 1;
        }
    }
    b.setup_watermarks();
    b.check().unwrap();
    let start_blocks: Vec<_> = ZoneType::ALL.map(|z| free_blocks(&b, z)).into();
    let start_free = b.nr_free_pages();
    let start_pgfree = b.counters().pgfree;
    take_zeroed();

    let mut h = Harness {
        b,
        rng: Rng::new(seed),
        ram: std::vec![0; layout.max_pfn as usize],
        held: Vec::new(),
        heads: HashMap::new(),
        freed: Vec::new(),
        next_tag: 0,
        nr_allocs: 0,
        nr_refused: 0,
    };
    for _ in 0..OPS {
        h.step();
    }
    assert!(h.nr_allocs > OPS / 4, "only {} allocations", h.nr_allocs);
    assert!(
        h.nr_refused > OPS / 100,
        "only {} refused frees",
        h.nr_refused
    );

    while !h.held.is_empty() {
        h.free();
        h.b.check().unwrap();
    }
    h.b.drain_pages();
    h.b.check().unwrap();
    assert!(h.ram.iter().all(|&w| w == 0));
    let end_blocks: Vec<_> = ZoneType::ALL.map(|z| free_blocks(&h.b, z)).into();
    assert_eq!(end_blocks, start_blocks, "free lists differ from the start");
    assert_eq!(h.b.nr_free_pages(), start_free);
    let allocated: u64 = h.b.counters().pgalloc.iter().sum();
    assert_eq!(allocated, h.b.counters().pgfree - start_pgfree);
}

#[test]
fn random_ops_small_dma_only() {
    // 4 MiB: a hole at [160, 256) (the ISA hole, scaled down), the kernel
    // reserved at [256, 300).
    let layout = Layout {
        max_pfn: 1024,
        max_low_pfn: DEFAULT_MAX_LOW_PFN,
        present: &[(1, 160), (256, 1024)],
        reserved: &[(256, 300)],
    };
    run(&layout, 0x5EED_0001);
}

#[test]
fn random_ops_dma_and_normal() {
    let layout = Layout {
        max_pfn: 6144,
        max_low_pfn: DEFAULT_MAX_LOW_PFN,
        present: &[(1, 6144)],
        reserved: &[(256, 400), (4096, 4100)],
    };
    run(&layout, 0x5EED_0002);
}

#[test]
fn random_ops_with_a_hole_across_16_mib() {
    // pfns [3968, 4224) (15.5 MiB to 16.5 MiB) are not RAM.
    let layout = Layout {
        max_pfn: 6144,
        max_low_pfn: DEFAULT_MAX_LOW_PFN,
        present: &[(1, 3968), (4224, 6144)],
        reserved: &[(256, 320)],
    };
    run(&layout, 0x5EED_0003);
}

#[test]
fn random_ops_with_highmem() {
    // max_low_pfn lowered to 5000 (not even order-4 aligned) to get a
    // HighMem zone [5000, 6000) cheaply; the Normal/HighMem boundary cuts
    // through buddy pairs.
    let layout = Layout {
        max_pfn: 6000,
        max_low_pfn: Pfn(5000),
        present: &[(1, 6000)],
        reserved: &[(256, 320)],
    };
    run(&layout, 0x5EED_0004);
}
