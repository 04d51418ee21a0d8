//! Per-cpu pages: a small stack of order-0 pages per zone in front of the
//! buddy lists (Linux `struct per_cpu_pages`, one CPU here).
//!
//! Most allocations are single pages. Taking them from a list of ready pages
//! and returning them there skips the split on allocation and the merge
//! walk on free; the buddy lists are touched once per `batch` pages instead
//! of once per page. Pages on the list count as allocated for the buddy
//! lists and for `nr_free_pages`, as in Linux.
//!
//! # References
//! - Linux: `mm/page_alloc.c` `rmqueue_pcplist()`, `rmqueue_bulk()`,
//!   `free_unref_page()`, `free_pcppages_bulk()`, `drain_pages()`.

use super::BuddyAllocator;
use crate::mm::page::{Page, PageFlags};
use crate::mm::zone::{MAX_PAGE_ORDER, PCP_BATCH_MAX, ZoneType};

impl BuddyAllocator<'_> {
    /// Takes the top page of `zone`'s per-cpu stack, refilling the stack
    /// with `batch` pages from the buddy lists first if it is empty (Linux
    /// `rmqueue_pcplist()`). `None` when the buddy lists have no page either.
    ///
    /// The page's descriptor is left as it was (`PG_pcp`): the caller
    /// overwrites it whole.
    ///
    /// A refill for a request that may not dip below `min` (`atomic` false)
    /// takes at most the pages above `min` (the caller's watermark check
    /// guarantees one), so no GFP_KERNEL allocation leaves a zone below its
    /// `min` watermark. Linux refills a whole `batch` regardless; this kernel
    /// keeps the rule exact.
    #[inline]
    pub(super) fn rmqueue_pcplist(&mut self, zone: ZoneType, atomic: bool) -> Option<u32> {
        let z = &self.zones[zone.index()];
        if z.pcp.count == 0 {
            let room = if atomic {
                z.pcp.batch
            } else {
                z.pcp
                    .batch
                    .min(z.free_pages.saturating_sub(z.watermark().min).max(1))
            };
            self.rmqueue_bulk(zone, room);
        }
        self.zones[zone.index()].pcp.pop()
    }

    /// Fills the empty per-cpu stack with up to `count` (at most `batch`)
    /// order-0 pages from the buddy lists, as Linux `rmqueue_bulk()` does
    /// (the caller has bounded `count` by the watermarks). Successive pages
    /// of a split block come out in ascending pfn order, and the lowest ends
    /// on top, so they are handed out in that order.
    ///
    /// When `count` is a power of two `1 << o` and no order below `o` has a
    /// free block, page-by-page takes exactly the pages of the first block
    /// of the smallest order `>= o`, split down to `o` (its first `1 << o`
    /// pages, ascending): that block is taken at once with
    /// `rmqueue_smallest(o)` and its descriptors are written in one pass,
    /// with the same result.
    #[inline(never)]
    fn rmqueue_bulk(&mut self, zone: ZoneType, count: u32) {
        debug_assert_eq!(self.zones[zone.index()].pcp.count, 0);
        debug_assert!(count <= PCP_BATCH_MAX);
        self.vmstat.pcp_refills += 1;
        let page = Page::new(zone, PageFlags::PCP);
        if count.is_power_of_two() {
            let order = count.trailing_zeros() as u8;
            let below = (1u32 << order) - 1;
            if order <= MAX_PAGE_ORDER
                && self.zones[zone.index()].free_area_mask & below == 0
                && let Some(pfn) = self.rmqueue_smallest(zone, order)
            {
                self.mem_map[pfn as usize..(pfn + count) as usize].fill(page);
                let pcp = &mut self.zones[zone.index()].pcp;
                for (slot, pfn) in pcp.pfns[..count as usize]
                    .iter_mut()
                    .zip((pfn..pfn + count).rev())
                {
                    *slot = pfn;
                }
                pcp.count = count;
                return;
            }
        }
        let mut taken = [0u32; PCP_BATCH_MAX as usize];
        let mut n = 0;
        for slot in taken.iter_mut().take(count as usize) {
            let Some(pfn) = self.rmqueue_smallest(zone, 0) else {
                break;
            };
            self.mem_map[pfn as usize] = page;
            *slot = pfn;
            n += 1;
        }
        let pcp = &mut self.zones[zone.index()].pcp;
        for (slot, &pfn) in pcp.pfns[..n].iter_mut().zip(taken[..n].iter().rev()) {
            *slot = pfn;
        }
        pcp.count = n as u32;
    }

    /// Pushes a freed order-0 page on its zone's per-cpu stack; once the
    /// stack holds more than `high` pages, the `batch` coldest go back to the
    /// buddy lists (Linux `free_unref_page()`; Linux drains at `count >=
    /// high`, here at `count > high` so that `count <= high` always holds).
    ///
    /// Example: `batch` 4, `high` 24: the 25th page on the stack drains 4,
    /// leaving 21.
    ///
    /// The page's descriptor is rewritten whole (`PG_pcp`, order 0): the
    /// only descriptor the push touches.
    #[inline]
    pub(super) fn free_unref_page(&mut self, zone: ZoneType, pfn: u32) {
        self.mem_map[pfn as usize] = Page::new(zone, PageFlags::PCP);
        let pcp = &mut self.zones[zone.index()].pcp;
        if pcp.push(pfn) {
            let batch = pcp.batch;
            self.free_pcppages_bulk(zone, batch);
        }
    }

    /// Returns up to `count` of the coldest pages of `zone`'s per-cpu stack
    /// (its bottom: the least recently freed) to the buddy lists, where they
    /// merge as usual (Linux `free_pcppages_bulk()`).
    ///
    /// The pages are taken in chunks of up to [`PCP_BATCH_MAX`]. A chunk of
    /// `1 << o` pages that is exactly one naturally aligned block (the usual
    /// case after a refill) is freed as that order-`o` block: freed page by
    /// page, its pages could only merge among themselves until the last one
    /// completes the block, which then merges on as the block does, so the
    /// result is the same.
    #[inline(never)]
    pub(super) fn free_pcppages_bulk(&mut self, zone: ZoneType, count: u32) {
        self.vmstat.pcp_drains += 1;
        let mut left = count;
        let mut buf = [0u32; PCP_BATCH_MAX as usize];
        while left > 0 {
            let pcp = &mut self.zones[zone.index()].pcp;
            let n = left.min(PCP_BATCH_MAX).min(pcp.count) as usize;
            if n == 0 {
                break;
            }
            let taken = &mut buf[..n];
            pcp.take_bottom(taken);
            left -= n as u32;
            let (mut lo, mut hi) = (u32::MAX, 0);
            for &pfn in taken.iter() {
                lo = lo.min(pfn);
                hi = hi.max(pfn);
            }
            // The pfns are distinct (each was on the stack once), so a span
            // of exactly n pages is the whole range.
            if n.is_power_of_two() && hi - lo + 1 == n as u32 && lo.is_multiple_of(n as u32) {
                self.mem_map[lo as usize..=hi as usize].fill(Page::new(zone, PageFlags::empty()));
                self.free_one_page(zone, lo, n.trailing_zeros() as u8, false);
            } else {
                for &pfn in taken.iter() {
                    self.mem_map[pfn as usize] = Page::new(zone, PageFlags::empty());
                    self.free_one_page(zone, pfn, 0, false);
                }
            }
        }
    }

    /// Empties every per-cpu stack into the buddy lists (Linux
    /// `drain_all_pages()` for the one CPU). Zones with an empty list are
    /// skipped and not counted as drains.
    pub fn drain_pages(&mut self) {
        for zt in ZoneType::ALL {
            let count = self.zones[zt.index()].pcp.count;
            if count > 0 {
                self.free_pcppages_bulk(zt, count);
            }
        }
    }

    /// Turns the per-cpu lists on or off (for benchmarks comparing the two).
    /// Turning them off drains them, so that no page stays parked where
    /// nothing would take it.
    pub fn set_pcp_enabled(&mut self, enabled: bool) {
        if !enabled {
            self.drain_pages();
        }
        self.pcp_enabled = enabled;
    }

    /// Whether order-0 requests go through the per-cpu lists (the default).
    pub fn pcp_enabled(&self) -> bool {
        self.pcp_enabled
    }
}
