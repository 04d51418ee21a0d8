//! Unit tests: the worked numbers of the doc comments, each error case, the
//! zone fallback table, watermarks, per-cpu lists and the report formats.

use super::*;
use crate::mm::gfp::{GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL};
use crate::mm::zone::{DEFAULT_MAX_LOW_PFN, PCP_HIGH_MAX, Watermarks};
use std::cell::RefCell;
use std::string::{String, ToString};
use std::vec::Vec;

thread_local! {
    static ZEROED: RefCell<Vec<(Pfn, u32)>> = const { RefCell::new(Vec::new()) };
}

/// The `zero` hook of every test allocator: records `(pfn, nr_pages)`.
pub(super) fn record_zero(pfn: Pfn, nr_pages: u32) {
    ZEROED.with(|z| z.borrow_mut().push((pfn, nr_pages)));
}

/// The zeroing calls since the last call (per test thread).
pub(super) fn take_zeroed() -> Vec<(Pfn, u32)> {
    ZEROED.with(|z| core::mem::take(&mut *z.borrow_mut()))
}

/// A `mem_map` of `nr_pages` descriptors that lives for the whole test run.
pub(super) fn leak_mem_map(nr_pages: usize) -> &'static mut [Page] {
    Vec::leak(std::vec![Page::reserved(ZoneType::Dma); nr_pages])
}

/// An allocator over `nr_pages` pages, all present, nothing free yet.
fn buddy(nr_pages: u32, max_low_pfn: Pfn) -> BuddyAllocator<'static> {
    let mut b = BuddyAllocator::new(leak_mem_map(nr_pages as usize), max_low_pfn, record_zero);
    b.mark_present(Pfn(0), Pfn(nr_pages));
    b.check().unwrap();
    b
}

/// An allocator over `nr_pages` DMA pages with `[start, end)` handed off and
/// the per-cpu lists off.
fn small(nr_pages: u32, start: u32, end: u32) -> BuddyAllocator<'static> {
    let mut b = buddy(nr_pages, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(start), Pfn(end));
    b.set_pcp_enabled(false);
    b.check().unwrap();
    b
}

/// `(pfn, order)` of every free block of `zone`, sorted.
pub(super) fn free_blocks(b: &BuddyAllocator<'_>, zone: ZoneType) -> Vec<(u32, u8)> {
    let mut v: Vec<(u32, u8)> = (0..=MAX_PAGE_ORDER)
        .flat_map(|order| {
            b.zone(zone)
                .free_area(order)
                .free_list()
                .iter(b.mem_map())
                .map(move |pfn| (pfn.0, order))
        })
        .collect();
    v.sort_unstable();
    v
}

/// Everything a failed operation must leave unchanged.
type Snapshot = (Vec<Page>, [Zone; 3], VmStat);

pub(super) fn snapshot(b: &BuddyAllocator<'_>) -> Snapshot {
    (b.mem_map().to_vec(), b.zones().clone(), *b.counters())
}

fn lines(report: impl FnOnce(&mut dyn FnMut(fmt::Arguments<'_>))) -> Vec<String> {
    let mut out = Vec::new();
    report(&mut |args| out.push(args.to_string()));
    out
}

fn alloc(b: &mut BuddyAllocator<'_>, gfp: Gfp, order: u8) -> Pfn {
    let block = b.alloc_pages(gfp, order).expect("allocation failed");
    b.check().unwrap();
    block.into_raw().0
}

// ---- arithmetic -----------------------------------------------------------

#[test]
fn buddy_of_pfn_8_order_1_is_10() {
    assert_eq!(buddy_pfn(8, 1), 10);
    assert_eq!(buddy_pfn(10, 1), 8);
    assert_eq!(combined_pfn(10, 1), 8);
    assert_eq!(combined_pfn(8, 1), 8);
}

#[test]
fn get_order_rounds_up_to_a_power_of_two_pages() {
    assert_eq!(get_order(0), 0);
    assert_eq!(get_order(1), 0);
    assert_eq!(get_order(4096), 0);
    assert_eq!(get_order(4097), 1);
    assert_eq!(get_order(12 * 1024), 2);
    assert_eq!(get_order(4 << 20), 10);
    assert_eq!(get_order((4 << 20) + 1), 11);
}

#[test]
fn page_block_getters() {
    let b = PageBlock::new(12, 2);
    assert_eq!(format!("{b:?}"), "PageBlock { pfn: 12, order: 2 }");
    assert_eq!((b.pfn(), b.order(), b.nr_pages()), (Pfn(12), 2, 4));
    assert_eq!(b.phys_addr(), PhysAddr(0xC000));
    assert_eq!(b.into_raw(), (Pfn(12), 2));
}

// ---- zones and the hand-off -------------------------------------------------

#[test]
fn new_lays_out_zones_and_reserves_every_page() {
    let b = BuddyAllocator::new(leak_mem_map(8192), Pfn(6144), record_zero);
    let spans: Vec<_> = b
        .zones()
        .iter()
        .map(|z| (z.start_pfn().0, z.end_pfn().0))
        .collect();
    assert_eq!(spans, [(0, 4096), (4096, 6144), (6144, 8192)]);
    assert!(b.mem_map().iter().all(|p| p.flags() == PageFlags::RESERVED));
    assert_eq!(b.page(Pfn(4095)).unwrap().zone(), ZoneType::Dma);
    assert_eq!(b.page(Pfn(4096)).unwrap().zone(), ZoneType::Normal);
    assert_eq!(b.page(Pfn(6144)).unwrap().zone(), ZoneType::HighMem);
    assert_eq!(b.check(), Ok(()));

    // 128 pages: DMA only; max_low_pfn beyond max_pfn is clamped.
    let b = BuddyAllocator::new(leak_mem_map(128), DEFAULT_MAX_LOW_PFN, record_zero);
    assert_eq!(b.zone(ZoneType::Dma).spanned_pages(), 128);
    assert_eq!(b.zone(ZoneType::Normal).spanned_pages(), 0);
    assert_eq!(b.zone(ZoneType::HighMem).spanned_pages(), 0);
    assert_eq!(b.max_low_pfn(), Pfn(128));
}

#[test]
fn hand_off_of_unaligned_range_3_37_gives_the_documented_blocks() {
    let mut b = buddy(64, DEFAULT_MAX_LOW_PFN);
    assert_eq!(b.free_memory_range(Pfn(3), Pfn(37)), 34);
    b.check().unwrap();
    assert_eq!(
        free_blocks(&b, ZoneType::Dma),
        [(3, 0), (4, 2), (8, 3), (16, 4), (32, 2), (36, 0)]
    );
    // Releasing again is harmless: those pages are no longer reserved.
    assert_eq!(b.free_memory_range(Pfn(0), Pfn(40)), 6);
    b.check().unwrap();
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(0, 5), (32, 3)]);
}

#[test]
fn managed_pages_are_present_minus_reserved_after_hand_off() {
    // DMA + Normal; a hole at [160, 256); memblock reserved [256, 400) (the
    // kernel) and [4096, 4100).
    let mut b = BuddyAllocator::new(leak_mem_map(6144), DEFAULT_MAX_LOW_PFN, record_zero);
    b.mark_present(Pfn(1), Pfn(160));
    b.mark_present(Pfn(256), Pfn(6144));
    for (s, e) in [(1, 160), (400, 4096), (4100, 6144)] {
        b.free_memory_range(Pfn(s), Pfn(e));
    }
    b.check().unwrap();
    let dma = b.zone(ZoneType::Dma);
    assert_eq!(dma.present_pages(), 159 + 3840);
    assert_eq!(dma.managed_pages(), dma.present_pages() - 144);
    let normal = b.zone(ZoneType::Normal);
    assert_eq!(normal.present_pages(), 2048);
    assert_eq!(normal.managed_pages(), 2048 - 4);
    assert_eq!(
        b.nr_free_pages(),
        dma.managed_pages() + normal.managed_pages()
    );
}

#[test]
fn merge_stops_at_max_page_order() {
    let b = small(4096, 0, 4096);
    assert_eq!(
        free_blocks(&b, ZoneType::Dma),
        [(0, 10), (1024, 10), (2048, 10), (3072, 10)]
    );
    assert_eq!(b.zone(ZoneType::Dma).free_area(10).nr_free(), 4);
}

#[test]
fn merge_stops_at_zone_boundary() {
    // Normal is [4096, 4100), HighMem [4100, 4104): 4096 ^ 4 = 4100 is the
    // buddy of 4096 at order 2, but in another zone.
    let mut b = buddy(4104, Pfn(4100));
    b.set_pcp_enabled(false);
    b.free_memory_range(Pfn(4092), Pfn(4104));
    b.check().unwrap();
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(4092, 2)]);
    assert_eq!(free_blocks(&b, ZoneType::Normal), [(4096, 2)]);
    assert_eq!(free_blocks(&b, ZoneType::HighMem), [(4100, 2)]);
    let block = b.alloc_pages(GFP_HIGHUSER, 2).unwrap();
    assert_eq!(block.pfn(), Pfn(4100));
    b.free_pages(block).unwrap();
    b.check().unwrap();
    assert_eq!(free_blocks(&b, ZoneType::Normal), [(4096, 2)]);
    assert_eq!(free_blocks(&b, ZoneType::HighMem), [(4100, 2)]);
}

#[test]
fn merge_stops_at_a_hole_and_at_a_reserved_page() {
    // Page 12 is a hole (never present): memblock's free ranges stop there.
    // Its descriptor is reserved, as Linux marks holes PG_reserved.
    let mut hole = BuddyAllocator::new(leak_mem_map(64), DEFAULT_MAX_LOW_PFN, record_zero);
    hole.mark_present(Pfn(0), Pfn(12));
    hole.mark_present(Pfn(13), Pfn(64));
    hole.free_memory_range(Pfn(8), Pfn(12));
    hole.free_memory_range(Pfn(13), Pfn(16));
    hole.check().unwrap();
    // Page 12 is present but reserved.
    let mut reserved = buddy(64, DEFAULT_MAX_LOW_PFN);
    reserved.free_memory_range(Pfn(8), Pfn(12));
    reserved.free_memory_range(Pfn(13), Pfn(16));
    reserved.check().unwrap();
    for b in [&mut hole, &mut reserved] {
        assert_eq!(free_blocks(b, ZoneType::Dma), [(8, 2), (13, 0), (14, 1)]);
        b.set_pcp_enabled(false);
        // Freeing 13 again after allocating it: 13 ^ 1 = 12 is not free.
        let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
        assert_eq!(p.pfn(), Pfn(13));
        b.free_pages(p).unwrap();
        b.check().unwrap();
        assert_eq!(free_blocks(b, ZoneType::Dma), [(8, 2), (13, 0), (14, 1)]);
    }
    assert_eq!(hole.zone(ZoneType::Dma).present_pages(), 63);
    assert_eq!(reserved.zone(ZoneType::Dma).present_pages(), 64);
}

// ---- split and merge -------------------------------------------------------

#[test]
fn order_0_request_splits_order_3_leaving_orders_0_1_2() {
    let mut b = small(16, 8, 16);
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(8, 3)]);
    let page = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    b.check().unwrap();
    assert_eq!(page.pfn(), Pfn(8));
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(9, 0), (10, 1), (12, 2)]);
    let page9 = b.page(Pfn(8)).unwrap();
    assert_eq!((page9.flags(), page9.order()), (PageFlags::HEAD, 0));

    // free_one_page(): 8 ^ 1 = 9 free → 8 order 1; 8 ^ 2 = 10 free → order
    // 2; 8 ^ 4 = 12 free → order 3.
    b.free_pages(page).unwrap();
    b.check().unwrap();
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(8, 3)]);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 8);
}

#[test]
fn free_merges_in_any_order() {
    let mut b = small(16, 8, 16);
    let mut pages: Vec<_> = (0..8).map(|_| b.alloc_pages(GFP_KERNEL, 0)).collect();
    assert_eq!(
        pages
            .iter()
            .flatten()
            .map(|p| p.pfn().0)
            .collect::<Vec<_>>(),
        [8, 9, 10, 11, 12, 13, 14, 15]
    );
    assert!(b.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).is_none());
    for i in [5, 0, 7, 2, 1, 6, 3, 4] {
        b.free_pages(pages[i].take().unwrap()).unwrap();
        b.check().unwrap();
    }
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(8, 3)]);
}

// ---- bad frees ---------------------------------------------------------------

/// 64 DMA pages, `[8, 64)` free, order-2 block at 8 and page 12 allocated.
fn bad_free_fixture() -> BuddyAllocator<'static> {
    let mut b = small(64, 8, 64);
    assert_eq!(alloc(&mut b, GFP_KERNEL, 2), Pfn(8));
    assert_eq!(alloc(&mut b, GFP_KERNEL, 0), Pfn(12));
    b
}

fn assert_bad_free(b: &mut BuddyAllocator<'_>, pfn: u32, order: u8, reason: BadPageReason) {
    let pfn = Pfn(pfn);
    let before = snapshot(b);
    let err = b.free_pages_raw(pfn, order).unwrap_err();
    assert_eq!((err.pfn, err.order, err.reason), (pfn, order, reason));
    assert_eq!(err.flags, b.page(pfn).map_or(0, Page::raw));
    assert_eq!(snapshot(b), before, "a refused free changed something");
    b.check().unwrap();
}

#[test]
fn double_free_is_refused_and_changes_nothing() {
    let mut b = bad_free_fixture();
    b.free_pages_raw(Pfn(8), 2).unwrap();
    assert_bad_free(&mut b, 8, 2, BadPageReason::DoubleFree);
    assert_bad_free(&mut b, 13, 0, BadPageReason::DoubleFree);
}

#[test]
fn double_free_of_a_page_on_the_pcp_list_is_refused() {
    let mut b = bad_free_fixture();
    b.set_pcp_enabled(true);
    b.setup_watermarks(); // batch 1, high 6: a freed page stays on the list
    b.free_pages_raw(Pfn(12), 0).unwrap();
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 1);
    assert_bad_free(&mut b, 12, 0, BadPageReason::OnPcpList);
}

#[test]
fn free_with_wrong_order_is_refused() {
    let mut b = bad_free_fixture();
    assert_bad_free(&mut b, 8, 1, BadPageReason::WrongOrder { expected: 2 });
    assert_bad_free(&mut b, 8, 3, BadPageReason::WrongOrder { expected: 2 });
    assert_bad_free(&mut b, 12, 2, BadPageReason::WrongOrder { expected: 0 });
}

#[test]
fn free_of_a_reserved_page_is_refused() {
    let mut b = bad_free_fixture();
    assert_bad_free(&mut b, 0, 0, BadPageReason::Reserved);
    assert_bad_free(&mut b, 4, 2, BadPageReason::Reserved);
}

#[test]
fn free_of_a_never_allocated_page_is_refused() {
    let mut b = bad_free_fixture();
    // Inside the allocated block at 8, and inside the free block at 16.
    assert_bad_free(&mut b, 10, 0, BadPageReason::NotAllocated);
    assert_bad_free(&mut b, 17, 0, BadPageReason::NotAllocated);
}

#[test]
fn free_of_a_misaligned_block_is_refused() {
    let mut b = bad_free_fixture();
    assert_bad_free(&mut b, 9, 1, BadPageReason::Misaligned);
    assert_bad_free(&mut b, 12, 3, BadPageReason::Misaligned);
}

#[test]
fn free_out_of_range_is_refused() {
    let mut b = bad_free_fixture();
    let out = BadPageReason::OutOfRange { max_pfn: Pfn(64) };
    assert_bad_free(&mut b, 64, 0, out);
    assert_bad_free(&mut b, u32::MAX, 10, out);
    assert_bad_free(&mut b, 8, 11, BadPageReason::OrderTooLarge);
}

#[test]
fn free_of_a_mapped_page_is_refused_on_both_paths() {
    let mut b = bad_free_fixture();
    assert_eq!(b.page_mapcount_inc(Pfn(12)), 1);
    assert_eq!(b.page_mapcount_inc(Pfn(12)), 2);
    assert_eq!(b.page_mapcount(Pfn(12)), 2);
    b.check().unwrap(); // a map count on an allocated page is no stray link
    assert_bad_free(&mut b, 12, 0, BadPageReason::Mapped { mapcount: 2 });
    // The per-cpu fast path must not take it either.
    b.set_pcp_enabled(true);
    b.setup_watermarks();
    assert_bad_free(&mut b, 12, 0, BadPageReason::Mapped { mapcount: 2 });
    let err = b.free_pages_raw(Pfn(12), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "BUG: Bad page state: pfn:0000c order:0 flags:0x100ffffff000001(head) \
         reason: nonzero mapcount (2 user mappings)"
    );
    assert_eq!(b.page_mapcount_dec(Pfn(12)), 1);
    assert_eq!(b.page_mapcount_dec(Pfn(12)), 0);
    b.free_pages_raw(Pfn(12), 0).unwrap();
    b.check().unwrap();
    // A map count on a head of a higher order is counted the same way.
    b.page_mapcount_inc(Pfn(8));
    assert_bad_free(&mut b, 8, 2, BadPageReason::Mapped { mapcount: 1 });
}

#[test]
fn check_accepts_a_mapcount_but_not_stray_links() {
    let mut b = bad_free_fixture();
    b.page_mapcount_inc(Pfn(12));
    b.check().unwrap();
    // A prev link on an allocated head is still a stray link.
    let good = b.mem_map[12];
    let mut bad = good;
    bad.set_prev(Some(Pfn(3)));
    b.mem_map[12] = bad;
    assert_eq!(
        b.check(),
        Err(CheckError::BadDescriptor {
            pfn: Pfn(12),
            raw: bad.raw()
        })
    );
    // A next field on a slab page is no map count: Linux keeps the slab's
    // page type in the same word.
    b.mem_map[12] = good;
    b.mem_map[12].set_page_use(PageUse::Slab { cache: 2 });
    let raw = b.mem_map[12].raw();
    assert_eq!(
        b.check(),
        Err(CheckError::BadDescriptor { pfn: Pfn(12), raw })
    );
    // Inside an allocated block, any link is stray.
    b.mem_map[12] = good;
    b.mem_map[9].set_next(Some(Pfn(1)));
    assert!(b.check().is_err());
}

#[test]
fn bad_page_prints_like_linux_bad_page() {
    let mut b = bad_free_fixture();
    b.free_pages_raw(Pfn(8), 2).unwrap();
    let err = b.free_pages_raw(Pfn(8), 2).unwrap_err();
    // PG_buddy (bit 54), order 2 (bits 48-51), zone DMA, no links.
    assert_eq!(err.flags, 0x0042_ffff_ffff_ffff);
    assert_eq!(
        err.to_string(),
        "BUG: Bad page state: pfn:00008 order:2 flags:0x42ffffffffffff(buddy) \
         reason: double free (page is already free)"
    );
    let err = b.free_pages_raw(Pfn(64), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "BUG: Bad page state: pfn:00040 order:0 flags:0x0() \
         reason: pfn out of range (max_pfn 0x40)"
    );
}

// ---- zones, watermarks, failures ---------------------------------------------

#[test]
fn zone_fallback_follows_the_gfp_zone_table() {
    // DMA [0, 4096), Normal [4096, 6144), HighMem [6144, 8192); order 10.
    let table: [(Gfp, &[u32]); 4] = [
        (GFP_HIGHUSER, &[6144, 7168, 4096, 5120, 0, 1024, 2048, 3072]),
        (GFP_KERNEL, &[4096, 5120, 0, 1024, 2048, 3072]),
        (GFP_ATOMIC, &[4096, 5120, 0, 1024, 2048, 3072]),
        (GFP_DMA, &[0, 1024, 2048, 3072]),
    ];
    for (gfp, expected) in table {
        let mut b = buddy(8192, Pfn(6144));
        b.free_memory_range(Pfn(0), Pfn(8192));
        let got: Vec<u32> = core::iter::from_fn(|| b.alloc_pages(gfp, 10))
            .map(|p| p.into_raw().0.0)
            .collect();
        b.check().unwrap();
        assert_eq!(got, expected, "{gfp}");
        assert_eq!(
            b.take_warning(),
            Some(AllocFailure { order: 10, gfp }),
            "{gfp}"
        );
    }
}

#[test]
fn setup_watermarks_worked_example() {
    let mut b = buddy(4096, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(4096));
    b.setup_watermarks();
    assert_eq!(b.min_free_kbytes(), 512);
    let dma = b.zone(ZoneType::Dma);
    assert_eq!(
        dma.watermark(),
        Watermarks {
            min: 128,
            low: 160,
            high: 192
        }
    );
    assert_eq!((dma.pcp().batch(), dma.pcp().high()), (4, 24));
}

#[test]
fn per_cpu_refills_never_take_gfp_kernel_below_min() {
    // 4097 pages (4096 DMA, 1 Normal) with the per-cpu lists on: DMA min
    // 127, batch 4. Refilling a whole batch for the last GFP_KERNEL page
    // would leave up to 3 pages below min.
    let mut b = buddy(4097, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(4097));
    b.setup_watermarks();
    let min = b.zone(ZoneType::Dma).watermark().min;
    assert!(b.zone(ZoneType::Dma).pcp().batch() > 1);
    let mut held = Vec::new();
    while let Some(p) = b.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        held.push(p);
        assert!(b.zone(ZoneType::Dma).free_pages() >= min);
    }
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), min);
    b.check().unwrap();
    for p in held {
        b.free_pages(p).unwrap();
    }
    b.drain_pages();
    // pfn 4096 lies in Normal: 4096 DMA pages and 1 Normal page.
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 4096);
    assert_eq!(b.nr_free_pages(), 4097);
    b.check().unwrap();
}

#[test]
fn get_free_pages_ignores_highmem_like_linux() {
    let mut b = small(64, 0, 64);
    let va = b.get_free_pages(GFP_HIGHUSER, 0).unwrap();
    assert!(va.is_kernel());
    b.free_pages_va(va, 0).unwrap();
}

#[test]
fn gfp_kernel_is_refused_below_min_while_gfp_atomic_may_dip_to_half() {
    // 64 managed pages: min_free_kbytes = clamp(int_sqrt(256 * 16) = 64) =
    // 128, pages_min = 32, so min 32, low 40, high 48.
    let mut b = small(64, 0, 64);
    b.setup_watermarks();
    let w = b.zone(ZoneType::Dma).watermark();
    assert_eq!((w.min, w.low, w.high), (32, 40, 48));
    let mut held = Vec::new();
    while let Some(p) = b.alloc_pages(GFP_KERNEL, 0) {
        held.push(p);
    }
    assert_eq!(held.len(), 32);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 32);
    assert_eq!(
        b.take_warning().unwrap().to_string(),
        "page allocation failure: order:0, mode:0xcc0(GFP_KERNEL)"
    );
    // GFP_ATOMIC: mark 32 - 32 / 2 = 16.
    while let Some(p) = b.alloc_pages(GFP_ATOMIC, 0) {
        held.push(p);
    }
    assert_eq!(held.len(), 48);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 16);
    assert!(b.alloc_pages(GFP_ATOMIC | Gfp::NOWARN, 0).is_none());
    assert_eq!(b.take_warning().unwrap().gfp, GFP_ATOMIC);
    assert_eq!(b.last_warning(), None, "NOWARN records no warning");
    assert_eq!(b.counters().alloc_failures, 3);
    b.check().unwrap();
    for p in held {
        b.free_pages(p).unwrap();
    }
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(0, 6)]);
}

#[test]
fn order_above_max_fails_with_a_warning() {
    let mut b = small(64, 0, 64);
    assert!(b.alloc_pages(GFP_KERNEL, 11).is_none());
    assert_eq!(
        b.take_warning().unwrap().to_string(),
        "page allocation failure: order:11, mode:0xcc0(GFP_KERNEL)"
    );
    assert!(b.alloc_pages(GFP_KERNEL, 255).is_none());
    assert!(b.alloc_pages_exact(GFP_KERNEL, u32::MAX).is_none());
    b.check().unwrap();
}

#[test]
fn gfp_zero_calls_the_zero_hook_with_the_whole_block() {
    let mut b = small(64, 0, 64);
    take_zeroed();
    let p = b.alloc_pages(GFP_KERNEL | Gfp::ZERO, 2).unwrap();
    assert_eq!(take_zeroed(), [(p.pfn(), 4)]);
    let q = b.alloc_pages(GFP_KERNEL, 2).unwrap();
    assert!(take_zeroed().is_empty());
    b.free_pages(p).unwrap();
    b.free_pages(q).unwrap();
    b.check().unwrap();
}

// ---- per-cpu lists -----------------------------------------------------------

#[test]
fn pcp_refills_batch_and_drains_batch_above_high() {
    // 4096 managed pages: batch 4, high 24.
    let mut b = buddy(4096, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(4096));
    b.setup_watermarks();
    let first = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    b.check().unwrap();
    assert_eq!(first.pfn(), Pfn(0));
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 3);
    assert_eq!(b.counters().pcp_refills, 1);
    let mut held = std::vec![first];
    for _ in 1..28 {
        held.push(b.alloc_pages(GFP_KERNEL, 0).unwrap());
        b.check().unwrap();
    }
    // Pages come out in pfn order: 0, 1, 2, ... (rmqueue_bulk keeps them).
    assert!(
        held.iter()
            .enumerate()
            .all(|(i, p)| p.pfn() == Pfn(i as u32))
    );
    assert_eq!(b.counters().pcp_refills, 7);
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 0);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 4096 - 28);

    let mut held = held.into_iter();
    for p in held.by_ref().take(24) {
        b.free_pages(p).unwrap();
        b.check().unwrap();
    }
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 24);
    assert_eq!(b.counters().pcp_drains, 0);
    b.free_pages(held.next().unwrap()).unwrap();
    b.check().unwrap();
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 21);
    assert_eq!(b.counters().pcp_drains, 1);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 4096 - 28 + 4);

    b.drain_pages();
    b.check().unwrap();
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 0);
    assert_eq!(b.counters().pcp_drains, 2);
    assert_eq!(b.zone(ZoneType::Dma).free_pages(), 4096 - 3);
    assert_eq!(b.counters().pgalloc[0], 28);
    assert_eq!(b.counters().pgfree, 4096 + 25);
    for p in held {
        b.free_pages(p).unwrap();
    }
    b.set_pcp_enabled(false);
    assert!(!b.pcp_enabled());
    b.check().unwrap();
    assert_eq!(b.nr_free_pages(), 4096);
}

#[test]
fn boot_pageset_passes_every_free_straight_through() {
    // Before setup_watermarks(): batch 1, high 0.
    let mut b = buddy(64, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(16), Pfn(32));
    let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 0);
    b.free_pages(p).unwrap();
    b.check().unwrap();
    assert_eq!(b.zone(ZoneType::Dma).pcp().count(), 0);
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(16, 4)]);
}

// ---- address-returning and exact interfaces ---------------------------------

#[test]
fn get_free_pages_returns_the_direct_map_address() {
    let mut b = buddy(64, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(16), Pfn(32));
    let va = b.get_free_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(va, VirtAddr(0xC001_0000)); // pfn 16
    // __GFP_HIGHMEM is ignored: the page still comes from lowmem.
    let lowmem_va = b.get_free_pages(GFP_HIGHUSER, 0).unwrap();
    b.free_pages_va(lowmem_va, 0).unwrap();
    assert_eq!(b.last_warning(), None);
    let before = snapshot(&b);
    for bad in [0x1000, 0xC001_0800, 0xC004_0000].map(VirtAddr) {
        let err = b.free_pages_va(bad, 0).unwrap_err();
        assert_eq!(err.reason, BadPageReason::BadVirtAddr { va: bad });
    }
    assert_eq!(snapshot(&b), before);
    b.free_pages_va(VirtAddr(0), 3).unwrap();
    b.free_pages_va(va, 0).unwrap();
    b.check().unwrap();
    assert_eq!(
        b.free_pages_va(va, 0).unwrap_err().reason,
        BadPageReason::DoubleFree
    );
    assert_eq!(free_blocks(&b, ZoneType::Dma), [(16, 4)]);
}

/// The OSDev wiki's 4-buddy example: 40 pages, `#` used.
const OSDEV_BEFORE: [&str; 7] = [
    "memory:   ###.#....#........#...###...########....",
    "order 0:  ###.#.xx.#xxxxxxxx#.xx###.xx########xxxx  5 free",
    "order 1:  # # # . # . x x . # . # # . # # # # x x   5 free",
    "order 2:  #   #   #   .   #   #   #   #   #   .     2 free",
    "order 3:  #       #       #       #       #         0 free",
    "order 4:  #               #               #         0 free",
    "order 5:  #                               #         0 free",
];

/// After allocating 12K: pages 12-14 handed out, page 15 returned.
const OSDEV_AFTER: [&str; 7] = [
    "memory:   ###.#....#..###...#...###...########....",
    "order 0:  ###.#.xx.#xx###.xx#.xx###.xx########xxxx  6 free",
    "order 1:  # # # . # . # # . # . # # . # # # # x x   5 free",
    "order 2:  #   #   #   #   #   #   #   #   #   .     1 free",
    "order 3:  #       #       #       #       #         0 free",
    "order 4:  #               #               #         0 free",
    "order 5:  #                               #         0 free",
];

#[test]
fn alloc_pages_exact_12k_takes_a_16k_block_and_returns_the_tail_page() {
    let mut b = buddy(40, DEFAULT_MAX_LOW_PFN);
    b.set_pcp_enabled(false);
    for (s, e) in [(3, 4), (5, 9), (10, 18), (19, 22), (25, 28), (36, 40)] {
        b.free_memory_range(Pfn(s), Pfn(e));
    }
    b.check().unwrap();
    let start = free_blocks(&b, ZoneType::Dma);
    let diagram = |b: &BuddyAllocator<'_>| lines(|sink| b.diagram(Pfn(0), Pfn(40), sink));
    assert_eq!(diagram(&b), OSDEV_BEFORE);

    let (pfn, nr_pages) = b.alloc_pages_exact(GFP_KERNEL, 12 * 1024).unwrap();
    b.check().unwrap();
    assert_eq!((pfn, nr_pages), (Pfn(12), 3));
    assert_eq!(diagram(&b), OSDEV_AFTER);
    // The 16K block was counted as allocated, the tail page as freed.
    assert_eq!(b.counters().pgalloc[0], 4);
    for p in Pfn(12).range_to(Pfn(15)) {
        let page = b.page(p).unwrap();
        assert_eq!((page.flags(), page.order()), (PageFlags::HEAD, 0));
    }

    let before = snapshot(&b);
    assert_eq!(
        b.free_pages_exact(Pfn(12), 16 * 1024).unwrap_err().reason,
        BadPageReason::DoubleFree
    );
    assert_eq!(
        snapshot(&b),
        before,
        "a refused free_pages_exact freed pages"
    );
    b.free_pages_exact(pfn, 12 * 1024).unwrap();
    b.check().unwrap();
    assert_eq!(diagram(&b), OSDEV_BEFORE);
    assert_eq!(free_blocks(&b, ZoneType::Dma), start);
}

#[test]
fn alloc_pages_exact_ignores_highmem_and_rejects_zero_bytes() {
    let mut b = buddy(8192, Pfn(6144));
    b.free_memory_range(Pfn(0), Pfn(8192));
    let (pfn, nr) = b.alloc_pages_exact(GFP_HIGHUSER, 5 * 4096).unwrap();
    assert!(
        pfn < Pfn(6144),
        "alloc_pages_exact returned HighMem pfn {pfn}"
    );
    assert_eq!(nr, 5);
    assert_eq!(b.alloc_pages_exact(GFP_KERNEL, 0), None);
    b.check().unwrap();
    b.free_pages_exact(pfn, 5 * 4096).unwrap();
    b.drain_pages();
    b.check().unwrap();
    assert_eq!(b.nr_free_pages(), 8192);
}

// ---- reports -----------------------------------------------------------------

#[test]
fn buddyinfo_matches_proc_buddyinfo_byte_for_byte() {
    let mut b = buddy(64, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(3), Pfn(37));
    assert_eq!(
        lines(|sink| b.buddyinfo(sink)),
        [
            "Node 0, zone      DMA      2      0      2      1      1      0      0      0      0      0      0 "
        ]
    );

    let mut b = buddy(8192, Pfn(6144));
    b.free_memory_range(Pfn(0), Pfn(8192));
    assert_eq!(
        lines(|sink| b.buddyinfo(sink)),
        [
            "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      4 ",
            "Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0      2 ",
            "Node 0, zone  HighMem      0      0      0      0      0      0      0      0      0      0      2 ",
        ]
    );
}

/// One DMA zone of 4096 pages, all handed off, watermarks set, one page
/// allocated through the per-cpu list (which keeps 3).
fn report_fixture() -> BuddyAllocator<'static> {
    let mut b = buddy(4096, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(4096));
    b.setup_watermarks();
    let page = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    let _ = page.into_raw();
    b
}

#[test]
fn zoneinfo_uses_linux_field_names() {
    let b = report_fixture();
    assert_eq!(
        lines(|sink| b.zoneinfo(sink)).join("\n"),
        "\
Node 0, zone      DMA
  pages free     4092
        min      128
        low      160
        high     192
        spanned  4096
        present  4096
        managed  4096
  pagesets
    cpu: 0
              count: 3
              high:  24
              batch: 4
  start_pfn:           0
Node 0, zone   Normal
  pages free     0
        min      0
        low      0
        high     0
        spanned  0
        present  0
        managed  0
Node 0, zone  HighMem
  pages free     0
        min      32
        low      32
        high     32
        spanned  0
        present  0
        managed  0"
    );
}

#[test]
fn vmstat_and_zone_summary_lines() {
    let b = report_fixture();
    assert_eq!(
        lines(|sink| b.vmstat(sink)),
        [
            "nr_free_pages 4092",
            "pgalloc_dma 1",
            "pgalloc_normal 0",
            "pgalloc_high 0",
            "pgfree 4096",
            "pcp_refills 1",
            "pcp_drains 0",
            "alloc_failures 0",
        ]
    );
    assert_eq!(
        lines(|sink| b.zone_summary(sink)),
        ["zone DMA: present=4096 managed=4096 free=4092 min=128 low=160 high=192"]
    );
}

#[test]
fn diagram_marks_pcp_pages_and_partial_blocks() {
    let b = report_fixture();
    // Pages 1-3 on the per-cpu list; a range starting inside a block.
    assert_eq!(
        lines(|sink| b.diagram(Pfn(0), Pfn(6), sink)),
        [
            "memory:   #ppp..",
            "order 0:  ####xx  0 free",
            "order 1:  # # x   0 free",
            "order 2:  #   .   1 free",
        ]
    );
    assert_eq!(
        lines(|sink| b.diagram(Pfn(6), Pfn(8), sink)),
        [
            "memory:   ..",
            "order 0:  xx  0 free",
            "order 1:  x   0 free"
        ]
    );
    assert!(lines(|sink| b.diagram(Pfn(5000), Pfn(6000), sink)).is_empty());
}

// ---- the checker ---------------------------------------------------------------

#[test]
fn check_reports_broken_invariants() {
    let fresh = || small(64, 8, 64);

    let mut b = fresh();
    b.zones[0].free_area[3].nr_free += 1;
    assert!(matches!(
        b.check(),
        Err(CheckError::CountMismatch {
            what: "nr_free",
            ..
        })
    ));

    let mut b = fresh();
    b.zones[0].free_pages += 1;
    assert!(matches!(
        b.check(),
        Err(CheckError::CountMismatch {
            what: "free_pages",
            ..
        })
    ));

    // A page leaked: the head of the free block at 8 loses its state.
    let mut b = fresh();
    let area = &mut b.zones[0].free_area[3];
    area.free_list.remove(b.mem_map, Pfn(8));
    area.nr_free -= 1;
    b.zones[0].free_pages -= 8;
    b.mem_map[8] = Page::new(ZoneType::Dma, PageFlags::empty());
    assert_eq!(b.check(), Err(CheckError::Orphan { pfn: Pfn(8) }));

    // Two free buddies that did not merge.
    let mut b = small(64, 8, 16);
    b.del_page_from_free_list(ZoneType::Dma, 8, 3);
    b.add_to_free_list(ZoneType::Dma, 8, 2, false);
    b.add_to_free_list(ZoneType::Dma, 12, 2, false);
    let err = b.check().unwrap_err();
    assert!(
        matches!(err, CheckError::Unmerged { order: 2, .. }),
        "{err}"
    );

    // Overlapping blocks: a free head inside an allocated block.
    let mut b = fresh();
    let p = b.alloc_pages(GFP_KERNEL, 3).unwrap();
    b.mem_map[p.pfn().0 as usize + 1].set_flags(PageFlags::HEAD);
    assert!(matches!(b.check(), Err(CheckError::Overlap { .. })));

    // Managed count off.
    let mut b = fresh();
    b.zones[0].managed_pages += 1;
    let err = b.check().unwrap_err();
    assert!(matches!(err, CheckError::ManagedMismatch { .. }));
    assert_eq!(
        err.to_string(),
        "buddy: DMA managed 57, present 64, unreserved 56, free+pcp+allocated 56"
    );

    // A broken back link: free_area[0] holds 3 then 36; 36's prev is
    // rewritten to 63.
    let b = small(64, 3, 37);
    let raw = b.mem_map[36].raw();
    assert_eq!(b.mem_map[36].prev(), Some(Pfn(3)));
    let prev = u64::from(crate::mm::page::NIL_PFN) << crate::mm::page::PFN_LINK_BITS;
    b.mem_map[36] = Page::from_raw(raw & !prev | 63 << crate::mm::page::PFN_LINK_BITS);
    assert_eq!(b.mem_map[36].prev(), Some(Pfn(63)));
    assert!(matches!(b.check(), Err(CheckError::BrokenList { .. })));
}

// ---- fast paths ------------------------------------------------------------

#[test]
fn check_reports_a_stale_free_area_mask_and_a_bad_pcp_stack() {
    // The mask claims an order with no block.
    let mut b = small(64, 8, 64);
    b.zones[0].free_area_mask |= 1 << 1;
    assert!(matches!(
        b.check(),
        Err(CheckError::CountMismatch {
            what: "free_area_mask",
            ..
        })
    ));

    // The same page twice on the per-cpu stack.
    let mut b = buddy(4096, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(4096));
    b.setup_watermarks();
    let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    b.free_pages(p).unwrap();
    let pcp = &mut b.zones[0].pcp;
    let top = pcp.pfns()[pcp.count as usize - 1];
    pcp.pfns[0] = top;
    assert_eq!(
        b.check(),
        Err(CheckError::WrongListEntry {
            zone: ZoneType::Dma,
            list: ListId::Pcp,
            pfn: Pfn(top),
        })
    );
}

#[test]
fn free_area_mask_follows_splits_and_merges() {
    // Only an order-3 block at 8: an order-0 request splits it.
    let mut b = small(64, 8, 16);
    assert_eq!(b.zone(ZoneType::Dma).free_area_mask(), 1 << 3);
    let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(b.zone(ZoneType::Dma).free_area_mask(), 0b0111);
    b.free_pages(p).unwrap();
    assert_eq!(b.zone(ZoneType::Dma).free_area_mask(), 1 << 3);
    b.check().unwrap();
}

/// An allocator whose Normal zone (pfn 4096..8192) has pages on its per-cpu
/// stack, with `min` 0 everywhere.
fn two_zones_with_pcp() -> BuddyAllocator<'static> {
    let mut b = buddy(8192, DEFAULT_MAX_LOW_PFN);
    b.free_memory_range(Pfn(0), Pfn(8192));
    b.setup_watermarks();
    for z in &mut b.zones {
        z.watermark = Watermarks::default();
    }
    let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    b.free_pages(p).unwrap();
    assert!(b.zone(ZoneType::Normal).pcp().count() > 0);
    b
}

#[test]
fn fast_path_takes_the_preferred_zones_pcp_and_skips_empty_zones() {
    // No HighMem zone: GFP_HIGHUSER starts at Normal.
    let mut b = two_zones_with_pcp();
    let before = b.counters().pcp_refills;
    let p = b.alloc_pages(GFP_HIGHUSER, 0).unwrap();
    assert!(p.pfn() >= Pfn(4096), "{p:?}");
    assert_eq!(b.counters().pcp_refills, before, "served from the stack");
    b.free_pages(p).unwrap();
    // GFP_DMA never takes a Normal page, even with Normal's stack full.
    let d = b.alloc_pages(GFP_DMA, 0).unwrap();
    assert!(d.pfn() < Pfn(4096), "{d:?}");
    b.free_pages(d).unwrap();
    b.check().unwrap();
}

#[test]
fn fast_path_honours_the_watermark_before_the_pcp_stack() {
    // Normal's pages on the buddy lists at its min: the stack still has
    // pages, but GFP_KERNEL must fall back to DMA as the zone loop does;
    // GFP_ATOMIC (half the min) may take from the stack.
    let mut b = two_zones_with_pcp();
    let normal_free = b.zone(ZoneType::Normal).free_pages();
    b.zones[1].watermark.min = normal_free;
    let k = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert!(k.pfn() < Pfn(4096), "GFP_KERNEL from DMA: {k:?}");
    let a = b.alloc_pages(GFP_ATOMIC, 0).unwrap();
    assert!(a.pfn() >= Pfn(4096), "GFP_ATOMIC from Normal: {a:?}");
    b.free_pages(k).unwrap();
    b.free_pages(a).unwrap();
    b.check().unwrap();
}

#[test]
fn fast_free_refuses_what_the_slow_checks_refuse() {
    let mut b = two_zones_with_pcp();
    let p = b.alloc_pages(GFP_KERNEL, 0).unwrap();
    let (pfn, order) = p.into_raw();
    b.free_pages_raw(pfn, order).unwrap();
    let before = snapshot(&b);
    let err = b.free_pages_raw(pfn, order).unwrap_err();
    assert_eq!(err.reason, BadPageReason::OnPcpList);
    assert_eq!(snapshot(&b), before, "a refused free changes nothing");
    b.check().unwrap();
}

#[test]
fn check_reports_pcp_limits_before_reading_the_stack() {
    let mut b = two_zones_with_pcp();
    b.zones[1].pcp.high = PCP_HIGH_MAX + 1;
    assert!(matches!(
        b.check(),
        Err(CheckError::PcpBadLimits {
            zone: ZoneType::Normal,
            ..
        })
    ));
    let mut b = two_zones_with_pcp();
    // A count past the array must be an error, not a panic.
    b.zones[1].pcp.count = 10_000;
    assert!(matches!(
        b.check(),
        Err(CheckError::PcpAboveHigh {
            zone: ZoneType::Normal,
            count: 10_000,
            ..
        })
    ));
}
