//! The zoned buddy page allocator: blocks of `1 << order` physical pages,
//! order 0 (4 KiB) to [`MAX_PAGE_ORDER`] (4 MiB), per zone.
//!
//! Where it sits: after memblock ([`super::memblock`]) has described RAM and
//! served the early allocations, the kernel allocates `mem_map` (one
//! [`Page`] per page frame) and builds a [`BuddyAllocator`] over it:
//!
//! 1. [`BuddyAllocator::new`]: every page reserved, zone spans computed;
//! 2. [`BuddyAllocator::mark_present`] for each `memblock.memory` range;
//! 3. [`BuddyAllocator::free_memory_range`] for each free memblock range: the
//!    hand-off (Linux `memblock_free_all()`);
//! 4. [`BuddyAllocator::setup_watermarks`].
//!
//! From then on it serves every page allocation; kmalloc sits on top.
//!
//! Each zone keeps `free_area[order]`: a list of free blocks of that order,
//! each naturally aligned (its first pfn a multiple of `1 << order`). A block
//! of order `o` at `pfn` has one *buddy*, the other half of the order `o + 1`
//! block that contains both: `pfn ^ (1 << o)`. Allocation splits larger
//! blocks in halves until the order fits ([`BuddyAllocator::alloc_pages`]);
//! freeing merges a block with its buddy as long as the buddy is free too
//! ([`BuddyAllocator::free_pages`]). Order-0 requests go through a per-cpu
//! stack of pfns first (the `pcp` submodule).
//!
//! The common cases are inlined into the caller, the rest is out of line
//! (`get_page_from_freelist()` and the full free check): an order-0
//! allocation from the first zone's per-cpu stack, and an order-0 free whose
//! descriptor passes the one-compare check. The smallest order with a free
//! block is found with a bit scan of the zone's `free_area_mask`.
//!
//! Main invariant (verified by [`BuddyAllocator::check`], which every test
//! calls after each operation): every managed page is in exactly one free
//! block, one allocated block or on one per-cpu list; free blocks are
//! naturally aligned, inside one zone, and never have a free buddy of the
//! same order (they would have merged); the counters agree with the lists.
//!
//! A failed operation changes nothing: allocation failure returns `None`
//! (and records an [`AllocFailure`]), a bad free returns a [`BadPage`] and
//! leaves the free lists untouched.
//!
//! # References
//! - Linux: `mm/page_alloc.c` (v6.x): `__free_one_page()`, `expand()`,
//!   `__rmqueue_smallest()`, `rmqueue_bulk()`, `free_pcppages_bulk()`,
//!   `get_page_from_freelist()`, `__zone_watermark_ok()`, `warn_alloc()`,
//!   `bad_page()`, `alloc_pages_exact()`/`make_alloc_exact()`,
//!   `__get_free_pages()`; `mm/internal.h` (`__find_buddy_pfn()`);
//!   `mm/mm_init.c` (`memblock_free_pages()`), `mm/memblock.c`
//!   (`__free_pages_memory()`).
//! - SerenityOS: `Kernel/Memory/PhysicalZone.cpp` (free lists as indices).
//! - Knuth, *TAOCP* Vol. 1, §2.5 "Dynamic Storage Allocation" (the buddy
//!   system).

#![forbid(unsafe_code)]

mod check;
mod pcp;
#[cfg(test)]
mod random_tests;
mod report;
#[cfg(test)]
mod tests;

pub use check::{CheckError, ListId};

use super::gfp::{GFP_ZONEMASK, Gfp, gfp_zone};
use super::layout::{PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE};
use super::page::{MAX_PFN_LIMIT, Page, PageFlags, PageUse};
use super::zone::{
    DEFAULT_MAX_LOW_PFN, MAX_DMA_PFN, MAX_NR_ZONES, MAX_PAGE_ORDER, Zone, ZoneType,
    calculate_min_free_kbytes, pcp_batch, zone_watermarks,
};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use core::fmt;
use core::num::NonZeroU32;

/// The buddy of the order-`order` block at `pfn`: the other half of the
/// order `order + 1` block containing it (Linux `__find_buddy_pfn()`).
///
/// Example: pfn 8, order 1 (pages 8-9) → `8 ^ (1 << 1) = 8 ^ 2 = 10` (pages
/// 10-11); and back, `10 ^ 2 = 8`.
pub const fn buddy_pfn(pfn: u32, order: u8) -> u32 {
    pfn ^ (1 << order)
}

/// First pfn of the order `order + 1` block made of the order-`order` block
/// at `pfn` and its buddy (Linux: `buddy_pfn & pfn` in `__free_one_page()`).
///
/// Example: pfn 10, order 1 → `10 & !2 = 8`; so blocks 8 and 10 merge into
/// the order-2 block at 8.
pub const fn combined_pfn(pfn: u32, order: u8) -> u32 {
    pfn & !(1 << order)
}

/// Whether `pfn` heads a free block of `order` in `zone` (Linux
/// `page_is_buddy()`): one descriptor read and one masked compare. Out of
/// range is not a buddy.
#[inline]
fn is_buddy(mem_map: &[Page], pfn: u32, order: u8, zone: ZoneType) -> bool {
    mem_map
        .get(pfn as usize)
        .is_some_and(|p| p.is_free_head(zone, order))
}

/// The smallest order whose block holds `size_bytes` (Linux `get_order()`):
/// 1 byte → 0, 4096 → 0, 12 KiB → 2 (16 KiB), 4 MiB → 10. 0 for 0.
pub const fn get_order(size_bytes: u32) -> u8 {
    let pages = size_bytes.div_ceil(PAGE_SIZE);
    if pages <= 1 {
        0
    } else {
        (32 - (pages - 1).leading_zeros()) as u8
    }
}

/// An allocated block: `1 << order` pages from `pfn`, owned by whoever holds
/// this value.
///
/// Not `Clone` nor `Copy`: the owner gives it back by moving it into
/// [`BuddyAllocator::free_pages`], so freeing twice through this type does
/// not compile (Theseus-style owned frames):
///
/// ```compile_fail
/// fn twice(b: &kernel::mm::buddy::PageBlock) -> kernel::mm::buddy::PageBlock {
///     b.clone()
/// }
/// ```
///
/// # Where ownership ends
///
/// The type guarantees single ownership only while the block is a
/// `PageBlock`. Pages that must outlive it are recorded somewhere the type
/// cannot follow (a page-table entry, a page mark, a pointer), so their
/// holder calls [`into_raw`](Self::into_raw): ownership ends there, the
/// pages stay allocated, and they come back through
/// [`BuddyAllocator::free_pages_raw`], whose checks (allocated head, same
/// order, not marked in use) stand in for the type. The places:
///
/// - slab pages (`mm::slab`, `Kmalloc::new_slab`): the page marks
///   ([`PageUse::Slab`]) and the cache's lists hold them;
///   `Kmalloc::discard_slab` unmarks and frees them;
/// - large kmalloc (`mm::slab::large`, `large_alloc`): the head page's mark
///   ([`PageUse::LargeKmalloc`]) and the caller's pointer; `kfree` frees;
/// - vmalloc frames (`runtime::vmalloc`, `map_new_page` and the demand
///   fault): the area's page-table entries; `vfree` unmaps each and frees
///   the frame;
/// - page tables (the [`FrameSource`](super::paging::FrameSource) impl in
///   `mm::paging`): the directory entry; `free_table` frees;
/// - this allocator's own address- and range-based calls:
///   [`get_free_pages`](BuddyAllocator::get_free_pages) and
///   [`alloc_pages_exact`](BuddyAllocator::alloc_pages_exact) hand out a
///   [`VirtAddr`] or `(Pfn, nr_pages)`, given back with
///   [`free_pages_va`](BuddyAllocator::free_pages_va) and
///   [`free_pages_exact`](BuddyAllocator::free_pages_exact);
/// - the boot self-tests (`init::selftest`), which chain or tag raw frames
///   and free each with `free_pages_raw`, and the `crashtest=unmapped`
///   frame, never freed (the kernel stops right after).
///
/// Dropping a `PageBlock` without either leaks its pages (hence
/// `#[must_use]`).
///
/// Stored as one 32-bit word, `pfn << 4 | (order + 1)` (pfns are below
/// [`MAX_PFN_LIMIT`], 2^20; orders at most [`MAX_PAGE_ORDER`]), never 0: a
/// `PageBlock` and an `Option<PageBlock>` both travel in one register and
/// move with one whole-word store and load (a `{ pfn: u32, order: u8 }`
/// pair, written field by field and read back as words, stalls store
/// forwarding).
#[must_use = "dropping a PageBlock leaks its pages; give it to free_pages()"]
#[derive(PartialEq, Eq)]
pub struct PageBlock(NonZeroU32);

impl PageBlock {
    /// The block of `1 << order` pages at `pfn`, for `pfn <`
    /// [`MAX_PFN_LIMIT`] and `order <=` [`MAX_PAGE_ORDER`].
    #[inline]
    const fn new(pfn: u32, order: u8) -> PageBlock {
        debug_assert!(pfn < MAX_PFN_LIMIT.0 && order <= MAX_PAGE_ORDER);
        match NonZeroU32::new(pfn << 4 | (order as u32 + 1)) {
            Some(raw) => PageBlock(raw),
            None => unreachable!(),
        }
    }

    /// First page frame number.
    #[inline]
    pub const fn pfn(&self) -> Pfn {
        Pfn(self.0.get() >> 4)
    }

    /// log2 of the block size in pages (0 = one 4 KiB page).
    #[inline]
    pub const fn order(&self) -> u8 {
        (self.0.get() & 0xF) as u8 - 1
    }

    /// Pages in the block: `1 << order`.
    pub const fn nr_pages(&self) -> u32 {
        1 << self.order()
    }

    /// Physical address of the first byte ([`Pfn::phys`]; below 4 GiB since
    /// pfns are below [`MAX_PFN_LIMIT`]).
    pub const fn phys_addr(&self) -> PhysAddr {
        self.pfn().phys()
    }

    /// Gives up the owned value, returning `(pfn, order)`: ownership ends
    /// here (see [Where ownership ends](PageBlock#where-ownership-ends)).
    /// The pages stay allocated; whoever holds the pair frees them later
    /// with [`BuddyAllocator::free_pages_raw`], or keeps them forever.
    #[inline]
    pub const fn into_raw(self) -> (Pfn, u8) {
        (self.pfn(), self.order())
    }
}

/// `PageBlock { pfn: 12, order: 2 }`, as for the two fields.
impl fmt::Debug for PageBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageBlock")
            .field("pfn", &self.pfn().0)
            .field("order", &self.order())
            .finish()
    }
}

/// Why a free was refused (the text after `reason:` in [`BadPage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPageReason {
    /// The page heads a free block already (`PG_buddy`).
    DoubleFree,
    /// The page is on a per-cpu list: freed already.
    OnPcpList,
    /// The page is still mapped into user space: its map count is not 0
    /// (Linux `bad_page()` "nonzero mapcount"); unmap it first.
    Mapped {
        /// The map count found ([`Page::mapcount`]).
        mapcount: u32,
    },
    /// The block was allocated with another order.
    WrongOrder {
        /// The order it was allocated with.
        expected: u8,
    },
    /// The page was never given to the buddy allocator (a hole or
    /// memblock-reserved).
    Reserved,
    /// The page does not head an allocated block: never allocated, or a page
    /// inside a larger block.
    NotAllocated,
    /// `pfn` is not a multiple of `1 << order`.
    Misaligned,
    /// `pfn` (or the block) lies beyond `mem_map`.
    OutOfRange {
        /// One past the last pfn.
        max_pfn: Pfn,
    },
    /// `order > MAX_PAGE_ORDER`.
    OrderTooLarge,
    /// The block is still marked as used by the slab allocator (a slab
    /// page or a large kmalloc block): it must be freed with `kfree()`.
    InUse {
        /// The mark found on the head page.
        page_use: PageUse,
    },
    /// A virtual address that is not a page in the direct map.
    BadVirtAddr {
        /// The address passed in.
        va: VirtAddr,
    },
}

impl fmt::Display for BadPageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BadPageReason::DoubleFree => f.write_str("double free (page is already free)"),
            BadPageReason::OnPcpList => {
                f.write_str("double free (page is already on a per-cpu list)")
            }
            BadPageReason::Mapped { mapcount } => {
                write!(f, "nonzero mapcount ({mapcount} user mappings)")
            }
            BadPageReason::WrongOrder { expected } => {
                write!(f, "wrong order (block was allocated as order {expected})")
            }
            BadPageReason::Reserved => {
                f.write_str("reserved page (never given to the buddy allocator)")
            }
            BadPageReason::NotAllocated => {
                f.write_str("page is not the head of an allocated block")
            }
            BadPageReason::Misaligned => {
                f.write_str("misaligned block (pfn not a multiple of 1 << order)")
            }
            BadPageReason::OutOfRange { max_pfn } => {
                write!(f, "pfn out of range (max_pfn {max_pfn:#x})")
            }
            BadPageReason::OrderTooLarge => {
                write!(f, "order above MAX_PAGE_ORDER ({MAX_PAGE_ORDER})")
            }
            BadPageReason::InUse { page_use } => match page_use {
                PageUse::Slab { cache } => {
                    write!(
                        f,
                        "page still in use by slab cache {cache} (free it with kfree)"
                    )
                }
                _ => f.write_str("page still in use by kmalloc (free it with kfree)"),
            },
            BadPageReason::BadVirtAddr { va } => {
                write!(f, "not a direct-mapped page address (va {va:#010x})")
            }
        }
    }
}

/// A refused free (Linux `bad_page()`); nothing was changed.
///
/// Displays as `BUG: Bad page state: pfn:00008 order:0 flags:0x...(buddy)
/// reason: double free (page is already free)`: pfn in hex with 5 digits and
/// the raw descriptor as Linux prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPage {
    /// The pfn passed in (for a virtual address: its page, wrapping).
    pub pfn: Pfn,
    /// The order passed in.
    pub order: u8,
    /// The raw 64-bit descriptor of `pfn` ([`Page::raw`]), 0 if out of range.
    pub flags: u64,
    /// What is wrong.
    pub reason: BadPageReason,
}

impl fmt::Display for BadPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = if self.flags == 0 {
            PageFlags::empty()
        } else {
            Page::from_raw(self.flags).flags()
        };
        write!(
            f,
            "BUG: Bad page state: pfn:{:05x} order:{} flags:{:#x}({}) reason: {}",
            self.pfn, self.order, self.flags, names, self.reason
        )
    }
}

/// A failed allocation, kept for the kernel to log unless the request had
/// `__GFP_NOWARN` (Linux `warn_alloc()`).
///
/// Displays as `page allocation failure: order:10, mode:0xcc0(GFP_KERNEL)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    /// The requested order.
    pub order: u8,
    /// The request's flags.
    pub gfp: Gfp,
}

impl fmt::Display for AllocFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "page allocation failure: order:{}, mode:{:#x}({})",
            self.order,
            self.gfp.bits(),
            self.gfp
        )
    }
}

/// Event counters (Linux `/proc/vmstat` names where they exist).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStat {
    /// Pages allocated per zone, indexed by [`ZoneType::index`]
    /// (`pgalloc_dma`, `pgalloc_normal`, `pgalloc_high`).
    pub pgalloc: [u64; MAX_NR_ZONES],
    /// Pages freed (`pgfree`), including those released by the hand-off, as
    /// in Linux.
    pub pgfree: u64,
    /// Per-cpu list refills from the buddy lists (calls of `rmqueue_bulk()`;
    /// not a Linux counter).
    pub pcp_refills: u64,
    /// Per-cpu list drains to the buddy lists (calls of
    /// `free_pcppages_bulk()`; not a Linux counter).
    pub pcp_drains: u64,
    /// Failed allocations, warned or not (not a Linux counter).
    pub alloc_failures: u64,
}

/// The hook that zeroes `nr_pages` pages from `pfn` for `__GFP_ZERO`. The
/// kernel maps each page (kmap for HighMem) and clears it; tests record the
/// calls.
pub type ZeroFn = fn(pfn: Pfn, nr_pages: u32);

/// [`BuddyAllocator`]'s first zone per request zone bits before the
/// hand-off: each request's own [`gfp_zone`] (`GFP_ZONEMASK` bits 0:
/// Normal, 1: DMA, 2: HighMem, 3: DMA).
const PREFERRED_AT_BOOT: [ZoneType; 4] = [
    ZoneType::Normal,
    ZoneType::Dma,
    ZoneType::HighMem,
    ZoneType::Dma,
];

/// The page allocator: `mem_map` plus three zones (Linux `pg_data_t` for
/// node 0 and the allocator functions around it).
#[derive(Debug)]
pub struct BuddyAllocator<'a> {
    mem_map: &'a mut [Page],
    zones: [Zone; MAX_NR_ZONES],
    max_low_pfn: u32,
    zero: ZeroFn,
    pcp_enabled: bool,
    /// The zone each request starts from, indexed by the request's zone
    /// bits (`gfp & GFP_ZONEMASK`): the highest zone at or below
    /// [`gfp_zone`] that has managed pages (Linux computes the zonelist's
    /// first usable zone once per request, `first_zones_zonelist()`; here it
    /// is computed once per hand-off). Zones above it have no pages, so
    /// they could not pass the watermark check anyway.
    preferred_zone: [ZoneType; 4],
    min_free_kbytes: u64,
    vmstat: VmStat,
    last_warning: Option<AllocFailure>,
}

impl<'a> BuddyAllocator<'a> {
    /// Takes over `mem_map`, one descriptor per pfn in `[0, max_pfn)` with
    /// `max_pfn = mem_map.len()`, and lays out the zones: DMA `[0,
    /// min(4096, max_pfn))`, Normal up to `max_low_pfn` and HighMem up to
    /// `max_pfn`, any of which may be empty. Every descriptor is overwritten
    /// as reserved in its zone; nothing is free until the hand-off.
    ///
    /// # Arguments
    /// - `max_low_pfn`: end of low memory, normally
    ///   [`DEFAULT_MAX_LOW_PFN`] (896 MiB, the most the direct map
    ///   holds, and the upper clamp); clamped to `[min(4096, max_pfn),
    ///   max_pfn]`. Tests lower it to get a HighMem zone cheaply.
    /// - `zero`: called for `__GFP_ZERO` allocations.
    ///
    /// # Panics
    /// If `mem_map` has more than [`MAX_PFN_LIMIT`] (1 Mi) entries.
    pub fn new(mem_map: &'a mut [Page], max_low_pfn: Pfn, zero: ZeroFn) -> Self {
        assert!(
            mem_map.len() <= MAX_PFN_LIMIT.0 as usize,
            "BuddyAllocator::new: mem_map of {} pages exceeds 4 GiB",
            mem_map.len()
        );
        let max_pfn = mem_map.len() as u32;
        let dma_end = MAX_DMA_PFN.0.min(max_pfn);
        let low_end = max_low_pfn
            .0
            .min(DEFAULT_MAX_LOW_PFN.0)
            .clamp(dma_end, max_pfn);
        let zones = [
            Zone::new(ZoneType::Dma, Pfn(0), Pfn(dma_end)),
            Zone::new(ZoneType::Normal, Pfn(dma_end), Pfn(low_end)),
            Zone::new(ZoneType::HighMem, Pfn(low_end), Pfn(max_pfn)),
        ];
        for z in &zones {
            mem_map[z.start_pfn().0 as usize..z.end_pfn().0 as usize]
                .fill(Page::reserved(z.zone_type()));
        }
        BuddyAllocator {
            mem_map,
            zones,
            max_low_pfn: low_end,
            zero,
            pcp_enabled: true,
            preferred_zone: PREFERRED_AT_BOOT,
            min_free_kbytes: 0,
            vmstat: VmStat::default(),
            last_warning: None,
        }
    }

    /// Records RAM at pfn `[start_pfn, end_pfn)` (a `memblock.memory` range)
    /// in the zones' `present_pages`. Ranges must not overlap each other
    /// (memblock's never do); the part beyond `max_pfn` is ignored.
    pub fn mark_present(&mut self, start_pfn: Pfn, end_pfn: Pfn) {
        for z in &mut self.zones {
            let s = start_pfn.max(z.start_pfn());
            let e = end_pfn.min(z.end_pfn());
            if s < e {
                z.present_pages += e - s;
            }
        }
    }

    /// The hand-off: releases the still-reserved pages of pfn `[start_pfn,
    /// end_pfn)` to the free lists and returns how many were released (Linux
    /// `memblock_free_all()` → `__free_pages_memory()`).
    ///
    /// Basic algorithm: the range is cut at zone boundaries and at pages
    /// that are not reserved (released already), so calling it twice is
    /// harmless. Each piece is released in the largest naturally aligned
    /// blocks its addresses allow, left to right: at `pfn` the order is the
    /// number of trailing zero bits of `pfn` (at most [`MAX_PAGE_ORDER`]),
    /// lowered until the block fits before the end. Each block clears
    /// `PG_reserved`, counts as managed, and is freed as usual (so it merges
    /// with free neighbours), to the tail of its list as Linux does with
    /// `FPI_TO_TAIL`, so that later allocations take lower blocks first.
    ///
    /// Example: `[3, 37)` gives 3 (order 0), 4 (order 2), 8 (order 3), 16
    /// (order 4), 32 (order 2), 36 (order 0).
    pub fn free_memory_range(&mut self, start_pfn: Pfn, end_pfn: Pfn) -> u32 {
        let end = end_pfn.min(self.max_pfn()).0;
        let mut pfn = start_pfn.0;
        let mut released = 0;
        while pfn < end {
            if !self.mem_map[pfn as usize].has(PageFlags::RESERVED) {
                pfn += 1;
                continue;
            }
            let zone_end = self.zone_of(pfn).end_pfn().0.min(end);
            let mut run_end = pfn + 1;
            while run_end < zone_end && self.mem_map[run_end as usize].has(PageFlags::RESERVED) {
                run_end += 1;
            }
            released += run_end - pfn;
            self.free_pages_memory(pfn, run_end);
            pfn = run_end;
        }
        self.update_preferred_zones();
        released
    }

    /// Recomputes [`preferred_zone`](Self::preferred_zone) from the zones'
    /// managed pages (which only grow, at the hand-off).
    fn update_preferred_zones(&mut self) {
        for bits in 0..4u32 {
            let highest = gfp_zone(Gfp::from_bits_truncate(bits));
            self.preferred_zone[bits as usize] = ZoneType::ALL[..=highest.index()]
                .iter()
                .rev()
                .copied()
                .find(|zt| self.zones[zt.index()].managed_pages > 0)
                .unwrap_or(ZoneType::Dma);
        }
    }

    /// The zone a request with `gfp` tries first (see the field's docs).
    #[inline]
    fn preferred_zone(&self, gfp: Gfp) -> ZoneType {
        self.preferred_zone[(gfp.bits() & GFP_ZONEMASK.bits()) as usize & 3]
    }

    /// Releases reserved `[start, end)`, inside one zone, in naturally
    /// aligned blocks (Linux `__free_pages_memory()`).
    fn free_pages_memory(&mut self, mut start: u32, end: u32) {
        while start < end {
            let mut order = MAX_PAGE_ORDER.min(start.trailing_zeros() as u8);
            while start + (1 << order) > end {
                order -= 1;
            }
            self.free_pages_core(start, order);
            start += 1 << order;
        }
    }

    /// Gives one reserved block to the allocator (Linux
    /// `__free_pages_core()`).
    fn free_pages_core(&mut self, pfn: u32, order: u8) {
        let zt = self.mem_map[pfn as usize].zone();
        let n = 1u32 << order;
        self.mem_map[pfn as usize..(pfn + n) as usize].fill(Page::new(zt, PageFlags::empty()));
        self.zones[zt.index()].managed_pages += n;
        self.vmstat.pgfree += u64::from(n);
        self.free_one_page(zt, pfn, order, true);
    }

    /// Computes every zone's watermarks and per-cpu `batch`/`high` from the
    /// managed pages (Linux `init_per_zone_wmark_min()`:
    /// `calculate_min_free_kbytes()`, `__setup_per_zone_wmarks()`, then
    /// `zone_pcp_update()`). Call after the hand-off; calling again
    /// recomputes.
    ///
    /// `min_free_kbytes = int_sqrt(lowmem_kbytes * 16)` clamped to `[128,
    /// 262144]`, where `lowmem_kbytes` is DMA + Normal managed memory;
    /// `pages_min = min_free_kbytes / 4`; each zone's marks are then
    /// [`zone_watermarks`]; `batch =` [`pcp_batch`]`(managed)`, `high = 6 *
    /// batch`. A per-cpu list above its new `high` is drained.
    ///
    /// Example: one DMA zone of 4096 managed pages: `lowmem_kbytes` 16384,
    /// `min_free_kbytes = int_sqrt(262144) = 512`, `pages_min` 128, so `min`
    /// 128, `low` 160, `high` 192; `batch` 4, `high` 24.
    pub fn setup_watermarks(&mut self) {
        let lowmem_managed = self.zones[ZoneType::Dma.index()].managed_pages
            + self.zones[ZoneType::Normal.index()].managed_pages;
        let lowmem_kbytes = u64::from(lowmem_managed) * u64::from(PAGE_SIZE >> 10);
        self.min_free_kbytes = calculate_min_free_kbytes(lowmem_kbytes);
        let pages_min = self.min_free_kbytes >> (PAGE_SHIFT - 10);
        for zt in ZoneType::ALL {
            let z = &mut self.zones[zt.index()];
            z.watermark = zone_watermarks(
                pages_min,
                z.managed_pages,
                lowmem_managed,
                zt == ZoneType::HighMem,
            );
            z.pcp.batch = pcp_batch(z.managed_pages);
            z.pcp.high = 6 * z.pcp.batch;
            let excess = z.pcp.count.saturating_sub(z.pcp.high);
            if excess > 0 {
                self.free_pcppages_bulk(zt, excess);
            }
        }
    }

    /// Whether a request of `order` with `gfp` may take pages from `zone`
    /// (Linux `__zone_watermark_ok()`, without `lowmem_reserve`):
    /// `free_pages - (1 << order) >= mark`, where `mark` is the zone's `min`,
    /// or `min - min / 2` for `__GFP_HIGH` (`GFP_ATOMIC` may dip below `min`,
    /// others may not).
    ///
    /// Example: `min` 32 and 33 free pages: an order-0 `GFP_KERNEL` request
    /// passes (33 - 1 = 32 >= 32) and leaves 32; the next one fails (31 <
    /// 32); `GFP_ATOMIC` (`mark` 16) goes on until 16 pages are left.
    pub fn zone_watermark_ok(&self, zone: ZoneType, order: u8, gfp: Gfp) -> bool {
        let z = &self.zones[zone.index()];
        let mut mark = z.watermark.min;
        if gfp.contains(Gfp::HIGH) {
            mark -= mark / 2;
        }
        let need = 1u64 << order.min(31);
        u64::from(z.free_pages) >= need + u64::from(mark)
    }

    /// Allocates a naturally aligned block of `1 << order` pages (Linux
    /// `alloc_pages()` → `get_page_from_freelist()`).
    ///
    /// Basic algorithm: the zones from [`gfp_zone`]`(gfp)` down to DMA are
    /// tried in turn (HighMem → Normal → DMA; Normal → DMA; DMA only),
    /// skipping a zone whose watermark check fails
    /// ([`zone_watermark_ok`](Self::zone_watermark_ok)). In a zone, order 0
    /// comes from the per-cpu stack when enabled (refilled with `batch` pages
    /// when empty); any other request takes the first block of the smallest
    /// order `>= order` that has one and splits it (`rmqueue_smallest()`).
    /// With `__GFP_ZERO` the block is zeroed through the `zero` hook.
    ///
    /// The fast path, inlined into the caller: an order-0 request whose
    /// first zone passes the watermark check and has a page on its per-cpu
    /// stack takes that page (one compare for the watermark, one pop, one
    /// descriptor store). Everything else goes through
    /// `get_page_from_freelist`, which gives the same answer for the fast
    /// path's case.
    ///
    /// Returns `None` when no allowed zone can serve the request or `order >
    /// MAX_PAGE_ORDER`; the failure is counted and, unless `__GFP_NOWARN`,
    /// kept as [`last_warning`](Self::last_warning). Never panics.
    #[inline]
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u8) -> Option<PageBlock> {
        if order == 0 && self.pcp_enabled {
            let zt = self.preferred_zone(gfp);
            let z = &mut self.zones[zt.index()];
            if z.watermark_ok(0, gfp.contains(Gfp::HIGH))
                && let Some(pfn) = z.pcp.pop()
            {
                self.prep_new_page(zt, pfn, 0, gfp);
                return Some(PageBlock::new(pfn, 0));
            }
        }
        self.get_page_from_freelist(gfp, order)
    }

    /// The zone loop of [`alloc_pages`](Self::alloc_pages) (Linux
    /// `get_page_from_freelist()`), from the preferred zone down to DMA.
    #[inline(never)]
    fn get_page_from_freelist(&mut self, gfp: Gfp, order: u8) -> Option<PageBlock> {
        if order > MAX_PAGE_ORDER {
            return self.alloc_failed(gfp, order);
        }
        let first = self.preferred_zone(gfp);
        let atomic = gfp.contains(Gfp::HIGH);
        for zt in ZoneType::ALL[..=first.index()].iter().rev().copied() {
            // A zone with no managed pages has no free pages either, so the
            // watermark check (at least one page needed) skips it too.
            if !self.zones[zt.index()].watermark_ok(order, atomic) {
                continue;
            }
            let pfn = if order == 0 && self.pcp_enabled {
                self.rmqueue_pcplist(zt, atomic)
            } else {
                self.rmqueue_smallest(zt, order)
            };
            if let Some(pfn) = pfn {
                self.prep_new_page(zt, pfn, order, gfp);
                return Some(PageBlock::new(pfn, order));
            }
        }
        self.alloc_failed(gfp, order)
    }

    #[cold]
    #[inline(never)]
    fn alloc_failed<T>(&mut self, gfp: Gfp, order: u8) -> Option<T> {
        self.vmstat.alloc_failures += 1;
        if !gfp.contains(Gfp::NOWARN) {
            self.last_warning = Some(AllocFailure { order, gfp });
        }
        None
    }

    /// Marks a block allocated (Linux `prep_new_page()`): one store of the
    /// whole descriptor (the block was just unlinked, so it has no links).
    #[inline]
    fn prep_new_page(&mut self, zt: ZoneType, pfn: u32, order: u8, gfp: Gfp) {
        self.mem_map[pfn as usize] = Page::with_order(zt, PageFlags::HEAD, order);
        self.vmstat.pgalloc[zt.index()] += 1 << order;
        if gfp.contains(Gfp::ZERO) {
            (self.zero)(Pfn(pfn), 1 << order);
        }
    }

    /// Takes the first free block of the smallest order `>= order` in `zone`
    /// and splits it down to `order`, returning its first pfn (Linux
    /// `__rmqueue_smallest()`). No watermark check.
    ///
    /// The returned head is unlinked but its descriptor is left as it was
    /// (marked free, stale links): the caller overwrites it whole. `free_pages` drops by `1 << order`
    /// once, not per split.
    ///
    /// Example: only an order-3 block at 8 is free; an order-0 request takes
    /// it and `expand()` returns 12 (order 2), 10 (order 1) and 9 (order 0)
    /// to the free lists, keeping 8.
    #[inline(always)]
    fn rmqueue_smallest(&mut self, zone: ZoneType, order: u8) -> Option<u32> {
        let z = &mut self.zones[zone.index()];
        let current = z.first_free_order(order)?;
        let pfn = z.take_from_free_area(self.mem_map, current)?;
        z.free_pages -= 1 << order;
        Self::expand(self.mem_map, z, pfn, order, current);
        Some(pfn)
    }

    /// Splits the order-`high` block at `pfn`, just taken off its list, down
    /// to order `low`: the upper half goes back on the free list at each step
    /// and the lower half is kept (Linux `expand()`).
    ///
    /// Example: `pfn` 8, `high` 3, `low` 0: 12 (order 2), 10 (order 1), 9
    /// (order 0) become free; 8 stays with the caller.
    /// Counts blocks (`nr_free`) only; the caller accounts `free_pages`.
    #[inline]
    fn expand(mem_map: &mut [Page], z: &mut Zone, pfn: u32, low: u8, high: u8) {
        let mut high = high;
        while high > low {
            high -= 1;
            z.add_to_free_area(mem_map, pfn + (1 << high), high, false);
        }
    }

    /// Returns an allocated block (Linux `__free_pages()`).
    ///
    /// # Errors
    /// A [`BadPage`] if the block is not allocated as given (see
    /// [`free_pages_raw`](Self::free_pages_raw)), which cannot happen for a
    /// block this allocator returned and nobody freed through the raw
    /// interface.
    #[inline]
    pub fn free_pages(&mut self, block: PageBlock) -> Result<(), BadPage> {
        let (pfn, order) = block.into_raw();
        self.free_pages_raw(pfn, order)
    }

    /// Returns the block of `1 << order` pages at `pfn`, as Linux's
    /// `__free_pages(page, order)` does with an untyped pair.
    ///
    /// An order-0 page goes to the per-cpu list when enabled; the list
    /// returns `batch` pages once it holds more than `high`. Anything else is
    /// merged into the free lists by `free_one_page()`.
    ///
    /// # Errors
    /// A [`BadPage`], with nothing changed, when: `pfn` is beyond `mem_map`
    /// (`OutOfRange`); `order > MAX_PAGE_ORDER` (`OrderTooLarge`); `pfn` is
    /// not a multiple of `1 << order` (`Misaligned`); the page is reserved
    /// (`Reserved`), free already (`DoubleFree`, `OnPcpList`), not the head of
    /// an allocated block (`NotAllocated`), still marked by the slab
    /// allocator (`InUse`), still mapped into user space (`Mapped`: its map
    /// count is not 0), or was allocated with another order (`WrongOrder`).
    ///
    /// The fast path, inlined into the caller: an order-0 page whose
    /// descriptor is exactly an allocated order-0 head (the whole free check
    /// in one load and one masked compare, Linux `free_page_is_bad()`) is
    /// pushed on its zone's per-cpu stack. Everything else, including every
    /// refused free, goes through `free_pages_slow`.
    #[inline]
    pub fn free_pages_raw(&mut self, pfn: Pfn, order: u8) -> Result<(), BadPage> {
        let pfn = pfn.0;
        if order == 0
            && self.pcp_enabled
            && let Some(page) = self.mem_map.get(pfn as usize)
            && page.is(PageFlags::HEAD, 0)
        {
            let zone = page.zone();
            self.vmstat.pgfree += 1;
            self.free_unref_page(zone, pfn);
            return Ok(());
        }
        self.free_pages_slow(pfn, order)
    }

    /// Every free the fast path of [`free_pages_raw`](Self::free_pages_raw)
    /// does not take: checked, then freed.
    #[inline(never)]
    fn free_pages_slow(&mut self, pfn: u32, order: u8) -> Result<(), BadPage> {
        let zone = self.free_pages_check(pfn, order)?;
        self.free_checked(pfn, order, zone);
        Ok(())
    }

    /// Validates a free without changing anything (Linux
    /// `free_pages_check()` and the `VM_BUG_ON`s around it).
    ///
    /// The fast path accepts exactly what the checks below accept (in
    /// range, order at most `MAX_PAGE_ORDER`, aligned, state exactly
    /// `PG_head` with this order) with one descriptor read; anything else
    /// goes to [`free_pages_check_slow`](Self::free_pages_check_slow), which
    /// names the reason. Returns the block's zone, decoded from the
    /// descriptor the check read.
    #[inline]
    fn free_pages_check(&self, pfn: u32, order: u8) -> Result<ZoneType, BadPage> {
        if let Some(page) = self.mem_map.get(pfn as usize)
            && order <= MAX_PAGE_ORDER
            && pfn.is_multiple_of(1 << order)
            && page.is(PageFlags::HEAD, order)
        {
            return Ok(page.zone());
        }
        self.free_pages_check_slow(pfn, order)
    }

    /// Every check of a free, one by one, in the order that picks the
    /// reported reason.
    #[cold]
    #[inline(never)]
    fn free_pages_check_slow(&self, pfn: u32, order: u8) -> Result<ZoneType, BadPage> {
        let bad = |reason| BadPage {
            pfn: Pfn(pfn),
            order,
            flags: self.mem_map.get(pfn as usize).map_or(0, |p| p.raw()),
            reason,
        };
        let Some(page) = self.mem_map.get(pfn as usize) else {
            return Err(bad(BadPageReason::OutOfRange {
                max_pfn: self.max_pfn(),
            }));
        };
        if order > MAX_PAGE_ORDER {
            return Err(bad(BadPageReason::OrderTooLarge));
        }
        if !pfn.is_multiple_of(1 << order) {
            return Err(bad(BadPageReason::Misaligned));
        }
        let flags = page.flags();
        if flags.contains(PageFlags::RESERVED) {
            return Err(bad(BadPageReason::Reserved));
        }
        if flags.contains(PageFlags::BUDDY) {
            return Err(bad(BadPageReason::DoubleFree));
        }
        if flags.contains(PageFlags::PCP) {
            return Err(bad(BadPageReason::OnPcpList));
        }
        if !flags.contains(PageFlags::HEAD) {
            return Err(bad(BadPageReason::NotAllocated));
        }
        if page.page_use() != PageUse::None {
            return Err(bad(BadPageReason::InUse {
                page_use: page.page_use(),
            }));
        }
        if page.mapcount() != 0 {
            return Err(bad(BadPageReason::Mapped {
                mapcount: page.mapcount(),
            }));
        }
        if page.order() != order {
            return Err(bad(BadPageReason::WrongOrder {
                expected: page.order(),
            }));
        }
        Ok(page.zone())
    }

    /// Marks the `nr_pages` pages from `pfn` as used by the slab allocator
    /// (or clears the mark with [`PageUse::None`]); `kfree()` reads the mark
    /// back with [`page`](Self::page) (Linux `__folio_set_slab()` and
    /// `slab->slab_cache`). The pages must belong to a block the caller
    /// allocated; a head that is still marked cannot be freed
    /// ([`BadPageReason::InUse`]).
    ///
    /// # Panics
    /// If the range goes beyond `mem_map`, or the first page is not the head
    /// of an allocated block.
    pub fn set_page_use(&mut self, pfn: Pfn, nr_pages: u32, page_use: PageUse) {
        let pages = &mut self.mem_map[pfn.0 as usize..(pfn + nr_pages).0 as usize];
        assert!(
            pages[0].has(PageFlags::HEAD),
            "set_page_use: pfn {pfn:#x} is not the head of an allocated block"
        );
        for page in pages {
            page.set_page_use(page_use);
        }
    }

    /// Frees a block of `zone` that [`free_pages_check`](Self::free_pages_check)
    /// accepted: an order-0 page onto the per-cpu stack (inlined), anything
    /// else through [`free_to_buddy`](Self::free_to_buddy).
    #[inline]
    fn free_checked(&mut self, pfn: u32, order: u8, zone: ZoneType) {
        self.vmstat.pgfree += 1 << order;
        if order == 0 && self.pcp_enabled {
            self.free_unref_page(zone, pfn);
        } else {
            self.free_to_buddy(zone, pfn, order);
        }
    }

    /// Clears the head's state and merges the block into the free lists.
    #[inline]
    fn free_to_buddy(&mut self, zone: ZoneType, pfn: u32, order: u8) {
        self.mem_map[pfn as usize] = Page::new(zone, PageFlags::empty());
        self.free_one_page(zone, pfn, order, false);
    }

    /// Whether `pfn` heads a free block of `order` in `zone`, so that a block
    /// of the same order next to it may merge with it (Linux
    /// `page_is_buddy()`). A reserved page, a hole, an allocated page, a
    /// block of another order or a page of another zone is not a buddy.
    #[inline]
    fn page_is_buddy(&self, pfn: u32, order: u8, zone: ZoneType) -> bool {
        is_buddy(self.mem_map, pfn, order, zone)
    }

    /// Puts the block of `order` at `pfn` on the free lists, merging it with
    /// its buddies (Linux `__free_one_page()`).
    ///
    /// Basic algorithm: while `order < MAX_PAGE_ORDER`, look at the buddy
    /// `pfn ^ (1 << order)`. If it heads a free block of the same order in
    /// the same zone, take it off its list and continue with the combined
    /// block, `pfn & !(1 << order)`, one order up. Otherwise, or at the top
    /// order, stop and put the block on `free_area[order]`: at the head
    /// (`to_tail` false; recently freed, cache-hot pages are reused first) or
    /// at the tail (the hand-off). A buddy that is reserved, allocated, split
    /// into smaller free blocks or in another zone stops the merge, so free
    /// blocks never cross a hole, a reserved page or a zone boundary.
    ///
    /// Example: blocks 8 (order 0), 10 (order 1) and 12 (order 2) are free
    /// and page 9 is freed: 9 ^ 1 = 8 is free → block 8, order 1; 8 ^ 2 = 10
    /// is free → block 8, order 2; 8 ^ 4 = 12 is free → block 8, order 3.
    ///
    /// `pfn`'s descriptor must be an unlinked page of `zone` with no state.
    /// Each step reads one descriptor (the buddy's) for the test; a merged
    /// buddy is unlinked and cleared. `free_pages` grows by `1 << order`
    /// once; only `nr_free` changes per step.
    #[inline(always)]
    fn free_one_page(&mut self, zone: ZoneType, pfn: u32, order: u8, to_tail: bool) {
        let mem_map = &mut *self.mem_map;
        let z = &mut self.zones[zone.index()];
        z.free_pages += 1 << order;
        let (mut pfn, mut order) = (pfn, order);
        while order < MAX_PAGE_ORDER {
            let buddy = buddy_pfn(pfn, order);
            let Some(&page) = mem_map.get(buddy as usize) else {
                break;
            };
            if !page.is_free_head(zone, order) {
                break;
            }
            z.del_read_from_free_area(mem_map, buddy, page, order);
            mem_map[buddy as usize] = Page::new(zone, PageFlags::empty());
            pfn = combined_pfn(pfn, order);
            order += 1;
        }
        // Marks `pfn` as the head of a free block of `order` and lists it
        // (Linux `__add_to_free_list()` with `set_buddy_order()`).
        z.add_to_free_area(mem_map, pfn, order, to_tail);
    }

    /// Marks `pfn` as the head of a free block of `order` and lists it,
    /// counting its pages in `free_pages`, without merging (Linux
    /// `__add_to_free_list()` with `set_buddy_order()`). Tests use it to
    /// build states the public interface cannot reach.
    #[cfg(test)]
    fn add_to_free_list(&mut self, zone: ZoneType, pfn: u32, order: u8, to_tail: bool) {
        let z = &mut self.zones[zone.index()];
        z.add_to_free_area(self.mem_map, pfn, order, to_tail);
        z.free_pages += 1 << order;
    }

    /// Takes the free block at `pfn` off its list and clears its head (Linux
    /// `del_page_from_free_list()`), for tests.
    #[cfg(test)]
    fn del_page_from_free_list(&mut self, zone: ZoneType, pfn: u32, order: u8) {
        let z = &mut self.zones[zone.index()];
        let page = self.mem_map[pfn as usize];
        z.del_read_from_free_area(self.mem_map, pfn, page, order);
        z.free_pages -= 1 << order;
        self.mem_map[pfn as usize] = Page::new(zone, PageFlags::empty());
    }

    /// Allocates `1 << order` lowmem pages and returns the kernel virtual
    /// address `PAGE_OFFSET + (pfn << PAGE_SHIFT)` of the first (Linux
    /// `__get_free_pages()`).
    ///
    /// Example: pfn 16 → `0xC000_0000 + 0x1_0000 = 0xC001_0000`.
    ///
    /// `__GFP_HIGHMEM` is ignored (HighMem pages have no permanent address;
    /// Linux strips the flag the same way), so the page comes from lowmem.
    /// Returns `None` when the allocation fails (with a warning unless
    /// `__GFP_NOWARN`, as [`alloc_pages`](Self::alloc_pages)).
    pub fn get_free_pages(&mut self, gfp: Gfp, order: u8) -> Option<VirtAddr> {
        let (pfn, _) = self
            .alloc_pages(gfp.difference(Gfp::HIGHMEM), order)?
            .into_raw();
        // pfn < max_low_pfn <= 229376, so this stays below 4 GiB.
        Some(VirtAddr(PAGE_OFFSET + pfn.phys().as_u32()))
    }

    /// Frees what [`get_free_pages`](Self::get_free_pages) returned (Linux
    /// `free_pages()`); `va` 0 does nothing, as in Linux.
    ///
    /// # Errors
    /// `BadVirtAddr` if `va` is not page aligned or not in the direct map of
    /// low memory, else as [`free_pages_raw`](Self::free_pages_raw).
    pub fn free_pages_va(&mut self, va: VirtAddr, order: u8) -> Result<(), BadPage> {
        if va.0 == 0 {
            return Ok(());
        }
        let pfn = Pfn(va.0.wrapping_sub(PAGE_OFFSET) >> PAGE_SHIFT);
        if !va.is_kernel() || !va.is_page_aligned() || pfn >= self.max_low_pfn() {
            return Err(BadPage {
                pfn,
                order,
                flags: 0,
                reason: BadPageReason::BadVirtAddr { va },
            });
        }
        self.free_pages_raw(pfn, order)
    }

    /// Allocates exactly `ceil(size_bytes / 4096)` lowmem pages, returning
    /// `(first pfn, nr_pages)` (Linux `alloc_pages_exact()` → `make_alloc_exact()`).
    ///
    /// Basic algorithm: allocate a block of `get_order(size_bytes)`, split it
    /// into order-0 pages each owned separately (Linux `split_page()`), and
    /// free the pages past `nr_pages` one by one. The OSDev 12K example:
    /// 12 KiB is 3 pages, so an order-2 (16 KiB) block is taken, pages 0-2
    /// are handed out and page 3 is returned. Free the result with
    /// [`free_pages_exact`](Self::free_pages_exact) (or page by page).
    ///
    /// `__GFP_HIGHMEM` is ignored, as in Linux (the caller expects memory in
    /// the direct map). Returns `None` for 0 bytes and when the allocation
    /// fails (recorded as for [`alloc_pages`](Self::alloc_pages)).
    pub fn alloc_pages_exact(&mut self, gfp: Gfp, size_bytes: u32) -> Option<(Pfn, u32)> {
        if size_bytes == 0 {
            return None;
        }
        let nr_pages = size_bytes.div_ceil(PAGE_SIZE);
        let (pfn, order) = self
            .alloc_pages(gfp.difference(Gfp::HIGHMEM), get_order(size_bytes))?
            .into_raw();
        let pfn = pfn.0;
        self.split_page(pfn, order);
        let zone = self.mem_map[pfn as usize].zone();
        for tail in pfn + nr_pages..pfn + (1 << order) {
            self.free_checked(tail, 0, zone);
        }
        Some((Pfn(pfn), nr_pages))
    }

    /// Turns the allocated block at `pfn` into `1 << order` allocated order-0
    /// pages (Linux `split_page()`).
    fn split_page(&mut self, pfn: u32, order: u8) {
        let zt = self.mem_map[pfn as usize].zone();
        let mut page = Page::new(zt, PageFlags::HEAD);
        page.set_order(0);
        self.mem_map[pfn as usize..(pfn + (1 << order)) as usize].fill(page);
    }

    /// Frees `ceil(size_bytes / 4096)` order-0 pages from `pfn`, as returned
    /// by [`alloc_pages_exact`](Self::alloc_pages_exact) (Linux
    /// `free_pages_exact()`).
    ///
    /// # Errors
    /// The [`BadPage`] of the first page that is not an allocated order-0
    /// page; then no page is freed.
    pub fn free_pages_exact(&mut self, pfn: Pfn, size_bytes: u32) -> Result<(), BadPage> {
        let pfn = pfn.0;
        let nr_pages = size_bytes.div_ceil(PAGE_SIZE);
        for i in 0..nr_pages {
            self.free_pages_check(pfn.saturating_add(i), 0)?;
        }
        for i in 0..nr_pages {
            let zone = self.mem_map[(pfn + i) as usize].zone();
            self.free_checked(pfn + i, 0, zone);
        }
        Ok(())
    }

    /// The zone whose span holds `pfn` (which must be below `max_pfn`).
    #[inline]
    fn zone_of(&self, pfn: u32) -> &Zone {
        &self.zones[self.mem_map[pfn as usize].zone().index()]
    }

    /// The free block that contains `pfn`, as `(first pfn, order)`, if `pfn`
    /// is free in the buddy lists (per-cpu pages are not).
    pub fn free_block_containing(&self, pfn: Pfn) -> Option<(Pfn, u8)> {
        if pfn >= self.max_pfn() {
            return None;
        }
        (0..=MAX_PAGE_ORDER).find_map(|order| {
            let head = pfn.0 & !((1 << order) - 1);
            let p = self.mem_map[head as usize];
            (p.flags() == PageFlags::BUDDY && p.order() == order).then_some((Pfn(head), order))
        })
    }

    /// One past the last pfn: `mem_map.len()`.
    pub fn max_pfn(&self) -> Pfn {
        Pfn(self.mem_map.len() as u32)
    }

    /// End of low memory (after clamping): first pfn of HighMem.
    pub fn max_low_pfn(&self) -> Pfn {
        Pfn(self.max_low_pfn)
    }

    /// The descriptors.
    pub fn mem_map(&self) -> &[Page] {
        self.mem_map
    }

    /// The descriptor of `pfn`, if below `max_pfn`.
    pub fn page(&self, pfn: Pfn) -> Option<Page> {
        self.mem_map.get(pfn.0 as usize).copied()
    }

    /// The user map count of the allocated page at `pfn` (Linux
    /// `page_mapcount()`, see [`Page::mapcount`]); 0 for any other page.
    ///
    /// # Panics
    /// If `pfn` is beyond `mem_map`.
    pub fn page_mapcount(&self, pfn: Pfn) -> u32 {
        self.mem_map[pfn.0 as usize].mapcount()
    }

    /// Counts one more user page-table entry mapping the allocated page at
    /// `pfn` (a fault mapping it, or `fork()` sharing it copy-on-write) and
    /// returns the new count (Linux `page_add_anon_rmap()`/`page_dup_rmap()`).
    ///
    /// # Panics
    /// If `pfn` is beyond `mem_map`, is not an allocated head without a
    /// slab or kmalloc mark, or its count is at [`super::page::MAX_MAPCOUNT`].
    pub fn page_mapcount_inc(&mut self, pfn: Pfn) -> u32 {
        self.mem_map[pfn.0 as usize].inc_mapcount()
    }

    /// Counts one user page-table entry fewer for the page at `pfn` and
    /// returns the new count (Linux `page_remove_rmap()`); at 0 the caller
    /// frees the page, which the free path refuses before
    /// ([`BadPageReason::Mapped`]).
    ///
    /// # Panics
    /// As [`page_mapcount_inc`](Self::page_mapcount_inc), and if the count
    /// is 0 already.
    pub fn page_mapcount_dec(&mut self, pfn: Pfn) -> u32 {
        self.mem_map[pfn.0 as usize].dec_mapcount()
    }

    /// One zone.
    pub fn zone(&self, zone: ZoneType) -> &Zone {
        &self.zones[zone.index()]
    }

    /// All zones, DMA first.
    pub fn zones(&self) -> &[Zone; MAX_NR_ZONES] {
        &self.zones
    }

    /// Pages on the buddy free lists of all zones (vmstat `nr_free_pages`;
    /// per-cpu pages are not counted, as in Linux).
    pub fn nr_free_pages(&self) -> u32 {
        self.zones.iter().map(|z| z.free_pages).sum()
    }

    /// `min_free_kbytes` as computed by the last
    /// [`setup_watermarks`](Self::setup_watermarks) (0 before).
    pub fn min_free_kbytes(&self) -> u64 {
        self.min_free_kbytes
    }

    /// The event counters.
    pub fn counters(&self) -> &VmStat {
        &self.vmstat
    }

    /// The last allocation failure not marked `__GFP_NOWARN`, if any.
    pub fn last_warning(&self) -> Option<&AllocFailure> {
        self.last_warning.as_ref()
    }

    /// Takes the pending warning, for the kernel to log once.
    pub fn take_warning(&mut self) -> Option<AllocFailure> {
        self.last_warning.take()
    }
}
