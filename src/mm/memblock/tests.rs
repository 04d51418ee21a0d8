//! memblock's host tests: the worked examples of the doc comments, every
//! edit (add, remove, reserve, free), allocation, growth of the region
//! arrays, the dump, and the errors. The randomized tests are in
//! `proptests.rs`. Every [`Fixture`] helper checks the invariants after its
//! operation.

use super::*;
use crate::test_support::phys::{FakePhys, POISON, leak_regions};
use core::mem::size_of;

pub(super) const MIB: u64 = 1 << 20;
pub(super) const P: u64 = PAGE_BYTES;

/// `PhysAddr(x)`, short for the many literal addresses below.
pub(super) const fn pa(x: u64) -> PhysAddr {
    PhysAddr(x)
}

/// A memblock with `cap`-slot arrays over 8 MiB of fake RAM at 0; every
/// helper checks the invariants after the operation.
struct Fixture {
    mb: Memblock,
    ram: FakePhys,
}

impl Fixture {
    fn new(cap: usize) -> Self {
        Fixture {
            mb: Memblock::new(leak_regions(cap), leak_regions(cap)),
            ram: FakePhys::new(PhysAddr(0), 8 * MIB as usize),
        }
    }

    fn add(&mut self, base: u64, size: u64) -> &mut Self {
        self.mb.add(pa(base), size, &mut self.ram).unwrap();
        self.mb.check().unwrap();
        self
    }

    fn remove(&mut self, base: u64, size: u64) -> &mut Self {
        self.mb.remove(pa(base), size, &mut self.ram).unwrap();
        self.mb.check().unwrap();
        self
    }

    fn reserve(&mut self, base: u64, size: u64) -> &mut Self {
        self.mb.reserve(pa(base), size, &mut self.ram).unwrap();
        self.mb.check().unwrap();
        self
    }

    fn free(&mut self, base: u64, size: u64) -> &mut Self {
        self.mb.free(pa(base), size, &mut self.ram).unwrap();
        self.mb.check().unwrap();
        self
    }

    /// `phys_alloc_range` with the window `[min, max)` as numbers.
    fn alloc(
        &mut self,
        size: u64,
        align: u64,
        min: u64,
        max: u64,
    ) -> Result<PhysAddr, MemblockError> {
        let r = self
            .mb
            .phys_alloc_range(size, align, pa(min), pa(max), &mut self.ram);
        self.mb.check().unwrap();
        r
    }
}

/// `(base, size)` of each region.
fn ranges(t: &MemblockType) -> Vec<(u64, u64)> {
    t.regions().iter().map(|r| (r.base.0, r.size)).collect()
}

/// The free ranges as `(start, end)` numbers.
fn free_ranges(mb: &Memblock) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    mb.for_each_free_range(|start, end| v.push((start.0, end.0)));
    v
}

/// Everything observable, to show that a failed call changed nothing.
type Snapshot = (
    Vec<MemblockRegion>,
    Vec<MemblockRegion>,
    [usize; 2],
    [Option<PhysAddr>; 2],
    [u64; 2],
    bool,
    PhysAddr,
);

pub(super) fn snapshot(mb: &Memblock) -> Snapshot {
    (
        mb.memory.regions().to_vec(),
        mb.reserved.regions().to_vec(),
        [mb.memory.max(), mb.reserved.max()],
        [mb.memory.storage_pa(), mb.reserved.storage_pa()],
        [mb.memory.total_size(), mb.reserved.total_size()],
        mb.bottom_up(),
        mb.current_limit(),
    )
}

// ---- add --------------------------------------------------------------

#[test]
fn add_overlapping_range_inserts_only_the_gaps_and_merges() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x1000).add(0x3000, 0x1000);
    assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x1000), (0x3000, 0x1000)]);
    // The example in MemblockType::add_range: three gaps, one region.
    f.add(0x0, 0x5000);
    assert_eq!(ranges(&f.mb.memory), [(0x0, 0x5000)]);
    assert_eq!(f.mb.memory.total_size(), 0x5000);
    // Partial overlap at the top.
    f.add(0x4000, 0x3000);
    assert_eq!(ranges(&f.mb.memory), [(0x0, 0x7000)]);
}

#[test]
fn add_adjacent_ranges_merge() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x1000).add(0x2000, 0x1000).add(0x0, 0x1000);
    assert_eq!(ranges(&f.mb.memory), [(0x0, 0x3000)]);
    assert_eq!(f.mb.memory.cnt(), 1);
}

#[test]
fn add_range_bridging_two_regions_merges_all_three() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x1000)
        .add(0x5000, 0x1000)
        .add(0x2000, 0x3000);
    assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x5000)]);
}

#[test]
fn add_contained_range_changes_nothing() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x10000);
    let before = snapshot(&f.mb);
    f.add(0x2000, 0x1000).add(0x1000, 0x10000);
    assert_eq!(snapshot(&f.mb), before);
}

#[test]
fn add_duplicate_range_is_idempotent() {
    let mut f = Fixture::new(8);
    f.add(0x10_0000, 0x20_0000).add(0x10_0000, 0x20_0000);
    assert_eq!(ranges(&f.mb.memory), [(0x10_0000, 0x20_0000)]);
    assert_eq!(f.mb.memory.total_size(), 0x20_0000);
}

#[test]
fn add_out_of_order_keeps_regions_sorted() {
    let mut f = Fixture::new(8);
    for base in [0x5_0000, 0x1_0000, 0x3_0000, 0x7_0000, 0x2_0000] {
        f.add(base, 0x1000);
    }
    assert_eq!(
        ranges(&f.mb.memory),
        [
            (0x1_0000, 0x1000),
            (0x2_0000, 0x1000),
            (0x3_0000, 0x1000),
            (0x5_0000, 0x1000),
            (0x7_0000, 0x1000)
        ]
    );
    assert_eq!(f.mb.memory.total_size(), 0x5000);
}

#[test]
fn add_of_zero_bytes_does_nothing_and_overflow_is_refused() {
    let mut f = Fixture::new(8);
    f.add(0x1234, 0);
    assert_eq!(f.mb.memory.cnt(), 0);
    assert_eq!(
        f.mb.add(pa(u64::MAX - 0xfff), 0x1000, &mut f.ram),
        Err(MemblockError::Overflow {
            base: pa(u64::MAX - 0xfff),
            size: 0x1000
        })
    );
    assert_eq!(
        f.mb.reserve(pa(2), u64::MAX, &mut f.ram),
        Err(MemblockError::Overflow {
            base: pa(2),
            size: u64::MAX
        })
    );
    assert_eq!(f.mb.memory.cnt(), 0);
    // A range may end exactly at 4 GiB.
    f.add(0xFFFF_F000, 0x1000);
    assert_eq!(f.mb.memory.regions()[0].end(), pa(1 << 32));
}

// ---- remove -----------------------------------------------------------

#[test]
fn remove_from_the_middle_splits_a_region() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9000).remove(0x4000, 0x2000);
    assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x3000), (0x6000, 0x4000)]);
    assert_eq!(f.mb.memory.total_size(), 0x7000);
}

#[test]
fn remove_across_several_regions() {
    let mut f = Fixture::new(8);
    for base in [0x1000, 0x3000, 0x5000, 0x7000] {
        f.add(base, 0x1000);
    }
    f.remove(0x1800, 0x6000);
    assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x800), (0x7800, 0x800)]);
    assert_eq!(f.mb.memory.total_size(), 0x1000);
}

#[test]
fn remove_of_exact_regions_and_edges() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x1000).add(0x3000, 0x4000);
    f.remove(0x1000, 0x1000);
    assert_eq!(ranges(&f.mb.memory), [(0x3000, 0x4000)]);
    f.remove(0x2000, 0x2000).remove(0x6000, 0x3000);
    assert_eq!(ranges(&f.mb.memory), [(0x4000, 0x2000)]);
}

#[test]
fn remove_of_nothing_changes_nothing() {
    let mut f = Fixture::new(4);
    for base in [0x1000, 0x3000, 0x5000, 0x7000] {
        f.add(base, 0x1000).reserve(base, 0x1000);
    }
    // Both arrays are full and no memory is free: removing ranges that
    // split nothing must still work.
    let before = snapshot(&f.mb);
    f.remove(0x2000, 0x1000)
        .remove(0x0, 0x1000)
        .remove(0x9000, 0x10_0000)
        .remove(0x1234, 0);
    f.free(0x2000, 0x1000).free(0x8000, 0x1000);
    assert_eq!(snapshot(&f.mb), before);
}

// ---- reserve / free ---------------------------------------------------

#[test]
fn reserve_overlapping_and_adjacent_ranges_merge() {
    let mut f = Fixture::new(8);
    f.reserve(0x10_0000, 0x1000)
        .reserve(0x10_2000, 0x1000)
        .reserve(0x10_0800, 0x2000)
        .reserve(0x10_3000, 0x1000);
    assert_eq!(ranges(&f.mb.reserved), [(0x10_0000, 0x4000)]);
    assert_eq!(f.mb.reserved.total_size(), 0x4000);
    // Reserving outside memory is allowed (Linux reserves firmware areas
    // that need not be RAM).
    assert_eq!(f.mb.memory.cnt(), 0);
}

#[test]
fn free_from_the_middle_splits_a_reservation() {
    let mut f = Fixture::new(8);
    f.reserve(0x10_0000, 0x10_0000).free(0x14_0000, 0x1000);
    assert_eq!(
        ranges(&f.mb.reserved),
        [(0x10_0000, 0x4_0000), (0x14_1000, 0xb_f000)]
    );
    assert_eq!(f.mb.reserved.total_size(), 0xf_f000);
}

#[test]
fn free_across_several_reservations() {
    let mut f = Fixture::new(8);
    f.reserve(0x1000, 0x2000)
        .reserve(0x4000, 0x1000)
        .reserve(0x6000, 0x2000)
        .free(0x2000, 0x5000);
    assert_eq!(ranges(&f.mb.reserved), [(0x1000, 0x1000), (0x7000, 0x1000)]);
}

#[test]
fn free_of_an_unreserved_range_does_nothing() {
    let mut f = Fixture::new(8);
    f.reserve(0x1000, 0x1000);
    let before = snapshot(&f.mb);
    f.free(0x3000, 0x1000).free(0x0, 0x1000).free(0x1000, 0);
    assert_eq!(snapshot(&f.mb), before);
}

// ---- allocation -------------------------------------------------------

#[test]
fn find_in_range_worked_example() {
    // The numbers in the doc comment of find_in_range().
    let mut f = Fixture::new(8);
    f.add(0x0, 0x9_f000)
        .add(0x10_0000, 0x70_0000)
        .reserve(0x70_0000, 0x10_0000);
    assert_eq!(
        f.mb.find_in_range(0x3000, 0x2000, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
        Some(pa(0x6f_c000))
    );
    f.mb.set_bottom_up(true);
    assert_eq!(
        f.mb.find_in_range(0x3000, 0x2000, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
        Some(pa(0x2000))
    );
    // Only a search: nothing was reserved.
    assert_eq!(f.mb.reserved.cnt(), 1);
}

#[test]
fn alloc_result_is_aligned() {
    let mut f = Fixture::new(8);
    f.add(0, 8 * MIB).reserve(8 * MIB - 0x1000, 0x1000);
    // Highest start is 0x7fe000; aligned down to 64 KiB: 0x7f0000.
    assert_eq!(f.alloc(0x1000, 0x1_0000, 0, u64::MAX), Ok(pa(0x7f_0000)));
    assert_eq!(f.alloc(0x1000, 4 * MIB, 0, u64::MAX), Ok(pa(0x40_0000)));
    assert_eq!(f.alloc(0x10, 0x10, 0, u64::MAX), Ok(pa(0x7f_eff0)));
    assert_eq!(f.alloc(0x10, 1, 0, u64::MAX), Ok(pa(0x7f_efe0)));
}

#[test]
fn alloc_stays_within_min_and_max() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 64 * MIB);
    // Below 16 MiB, e.g. for ISA DMA.
    assert_eq!(
        f.alloc(0x2000, 0x1000, 0, 16 * MIB),
        Ok(pa(16 * MIB - 0x2000))
    );
    f.mb.set_bottom_up(true);
    assert_eq!(f.alloc(0x2000, 0x1000, 3 * MIB, 4 * MIB), Ok(pa(3 * MIB)));
    assert_eq!(
        f.alloc(0x2000, 0x1000, 3 * MIB, 4 * MIB),
        Ok(pa(3 * MIB + 0x2000))
    );
    // A window smaller than the request.
    assert_eq!(
        f.alloc(0x2000, 0x1000, 5 * MIB, 5 * MIB + 0x1000),
        Err(MemblockError::NoSpace {
            size: 0x2000,
            align: 0x1000,
            min: pa(5 * MIB),
            max: pa(5 * MIB + 0x1000)
        })
    );
    // An empty or inverted window.
    assert!(f.alloc(0x1000, 0x1000, 6 * MIB, 6 * MIB).is_err());
    assert!(f.alloc(0x1000, 0x1000, 7 * MIB, 6 * MIB).is_err());
}

#[test]
fn alloc_respects_current_limit() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 64 * MIB);
    f.mb.set_current_limit(pa(4 * MIB));
    assert_eq!(f.mb.current_limit(), pa(4 * MIB));
    assert_eq!(
        f.alloc(0x1000, 0x1000, 0, u64::MAX),
        Ok(pa(4 * MIB - 0x1000))
    );
    assert_eq!(
        f.alloc(0x1000, 0x1000, 0, 32 * MIB),
        Ok(pa(4 * MIB - 0x2000))
    );
    assert!(f.alloc(0x1000, 0x1000, 4 * MIB, u64::MAX).is_err());
    f.mb.set_current_limit(pa(0));
    assert!(f.alloc(0x1000, 0x1000, 0, u64::MAX).is_err());
    f.mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(64 * MIB)));
}

#[test]
fn alloc_top_down_picks_the_highest_fit() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0x70_0000)
        .reserve(0x10_0000, 0x6f_f000);
    assert!(!f.mb.bottom_up());
    // One page is free at the top of high memory: a page fits there, two
    // pages only at the top of low memory.
    assert_eq!(f.alloc(0x2000, 0x1000, 0, u64::MAX), Ok(pa(0x9_d000)));
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(0x7f_f000)));
}

#[test]
fn alloc_bottom_up_picks_the_lowest_fit() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0x70_0000)
        .reserve(0x1000, 0x9_d000);
    f.mb.set_bottom_up(true);
    assert!(f.mb.bottom_up());
    // One page is free at the top of low memory.
    assert_eq!(f.alloc(0x2000, 0x1000, 0, u64::MAX), Ok(pa(0x10_0000)));
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(0x9_e000)));
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(0x10_2000)));
}

#[test]
fn alloc_never_returns_the_first_page() {
    let mut f = Fixture::new(8);
    f.add(0, 0x4000);
    f.mb.set_bottom_up(true);
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(0x1000)));
    assert_eq!(f.mb.find_in_range(0x1000, 1, pa(0), pa(0x1000)), None);
}

#[test]
fn alloc_exhaustion_gives_no_space_and_changes_nothing() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x4000);
    let mut got: Vec<u64> = (0..4)
        .map(|_| f.alloc(0x1000, 0x1000, 0, u64::MAX).unwrap().0)
        .collect();
    got.sort();
    assert_eq!(got, [0x1000, 0x2000, 0x3000, 0x4000]);
    let before = snapshot(&f.mb);
    assert_eq!(
        f.alloc(0x1000, 0x1000, 0, u64::MAX),
        Err(MemblockError::NoSpace {
            size: 0x1000,
            align: 0x1000,
            min: pa(0),
            max: pa(u64::MAX)
        })
    );
    assert_eq!(
        f.mb.alloc_range(0x1000, 0x1000, pa(0), MEMBLOCK_ALLOC_ANYWHERE, &mut f.ram),
        Err(MemblockError::NoSpace {
            size: 0x1000,
            align: 0x1000,
            min: pa(0),
            max: pa(u64::MAX)
        })
    );
    assert_eq!(snapshot(&f.mb), before);
    // Freeing one page makes exactly that page allocatable again.
    f.free(0x3000, 0x1000);
    assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(pa(0x3000)));
}

#[test]
fn alloc_rejects_zero_size_and_bad_alignment() {
    let mut f = Fixture::new(8);
    f.add(0x1000, MIB);
    let before = snapshot(&f.mb);
    assert_eq!(
        f.alloc(0, 0x1000, 0, u64::MAX),
        Err(MemblockError::ZeroSize)
    );
    assert_eq!(
        f.alloc(0x1000, 0, 0, u64::MAX),
        Err(MemblockError::BadAlign(0))
    );
    assert_eq!(
        f.alloc(0x1000, 3, 0, u64::MAX),
        Err(MemblockError::BadAlign(3))
    );
    assert_eq!(
        f.mb.find_in_range(0, 0x1000, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
        None
    );
    assert_eq!(
        f.mb.find_in_range(0x1000, 0x3000, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
        None
    );
    // Requests too big for the address space fail cleanly.
    assert!(f.alloc(u64::MAX, 0x1000, 0, u64::MAX).is_err());
    f.mb.set_bottom_up(true);
    assert!(f.alloc(0x1000, 1 << 63, 0, u64::MAX).is_err());
    assert_eq!(snapshot(&f.mb), before.clone().with_bottom_up(true));
}

trait WithBottomUp {
    fn with_bottom_up(self, b: bool) -> Self;
}

impl WithBottomUp for Snapshot {
    fn with_bottom_up(mut self, b: bool) -> Self {
        self.5 = b;
        self
    }
}

#[test]
fn alloc_range_zeroes_the_memory_and_phys_alloc_range_does_not() {
    let mut f = Fixture::new(8);
    f.add(0, 8 * MIB);
    let got =
        f.mb.alloc_range(0x1800, 0x1000, pa(0), MEMBLOCK_ALLOC_ANYWHERE, &mut f.ram)
            .unwrap();
    // 8 MiB - 0x1800 = 0x7fe800, aligned down: 0x7fe000.
    assert_eq!(got, pa(0x7f_e000));
    assert!(f.ram.all(got, 0x1800, 0));
    assert!(f.ram.all(got + 0x1800, 0x800, POISON));
    assert_eq!(f.ram.zeroed(), [(got, 0x1800)]);
    let got =
        f.mb.phys_alloc_range(0x1000, 0x1000, pa(0), MEMBLOCK_ALLOC_ANYWHERE, &mut f.ram)
            .unwrap();
    assert_eq!(got, pa(0x7f_d000));
    assert!(f.ram.all(got, 0x1000, POISON));
    assert_eq!(f.ram.zeroed().len(), 1);
    f.mb.check().unwrap();
}

// ---- queries ----------------------------------------------------------

#[test]
fn free_ranges_are_memory_minus_reserved() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0x70_0000)
        .reserve(0x0, 0x2000)
        .reserve(0x9_e000, 0x7_2000)
        .reserve(0x20_0000, 0x1000);
    assert_eq!(
        free_ranges(&f.mb),
        [
            (0x2000, 0x9_e000),
            (0x11_0000, 0x20_0000),
            (0x20_1000, 0x80_0000)
        ]
    );
    // Nothing reserved: the free ranges are the memory regions.
    let mut g = Fixture::new(8);
    g.add(0x1000, 0x1000).add(0x3000, 0x1000);
    assert_eq!(free_ranges(&g.mb), [(0x1000, 0x2000), (0x3000, 0x4000)]);
}

#[test]
fn region_queries_answer_for_whole_ranges() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0x70_0000)
        .reserve(0x10_0000, 0x1000);
    assert!(f.mb.is_region_memory(pa(0x1000), 0x9_e000));
    assert!(f.mb.is_region_memory(pa(0x5000), 0x1000));
    assert!(!f.mb.is_region_memory(pa(0x9_e000), 0x2000)); // runs into the hole
    assert!(!f.mb.is_region_memory(pa(0x0), 0x2000));
    assert!(!f.mb.is_region_memory(pa(0x8_0000), 0x10_0000)); // spans the hole
    assert!(f.mb.is_region_memory(pa(0x7f_f000), 0));
    assert!(!f.mb.is_region_memory(pa(0x80_0000), 0));
    assert!(!f.mb.is_region_memory(pa(0x7f_f000), u64::MAX));

    assert!(f.mb.is_region_reserved(pa(0x10_0fff), 1));
    assert!(f.mb.is_region_reserved(pa(0xf_f000), 0x2000));
    assert!(!f.mb.is_region_reserved(pa(0xf_f000), 0x1000)); // ends where it starts
    assert!(!f.mb.is_region_reserved(pa(0x10_1000), 0x1000));
    assert!(!f.mb.is_region_reserved(pa(0x10_0000), 0));
    assert!(f.mb.is_region_reserved(pa(0x0), u64::MAX));
}

// ---- growth -----------------------------------------------------------

/// Half-open array ranges `(pa, pa + bytes)` memblock currently owns.
fn storages(mb: &Memblock) -> Vec<(u64, u64)> {
    [&mb.memory, &mb.reserved]
        .iter()
        .filter_map(|t| t.storage_pa().map(|s| (s.0, s.0 + t.storage_bytes())))
        .collect()
}

/// `(max, storage range)` of memory, then of reserved.
pub(super) fn arrays(mb: &Memblock) -> [(usize, Option<(u64, u64)>); 2] {
    [&mb.memory, &mb.reserved].map(|t| {
        (
            t.max(),
            t.storage_pa().map(|s| (s.0, s.0 + t.storage_bytes())),
        )
    })
}

fn array_bytes(cap: usize) -> u64 {
    (cap as u64 * size_of::<MemblockRegion>() as u64).next_multiple_of(P)
}

#[test]
fn growth_keeps_all_regions_and_reserves_the_arrays() {
    let mut f = Fixture::new(4);
    // 50 disjoint 64 KiB regions, 128 KiB apart, added out of order.
    let order: Vec<u64> = (0..50).map(|i| (i * 7) % 50).collect();
    for &i in &order {
        f.add(i * 0x2_0000, 0x1_0000);
    }
    for &i in &order {
        f.reserve(i * 0x2_0000 + 0x4000, 0x1000);
    }
    let expected_memory: Vec<(u64, u64)> = (0..50).map(|i| (i * 0x2_0000, 0x1_0000)).collect();
    assert_eq!(ranges(&f.mb.memory), expected_memory);
    assert!(f.mb.memory.max() >= 50 && f.mb.reserved.max() >= 52);

    // reserved = the 50 user reservations + the two current arrays,
    // computed with a memblock whose arrays never grow.
    let mut model = Memblock::new(leak_regions(256), leak_regions(256));
    for i in 0..50 {
        model
            .reserve(pa(i * 0x2_0000 + 0x4000), 0x1000, &mut f.ram)
            .unwrap();
    }
    let current = storages(&f.mb);
    assert_eq!(current.len(), 2);
    for &(start, end) in &current {
        assert!(start.is_multiple_of(P) && end.is_multiple_of(P));
        model.reserve(pa(start), end - start, &mut f.ram).unwrap();
    }
    assert_eq!(ranges(&f.mb.reserved), ranges(&model.reserved));

    // Every outgrown array was freed: what is left of it is reserved only
    // where a current array reuses the space.
    assert!(f.ram.arrays().len() >= 8);
    for &(base, cap) in f.ram.arrays() {
        let (start, end) = (base.0, base.0 + array_bytes(cap));
        if current.contains(&(start, end)) {
            continue;
        }
        for page in (start..end).step_by(P as usize) {
            let in_current = current.iter().any(|&(s, e)| s <= page && page < e);
            assert_eq!(
                f.mb.is_region_reserved(pa(page), P),
                in_current,
                "page {page:#x}"
            );
        }
    }
}

#[test]
fn growth_of_memory_grows_a_full_reserved_array_too() {
    let mut f = Fixture::new(4);
    f.add(0x10_0000, MIB);
    for i in 0..4 {
        f.reserve(0x1000 + i * 0x2000, 0x1000);
    }
    for i in 1..4 {
        f.add(0x1000 * i * 2, 0x1000);
    }
    assert_eq!((f.mb.memory.cnt(), f.mb.reserved.cnt()), (4, 4));
    f.add(0x30_0000, 0x1000);
    assert_eq!(f.mb.memory.cnt(), 5);
    let current = storages(&f.mb);
    assert_eq!(current.len(), 2);
    for (start, end) in current {
        assert!(f.mb.is_region_memory(pa(start), end - start));
        let covered = |r: &MemblockRegion| r.base.0 <= start && end <= r.end().0;
        assert!(f.mb.reserved.regions().iter().any(covered));
    }
    // Top-down: the reserved array was planned after the memory array,
    // just below it.
    assert_eq!(f.mb.memory.storage_pa(), Some(pa(0x1f_f000)));
    assert_eq!(f.mb.reserved.storage_pa(), Some(pa(0x1f_e000)));
}

#[test]
fn growth_never_places_an_array_in_the_range_being_changed() {
    // Reserving the top page while the reserved array is full: without
    // the exclusion, the new array would be put in that very page.
    let mut f = Fixture::new(4);
    f.add(0, MIB);
    for i in 1..5 {
        f.reserve(i * 0x1_0000, 0x1000);
    }
    f.reserve(MIB - 0x1000, 0x1000);
    assert_eq!(f.mb.reserved.storage_pa(), Some(pa(MIB - 0x2000)));
    assert_eq!(
        f.mb.reserved.regions().last(),
        Some(&MemblockRegion {
            base: pa(MIB - 0x2000),
            size: 0x2000,
            flags: 0
        })
    );

    // Removing memory at the top while the memory array is full.
    let mut g = Fixture::new(4);
    g.add(0x1000, 0x1000)
        .add(0x3000, 0x1000)
        .add(0x5000, 0x1000)
        .add(0x1_0000, 0x1_0000);
    g.remove(0x1_f000, 0x800);
    assert_eq!(g.mb.memory.storage_pa(), Some(pa(0x1_e000)));
    assert!(g.mb.is_region_memory(pa(0x1_e000), 0x1000));
}

#[test]
fn growth_failure_gives_array_full_and_changes_nothing() {
    let mut f = Fixture::new(4);
    // Four one-page memory regions, all reserved: no free memory at all.
    for base in [0x1000, 0x3000, 0x5000, 0x7000] {
        f.add(base, 0x1000).reserve(base, 0x1000);
    }
    let before = snapshot(&f.mb);
    assert_eq!(
        f.mb.reserve(pa(0x9000), 0x1000, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "reserved" })
    );
    assert_eq!(
        f.mb.add(pa(0x9000), 0x1000, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "memory" })
    );
    // Splits need a slot too.
    assert_eq!(
        f.mb.free(pa(0x1000), 0x800, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "reserved" })
    );
    assert_eq!(
        f.mb.remove(pa(0x3800), 0x100, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "memory" })
    );
    assert!(matches!(
        f.mb.phys_alloc_range(0x1000, 0x1000, pa(0), MEMBLOCK_ALLOC_ANYWHERE, &mut f.ram),
        Err(MemblockError::NoSpace { .. })
    ));
    f.mb.check().unwrap();
    assert_eq!(snapshot(&f.mb), before);
    assert!(f.ram.arrays().is_empty());

    // Free memory exists, but the new memory array needs the reserved
    // array to grow as well, and there is room for only one of them.
    let mut g = Fixture::new(4);
    for base in [0x1000, 0x3000, 0x5000] {
        g.add(base, 0x1000).reserve(base, 0x1000);
    }
    g.add(0x7000, 0x1000).reserve(0x20_0000, 0x1000);
    let before = snapshot(&g.mb);
    assert_eq!(
        g.mb.add(pa(0x9000), 0x800, &mut g.ram),
        Err(MemblockError::ArrayFull { name: "reserved" })
    );
    g.mb.check().unwrap();
    assert_eq!(snapshot(&g.mb), before);
}

#[test]
fn a_refused_array_gives_array_full_and_changes_nothing() {
    // Free memory exists, so a new array is planned, but the physical
    // memory refuses to provide it (PhysMem::region_array returns too short
    // a slice): the edit fails before anything is switched.
    let mut f = Fixture::new(2);
    f.ram = FakePhys::new(PhysAddr(0), 8 * MIB as usize).refusing_arrays();
    f.add(0x10_0000, MIB).add(0x30_0000, MIB);
    let before = snapshot(&f.mb);
    assert_eq!(
        f.mb.add(pa(0x50_0000), MIB, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "memory" })
    );
    f.reserve(0x10_0000, 0x1000).reserve(0x30_0000, 0x1000);
    let before_reserve = snapshot(&f.mb);
    assert_eq!(
        f.mb.reserve(pa(0x12_0000), 0x1000, &mut f.ram),
        Err(MemblockError::ArrayFull { name: "reserved" })
    );
    f.mb.check().unwrap();
    assert_eq!(snapshot(&f.mb), before_reserve);
    assert_eq!(before.0, snapshot(&f.mb).0, "memory unchanged");
    // Both growths asked, at a page-aligned free address below the top.
    assert_eq!(f.ram.arrays().len(), 2);
    for &(at, cap) in f.ram.arrays() {
        assert!(at.is_page_aligned() && cap >= 4, "({at:#x}, {cap})");
        assert!(f.mb.is_region_memory(at, P) && !f.mb.is_region_reserved(at, P));
    }
}

#[test]
fn initial_arrays_hold_init_memblock_regions() {
    let mut f = Fixture {
        mb: Memblock::new(
            leak_regions(INIT_MEMBLOCK_REGIONS),
            leak_regions(INIT_MEMBLOCK_REGIONS),
        ),
        ram: FakePhys::empty(),
    };
    for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
        f.add(i * 0x2000, 0x1000);
    }
    assert_eq!(f.mb.memory.cnt(), INIT_MEMBLOCK_REGIONS);
    assert_eq!(f.mb.memory.max(), INIT_MEMBLOCK_REGIONS);
    assert!(f.ram.arrays().is_empty());
    assert_eq!(f.mb.memory.name(), "memory");
    assert_eq!(f.mb.reserved.name(), "reserved");
}

// ---- output -----------------------------------------------------------

#[test]
fn dump_matches_linux_format() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0x7f0_0000)
        .reserve(0x1000, 0x1000)
        .reserve(0x10_0000, 0x13_3000);
    let mut lines = Vec::new();
    f.mb.dump(|args| lines.push(args.to_string()));
    assert_eq!(
        lines,
        [
            "MEMBLOCK configuration:",
            " memory size = 0x07f9e000 reserved size = 0x00134000",
            " memory.cnt  = 0x2",
            " memory[0x0]\t[0x00001000-0x0009efff], 0x0009e000 bytes flags: 0x0",
            " memory[0x1]\t[0x00100000-0x07ffffff], 0x07f00000 bytes flags: 0x0",
            " reserved.cnt  = 0x2",
            " reserved[0x0]\t[0x00001000-0x00001fff], 0x00001000 bytes flags: 0x0",
            " reserved[0x1]\t[0x00100000-0x00232fff], 0x00133000 bytes flags: 0x0",
        ]
    );
}

#[test]
fn dump_of_an_empty_memblock() {
    let f = Fixture::new(4);
    let mut lines = Vec::new();
    f.mb.dump(|args| lines.push(args.to_string()));
    assert_eq!(
        lines,
        [
            "MEMBLOCK configuration:",
            " memory size = 0x00000000 reserved size = 0x00000000",
            " memory.cnt  = 0x0",
            " reserved.cnt  = 0x0",
        ]
    );
}

#[test]
fn display_summarises_both_types() {
    let mut f = Fixture::new(8);
    f.add(0x1000, 0x9_e000)
        .add(0x10_0000, 0xf0_0000)
        .add(0x110_0000, 0x6fe_0000);
    for i in 1..6 {
        f.reserve(i * MIB, 0x4_0000);
    }
    assert_eq!(
        f.mb.to_string(),
        "memory 3 regions 133685248 bytes, reserved 5 regions 1310720 bytes"
    );
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        MemblockError::NoSpace {
            size: 0x2000,
            align: 0x1000,
            min: pa(0),
            max: pa(0x100_0000)
        }
        .to_string(),
        "memblock: no free range of 0x2000 bytes aligned to 0x1000 in [0x0, 0x1000000)"
    );
    assert_eq!(
        MemblockError::BadAlign(3).to_string(),
        "memblock: alignment 0x3 is not a power of two"
    );
    assert_eq!(
        MemblockError::Overflow {
            base: pa(0xffff_ffff_ffff_f000),
            size: 0x2000
        }
        .to_string(),
        "memblock: range at 0xfffffffffffff000 of 0x2000 bytes overflows the address space"
    );
    assert_eq!(
        MemblockError::ZeroSize.to_string(),
        "memblock: allocation of zero bytes"
    );
    assert_eq!(
        MemblockError::ArrayFull { name: "reserved" }.to_string(),
        "memblock: reserved array is full and no free memory can hold a bigger one"
    );
}

#[test]
fn check_reports_broken_invariants() {
    let regions = leak_regions(4);
    regions[0] = MemblockRegion {
        base: pa(0x2000),
        size: 0x1000,
        flags: 0,
    };
    regions[1] = MemblockRegion {
        base: pa(0x3000),
        size: 0x1000,
        flags: 0,
    };
    let mut t = MemblockType::new("memory", leak_regions(4));
    t.regions = regions;
    t.cnt = 2;
    t.total_size = 0x2000;
    let name = "memory";
    assert_eq!(t.check(), Err(InvariantError::NotMerged { name, idx: 1 }));
    t.regions[1].base = pa(0x2800);
    assert_eq!(t.check(), Err(InvariantError::Unsorted { name, idx: 1 }));
    t.regions[1].base = pa(0x5000);
    assert_eq!(t.check(), Ok(()));
    t.total_size = 0x1000;
    assert_eq!(
        t.check(),
        Err(InvariantError::TotalSize {
            name,
            stored: 0x1000,
            sum: 0x2000
        })
    );
    t.total_size = 0x2000;
    t.regions[1].size = 0;
    assert_eq!(t.check(), Err(InvariantError::EmptyRegion { name, idx: 1 }));
    t.regions[1] = MemblockRegion {
        base: pa(u64::MAX - 0xfff),
        size: 0x2000,
        flags: 0,
    };
    assert_eq!(
        t.check(),
        Err(InvariantError::RegionOverflows { name, idx: 1 })
    );
    t.cnt = 5;
    assert_eq!(t.check(), Err(InvariantError::CntOverMax { name }));
    assert_eq!(
        InvariantError::NotMerged { name, idx: 1 }.to_string(),
        "memblock: memory[0x1] is adjacent to the region before and was not merged"
    );
}

// ---- above 4 GiB (PAE: RAM up to 64 GiB) ------------------------------

const GIB: u64 = 1 << 30;

#[test]
fn edits_above_4_gib_keep_64_bit_bases_sizes_and_totals() {
    let mut f = Fixture::new(4);
    f.add(0x10_0000, 3 * GIB - 0x10_0000)
        .add(4 * GIB, 4 * GIB)
        .add(8 * GIB, 56 * GIB - P);
    // [4 GiB, 8 GiB) and [8 GiB, 64 GiB - 4 KiB) merge.
    assert_eq!(
        ranges(&f.mb.memory),
        [(0x10_0000, 3 * GIB - 0x10_0000), (4 * GIB, 60 * GIB - P)]
    );
    assert_eq!(f.mb.memory.total_size(), 63 * GIB - 0x10_0000 - P);
    // A hole in the middle, a reservation across 4 GiB (in no memory at
    // its low end) and one at the top.
    f.remove(6 * GIB, GIB)
        .reserve(4 * GIB - P, 2 * P)
        .reserve(64 * GIB - 2 * P, P);
    assert_eq!(
        ranges(&f.mb.memory),
        [
            (0x10_0000, 3 * GIB - 0x10_0000),
            (4 * GIB, 2 * GIB),
            (7 * GIB, 57 * GIB - P)
        ]
    );
    assert!(f.mb.is_region_reserved(pa(4 * GIB), 1));
    assert!(!f.mb.is_region_reserved(pa(4 * GIB + P), P));
    assert!(f.mb.is_region_memory(pa(7 * GIB), 57 * GIB - P));
    assert!(!f.mb.is_region_memory(pa(6 * GIB), P));
    assert_eq!(
        free_ranges(&f.mb),
        [
            (0x10_0000, 3 * GIB),
            (4 * GIB + P, 6 * GIB),
            (7 * GIB, 64 * GIB - 2 * P),
        ]
    );
    f.free(4 * GIB - P, 2 * P);
    assert_eq!(ranges(&f.mb.reserved), [(64 * GIB - 2 * P, P)]);
    // Removing everything from 4 GiB up, as mem= and the mem_map rule do.
    f.remove(4 * GIB, u64::MAX - 4 * GIB);
    assert_eq!(ranges(&f.mb.memory), [(0x10_0000, 3 * GIB - 0x10_0000)]);
}

#[test]
fn allocations_stay_below_the_current_limit_with_ram_above_4_gib() {
    let mut f = Fixture::new(2);
    f.add(0x10_0000, 3 * GIB - 0x10_0000)
        .add(4 * GIB, 60 * GIB - P);
    // No limit: top-down takes the top of RAM, far above 4 GiB.
    assert_eq!(
        f.alloc(P, P, 0, u64::MAX),
        Ok(pa(64 * GIB - 2 * P)),
        "top-down with no limit"
    );
    // Kernel data stays in low memory: the limit is where the direct map
    // ends (896 MiB here), and the region arrays grow below it too.
    f.mb.set_current_limit(pa(896 * MIB));
    // Four separate reservations overflow the 2-slot reserved array.
    for i in 0..4 {
        f.reserve(896 * MIB - (2 * i + 1) * P, P);
    }
    // The grown array took the highest free page below the limit, the
    // allocation the next one.
    assert_eq!(f.mb.reserved.storage_pa(), Some(pa(896 * MIB - 2 * P)));
    assert_eq!(
        f.alloc(P, P, 0, MEMBLOCK_ALLOC_ANYWHERE.0),
        Ok(pa(896 * MIB - 4 * P))
    );
    // A window entirely above the limit finds nothing.
    assert_eq!(
        f.alloc(P, P, 5 * GIB, 6 * GIB),
        Err(MemblockError::NoSpace {
            size: P,
            align: P,
            min: pa(5 * GIB),
            max: pa(6 * GIB)
        })
    );
    // Bottom-up from 4 GiB, when the limit allows it.
    f.mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
    f.mb.set_bottom_up(true);
    assert_eq!(
        f.alloc(2 * MIB, 2 * MIB, 3 * GIB, u64::MAX),
        Ok(pa(4 * GIB))
    );
}

#[test]
fn dump_and_summary_print_addresses_above_4_gib_in_full() {
    let mut f = Fixture::new(4);
    f.add(0x10_0000, 0x7f0_0000)
        .add(4 * GIB, 4 * GIB)
        .reserve(8 * GIB - P, P);
    let mut lines = Vec::new();
    f.mb.dump(|args| lines.push(args.to_string()));
    assert_eq!(
        lines,
        [
            "MEMBLOCK configuration:",
            " memory size = 0x107f00000 reserved size = 0x00001000",
            " memory.cnt  = 0x2",
            " memory[0x0]\t[0x00100000-0x07ffffff], 0x07f00000 bytes flags: 0x0",
            " memory[0x1]\t[0x100000000-0x1ffffffff], 0x100000000 bytes flags: 0x0",
            " reserved.cnt  = 0x1",
            " reserved[0x0]\t[0x1fffff000-0x1ffffffff], 0x00001000 bytes flags: 0x0",
        ]
    );
    assert_eq!(
        f.mb.to_string(),
        "memory 2 regions 4428136448 bytes, reserved 1 regions 4096 bytes"
    );
}
