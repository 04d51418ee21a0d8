//! `mem_map`: one 8-byte descriptor per page frame (Linux `struct page`).
//!
//! Where it sits: after memblock knows how much RAM there is, the kernel
//! allocates `max_pfn` descriptors from memblock and hands the slice to the
//! buddy allocator ([`super::buddy::BuddyAllocator::new`]), which owns it from
//! then on. Every page starts [`PageFlags::RESERVED`]; the hand-off releases
//! the free ones.
//!
//! The buddy allocator's free lists live *in the descriptors*, doubly linked
//! through pfn indices (SerenityOS `PhysicalZone` style), never inside the
//! free pages themselves: pages above the direct map (HighMem) have no kernel
//! virtual address and are never dereferenced, and a stray write into a free
//! page cannot corrupt the allocator.
//!
//! Main invariant: a descriptor that is not on a list has both links
//! [`NIL_PFN`]; [`PageList`] is the only code that sets links. One exception,
//! a union as in Linux's `struct page`: an allocated head
//! ([`PageFlags::HEAD`]) is on no list, so its *next* field holds its user
//! map count instead ([`Page::mapcount`], Linux `_mapcount`), stored as
//! `mapcount - 1` in 24 bits so that 0 reads as [`NIL_PFN`] (all ones,
//! Linux's `-1`). Its *prev* field stays [`NIL_PFN`].
//!
//! # References
//! - Linux: `include/linux/mm_types.h` (`struct page`), `include/linux/list.h`.
//! - SerenityOS: `Kernel/Memory/PhysicalZone.cpp` (free lists as indices).

#![forbid(unsafe_code)]

use super::zone::ZoneType;
use crate::addr::Pfn;
use bitflags::bitflags;
use core::fmt;

/// Value: 24. Bits of a pfn link in a descriptor: enough for every frame
/// below 64 GiB but one (PAE's 36-bit physical addresses, 16 Mi frames of 4
/// KiB).
pub const PFN_LINK_BITS: u32 = 24;

/// Value: 0xFF_FFFF. The "no page" link: all ones, the largest number a link
/// holds. No real page has it: pfns are below [`MAX_PFN_LIMIT`], which is
/// this same number, so the largest pfn a descriptor can link is
/// `0xFF_FFFE` (the frame at `0xf_ffff_e000`).
pub const NIL_PFN: u32 = (1 << PFN_LINK_BITS) - 1;

/// Value: 0xFF_FFFF (16 777 215). The largest user map count an allocated
/// page holds ([`Page::mapcount`]): its next-link field stores `mapcount -
/// 1`, and the all-ones value [`NIL_PFN`] means 0. A page is mapped once per
/// page table that maps it (per process after `fork()`), so the limit is far
/// above any process limit.
pub const MAX_MAPCOUNT: u32 = NIL_PFN;

/// Value: 0xFF_FFFF (16 Mi - 1 pages: 64 GiB - 4 KiB). Pfns are below this;
/// `mem_map` never has more entries. Under PAE (36-bit physical addresses,
/// 64 GiB) only the last frame below 64 GiB is lost to [`NIL_PFN`]; without
/// PAE pfns stay below 0x10_0000 (4 GiB) anyway.
pub const MAX_PFN_LIMIT: Pfn = Pfn(NIL_PFN);

const NEXT_SHIFT: u32 = 0;
const PREV_SHIFT: u32 = PFN_LINK_BITS;
const ORDER_SHIFT: u32 = 2 * PFN_LINK_BITS;
const ZONE_SHIFT: u32 = ORDER_SHIFT + 4;
const FLAGS_SHIFT: u32 = ZONE_SHIFT + 2;
const USE_SHIFT: u32 = FLAGS_SHIFT + 4;
const LINK_MASK: u64 = NIL_PFN as u64;
const ORDER_MASK: u64 = 0xF;
const ZONE_MASK: u64 = 0x3;
const FLAGS_MASK: u64 = 0xF;
const USE_MASK: u64 = 0x3F;

// The fields fill the 64 bits exactly: links 2 * 24, order 4, zone 2,
// flags 4, use 6.
const _: () = assert!(USE_SHIFT + USE_MASK.count_ones() == 64);
const _: () = assert!(ORDER_SHIFT == 48 && ZONE_SHIFT == 52 && FLAGS_SHIFT == 54);
// Every pfn of 64 GiB but the last fits a link, and NIL is none of them.
const _: () = assert!(MAX_PFN_LIMIT.0 as u64 == (1u64 << (36 - 12)) - 1);
// A slab cache index below 32 fits the use field as `1 | cache << 1`.
const _: () = assert!((1 | (31 << 1)) as u64 == USE_MASK);

bitflags! {
    /// The page state bits of a descriptor (Linux `PG_*` flags and page
    /// types). At most one is set: a page is reserved, a free block head, an
    /// allocated block head, on a per-cpu list, or none of these (a page
    /// *inside* a free or allocated block).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageFlags: u8 {
        /// Head of a free block on `free_area[order]` (Linux `PG_buddy`, a
        /// page type since v5.x). The descriptor's order is the block's.
        const BUDDY = 1 << 0;
        /// Never given to the buddy allocator: a hole in physical memory or
        /// memblock-reserved (Linux `PG_reserved`).
        const RESERVED = 1 << 1;
        /// Head of an allocated block; its order is stored so that a free of
        /// the wrong order is caught (Linux `PG_head`, used here for every
        /// order including 0).
        const HEAD = 1 << 2;
        /// An order-0 page on a zone's per-cpu list (Linux marks these with
        /// `page->pcp_list`; a flag makes the double-free check cheap).
        const PCP = 1 << 3;
    }
}

/// Lower-case names as Linux `%pGp` prints them, joined by `|`; empty for no
/// flags.
impl fmt::Display for PageFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(PageFlags, &str); 4] = [
            (PageFlags::BUDDY, "buddy"),
            (PageFlags::RESERVED, "reserved"),
            (PageFlags::HEAD, "head"),
            (PageFlags::PCP, "pcp"),
        ];
        let mut sep = "";
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        Ok(())
    }
}

/// What an allocated page is used for above the buddy allocator: the slab
/// allocator's mark that lets `kfree(ptr)` find the owner of any address
/// (Linux: the `PGTY_slab` page type with `slab->slab_cache`, and the
/// large-kmalloc folio flag).
///
/// Every page of a slab carries its cache (not only the head), so that the
/// slab of an object is found from the object's own page: the slab is the
/// naturally aligned block of `1 << order` pages around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageUse {
    /// Not marked: free, or owned by whoever called `alloc_pages()`.
    None,
    /// A page of a slab of kmalloc cache number `cache` (below 32).
    Slab {
        /// Index of the cache in the kmalloc cache table.
        cache: u8,
    },
    /// The head page of a kmalloc allocation too large for the caches,
    /// served as whole pages (the order is the block's, in the descriptor).
    LargeKmalloc,
}

/// One page frame's descriptor, an entry of `mem_map` (Linux `struct page`).
///
/// ```text
///  63   58 57   54 53 52 51   48 47              24 23               0
/// +-------+-------+-----+-------+------------------+------------------+
/// |  use  | flags |zone | order |  prev pfn (24)   |  next pfn (24)   |
/// |  (6)  |  (4)  | (2) |  (4)  |                  |                  |
/// +-------+-------+-----+-------+------------------+------------------+
///   use:   0 none, 1 | cache << 1 slab page, 2 large kmalloc (PageUse)
///   flags: bit 54 BUDDY, 55 RESERVED, 56 HEAD, 57 PCP   (PageFlags << 54)
///   zone:  0 DMA, 1 Normal, 2 HighMem (3 is never stored)
///   links: NIL_PFN = 0xFF_FFFF when not on a list
///   next of an allocated HEAD: mapcount - 1 (24 bits; NIL = mapcount 0)
/// ```
///
/// 24-bit links name every frame below 64 GiB but the last (PAE's reach:
/// 16 Mi frames, see [`MAX_PFN_LIMIT`]), and the descriptor stays 8 bytes:
/// `mem_map` lives in low memory, 16 MiB of it at 8 GiB of RAM and 128 MiB
/// at 64 GiB (Linux's 32-byte `struct page` needs 512 MiB there, over half of
/// the 896 MiB of low memory).
///
/// Example: a reserved Normal page off any list is
/// `0x0080_0000_0000_0000 | 0x0010_0000_0000_0000 | NIL << 24 | NIL` =
/// `0x0090_ffff_ffff_ffff` (RESERVED = bit 55, zone 1 = bit 52, both links
/// all ones).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Page(u64);

const _: () = assert!(core::mem::size_of::<Page>() <= 8);

impl Page {
    /// A descriptor of `zone` with `flags`, order 0 and no links.
    #[inline]
    pub const fn new(zone: ZoneType, flags: PageFlags) -> Page {
        Page(
            LINK_MASK << NEXT_SHIFT
                | LINK_MASK << PREV_SHIFT
                | (zone as u64) << ZONE_SHIFT
                | (flags.bits() as u64) << FLAGS_SHIFT,
        )
    }

    /// The initial state of every page: [`PageFlags::RESERVED`] in `zone`.
    pub const fn reserved(zone: ZoneType) -> Page {
        Page::new(zone, PageFlags::RESERVED)
    }

    /// The raw 64-bit descriptor (for diagnostics such as
    /// [`super::buddy::BadPage`]).
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A descriptor from its raw bits, for decoding diagnostics. (Zone bits 3
    /// decode as HighMem.)
    pub const fn from_raw(raw: u64) -> Page {
        Page(raw)
    }

    /// The page state bits.
    #[inline]
    pub const fn flags(self) -> PageFlags {
        PageFlags::from_bits_truncate(((self.0 >> FLAGS_SHIFT) & FLAGS_MASK) as u8)
    }

    /// Replaces the page state bits.
    #[inline]
    pub fn set_flags(&mut self, flags: PageFlags) {
        self.0 = (self.0 & !(FLAGS_MASK << FLAGS_SHIFT)) | (flags.bits() as u64) << FLAGS_SHIFT;
    }

    /// Whether every bit of `flags` is set.
    #[inline]
    pub const fn has(self, flags: PageFlags) -> bool {
        self.flags().contains(flags)
    }

    /// The block order: meaningful for [`PageFlags::BUDDY`] and
    /// [`PageFlags::HEAD`] pages, 0 otherwise.
    #[inline]
    pub const fn order(self) -> u8 {
        ((self.0 >> ORDER_SHIFT) & ORDER_MASK) as u8
    }

    /// Stores `order` (log2 of the block size in pages, at most 15).
    ///
    /// # Panics
    /// If `order` does not fit in 4 bits.
    #[inline]
    pub fn set_order(&mut self, order: u8) {
        assert!(u64::from(order) <= ORDER_MASK, "set_order: order {order}");
        self.0 = (self.0 & !(ORDER_MASK << ORDER_SHIFT)) | u64::from(order) << ORDER_SHIFT;
    }

    /// What the page is used for above the buddy allocator.
    #[inline]
    pub const fn page_use(self) -> PageUse {
        let bits = (self.0 >> USE_SHIFT) & USE_MASK;
        if bits & 1 != 0 {
            PageUse::Slab {
                cache: (bits >> 1) as u8,
            }
        } else if bits == 0 {
            PageUse::None
        } else {
            PageUse::LargeKmalloc
        }
    }

    /// Records what the page is used for (the buddy allocator refuses to
    /// free a block whose head is still marked).
    ///
    /// # Panics
    /// If a slab cache index is 32 or more.
    #[inline]
    pub fn set_page_use(&mut self, page_use: PageUse) {
        let bits = match page_use {
            PageUse::None => 0,
            PageUse::Slab { cache } => {
                assert!(cache < 32, "set_page_use: cache index {cache}");
                1 | u64::from(cache) << 1
            }
            PageUse::LargeKmalloc => 2,
        };
        self.0 = (self.0 & !(USE_MASK << USE_SHIFT)) | bits << USE_SHIFT;
    }

    /// The zone this page frame belongs to (fixed at `mem_map` creation).
    #[inline]
    pub const fn zone(self) -> ZoneType {
        // Zone bits 3 are never stored; `min` folds them into HighMem with
        // one compare, where a three-way match costs a chain of them.
        let bits = (self.0 >> ZONE_SHIFT) & ZONE_MASK;
        let bits = if bits > 2 { 2 } else { bits };
        match bits {
            0 => ZoneType::Dma,
            1 => ZoneType::Normal,
            _ => ZoneType::HighMem,
        }
    }

    /// The next page on the list this page is on, if any.
    #[inline]
    pub const fn next(self) -> Option<Pfn> {
        link(self.0 >> NEXT_SHIFT)
    }

    /// The previous page on the list this page is on, if any.
    #[inline]
    pub const fn prev(self) -> Option<Pfn> {
        link(self.0 >> PREV_SHIFT)
    }

    /// A descriptor of `zone` with `flags`, `order` (at most
    /// [`ORDER_MASK`], masked) and no links: one store instead of
    /// `new` + `set_order`.
    #[inline]
    pub(crate) const fn with_order(zone: ZoneType, flags: PageFlags, order: u8) -> Page {
        Page(Page::new(zone, flags).0 | (order as u64 & ORDER_MASK) << ORDER_SHIFT)
    }

    /// Whether the state bits are exactly `flags`, the order is `order`,
    /// there is no use mark and the next field is [`NIL_PFN`] (for an
    /// allocated head: map count 0), whatever the zone and the prev link:
    /// one masked compare.
    #[inline]
    pub(crate) const fn is(self, flags: PageFlags, order: u8) -> bool {
        // The use bits are compared too (with 0): a marked page is not plain;
        // so is the next field: a mapped page is not plain either.
        const MASK: u64 = USE_MASK << USE_SHIFT
            | FLAGS_MASK << FLAGS_SHIFT
            | ORDER_MASK << ORDER_SHIFT
            | LINK_MASK << NEXT_SHIFT;
        self.0 & MASK
            == ((flags.bits() as u64) << FLAGS_SHIFT
                | (order as u64) << ORDER_SHIFT
                | LINK_MASK << NEXT_SHIFT)
    }

    /// How many user page-table entries map this page (Linux
    /// `page_mapcount()`): 0 for a page that is not an allocated head
    /// ([`PageFlags::HEAD`]), whose next field is a list link or unused.
    ///
    /// Stored in the next-link field of the allocated head as `mapcount -
    /// 1` modulo 2^24 (Linux keeps `_mapcount` at `-1` for an unmapped page,
    /// in a union with the list links): 0 is the all-ones [`NIL_PFN`], so a
    /// freshly allocated page (both links NIL) has map count 0 with no
    /// extra store. Limit: [`MAX_MAPCOUNT`].
    #[inline]
    pub const fn mapcount(self) -> u32 {
        if !self.flags().contains(PageFlags::HEAD) {
            return 0;
        }
        (self.next_raw().wrapping_add(1)) & NIL_PFN
    }

    /// Stores the user map count of an allocated head (see
    /// [`mapcount`](Self::mapcount)).
    ///
    /// # Panics
    /// If the page is not exactly an allocated head ([`PageFlags::HEAD`])
    /// without a slab or kmalloc mark (Linux: `_mapcount` shares its word with
    /// the slab's page type), or `mapcount` is above [`MAX_MAPCOUNT`].
    #[inline]
    pub fn set_mapcount(&mut self, mapcount: u32) {
        assert!(
            self.flags() == PageFlags::HEAD && matches!(self.page_use(), PageUse::None),
            "set_mapcount: {self:?} is not an allocated user page"
        );
        assert!(
            mapcount <= MAX_MAPCOUNT,
            "set_mapcount: map count {mapcount} above {MAX_MAPCOUNT}"
        );
        self.0 = (self.0 & !(LINK_MASK << NEXT_SHIFT))
            | u64::from(mapcount.wrapping_sub(1) & NIL_PFN) << NEXT_SHIFT;
    }

    /// Adds one user mapping (Linux `page_add_anon_rmap()`/`page_dup_rmap()`
    /// on `_mapcount`) and returns the new count.
    ///
    /// # Panics
    /// As [`set_mapcount`](Self::set_mapcount), and at [`MAX_MAPCOUNT`]
    /// already.
    #[inline]
    pub fn inc_mapcount(&mut self) -> u32 {
        let n = self.mapcount();
        assert!(n < MAX_MAPCOUNT, "inc_mapcount: map count overflow");
        self.set_mapcount(n + 1);
        n + 1
    }

    /// Drops one user mapping (Linux `page_remove_rmap()`) and returns the
    /// new count; the caller frees the page when it reaches 0.
    ///
    /// # Panics
    /// As [`set_mapcount`](Self::set_mapcount), and at 0 already (Linux
    /// `VM_BUG_ON_PAGE(page_mapcount(page) < 0)`).
    #[inline]
    pub fn dec_mapcount(&mut self) -> u32 {
        let n = self.mapcount();
        assert!(n > 0, "dec_mapcount: map count already 0");
        self.set_mapcount(n - 1);
        n - 1
    }

    /// Whether this heads a free block of `order` in `zone` (state exactly
    /// [`PageFlags::BUDDY`]): one masked compare (Linux `page_is_buddy()`'s
    /// descriptor test).
    #[inline]
    pub(crate) const fn is_free_head(self, zone: ZoneType, order: u8) -> bool {
        const MASK: u64 =
            FLAGS_MASK << FLAGS_SHIFT | ZONE_MASK << ZONE_SHIFT | ORDER_MASK << ORDER_SHIFT;
        self.0 & MASK == Page::with_order(zone, PageFlags::BUDDY, order).0 & MASK
    }

    /// The raw next link ([`NIL_PFN`] for none).
    #[inline]
    const fn next_raw(self) -> u32 {
        ((self.0 >> NEXT_SHIFT) & LINK_MASK) as u32
    }

    /// The raw prev link ([`NIL_PFN`] for none).
    #[inline]
    const fn prev_raw(self) -> u32 {
        ((self.0 >> PREV_SHIFT) & LINK_MASK) as u32
    }

    #[inline]
    fn set_next_raw(&mut self, pfn: u32) {
        self.set_link_raw(NEXT_SHIFT, pfn);
    }

    #[inline]
    fn set_prev_raw(&mut self, pfn: u32) {
        self.set_link_raw(PREV_SHIFT, pfn);
    }

    /// Both links in one store.
    #[inline]
    fn set_links_raw(&mut self, next: u32, prev: u32) {
        debug_assert!(
            next < MAX_PFN_LIMIT.0 || next == NIL_PFN,
            "link to pfn {next:#x}"
        );
        debug_assert!(
            prev < MAX_PFN_LIMIT.0 || prev == NIL_PFN,
            "link to pfn {prev:#x}"
        );
        const LINKS: u64 = LINK_MASK << NEXT_SHIFT | LINK_MASK << PREV_SHIFT;
        self.0 = (self.0 & !LINKS) | u64::from(next) << NEXT_SHIFT | u64::from(prev) << PREV_SHIFT;
    }

    #[inline]
    fn set_link_raw(&mut self, shift: u32, pfn: u32) {
        debug_assert!(
            pfn < MAX_PFN_LIMIT.0 || pfn == NIL_PFN,
            "link to pfn {pfn:#x}"
        );
        self.0 = (self.0 & !(LINK_MASK << shift)) | u64::from(pfn & NIL_PFN) << shift;
    }

    #[cfg(test)]
    pub(crate) fn set_next(&mut self, pfn: Option<Pfn>) {
        self.set_next_raw(pfn.map_or(NIL_PFN, |p| p.0));
    }

    #[cfg(test)]
    pub(crate) fn set_prev(&mut self, pfn: Option<Pfn>) {
        self.set_prev_raw(pfn.map_or(NIL_PFN, |p| p.0));
    }
}

#[inline]
const fn link(bits: u64) -> Option<Pfn> {
    match (bits & LINK_MASK) as u32 {
        NIL_PFN => None,
        pfn => Some(Pfn(pfn)),
    }
}

/// `Page(0x...: zone order flags next prev)`, links as pfns or `-`.
impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Page({:#018x}: {} order {} [{}] ",
            self.0,
            self.zone().name(),
            self.order(),
            self.flags()
        )?;
        if self.flags() == PageFlags::HEAD && self.next().is_some() {
            // The next field of an allocated head is its map count.
            write!(f, "mapcount {}", self.mapcount())?;
        } else {
            f.write_str("next ")?;
            fmt_link(f, self.next())?;
        }
        f.write_str(" prev ")?;
        fmt_link(f, self.prev())?;
        match self.page_use() {
            PageUse::None => {}
            PageUse::Slab { cache } => write!(f, " slab cache {cache}")?,
            PageUse::LargeKmalloc => f.write_str(" large kmalloc")?,
        }
        f.write_str(")")
    }
}

fn fmt_link(f: &mut fmt::Formatter<'_>, pfn: Option<Pfn>) -> fmt::Result {
    match pfn {
        Some(p) => write!(f, "{p:#x}"),
        None => f.write_str("-"),
    }
}

/// A doubly linked list of pages threaded through their descriptors (Linux
/// `struct list_head`, but the links are pfns into `mem_map`).
///
/// The list stores only its ends ([`NIL_PFN`] when empty); the links live in
/// the [`Page`]s. Every method takes the `mem_map` the pfns index. A page is
/// on at most one list at a time. The buddy allocator uses the
/// crate-internal methods, which take the raw index and write each
/// descriptor once; the [`Pfn`] ones (`push_front`, `remove`, ...) exist for
/// tests, which build and inspect lists directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageList {
    head: u32,
    tail: u32,
}

impl Default for PageList {
    fn default() -> PageList {
        PageList::new()
    }
}

impl PageList {
    /// An empty list.
    pub const fn new() -> PageList {
        PageList {
            head: NIL_PFN,
            tail: NIL_PFN,
        }
    }

    /// The first page, if any.
    #[inline]
    pub const fn head(&self) -> Option<Pfn> {
        link(self.head as u64)
    }

    /// The last page, if any.
    #[inline]
    pub const fn tail(&self) -> Option<Pfn> {
        link(self.tail as u64)
    }

    /// Whether the list has no pages.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.head == NIL_PFN
    }

    /// Inserts `pfn`, which must not be on any list, at the front (Linux
    /// `list_add()`).
    #[cfg(test)]
    pub fn push_front(&mut self, mem_map: &mut [Page], pfn: Pfn) {
        let (pfn, head) = (pfn.0, self.head);
        let page = &mut mem_map[pfn as usize];
        debug_assert!(page.next().is_none() && page.prev().is_none());
        page.set_links_raw(head, NIL_PFN);
        if head == NIL_PFN {
            self.tail = pfn;
        } else {
            mem_map[head as usize].set_prev_raw(pfn);
        }
        self.head = pfn;
    }

    /// Inserts `pfn`, which must not be on any list, at the back (Linux
    /// `list_add_tail()`).
    #[cfg(test)]
    pub fn push_back(&mut self, mem_map: &mut [Page], pfn: Pfn) {
        let (pfn, tail) = (pfn.0, self.tail);
        let page = &mut mem_map[pfn as usize];
        debug_assert!(page.next().is_none() && page.prev().is_none());
        page.set_links_raw(NIL_PFN, tail);
        if tail == NIL_PFN {
            self.head = pfn;
        } else {
            mem_map[tail as usize].set_next_raw(pfn);
        }
        self.tail = pfn;
    }

    /// Unlinks `pfn`, which must be on this list, and resets its links to
    /// [`NIL_PFN`] (Linux `list_del()`).
    #[cfg(test)]
    pub fn remove(&mut self, mem_map: &mut [Page], pfn: Pfn) {
        let pfn = pfn.0;
        let page = &mut mem_map[pfn as usize];
        let (prev, next) = (page.prev_raw(), page.next_raw());
        page.set_links_raw(NIL_PFN, NIL_PFN);
        if prev == NIL_PFN {
            debug_assert_eq!(self.head, pfn, "remove: not on this list");
            self.head = next;
        } else {
            mem_map[prev as usize].set_next_raw(next);
        }
        if next == NIL_PFN {
            self.tail = prev;
        } else {
            mem_map[next as usize].set_prev_raw(prev);
        }
    }

    /// Removes and returns the first page, resetting its links to
    /// [`NIL_PFN`]. The same as [`remove`](Self::remove) of the head, with
    /// the head's `prev` (always none) not tested.
    #[cfg(test)]
    pub fn pop_front(&mut self, mem_map: &mut [Page]) -> Option<Pfn> {
        let pfn = self.head()?.0;
        let page = &mut mem_map[pfn as usize];
        debug_assert!(page.prev().is_none(), "pop_front: head has a prev");
        let next = page.next_raw();
        page.set_links_raw(NIL_PFN, NIL_PFN);
        self.head = next;
        if next == NIL_PFN {
            self.tail = NIL_PFN;
        } else {
            mem_map[next as usize].set_prev_raw(NIL_PFN);
        }
        Some(Pfn(pfn))
    }

    /// Removes and returns the last page.
    #[cfg(test)]
    pub fn pop_back(&mut self, mem_map: &mut [Page]) -> Option<Pfn> {
        let pfn = self.tail()?;
        self.remove(mem_map, pfn);
        Some(pfn)
    }

    /// Stores `page` at `pfn` with its links set and inserts it at the
    /// front: the new descriptor is written once, whatever `page`'s links
    /// were. `pfn` must not be on any list.
    #[inline]
    pub(crate) fn push_front_page(&mut self, mem_map: &mut [Page], pfn: u32, mut page: Page) {
        let head = self.head;
        page.set_links_raw(head, NIL_PFN);
        mem_map[pfn as usize] = page;
        if head == NIL_PFN {
            self.tail = pfn;
        } else {
            mem_map[head as usize].set_prev_raw(pfn);
        }
        self.head = pfn;
    }

    /// Stores `page` at `pfn` with its links set and inserts it at the back,
    /// as [`push_front_page`](Self::push_front_page).
    #[inline]
    pub(crate) fn push_back_page(&mut self, mem_map: &mut [Page], pfn: u32, mut page: Page) {
        let tail = self.tail;
        page.set_links_raw(NIL_PFN, tail);
        mem_map[pfn as usize] = page;
        if tail == NIL_PFN {
            self.head = pfn;
        } else {
            mem_map[tail as usize].set_next_raw(pfn);
        }
        self.tail = pfn;
    }

    /// Unlinks `pfn`, which must be on this list, from its neighbours,
    /// given its descriptor `page` that the caller has just read (no second
    /// load), without writing that descriptor: the caller overwrites it
    /// whole right after (its links are stale until then).
    #[inline]
    pub(crate) fn unlink_read(&mut self, mem_map: &mut [Page], pfn: u32, page: Page) {
        let (prev, next) = (page.prev_raw(), page.next_raw());
        if prev == NIL_PFN {
            debug_assert_eq!(self.head, pfn, "unlink: not on this list");
            self.head = next;
        } else {
            mem_map[prev as usize].set_next_raw(next);
        }
        if next == NIL_PFN {
            self.tail = prev;
        } else {
            mem_map[next as usize].set_prev_raw(prev);
        }
    }

    /// Removes and returns the first page without writing its descriptor,
    /// as [`unlink`](Self::unlink): the caller overwrites it whole.
    #[inline]
    pub(crate) fn take_front(&mut self, mem_map: &mut [Page]) -> Option<u32> {
        let pfn = self.head()?.0;
        let next = mem_map[pfn as usize].next_raw();
        self.head = next;
        if next == NIL_PFN {
            self.tail = NIL_PFN;
        } else {
            mem_map[next as usize].set_prev_raw(NIL_PFN);
        }
        Some(pfn)
    }

    /// The pfns from front to back. The walk trusts the links: the buddy
    /// allocator's `check()` walks lists by hand, with a bound, instead.
    pub fn iter<'m>(&self, mem_map: &'m [Page]) -> impl Iterator<Item = Pfn> + 'm {
        core::iter::successors(self.head(), move |&pfn| mem_map[pfn.0 as usize].next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_descriptor_fits_in_eight_bytes() {
        assert_eq!(core::mem::size_of::<Page>(), 8);
    }

    #[test]
    fn reserved_normal_page_has_the_documented_bits() {
        let p = Page::reserved(ZoneType::Normal);
        assert_eq!(p.raw(), 0x0090_ffff_ffff_ffff);
        assert_eq!(p.zone(), ZoneType::Normal);
        assert_eq!(p.flags(), PageFlags::RESERVED);
        assert_eq!((p.order(), p.next(), p.prev()), (0, None, None));
    }

    #[test]
    fn fields_are_independent() {
        let mut p = Page::new(ZoneType::HighMem, PageFlags::empty());
        p.set_order(10);
        p.set_flags(PageFlags::BUDDY);
        p.set_next(Some(Pfn(0xF_FFFF)));
        p.set_prev(Some(Pfn(3)));
        assert_eq!(p.zone(), ZoneType::HighMem);
        assert_eq!(p.order(), 10);
        assert_eq!(p.flags(), PageFlags::BUDDY);
        assert_eq!(p.next(), Some(Pfn(0xF_FFFF)));
        assert_eq!(p.prev(), Some(Pfn(3)));
        p.set_next(None);
        assert_eq!((p.next(), p.prev()), (None, Some(Pfn(3))));
        // BUDDY bit 54, zone 2 at bit 52, order 10 at bit 48, prev 3 at bit
        // 24, next all ones.
        assert_eq!(
            format!("{p:?}"),
            "Page(0x006a000003ffffff: HighMem order 10 [buddy] next - prev 0x3)"
        );
    }

    #[test]
    fn links_reach_the_largest_pfn_below_64_gib() {
        // pfn 0xFF_FFFE: the frame at 0xf_ffff_e000, the last one a link
        // names; a 21-bit link (before PAE) would have cut it to 0x1F_FFFE.
        let last = Pfn(MAX_PFN_LIMIT.0 - 1);
        assert_eq!(last.phys().0, 0xf_ffff_e000);
        let mut p = Page::new(ZoneType::HighMem, PageFlags::BUDDY);
        p.set_order(MAX_ORDER_FOR_TEST);
        p.set_next(Some(last));
        p.set_prev(Some(Pfn(0x10_0000))); // 4 GiB
        p.set_page_use(PageUse::Slab { cache: 31 });
        assert_eq!((p.next(), p.prev()), (Some(last), Some(Pfn(0x10_0000))));
        assert_eq!(p.zone(), ZoneType::HighMem);
        assert_eq!(p.order(), MAX_ORDER_FOR_TEST);
        assert_eq!(p.flags(), PageFlags::BUDDY);
        assert_eq!(p.page_use(), PageUse::Slab { cache: 31 });
        assert_eq!(p.raw(), 0xfc6a_1000_00ff_fffe);
        // NIL is one above it, and reads as no link.
        p.set_prev(None);
        assert_eq!(p.prev(), None);
        assert_eq!(NIL_PFN, MAX_PFN_LIMIT.0);
    }

    const MAX_ORDER_FOR_TEST: u8 = 10;

    #[test]
    fn page_use_round_trips_and_leaves_the_rest_alone() {
        let base = Page::new(ZoneType::Normal, PageFlags::HEAD);
        for u in [
            PageUse::None,
            PageUse::LargeKmalloc,
            PageUse::Slab { cache: 0 },
            PageUse::Slab { cache: 1 },
            PageUse::Slab { cache: 31 },
        ] {
            let mut p = base;
            p.set_page_use(u);
            assert_eq!(p.page_use(), u);
            assert_eq!(p.raw() & !(USE_MASK << USE_SHIFT), base.raw());
            assert_eq!(p.is(PageFlags::HEAD, 0), u == PageUse::None);
        }
        let mut p = base;
        p.set_page_use(PageUse::Slab { cache: 1 });
        assert_eq!(p.raw() >> USE_SHIFT, 0b11);
    }

    #[test]
    #[should_panic(expected = "cache index 32")]
    fn a_slab_cache_index_of_32_does_not_fit() {
        Page::reserved(ZoneType::Dma).set_page_use(PageUse::Slab { cache: 32 });
    }

    #[test]
    fn mapcount_lives_in_the_next_field_of_an_allocated_head() {
        let fresh = Page::new(ZoneType::Normal, PageFlags::HEAD);
        assert_eq!(fresh.mapcount(), 0);
        let mut p = fresh;
        assert_eq!(p.inc_mapcount(), 1);
        // Stored as mapcount - 1: 1 is a next field of 0, prev untouched.
        assert_eq!(p.raw(), fresh.raw() & !LINK_MASK);
        assert_eq!(p.prev(), None);
        assert!(!p.is(PageFlags::HEAD, 0), "a mapped page is not plain");
        assert_eq!(p.inc_mapcount(), 2);
        assert_eq!(
            format!("{p:?}"),
            "Page(0x0110ffffff000001: Normal order 0 [head] mapcount 2 prev -)"
        );
        assert_eq!(p.dec_mapcount(), 1);
        assert_eq!(p.dec_mapcount(), 0);
        assert_eq!(p, fresh);
        assert!(p.is(PageFlags::HEAD, 0));
        p.set_mapcount(MAX_MAPCOUNT);
        assert_eq!(p.mapcount(), MAX_MAPCOUNT);
        assert_eq!(p.next().map(|n| n.0), Some(NIL_PFN - 1));
        // Other states read 0 whatever their links hold.
        let mut free = Page::new(ZoneType::Normal, PageFlags::BUDDY);
        free.set_next(Some(Pfn(7)));
        assert_eq!(free.mapcount(), 0);
    }

    #[test]
    #[should_panic(expected = "map count overflow")]
    fn mapcount_stops_at_its_limit() {
        let mut p = Page::new(ZoneType::Normal, PageFlags::HEAD);
        p.set_mapcount(MAX_MAPCOUNT);
        p.inc_mapcount();
    }

    #[test]
    #[should_panic(expected = "already 0")]
    fn mapcount_does_not_go_below_zero() {
        Page::new(ZoneType::Normal, PageFlags::HEAD).dec_mapcount();
    }

    #[test]
    #[should_panic(expected = "not an allocated user page")]
    fn a_free_page_has_no_mapcount_to_set() {
        Page::new(ZoneType::Normal, PageFlags::BUDDY).set_mapcount(1);
    }

    #[test]
    #[should_panic(expected = "not an allocated user page")]
    fn a_slab_page_has_no_mapcount() {
        let mut p = Page::new(ZoneType::Normal, PageFlags::HEAD);
        p.set_page_use(PageUse::Slab { cache: 3 });
        p.set_mapcount(1);
    }

    #[test]
    fn flags_print_like_linux_pgp() {
        assert_eq!(PageFlags::BUDDY.to_string(), "buddy");
        assert_eq!(
            (PageFlags::RESERVED | PageFlags::PCP).to_string(),
            "reserved|pcp"
        );
        assert_eq!(PageFlags::empty().to_string(), "");
    }

    #[test]
    fn list_push_remove_pop_keep_links_consistent() {
        let mut map = [Page::new(ZoneType::Dma, PageFlags::empty()); 8];
        let mut l = PageList::new();
        l.push_back(&mut map, Pfn(3));
        l.push_back(&mut map, Pfn(5));
        l.push_front(&mut map, Pfn(1));
        assert_eq!(l.iter(&map).collect::<Vec<_>>(), [Pfn(1), Pfn(3), Pfn(5)]);
        l.remove(&mut map, Pfn(3));
        assert_eq!(l.iter(&map).collect::<Vec<_>>(), [Pfn(1), Pfn(5)]);
        assert_eq!((map[3].next(), map[3].prev()), (None, None));
        assert_eq!(map[5].prev(), Some(Pfn(1)));
        assert_eq!(l.pop_back(&mut map), Some(Pfn(5)));
        assert_eq!(l.pop_front(&mut map), Some(Pfn(1)));
        assert!(l.is_empty());
        assert_eq!(l.tail(), None);
        assert!(map.iter().all(|p| p.next().is_none() && p.prev().is_none()));
    }
}
