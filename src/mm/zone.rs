//! Memory zones as on i386 Linux: DMA, Normal and HighMem, each with its own
//! buddy free lists, counters, watermarks and per-cpu page list.
//!
//! ```text
//!  pfn 0          4096 (16 MiB)        max_low_pfn (896 MiB)        max_pfn
//!  +--------------+--------------------+----------------------------+
//!  |     DMA      |       Normal       |          HighMem           |
//!  +--------------+--------------------+----------------------------+
//!   ISA DMA reach   direct-mapped at     no permanent kernel mapping
//!                   PAGE_OFFSET          (kmap); up to 4 GiB without PAE,
//!                                        up to pfn 0xFF_FFFF (64 GiB - 4 KiB)
//!                                        with it
//! ```
//!
//! Every frame at or above `max_low_pfn` is HighMem, including those above
//! 4 GiB (pfns from `0x10_0000`): a zone is a pfn range, and pfns, counts
//! and spans are `u32` (16 Mi frames at most, see
//! [`super::page::MAX_PFN_LIMIT`]).
//!
//! Where it sits: the buddy allocator ([`super::buddy`]) creates the three
//! zones from `max_pfn` and `max_low_pfn` when it takes over `mem_map`; the
//! hand-off from memblock fills them and [`super::buddy::BuddyAllocator::setup_watermarks`]
//! then computes the watermarks below.
//!
//! Main invariant: a zone is a half-open pfn range `[start_pfn, start_pfn +
//! spanned_pages)`; zones are adjacent, in [`ZoneType`] order, and may be
//! empty. No free block crosses a zone boundary.
//!
//! # References
//! - Linux: `include/linux/mmzone.h` (`struct zone`, `struct free_area`,
//!   `struct per_cpu_pages`), `mm/page_alloc.c` (`calculate_min_free_kbytes()`,
//!   `__setup_per_zone_wmarks()`, `zone_batchsize()`), `lib/math/int_sqrt.c`.
//! - Gorman, *Understanding the Linux Virtual Memory Manager*, ch. 2
//!   "Describing Physical Memory" (zone watermarks).

#![forbid(unsafe_code)]

use super::layout::{ISA_DMA_LIMIT, MAXMEM, PAGE_SHIFT};
use super::page::{Page, PageFlags, PageList};
use crate::addr::Pfn;
use core::fmt;

/// Value: 10. The largest block order: 1024 pages, 4 MiB (Linux
/// `MAX_PAGE_ORDER`, inclusive; it was `MAX_ORDER - 1` before v6.8).
pub const MAX_PAGE_ORDER: u8 = 10;

/// Value: 11. Number of orders, the length of `free_area` (Linux
/// `NR_PAGE_ORDERS`).
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;

/// Value: 3. Number of zones (Linux `MAX_NR_ZONES` on i386 with HIGHMEM).
pub const MAX_NR_ZONES: usize = 3;

/// Value: 4096. First pfn above ZONE_DMA: [`ISA_DMA_LIMIT`] (16 MiB), the
/// reach of ISA DMA, in frames (Linux `MAX_DMA_PFN`).
pub const MAX_DMA_PFN: Pfn = Pfn(ISA_DMA_LIMIT >> PAGE_SHIFT);

/// Value: 229376. End of low memory: [`MAXMEM`] (896 MiB) in frames (Linux
/// `MAXMEM_PFN` with the 3G/1G split and the 128 MiB vmalloc reserve). The
/// direct map holds no more, so `max_low_pfn` never exceeds it.
pub const DEFAULT_MAX_LOW_PFN: Pfn = Pfn(MAXMEM >> PAGE_SHIFT);

/// Value: 128. Lower clamp of `min_free_kbytes`.
pub const MIN_FREE_KBYTES_MIN: u64 = 128;

/// Value: 262144 (256 MiB). Upper clamp of `min_free_kbytes` (Linux since
/// v5.8).
pub const MIN_FREE_KBYTES_MAX: u64 = 262_144;

/// Value: 10. `watermark_scale_factor`: the low/high gap is at least
/// 10/10000 = 0.1% of the zone.
pub const WATERMARK_SCALE_FACTOR: u64 = 10;

/// Value: 32. Lower clamp of a HighMem zone's `min` (Linux
/// `SWAP_CLUSTER_MAX`).
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// Value: 32. Upper clamp of a per-cpu `batch`.
pub const PCP_BATCH_MAX: u32 = 32;

/// A zone: which physical pages a request may be served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneType {
    /// pfn `[0, 4096)`: reachable by ISA DMA (Linux `ZONE_DMA`).
    Dma = 0,
    /// pfn `[4096, max_low_pfn)`: permanently mapped at `PAGE_OFFSET`
    /// (Linux `ZONE_NORMAL`).
    Normal = 1,
    /// pfn `[max_low_pfn, max_pfn)`: no permanent kernel mapping (Linux
    /// `ZONE_HIGHMEM`).
    HighMem = 2,
}

impl ZoneType {
    /// All zones, lowest first (the index order of the zone array).
    pub const ALL: [ZoneType; MAX_NR_ZONES] = [ZoneType::Dma, ZoneType::Normal, ZoneType::HighMem];

    /// The Linux name: `"DMA"`, `"Normal"`, `"HighMem"` (as in
    /// `/proc/buddyinfo`).
    pub const fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
        }
    }

    /// Index into the zone array: 0, 1, 2.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ZoneType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The free blocks of one order in one zone (Linux `struct free_area`, with
/// one migrate type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeArea {
    pub(super) free_list: PageList,
    pub(super) nr_free: u32,
}

impl FreeArea {
    /// The list of free block heads, linked through `mem_map`.
    pub const fn free_list(&self) -> &PageList {
        &self.free_list
    }

    /// Number of free **blocks** on the list (not pages: an order-3 entry is
    /// 8 pages). This is the number `/proc/buddyinfo` prints.
    pub const fn nr_free(&self) -> u32 {
        self.nr_free
    }
}

/// A zone's watermarks, in pages (Linux `zone->_watermark[]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// Below this only `__GFP_HIGH` (`GFP_ATOMIC`) requests may allocate,
    /// down to `min / 2`.
    pub min: u32,
    /// kswapd wakes below this (no reclaim here; reported only).
    pub low: u32,
    /// kswapd sleeps above this (reported only).
    pub high: u32,
}

/// Value: 192. The largest per-cpu `high`: `6 * PCP_BATCH_MAX`, the
/// largest `count` of [`PerCpuPages`] is one more: the page that pushes
/// `count` past `high`, until the drain.
pub const PCP_HIGH_MAX: u32 = 6 * PCP_BATCH_MAX;

/// A zone's per-cpu stack of order-0 pages, for the one CPU (Linux `struct
/// per_cpu_pages`).
///
/// The pages are kept as an array of pfns, `pfns[0..count]`, not linked
/// through their descriptors: a push or a pop touches the array and the
/// page's own descriptor (its `PG_pcp` mark), never a neighbour's. The top
/// (`pfns[count - 1]`) is the hot end: allocation pops it and a free pushes
/// there. The bottom (`pfns[0]`) holds the coldest pages: once `count >
/// high`, `batch` of them go back to the buddy lists
/// (`free_pcppages_bulk()`). An empty stack is refilled with `batch` pages
/// from the buddy lists (`rmqueue_bulk()`), lowest pfn on top. (Linux keeps
/// `struct list_head`s per order, linked through `page->pcp_list`.)
///
/// Equality and `Debug` look at `pfns[0..count]` only: the slots above are
/// stale.
#[derive(Clone, Copy)]
pub struct PerCpuPages {
    pub(super) count: u32,
    pub(super) batch: u32,
    pub(super) high: u32,
    /// `count <= high + 1 <= PCP_HIGH_MAX + 1` entries are used. (Rounding
    /// the array up to 256 slots would let a `u8` index skip a bounds check,
    /// at 250 more bytes per zone in a structure the boot stages move by
    /// value on the boot stack.)
    pub(super) pfns: [u32; PCP_SLOTS],
}

/// The slots of [`PerCpuPages`]' array.
const PCP_SLOTS: usize = PCP_HIGH_MAX as usize + 1;

impl PartialEq for PerCpuPages {
    fn eq(&self, other: &PerCpuPages) -> bool {
        (self.count, self.batch, self.high) == (other.count, other.batch, other.high)
            && self.pfns() == other.pfns()
    }
}

impl Eq for PerCpuPages {}

/// `PerCpuPages { count, batch, high, pfns: [coldest .. hottest] }`.
impl fmt::Debug for PerCpuPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerCpuPages")
            .field("count", &self.count)
            .field("batch", &self.batch)
            .field("high", &self.high)
            .field("pfns", &self.pfns())
            .finish()
    }
}

impl PerCpuPages {
    /// The boot pageset: `batch` 1, `high` 0, so every freed page goes
    /// straight back to the buddy lists until the real values are set
    /// (Linux `boot_pageset`).
    pub const BOOT: PerCpuPages = PerCpuPages {
        count: 0,
        batch: 1,
        high: 0,
        pfns: [0; PCP_SLOTS],
    };

    /// The pfns on the stack, coldest (next to be drained) first, hottest
    /// (next to be allocated) last.
    pub fn pfns(&self) -> &[u32] {
        &self.pfns[..self.count as usize]
    }

    /// Pages on the stack.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Pages moved per refill or drain.
    pub const fn batch(&self) -> u32 {
        self.batch
    }

    /// The stack is drained by `batch` pages when `count` exceeds this.
    pub const fn high(&self) -> u32 {
        self.high
    }

    /// Takes the hottest page, if any.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<u32> {
        let top = self.count.checked_sub(1)?;
        let pfn = *self.pfns.get(top as usize)?;
        self.count = top;
        Some(pfn)
    }

    /// Pushes `pfn` on top and returns whether `count` is now above `high`
    /// (the caller drains). `count <= high <= PCP_HIGH_MAX` before the push,
    /// so the slot exists.
    #[inline]
    pub(super) fn push(&mut self, pfn: u32) -> bool {
        debug_assert!(self.count <= self.high && self.high <= PCP_HIGH_MAX);
        self.pfns[self.count as usize] = pfn;
        self.count += 1;
        self.count > self.high
    }

    /// Removes the `out.len()` coldest pages (`out.len() <= count`) into
    /// `out`, coldest first, and moves the rest down.
    pub(super) fn take_bottom(&mut self, out: &mut [u32]) {
        let (n, count) = (out.len(), self.count as usize);
        out.copy_from_slice(&self.pfns[..n]);
        self.pfns.copy_within(n..count, 0);
        self.count -= n as u32;
    }
}

/// One zone (Linux `struct zone`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub(super) zone_type: ZoneType,
    pub(super) start_pfn: Pfn,
    pub(super) spanned_pages: u32,
    pub(super) present_pages: u32,
    pub(super) managed_pages: u32,
    pub(super) free_pages: u32,
    pub(super) watermark: Watermarks,
    pub(super) free_area: [FreeArea; NR_PAGE_ORDERS],
    /// Bit `o` set when `free_area[o]` has a block: the search for the
    /// smallest order `>= order` with a block is one shift and one bit scan
    /// instead of a walk over empty orders.
    pub(super) free_area_mask: u32,
    pub(super) pcp: PerCpuPages,
}

impl Zone {
    /// An empty zone covering `[start_pfn, end_pfn)` with nothing present.
    ///
    /// # Panics
    /// If `end_pfn < start_pfn`.
    pub const fn new(zone_type: ZoneType, start_pfn: Pfn, end_pfn: Pfn) -> Zone {
        Zone {
            zone_type,
            start_pfn,
            spanned_pages: end_pfn.0 - start_pfn.0,
            present_pages: 0,
            managed_pages: 0,
            free_pages: 0,
            watermark: Watermarks {
                min: 0,
                low: 0,
                high: 0,
            },
            free_area: [FreeArea {
                free_list: PageList::new(),
                nr_free: 0,
            }; NR_PAGE_ORDERS],
            free_area_mask: 0,
            pcp: PerCpuPages::BOOT,
        }
    }

    /// Which zone this is.
    pub const fn zone_type(&self) -> ZoneType {
        self.zone_type
    }

    /// First pfn of the span.
    pub const fn start_pfn(&self) -> Pfn {
        self.start_pfn
    }

    /// One past the last pfn of the span.
    pub const fn end_pfn(&self) -> Pfn {
        self.start_pfn.add(self.spanned_pages)
    }

    /// Whether `pfn` lies in `[start_pfn, end_pfn)`.
    pub const fn contains(&self, pfn: Pfn) -> bool {
        pfn.0 >= self.start_pfn.0 && pfn.0 < self.end_pfn().0
    }

    /// Pages in the span, holes included.
    pub const fn spanned_pages(&self) -> u32 {
        self.spanned_pages
    }

    /// Pages of RAM in the span (holes excluded).
    pub const fn present_pages(&self) -> u32 {
        self.present_pages
    }

    /// Pages given to the buddy allocator: present minus memblock-reserved.
    pub const fn managed_pages(&self) -> u32 {
        self.managed_pages
    }

    /// Pages on the buddy free lists (Linux `NR_FREE_PAGES`): the sum over
    /// orders of `nr_free << order`. Per-cpu pages are not included.
    pub const fn free_pages(&self) -> u32 {
        self.free_pages
    }

    /// The watermarks (all 0 until `setup_watermarks()`).
    pub const fn watermark(&self) -> Watermarks {
        self.watermark
    }

    /// The free blocks of `order`.
    ///
    /// # Panics
    /// If `order > MAX_PAGE_ORDER`.
    pub const fn free_area(&self, order: u8) -> &FreeArea {
        &self.free_area[order as usize]
    }

    /// The orders with a free block: bit `o` set when `free_area[o]` is not
    /// empty.
    pub const fn free_area_mask(&self) -> u32 {
        self.free_area_mask
    }

    /// The smallest order `>= order` that has a free block (`order <=
    /// MAX_PAGE_ORDER`).
    #[inline]
    pub(super) const fn first_free_order(&self, order: u8) -> Option<u8> {
        let above = self.free_area_mask >> order;
        if above == 0 {
            None
        } else {
            Some(order + above.trailing_zeros() as u8)
        }
    }

    /// Marks `pfn` as the head of a free block of `order` (`PG_buddy`, one
    /// descriptor store) and lists it at the front of `free_area[order]`
    /// (Linux `__add_to_free_list()` with `set_buddy_order()`), or at the
    /// back with `to_tail` (`FPI_TO_TAIL`). `free_pages` is the caller's.
    #[inline]
    pub(super) fn add_to_free_area(
        &mut self,
        mem_map: &mut [Page],
        pfn: u32,
        order: u8,
        to_tail: bool,
    ) {
        let head = Page::with_order(self.zone_type, PageFlags::BUDDY, order);
        let area = &mut self.free_area[order as usize];
        if to_tail {
            area.free_list.push_back_page(mem_map, pfn, head);
        } else {
            area.free_list.push_front_page(mem_map, pfn, head);
        }
        area.nr_free += 1;
        self.free_area_mask |= 1 << order;
    }

    /// Unlinks the free block at `pfn` from `free_area[order]`, given its
    /// head descriptor `page` that the caller has just read, and leaves the
    /// descriptor for the caller to overwrite (Linux
    /// `del_page_from_free_list()` without the descriptor update).
    #[inline]
    pub(super) fn del_read_from_free_area(
        &mut self,
        mem_map: &mut [Page],
        pfn: u32,
        page: Page,
        order: u8,
    ) {
        let area = &mut self.free_area[order as usize];
        area.free_list.unlink_read(mem_map, pfn, page);
        area.nr_free -= 1;
        if area.free_list.is_empty() {
            self.free_area_mask &= !(1 << order);
        }
    }

    /// Takes the first block of `free_area[order]`, leaving its descriptor
    /// for the caller to overwrite.
    #[inline]
    pub(super) fn take_from_free_area(&mut self, mem_map: &mut [Page], order: u8) -> Option<u32> {
        let area = &mut self.free_area[order as usize];
        let pfn = area.free_list.take_front(mem_map)?;
        area.nr_free -= 1;
        if area.free_list.is_empty() {
            self.free_area_mask &= !(1 << order);
        }
        Some(pfn)
    }

    /// The per-cpu page stack.
    pub const fn pcp(&self) -> &PerCpuPages {
        &self.pcp
    }

    /// The watermark check of the allocation fast path, for `order <=
    /// MAX_PAGE_ORDER`: `free_pages - (1 << order) >= mark`, where `mark` is
    /// `min`, or `min - min / 2` when `atomic` (`__GFP_HIGH`). Same result as
    /// `BuddyAllocator::zone_watermark_ok`, in 32-bit arithmetic without
    /// overflow. (Linux v6 `__zone_watermark_ok()` lets `GFP_ATOMIC` go a
    /// further `min / 4` lower through `ALLOC_NON_BLOCK`; this kernel stops
    /// at `min / 2`, and has no `lowmem_reserve`.)
    #[inline]
    pub(super) const fn watermark_ok(&self, order: u8, atomic: bool) -> bool {
        // `min - min / 2` is `(min + 1) >> 1`: with `a` 0 or 1, `(min + a) >>
        // a` is either mark without a branch. No overflow: `min` and
        // `free_pages` are page counts below 2^24 (`MAX_PFN_LIMIT`), `need`
        // at most 2^10.
        let a = atomic as u32;
        let mark = (self.watermark.min + a) >> a;
        let need = 1u32 << order;
        self.free_pages >= need + mark
    }

    /// Whether the zone has RAM (Linux `populated_zone()`).
    pub const fn is_populated(&self) -> bool {
        self.present_pages != 0
    }
}

/// Integer square root, rounded down (Linux `lib/math/int_sqrt.c`
/// `int_sqrt()`): `int_sqrt(2_048_000) = 1431` (1431² = 2_047_761).
pub const fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Bit-by-bit: try each result bit from the top, as Linux does.
    let mut m: u64 = 1 << ((63 - x.leading_zeros()) & !1);
    let mut x = x;
    let mut y: u64 = 0;
    while m != 0 {
        let b = y + m;
        y >>= 1;
        if x >= b {
            x -= b;
            y += m;
        }
        m >>= 2;
    }
    y
}

/// `min_free_kbytes` for `lowmem_kbytes` of managed low memory (Linux
/// `calculate_min_free_kbytes()`): `int_sqrt(lowmem_kbytes * 16)`, clamped
/// to `[128, 262144]`.
///
/// Example: 125 MiB of low memory, 128_000 KiB: `int_sqrt(2_048_000) = 1431`.
/// 16 MiB (16_384 KiB): `int_sqrt(262_144) = 512`. 256 KiB: 64, clamped to
/// 128.
pub const fn calculate_min_free_kbytes(lowmem_kbytes: u64) -> u64 {
    let v = int_sqrt(lowmem_kbytes * 16);
    if v < MIN_FREE_KBYTES_MIN {
        MIN_FREE_KBYTES_MIN
    } else if v > MIN_FREE_KBYTES_MAX {
        MIN_FREE_KBYTES_MAX
    } else {
        v
    }
}

/// One zone's watermarks (Linux `__setup_per_zone_wmarks()`).
///
/// # Arguments
/// - `pages_min`: `min_free_kbytes / 4`, the reserve of all low memory, in
///   pages;
/// - `managed`: this zone's managed pages;
/// - `lowmem_managed`: managed pages of DMA + Normal;
/// - `highmem`: whether this is the HighMem zone.
///
/// Basic algorithm: a low zone's share of the reserve is proportional to its
/// size, `tmp = pages_min * managed / lowmem_managed`, and `min = tmp`.
/// HighMem is not a reserve for atomic allocations (they need lowmem), so its
/// `min` is small: `clamp(managed / 1024, 32, 128)`. The low/high gap is
/// `gap = max(tmp / 4, managed * 10 / 10000)`, then `low = min + gap`,
/// `high = min + 2 * gap`. (For HighMem, Linux takes `tmp / 4`, the share it
/// *would* get, not `min / 4`.)
///
/// Example: `pages_min` 357 (`min_free_kbytes` 1431), DMA 3968 and Normal
/// 28032 managed pages (lowmem 32000): DMA `min = 357 * 3968 / 32000 = 44`,
/// `gap = max(11, 3) = 11`, so 44/55/66; Normal `min = 312`, `gap =
/// max(78, 28) = 78`, so 312/390/468.
pub const fn zone_watermarks(
    pages_min: u64,
    managed: u32,
    lowmem_managed: u32,
    highmem: bool,
) -> Watermarks {
    let managed = managed as u64;
    let tmp = if lowmem_managed == 0 {
        0
    } else {
        pages_min * managed / lowmem_managed as u64
    };
    let min = if highmem {
        let m = managed / 1024;
        if m < SWAP_CLUSTER_MAX {
            SWAP_CLUSTER_MAX
        } else if m > 128 {
            128
        } else {
            m
        }
    } else {
        tmp
    };
    let scaled = managed * WATERMARK_SCALE_FACTOR / 10_000;
    let gap = if tmp / 4 > scaled { tmp / 4 } else { scaled };
    Watermarks {
        min: min as u32,
        low: (min + gap) as u32,
        high: (min + 2 * gap) as u32,
    }
}

/// The per-cpu `batch` of a zone of `managed` pages:
/// `clamp(managed / 1024, 1, 32)` rounded down to a power of two (a
/// simplification of Linux `zone_batchsize()`). `high` is `6 * batch`.
///
/// Example: 4096 pages → 4; 6000 → 4 (5 rounded down); 229_376 → 32.
pub const fn pcp_batch(managed: u32) -> u32 {
    let b = managed / 1024;
    let b = if b < 1 {
        1
    } else if b > PCP_BATCH_MAX {
        PCP_BATCH_MAX
    } else {
        b
    };
    1 << (31 - b.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_have_their_documented_values() {
        assert_eq!(MAX_DMA_PFN, Pfn(4096));
        assert_eq!(DEFAULT_MAX_LOW_PFN, Pfn(229_376));
        assert_eq!(NR_PAGE_ORDERS, 11);
    }

    #[test]
    fn zone_names_are_linux_names() {
        let names: Vec<_> = ZoneType::ALL.iter().map(|z| z.name()).collect();
        assert_eq!(names, ["DMA", "Normal", "HighMem"]);
        assert_eq!(ZoneType::HighMem.index(), 2);
    }

    #[test]
    fn int_sqrt_rounds_down() {
        assert_eq!(int_sqrt(2_048_000), 1431);
        for x in [0u64, 1, 2, 3, 4, 15, 16, 17, 99, 1 << 40, u64::MAX] {
            let r = int_sqrt(x);
            assert!(r * r <= x, "{x}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > x), "{x}");
        }
    }

    #[test]
    fn min_free_kbytes_worked_examples() {
        assert_eq!(calculate_min_free_kbytes(128_000), 1431);
        assert_eq!(calculate_min_free_kbytes(16_384), 512);
        assert_eq!(calculate_min_free_kbytes(256), 128);
        assert_eq!(calculate_min_free_kbytes(1 << 40), 262_144);
    }

    #[test]
    fn watermark_worked_example() {
        let dma = zone_watermarks(357, 3968, 32000, false);
        assert_eq!((dma.min, dma.low, dma.high), (44, 55, 66));
        let normal = zone_watermarks(357, 28032, 32000, false);
        assert_eq!((normal.min, normal.low, normal.high), (312, 390, 468));
    }

    #[test]
    fn highmem_min_is_clamped_to_32_128() {
        assert_eq!(zone_watermarks(357, 2048, 32000, true).min, 32);
        assert_eq!(zone_watermarks(357, 64 * 1024, 32000, true).min, 64);
        assert_eq!(zone_watermarks(357, 1 << 20, 32000, true).min, 128);
        // An empty HighMem zone still gets 32, as in Linux /proc/zoneinfo.
        let empty = zone_watermarks(357, 0, 32000, true);
        assert_eq!((empty.min, empty.low, empty.high), (32, 32, 32));
    }

    #[test]
    fn highmem_spans_frames_above_4_gib_up_to_64_gib() {
        let top = super::super::page::MAX_PFN_LIMIT;
        for end in [Pfn(0x24_0000), top] {
            let z = Zone::new(ZoneType::HighMem, DEFAULT_MAX_LOW_PFN, end);
            assert_eq!(z.spanned_pages(), end.0 - 229_376);
            assert_eq!(z.end_pfn(), end);
            assert!(z.contains(Pfn(0x10_0000)), "4 GiB");
            assert!(z.contains(Pfn(end.0 - 1)) && !z.contains(end));
            assert!(!z.contains(Pfn(229_375)));
        }
        // 64 GiB of HighMem: the gap is 0.1% of the zone, min its clamp.
        let w = zone_watermarks(357, top.0 - 229_376, 229_000, true);
        assert_eq!(
            (w.min, w.low, w.high),
            (128, 128 + 16_547, 128 + 2 * 16_547)
        );
        assert_eq!(pcp_batch(top.0), 32);
        // The fast-path check agrees without overflow at that size.
        let mut z = Zone::new(ZoneType::HighMem, DEFAULT_MAX_LOW_PFN, top);
        z.free_pages = top.0 - 229_376;
        z.watermark = w;
        assert!(z.watermark_ok(MAX_PAGE_ORDER, false));
        z.free_pages = w.min + (1 << MAX_PAGE_ORDER) - 1;
        assert!(!z.watermark_ok(MAX_PAGE_ORDER, false));
    }

    #[test]
    fn pcp_batch_worked_examples() {
        assert_eq!(pcp_batch(0), 1);
        assert_eq!(pcp_batch(4096), 4);
        assert_eq!(pcp_batch(6000), 4);
        assert_eq!(pcp_batch(229_376), 32);
    }
}
