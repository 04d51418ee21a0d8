//! Unit tests: the worked examples of the doc comments, each error case, the
//! whole real vmalloc range, and a randomized comparison with a simple model.

use super::*;
use crate::mm::layout;
use crate::test_support::Rng;
use std::string::ToString;
use std::vec::Vec;

/// `layout::VMALLOC_START` as an address.
const VMALLOC_START: VirtAddr = VirtAddr(layout::VMALLOC_START);
/// `layout::VMALLOC_END` as an address.
const VMALLOC_END: VirtAddr = VirtAddr(layout::VMALLOC_END);

/// `VirtAddr(x)`, short for the literal addresses below.
const fn va(x: u32) -> VirtAddr {
    VirtAddr(x)
}

/// Bytes in `n` pages.
const fn pages(n: u32) -> u32 {
    n * PAGE_SIZE
}

/// A small allocator of 16 pages at the start of the real vmalloc area.
fn small() -> VmapAllocator {
    VmapAllocator::new(VMALLOC_START, VMALLOC_START + pages(16))
}

/// Allocates and checks the invariants.
fn alloc_ok(vm: &mut VmapAllocator, size: u32, kind: VmKind) -> VmArea {
    let area = vm.alloc(size, kind).expect("alloc");
    vm.check().unwrap();
    area
}

/// Frees and checks the invariants.
fn free_ok(vm: &mut VmapAllocator, addr: VirtAddr) -> VmArea {
    let area = vm.free(addr).expect("free");
    vm.check().unwrap();
    area
}

/// The free ranges as offsets in pages from `vm.start()`.
fn free_pages(vm: &VmapAllocator) -> Vec<(u32, u32)> {
    vm.free_ranges()
        .map(|(s, e)| ((s - vm.start()) / PAGE_SIZE, (e - vm.start()) / PAGE_SIZE))
        .collect()
}

// ---------------------------------------------------------------- alloc ----

#[test]
fn new_is_one_free_range() {
    let vm = VmapAllocator::new(VMALLOC_START, VMALLOC_END);
    vm.check().unwrap();
    assert_eq!((vm.start(), vm.end()), (VMALLOC_START, VMALLOC_END));
    let s = vm.stats();
    assert_eq!(s.nr_areas, 0);
    assert_eq!(s.used_bytes, 0);
    assert_eq!(s.free_bytes, VMALLOC_END - VMALLOC_START);
    assert_eq!(s.largest_free, VMALLOC_END - VMALLOC_START);
    assert_eq!(s.nr_free_ranges, 1);
    assert_eq!(vm.areas().count(), 0);
}

#[test]
fn first_alloc_at_start_rounded_with_guard() {
    let mut vm = small();
    // 5000 bytes -> 2 pages, plus the guard page.
    let a = alloc_ok(&mut vm, 5000, VmKind::Mapped);
    assert_eq!(a.addr, va(0xF880_0000));
    assert_eq!(a.size, 0x3000);
    assert_eq!(a.nr_pages, 2);
    assert_eq!(a.demand_faults, 0);
    assert_eq!(a.end(), va(0xF880_3000));
    assert_eq!(a.usable_end(), va(0xF880_2000));
    assert_eq!(a.usable_size(), 0x2000);
    // 1 byte -> 1 page + guard, right after the first area's guard page.
    let b = alloc_ok(&mut vm, 1, VmKind::Demand);
    assert_eq!((b.addr, b.size, b.nr_pages), (va(0xF880_3000), 0x2000, 1));
    assert_eq!(b.kind, VmKind::Demand);
    // Exactly one page is not rounded further.
    let c = alloc_ok(&mut vm, PAGE_SIZE, VmKind::Mapped);
    assert_eq!((c.addr, c.size, c.nr_pages), (va(0xF880_5000), 0x2000, 1));
    // The returned copies equal what the allocator keeps.
    let kept: Vec<VmArea> = vm.areas().copied().collect();
    assert_eq!(kept, [a, b, c]);
    let s = vm.stats();
    assert_eq!(s.nr_areas, 3);
    assert_eq!(s.used_bytes, pages(7));
    assert_eq!(s.free_bytes, pages(9));
    assert_eq!(s.nr_free_ranges, 1);
}

#[test]
fn guard_page_is_never_part_of_another_area() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, 1, VmKind::Mapped);
    let b = alloc_ok(&mut vm, 1, VmKind::Mapped);
    assert_eq!(b.addr, a.end());
    assert!(b.addr > a.usable_end());
    assert!(a.in_guard(a.usable_end()));
    assert!(!b.contains(a.usable_end()));
    assert_eq!(vm.find(a.usable_end()).unwrap().addr, a.addr);
}

#[test]
fn find_inside_guard_outside() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, 5000, VmKind::Mapped); // [va(0xF880_0000), va(0xF880_3000))
    // Inside, usable part.
    for va in [a.addr, a.addr + 1, va(0xF880_1FFF)] {
        let f = vm.find(va).unwrap();
        assert_eq!(f.addr, a.addr);
        assert!(f.contains_usable(va) && !f.in_guard(va));
    }
    // Guard page: found, but not usable.
    for va in [va(0xF880_2000), va(0xF880_2FFF)] {
        let f = vm.find(va).unwrap();
        assert_eq!(f.addr, a.addr);
        assert!(f.in_guard(va) && !f.contains_usable(va) && f.contains(va));
    }
    // Free space after the area, below the start, above the end.
    for va in [
        va(0xF880_3000),
        VirtAddr(layout::VMALLOC_START - 1),
        vm.end(),
        VirtAddr(0),
        VirtAddr(u32::MAX),
    ] {
        assert_eq!(vm.find(va), None, "{va:#x}");
    }
    // The predicates alone.
    assert!(!a.contains(VirtAddr(a.addr.0 - 1)) && !a.contains(a.end()));
    assert!(!a.in_guard(a.end()) && !a.in_guard(VirtAddr(a.addr.0 - 1)));
}

#[test]
fn find_mut_counts_demand_faults() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, pages(4), VmKind::Demand);
    for i in 0..3 {
        let area = vm.find_mut(a.addr + pages(i)).unwrap();
        area.demand_faults += 1;
    }
    assert!(vm.find_mut(a.end()).is_none());
    assert!(vm.find_mut(VirtAddr(a.addr.0 - 1)).is_none());
    assert_eq!(vm.find(a.addr).unwrap().demand_faults, 3);
    vm.check().unwrap();
    // free returns the area as it was, with its fault count.
    let freed = free_ok(&mut vm, a.addr);
    assert_eq!(freed.demand_faults, 3);
    assert_eq!(freed.nr_pages, 4);
}

// ----------------------------------------------------------------- free ----

/// Four areas of 3 usable pages + guard (4 pages each) fill 16 pages:
/// A = [0, 4), B = [4, 8), C = [8, 12), D = [12, 16) (in pages).
fn four_areas() -> (VmapAllocator, [VmArea; 4]) {
    let mut vm = small();
    let areas = core::array::from_fn(|_| alloc_ok(&mut vm, pages(3), VmKind::Mapped));
    assert_eq!(vm.stats().free_bytes, 0);
    assert_eq!(vm.stats().nr_free_ranges, 0);
    (vm, areas)
}

#[test]
fn free_merges_left() {
    let (mut vm, [a, b, _, _]) = four_areas();
    free_ok(&mut vm, a.addr);
    assert_eq!(free_pages(&vm), [(0, 4)]);
    // B's left neighbour (A's range) is free, its right one (C) is busy.
    free_ok(&mut vm, b.addr);
    assert_eq!(free_pages(&vm), [(0, 8)]);
}

#[test]
fn free_merges_right() {
    let (mut vm, [a, b, _, _]) = four_areas();
    free_ok(&mut vm, b.addr);
    assert_eq!(free_pages(&vm), [(4, 8)]);
    // A is at the very start (no left neighbour); B's range is to its right.
    free_ok(&mut vm, a.addr);
    assert_eq!(free_pages(&vm), [(0, 8)]);
}

#[test]
fn free_merges_both_sides() {
    let (mut vm, [a, b, c, d]) = four_areas();
    free_ok(&mut vm, a.addr);
    free_ok(&mut vm, c.addr);
    assert_eq!(free_pages(&vm), [(0, 4), (8, 12)]);
    free_ok(&mut vm, b.addr);
    assert_eq!(free_pages(&vm), [(0, 12)]);
    // D reaches the end of the managed range: merges left only.
    free_ok(&mut vm, d.addr);
    assert_eq!(free_pages(&vm), [(0, 16)]);
    assert_eq!(vm.stats().largest_free, pages(16));
}

#[test]
fn free_without_free_neighbours() {
    let (mut vm, [_, b, _, _]) = four_areas();
    free_ok(&mut vm, b.addr);
    assert_eq!(free_pages(&vm), [(4, 8)]);
    assert_eq!(vm.stats().nr_free_ranges, 1);
    assert_eq!(vm.stats().nr_areas, 3);
}

// ------------------------------------------------------------- best fit ----

#[test]
fn best_fit_picks_the_smaller_hole() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, pages(3), VmKind::Mapped); // [0, 4)
    let _b = alloc_ok(&mut vm, pages(1), VmKind::Mapped); // [4, 6)
    let c = alloc_ok(&mut vm, pages(1), VmKind::Mapped); // [6, 8)
    let _d = alloc_ok(&mut vm, pages(7), VmKind::Mapped); // [8, 16)
    free_ok(&mut vm, a.addr);
    free_ok(&mut vm, c.addr);
    assert_eq!(free_pages(&vm), [(0, 4), (6, 8)]);
    // 2 pages needed: first fit would take [0, 4); best fit takes [6, 8).
    let e = alloc_ok(&mut vm, 1, VmKind::Mapped);
    assert_eq!(e.addr, c.addr);
    assert_eq!(free_pages(&vm), [(0, 4)]);
    // The next one only fits in the large hole, at its bottom.
    let f = alloc_ok(&mut vm, 1, VmKind::Mapped);
    assert_eq!(f.addr, a.addr);
    assert_eq!(free_pages(&vm), [(2, 4)]);
}

#[test]
fn best_fit_prefers_the_lowest_address_among_equal_holes() {
    let mut vm = small();
    let areas: Vec<VmArea> = (0..8)
        .map(|_| alloc_ok(&mut vm, 1, VmKind::Mapped))
        .collect();
    // Three 2-page holes at pages 10, 2 and 6 (freed in that order).
    for i in [5, 1, 3] {
        free_ok(&mut vm, areas[i].addr);
    }
    assert_eq!(free_pages(&vm), [(2, 4), (6, 8), (10, 12)]);
    assert_eq!(alloc_ok(&mut vm, 1, VmKind::Mapped).addr, areas[1].addr);
    assert_eq!(alloc_ok(&mut vm, 1, VmKind::Mapped).addr, areas[3].addr);
    assert_eq!(alloc_ok(&mut vm, 1, VmKind::Mapped).addr, areas[5].addr);
}

// --------------------------------------------------------------- errors ----

#[test]
fn no_space_reports_the_largest_free_range() {
    let mut vm = VmapAllocator::new(VMALLOC_START, VMALLOC_START + pages(8));
    alloc_ok(&mut vm, pages(3), VmKind::Mapped); // [0, 4)
    alloc_ok(&mut vm, pages(1), VmKind::Mapped); // [4, 6); [6, 8) free
    let before = vm.clone();
    // 2 usable pages + guard = 3 pages do not fit in the 2 free pages.
    assert_eq!(
        vm.alloc(pages(2), VmKind::Mapped),
        Err(VmallocError::NoSpace {
            size: pages(3),
            largest_free: pages(2)
        })
    );
    // A failed alloc changes nothing.
    vm.check().unwrap();
    assert_eq!(vm.stats(), before.stats());
    assert!(vm.areas().eq(before.areas()));
    // The last 2 pages fit exactly; then nothing is free.
    alloc_ok(&mut vm, 1, VmKind::Demand);
    assert_eq!(
        vm.alloc(1, VmKind::Mapped),
        Err(VmallocError::NoSpace {
            size: pages(2),
            largest_free: 0
        })
    );
}

#[test]
fn not_allocated_for_a_non_start_address_and_for_double_free() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, pages(2), VmKind::Mapped);
    let b = alloc_ok(&mut vm, pages(2), VmKind::Mapped);
    // Inside an area, in its guard page, in free space, outside the range.
    for addr in [
        a.addr + 1,
        a.addr + PAGE_SIZE,
        a.usable_end(),
        b.end(),
        VirtAddr(0),
        VirtAddr(u32::MAX),
    ] {
        assert_eq!(vm.free(addr), Err(VmallocError::NotAllocated { addr }));
        vm.check().unwrap();
    }
    assert_eq!(vm.stats().nr_areas, 2);
    free_ok(&mut vm, a.addr);
    // Double free.
    assert_eq!(
        vm.free(a.addr),
        Err(VmallocError::NotAllocated { addr: a.addr })
    );
    vm.check().unwrap();
    assert_eq!(vm.stats().nr_areas, 1);
}

#[test]
fn zero_size() {
    let mut vm = small();
    assert_eq!(vm.alloc(0, VmKind::Mapped), Err(VmallocError::ZeroSize));
    vm.check().unwrap();
    assert_eq!(vm.stats().nr_areas, 0);
}

#[test]
fn too_large() {
    let mut vm = VmapAllocator::new(VMALLOC_START, VMALLOC_END);
    // Near 4 GiB: rounding up and adding the guard page overflow u32.
    assert_eq!(
        vm.alloc(u32::MAX, VmKind::Mapped),
        Err(VmallocError::TooLarge {
            size: (1 << 32) + u64::from(PAGE_SIZE)
        })
    );
    assert_eq!(
        vm.alloc(u32::MAX - PAGE_SIZE, VmKind::Mapped),
        Err(VmallocError::TooLarge { size: 1 << 32 })
    );
    // The whole area: the guard page does not fit any more.
    let capacity = VMALLOC_END - VMALLOC_START;
    assert_eq!(
        vm.alloc(capacity, VmKind::Mapped),
        Err(VmallocError::TooLarge {
            size: u64::from(capacity) + u64::from(PAGE_SIZE)
        })
    );
    vm.check().unwrap();
    assert_eq!(vm.stats().nr_areas, 0);
    // One page less: the area plus its guard fill everything exactly.
    let a = alloc_ok(&mut vm, capacity - PAGE_SIZE, VmKind::Demand);
    assert_eq!((a.addr, a.end()), (VMALLOC_START, VMALLOC_END));
    assert_eq!(a.nr_pages, capacity / PAGE_SIZE - 1);
    assert_eq!(vm.stats().free_bytes, 0);
    assert_eq!(vm.stats().nr_free_ranges, 0);
}

#[test]
fn top_of_the_address_space_does_not_overflow() {
    // The last managed byte is va(0xFFFF_EFFF): ends are computed without
    // overflow and find() of addresses above works.
    let mut vm = VmapAllocator::new(va(0xFFFF_0000), va(0xFFFF_F000));
    let a = alloc_ok(&mut vm, pages(7), VmKind::Mapped);
    let b = alloc_ok(&mut vm, pages(6), VmKind::Mapped);
    assert_eq!(b.end(), va(0xFFFF_F000));
    assert!(vm.find(va(0xFFFF_EFFF)).unwrap().in_guard(va(0xFFFF_EFFF)));
    assert_eq!(vm.find(va(0xFFFF_F000)), None);
    assert_eq!(vm.find(VirtAddr(u32::MAX)), None);
    assert!(vm.alloc(1, VmKind::Mapped).is_err());
    free_ok(&mut vm, b.addr);
    free_ok(&mut vm, a.addr);
    assert_eq!(
        vm.free_ranges().collect::<Vec<_>>(),
        [(va(0xFFFF_0000), va(0xFFFF_F000))]
    );
}

#[test]
#[should_panic(expected = "not page aligned")]
fn new_panics_on_unaligned_start() {
    VmapAllocator::new(VMALLOC_START + 1, VMALLOC_END);
}

#[test]
#[should_panic(expected = "not page aligned")]
fn new_panics_on_unaligned_end() {
    VmapAllocator::new(VMALLOC_START, VirtAddr(layout::VMALLOC_END - 1));
}

#[test]
#[should_panic(expected = "empty range")]
fn new_panics_on_empty_range() {
    VmapAllocator::new(VMALLOC_START, VMALLOC_START);
}

// -------------------------------------------------------------- reports ----

#[test]
fn display_like_proc_vmallocinfo() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, 5000, VmKind::Mapped);
    let b = alloc_ok(&mut vm, pages(4), VmKind::Demand);
    vm.find_mut(b.addr).unwrap().demand_faults = 1;
    assert_eq!(
        a.to_string(),
        "0xf8800000-0xf8803000   12288 vmalloc pages=2"
    );
    let lines: Vec<std::string::String> = vm.areas().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "0xf8800000-0xf8803000   12288 vmalloc pages=2",
            "0xf8803000-0xf8808000   20480 demand pages=4 faults=1",
        ]
    );
    assert_eq!(
        vm.stats().to_string(),
        "vmalloc: 2 areas, 32768 bytes used, 32768 bytes free in 1 ranges (largest 32768)"
    );
}

#[test]
fn error_messages() {
    let cases = [
        (VmallocError::ZeroSize, "zero-size"),
        (VmallocError::TooLarge { size: 1 << 32 }, "4294967296 bytes"),
        (
            VmallocError::NoSpace {
                size: 8192,
                largest_free: 4096,
            },
            "largest free range is 4096 bytes",
        ),
        (
            VmallocError::NotAllocated {
                addr: va(0xF880_1000),
            },
            "0xf8801000 is not the start of an allocated area",
        ),
    ];
    for (err, needle) in cases {
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

#[test]
fn check_detects_corruption() {
    let mut vm = small();
    let a = alloc_ok(&mut vm, pages(2), VmKind::Mapped);
    let mut bad = vm.clone();
    bad.find_mut(a.addr).unwrap().nr_pages = 3;
    assert!(bad.check().is_err());
    let mut bad = vm.clone();
    bad.find_mut(a.addr).unwrap().size = pages(2);
    assert!(bad.check().is_err());
    let mut bad = vm.clone();
    bad.free_by_size.clear();
    assert!(bad.check().is_err());
    let mut bad = vm.clone();
    bad.free_bytes -= PAGE_SIZE;
    assert!(bad.check().is_err());
    // Two adjacent free ranges that were not merged.
    let mut bad = vm.clone();
    let (s, size) = bad.free_by_start.pop_last().unwrap();
    bad.free_by_size.clear();
    bad.free_bytes -= size;
    bad.insert_free(s, PAGE_SIZE);
    bad.insert_free(s + PAGE_SIZE, size - PAGE_SIZE);
    assert_eq!(
        bad.check(),
        Err(VmapCheckError::NotMerged { at: s + PAGE_SIZE })
    );
    assert_eq!(
        bad.check().unwrap_err().to_string(),
        "vmalloc: two adjacent free ranges were not merged (at 0xf8804000)"
    );
}

// ------------------------------------------------- the real vmalloc range ---

#[test]
fn fill_the_whole_vmalloc_range_then_free_all() {
    let mut vm = VmapAllocator::new(VMALLOC_START, VMALLOC_END);
    let capacity_pages = (VMALLOC_END - VMALLOC_START) / PAGE_SIZE;
    // One usable page + guard each: 13823 areas fill the range exactly.
    let mut areas = Vec::new();
    while let Ok(a) = vm.alloc(1, VmKind::Mapped) {
        assert!(a.addr >= VMALLOC_START && a.end() <= VMALLOC_END);
        areas.push(a);
    }
    vm.check().unwrap();
    assert_eq!(areas.len() as u32, capacity_pages / 2);
    assert_eq!(
        vm.alloc(1, VmKind::Mapped),
        Err(VmallocError::NoSpace {
            size: pages(2),
            largest_free: 0
        })
    );
    // Address order, back to back.
    for w in areas.windows(2) {
        assert_eq!(w[0].end(), w[1].addr);
    }
    assert_eq!(areas.last().unwrap().end(), VMALLOC_END);
    // Free every other area (nothing merges), then the rest (all merges).
    for a in areas.iter().step_by(2) {
        vm.free(a.addr).unwrap();
    }
    vm.check().unwrap();
    assert_eq!(vm.stats().nr_free_ranges, areas.len().div_ceil(2));
    for a in areas.iter().skip(1).step_by(2) {
        vm.free(a.addr).unwrap();
    }
    vm.check().unwrap();
    assert_eq!(
        vm.free_ranges().collect::<Vec<_>>(),
        [(VMALLOC_START, VMALLOC_END)]
    );
    let s = vm.stats();
    assert_eq!((s.nr_areas, s.used_bytes), (0, 0));
}

#[test]
fn fill_with_mixed_sizes_then_free_in_reverse() {
    let mut vm = VmapAllocator::new(VMALLOC_START, VMALLOC_END);
    let mut areas = Vec::new();
    let mut n = 0u32;
    loop {
        let size = pages(n % 37 + 1) - n % 4000;
        match vm.alloc(size, VmKind::Demand) {
            Ok(a) => areas.push(a),
            Err(VmallocError::NoSpace { largest_free, .. }) => {
                assert!(largest_free < pages(n % 37 + 2));
                // Whatever is left is taken by one last exact-sized area.
                if largest_free >= pages(2) {
                    areas.push(alloc_ok(&mut vm, largest_free - PAGE_SIZE, VmKind::Mapped));
                }
                break;
            }
            Err(e) => panic!("{e}"),
        }
        n += 1;
    }
    vm.check().unwrap();
    assert_eq!(vm.stats().free_bytes, 0);
    for a in areas.iter().rev() {
        vm.free(a.addr).unwrap();
    }
    vm.check().unwrap();
    assert_eq!(
        vm.free_ranges().collect::<Vec<_>>(),
        [(VMALLOC_START, VMALLOC_END)]
    );
}

// ------------------------------------------------------------ randomized ---

/// Uniform in `[0, n)` for `u32` bounds.
fn below(rng: &mut Rng, n: u32) -> u32 {
    rng.below(u64::from(n)) as u32
}

/// The obviously correct model: the busy areas as sorted `(start, end)`
/// pairs, searched linearly.
struct Model {
    start: VirtAddr,
    end: VirtAddr,
    busy: Vec<(VirtAddr, VirtAddr)>,
}

impl Model {
    /// The free gaps between busy areas, as `(start, len)` in address order.
    fn gaps(&self) -> Vec<(VirtAddr, u32)> {
        let mut gaps = Vec::new();
        let mut cursor = self.start;
        for &(s, e) in &self.busy {
            if s > cursor {
                gaps.push((cursor, s - cursor));
            }
            cursor = e;
        }
        if self.end > cursor {
            gaps.push((cursor, self.end - cursor));
        }
        gaps
    }

    /// What `alloc(size)` must return: the start and reservation size, or
    /// the error.
    fn alloc(&mut self, size: u32) -> Result<(VirtAddr, u32), VmallocError> {
        if size == 0 {
            return Err(VmallocError::ZeroSize);
        }
        let total = u64::from(size).div_ceil(u64::from(PAGE_SIZE)) * u64::from(PAGE_SIZE)
            + u64::from(PAGE_SIZE);
        if total > u64::from(self.end - self.start) {
            return Err(VmallocError::TooLarge { size: total });
        }
        let total = total as u32;
        let gaps = self.gaps();
        // Smallest gap that fits, lowest address among equal sizes.
        let best = gaps
            .iter()
            .filter(|&&(_, len)| len >= total)
            .min_by_key(|&&(start, len)| (len, start));
        match best {
            Some(&(start, _)) => {
                let i = self.busy.partition_point(|&(s, _)| s < start);
                self.busy.insert(i, (start, start + total));
                Ok((start, total))
            }
            None => Err(VmallocError::NoSpace {
                size: total,
                largest_free: gaps.iter().map(|&(_, len)| len).max().unwrap_or(0),
            }),
        }
    }

    /// The index of the busy area containing `va`, if any.
    fn find(&self, va: VirtAddr) -> Option<usize> {
        self.busy.iter().position(|&(s, e)| s <= va && va < e)
    }
}

/// Compares the allocator with the model after an operation.
fn assert_agrees(vm: &VmapAllocator, model: &Model) {
    vm.check().unwrap();
    let areas: Vec<&VmArea> = vm.areas().collect();
    assert_eq!(areas.len(), model.busy.len());
    for (a, &(s, e)) in areas.iter().zip(&model.busy) {
        assert_eq!((a.addr, a.end()), (s, e));
        assert!(a.addr >= vm.start() && a.end() <= vm.end(), "out of range");
        // The guard page belongs to this area and no other.
        assert_eq!(vm.find(a.usable_end()).map(|f| f.addr), Some(a.addr));
    }
    for w in areas.windows(2) {
        assert!(w[0].end() <= w[1].addr, "overlap");
    }
    let used: u32 = model.busy.iter().map(|&(s, e)| e - s).sum();
    assert_eq!(vm.stats().used_bytes, used);
}

/// `nr_ops` random operations on `[start, start + nr_pages pages)`.
fn random_ops(seed: u64, start: VirtAddr, nr_pages: u32, nr_ops: u32) {
    let end = start + pages(nr_pages);
    let mut rng = Rng::new(seed);
    let mut vm = VmapAllocator::new(start, end);
    let mut model = Model {
        start,
        end,
        busy: Vec::new(),
    };
    let mut nr_ok_allocs = 0;
    let mut nr_no_space = 0;
    for op in 0..nr_ops {
        let ctx = || std::format!("seed {seed:#x}, op {op}");
        match below(&mut rng, 100) {
            // Allocate: mostly small, sometimes large, rarely 0 or huge.
            0..40 => {
                let size = match below(&mut rng, 20) {
                    0 => 0,
                    1 => u32::MAX - below(&mut rng, pages(2)),
                    2 => pages(nr_pages) - below(&mut rng, pages(3)),
                    3..6 => 1 + below(&mut rng, pages(32)),
                    _ => 1 + below(&mut rng, pages(4)),
                };
                let kind = if below(&mut rng, 2) == 0 {
                    VmKind::Mapped
                } else {
                    VmKind::Demand
                };
                let want = model.alloc(size);
                let got = vm.alloc(size, kind).map(|a| {
                    assert_eq!(a.kind, kind);
                    assert_eq!(a.nr_pages, a.size / PAGE_SIZE - 1);
                    (a.addr, a.size)
                });
                assert_eq!(got, want, "alloc({size:#x}), {}", ctx());
                match got {
                    Ok(_) => nr_ok_allocs += 1,
                    Err(VmallocError::NoSpace { .. }) => nr_no_space += 1,
                    Err(_) => {}
                }
            }
            // Free a random busy area.
            40..75 => {
                if model.busy.is_empty() {
                    continue;
                }
                let i = below(&mut rng, model.busy.len() as u32) as usize;
                let (s, e) = model.busy.remove(i);
                let a = vm.free(s).unwrap_or_else(|err| panic!("{err}, {}", ctx()));
                assert_eq!((a.addr, a.end()), (s, e), "{}", ctx());
            }
            // Free an address that is usually not the start of an area.
            75..85 => {
                let addr =
                    VirtAddr(start.0.wrapping_sub(pages(1)) + below(&mut rng, pages(nr_pages + 2)));
                match model.busy.iter().position(|&(s, _)| s == addr) {
                    Some(i) => {
                        model.busy.remove(i);
                        assert_eq!(vm.free(addr).map(|a| a.addr), Ok(addr), "{}", ctx());
                    }
                    None => assert_eq!(
                        vm.free(addr),
                        Err(VmallocError::NotAllocated { addr }),
                        "{}",
                        ctx()
                    ),
                }
            }
            // Look up a random address, sometimes just outside the range.
            _ => {
                let va =
                    VirtAddr(start.0.wrapping_sub(pages(1)) + below(&mut rng, pages(nr_pages + 2)));
                let want = model.find(va).map(|i| model.busy[i].0);
                assert_eq!(
                    vm.find(va).map(|a| a.addr),
                    want,
                    "find({va:#x}), {}",
                    ctx()
                );
                if let Some(a) = vm.find_mut(va) {
                    a.demand_faults += 1;
                }
            }
        }
        assert_agrees(&vm, &model);
    }
    // The run exercised both success and exhaustion.
    assert!(
        nr_ok_allocs > 100,
        "seed {seed:#x}: only {nr_ok_allocs} allocations"
    );
    assert!(nr_no_space > 0, "seed {seed:#x}: never ran out of space");
    // Freeing everything leaves one free range.
    for (s, _) in core::mem::take(&mut model.busy) {
        vm.free(s).unwrap();
    }
    assert_agrees(&vm, &model);
    assert_eq!(vm.free_ranges().collect::<Vec<_>>(), [(start, end)]);
}

#[test]
fn random_ops_against_a_model() {
    // 4 seeds x 6000 operations on a 256-page range (often full).
    for seed in [1, 0x2545_F491_4F6C_DD1D, 0xDEAD_BEEF, 0x1234_5678_9ABC_DEF0] {
        random_ops(seed, VMALLOC_START, 256, 6000);
    }
}

#[test]
fn random_ops_on_the_real_vmalloc_range() {
    let nr_pages = (VMALLOC_END - VMALLOC_START) / PAGE_SIZE;
    // Large sizes (case 2 of the size choice) make it run out of space too.
    random_ops(0x9E37_79B9_7F4A_7C15, VMALLOC_START, nr_pages, 4000);
}
