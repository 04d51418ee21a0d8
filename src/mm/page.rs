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
//! [`NIL_PFN`]; [`PageList`] is the only code that sets links.
//!
//! # References
//! - Linux: `include/linux/mm_types.h` (`struct page`), `include/linux/list.h`.
//! - SerenityOS: `Kernel/Memory/PhysicalZone.cpp` (free lists as indices).

#![forbid(unsafe_code)]

use super::zone::ZoneType;
use bitflags::bitflags;
use core::fmt;

/// Value: 21. Bits of a pfn link in a descriptor.
pub const PFN_LINK_BITS: u32 = 21;

/// Value: 0x1F_FFFF. The "no page" link: beyond the largest pfn
/// ([`MAX_PFN_LIMIT`] - 1 = 0xF_FFFF), so it never names a real page.
pub const NIL_PFN: u32 = (1 << PFN_LINK_BITS) - 1;

/// Value: 0x10_0000 (1 Mi pages = 4 GiB). Pfns are below this on i386
/// without PAE; `mem_map` never has more entries.
pub const MAX_PFN_LIMIT: u32 = 0x10_0000;

const NEXT_SHIFT: u32 = 0;
const PREV_SHIFT: u32 = 21;
const ORDER_SHIFT: u32 = 42;
const ZONE_SHIFT: u32 = 46;
const FLAGS_SHIFT: u32 = 48;
const LINK_MASK: u64 = NIL_PFN as u64;
const ORDER_MASK: u64 = 0xF;
const ZONE_MASK: u64 = 0x3;
const FLAGS_MASK: u64 = 0xF;

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

/// One page frame's descriptor, an entry of `mem_map` (Linux `struct page`).
///
/// ```text
///  63      52 51    48 47 46 45   42 41            21 20             0
/// +----------+--------+-----+-------+----------------+----------------+
/// | unused   | flags  |zone | order | prev pfn (21)  | next pfn (21)  |
/// |   (12)   |  (4)   | (2) |  (4)  |                |                |
/// +----------+--------+-----+-------+----------------+----------------+
///   flags: bit 48 BUDDY, 49 RESERVED, 50 HEAD, 51 PCP   (PageFlags << 48)
///   zone:  0 DMA, 1 Normal, 2 HighMem (3 is never stored)
///   links: NIL_PFN = 0x1F_FFFF when not on a list
/// ```
///
/// Example: a reserved Normal page off any list is
/// `0x0002_4000_0000_0000 | NIL << 21 | NIL` = `0x0002_43ff_ffff_ffff`
/// (RESERVED = bit 49 (`0x0002_0000_0000_0000`), zone 1 = bit 46
/// (`0x0000_4000_0000_0000`), both links all ones).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Page(u64);

const _: () = assert!(core::mem::size_of::<Page>() <= 8);

impl Page {
    /// A descriptor of `zone` with `flags`, order 0 and no links.
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
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A descriptor from its raw bits, for decoding diagnostics. (Zone bits 3
    /// decode as HighMem.)
    pub const fn from_raw(raw: u64) -> Page {
        Page(raw)
    }

    /// The page state bits.
    pub const fn flags(self) -> PageFlags {
        PageFlags::from_bits_truncate(((self.0 >> FLAGS_SHIFT) & FLAGS_MASK) as u8)
    }

    /// Replaces the page state bits.
    pub fn set_flags(&mut self, flags: PageFlags) {
        self.0 = (self.0 & !(FLAGS_MASK << FLAGS_SHIFT)) | (flags.bits() as u64) << FLAGS_SHIFT;
    }

    /// Whether every bit of `flags` is set.
    pub const fn has(self, flags: PageFlags) -> bool {
        self.flags().contains(flags)
    }

    /// The block order: meaningful for [`PageFlags::BUDDY`] and
    /// [`PageFlags::HEAD`] pages, 0 otherwise.
    pub const fn order(self) -> u8 {
        ((self.0 >> ORDER_SHIFT) & ORDER_MASK) as u8
    }

    /// Stores `order` (log2 of the block size in pages, at most 15).
    ///
    /// # Panics
    /// If `order` does not fit in 4 bits.
    pub fn set_order(&mut self, order: u8) {
        assert!(u64::from(order) <= ORDER_MASK, "set_order: order {order}");
        self.0 = (self.0 & !(ORDER_MASK << ORDER_SHIFT)) | u64::from(order) << ORDER_SHIFT;
    }

    /// The zone this page frame belongs to (fixed at `mem_map` creation).
    pub const fn zone(self) -> ZoneType {
        match (self.0 >> ZONE_SHIFT) & ZONE_MASK {
            0 => ZoneType::Dma,
            1 => ZoneType::Normal,
            _ => ZoneType::HighMem,
        }
    }

    /// The next page on the list this page is on, if any.
    pub const fn next(self) -> Option<u32> {
        link(self.0 >> NEXT_SHIFT)
    }

    /// The previous page on the list this page is on, if any.
    pub const fn prev(self) -> Option<u32> {
        link(self.0 >> PREV_SHIFT)
    }

    fn set_next(&mut self, pfn: Option<u32>) {
        self.set_link(NEXT_SHIFT, pfn);
    }

    fn set_prev(&mut self, pfn: Option<u32>) {
        self.set_link(PREV_SHIFT, pfn);
    }

    fn set_link(&mut self, shift: u32, pfn: Option<u32>) {
        let v = pfn.map_or(LINK_MASK, |p| {
            debug_assert!(p < MAX_PFN_LIMIT, "link to pfn {p:#x}");
            u64::from(p)
        });
        self.0 = (self.0 & !(LINK_MASK << shift)) | v << shift;
    }
}

const fn link(bits: u64) -> Option<u32> {
    match (bits & LINK_MASK) as u32 {
        NIL_PFN => None,
        pfn => Some(pfn),
    }
}

/// `Page(0x...: zone order flags next prev)`, links as pfns or `-`.
impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Page({:#018x}: {} order {} [{}] next ",
            self.0,
            self.zone().name(),
            self.order(),
            self.flags()
        )?;
        fmt_link(f, self.next())?;
        f.write_str(" prev ")?;
        fmt_link(f, self.prev())?;
        f.write_str(")")
    }
}

fn fmt_link(f: &mut fmt::Formatter<'_>, pfn: Option<u32>) -> fmt::Result {
    match pfn {
        Some(p) => write!(f, "{p:#x}"),
        None => f.write_str("-"),
    }
}

/// A doubly linked list of pages threaded through their descriptors (Linux
/// `struct list_head`, but the links are pfns into `mem_map`).
///
/// The list stores only its ends; the links live in the [`Page`]s. Every
/// method takes the `mem_map` the pfns index. A page is on at most one list
/// at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageList {
    head: Option<u32>,
    tail: Option<u32>,
}

impl PageList {
    /// An empty list.
    pub const fn new() -> PageList {
        PageList {
            head: None,
            tail: None,
        }
    }

    /// The first page, if any.
    pub const fn head(&self) -> Option<u32> {
        self.head
    }

    /// The last page, if any.
    pub const fn tail(&self) -> Option<u32> {
        self.tail
    }

    /// Whether the list has no pages.
    pub const fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Inserts `pfn`, which must not be on any list, at the front (Linux
    /// `list_add()`).
    pub fn push_front(&mut self, mem_map: &mut [Page], pfn: u32) {
        let page = &mut mem_map[pfn as usize];
        debug_assert!(page.next().is_none() && page.prev().is_none());
        page.set_next(self.head);
        page.set_prev(None);
        match self.head {
            Some(h) => mem_map[h as usize].set_prev(Some(pfn)),
            None => self.tail = Some(pfn),
        }
        self.head = Some(pfn);
    }

    /// Inserts `pfn`, which must not be on any list, at the back (Linux
    /// `list_add_tail()`).
    pub fn push_back(&mut self, mem_map: &mut [Page], pfn: u32) {
        let page = &mut mem_map[pfn as usize];
        debug_assert!(page.next().is_none() && page.prev().is_none());
        page.set_prev(self.tail);
        page.set_next(None);
        match self.tail {
            Some(t) => mem_map[t as usize].set_next(Some(pfn)),
            None => self.head = Some(pfn),
        }
        self.tail = Some(pfn);
    }

    /// Unlinks `pfn`, which must be on this list, and resets its links to
    /// [`NIL_PFN`] (Linux `list_del()`).
    pub fn remove(&mut self, mem_map: &mut [Page], pfn: u32) {
        let page = mem_map[pfn as usize];
        let (prev, next) = (page.prev(), page.next());
        match prev {
            Some(p) => mem_map[p as usize].set_next(next),
            None => {
                debug_assert_eq!(self.head, Some(pfn), "remove: not on this list");
                self.head = next;
            }
        }
        match next {
            Some(n) => mem_map[n as usize].set_prev(prev),
            None => self.tail = prev,
        }
        let page = &mut mem_map[pfn as usize];
        page.set_next(None);
        page.set_prev(None);
    }

    /// Removes and returns the first page.
    pub fn pop_front(&mut self, mem_map: &mut [Page]) -> Option<u32> {
        let pfn = self.head?;
        self.remove(mem_map, pfn);
        Some(pfn)
    }

    /// Removes and returns the last page.
    pub fn pop_back(&mut self, mem_map: &mut [Page]) -> Option<u32> {
        let pfn = self.tail?;
        self.remove(mem_map, pfn);
        Some(pfn)
    }

    /// The pfns from front to back. The walk trusts the links: the buddy
    /// allocator's `check()` walks lists by hand, with a bound, instead.
    pub fn iter<'m>(&self, mem_map: &'m [Page]) -> impl Iterator<Item = u32> + 'm {
        core::iter::successors(self.head, move |&pfn| mem_map[pfn as usize].next())
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
        assert_eq!(p.raw(), 0x0002_43ff_ffff_ffff);
        assert_eq!(p.zone(), ZoneType::Normal);
        assert_eq!(p.flags(), PageFlags::RESERVED);
        assert_eq!((p.order(), p.next(), p.prev()), (0, None, None));
    }

    #[test]
    fn fields_are_independent() {
        let mut p = Page::new(ZoneType::HighMem, PageFlags::empty());
        p.set_order(10);
        p.set_flags(PageFlags::BUDDY);
        p.set_next(Some(0xF_FFFF));
        p.set_prev(Some(3));
        assert_eq!(p.zone(), ZoneType::HighMem);
        assert_eq!(p.order(), 10);
        assert_eq!(p.flags(), PageFlags::BUDDY);
        assert_eq!(p.next(), Some(0xF_FFFF));
        assert_eq!(p.prev(), Some(3));
        p.set_next(None);
        assert_eq!((p.next(), p.prev()), (None, Some(3)));
        assert_eq!(
            format!("{p:?}"),
            "Page(0x0001a800007fffff: HighMem order 10 [buddy] next - prev 0x3)"
        );
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
        l.push_back(&mut map, 3);
        l.push_back(&mut map, 5);
        l.push_front(&mut map, 1);
        assert_eq!(l.iter(&map).collect::<Vec<_>>(), [1, 3, 5]);
        l.remove(&mut map, 3);
        assert_eq!(l.iter(&map).collect::<Vec<_>>(), [1, 5]);
        assert_eq!((map[3].next(), map[3].prev()), (None, None));
        assert_eq!(map[5].prev(), Some(1));
        assert_eq!(l.pop_back(&mut map), Some(5));
        assert_eq!(l.pop_front(&mut map), Some(1));
        assert!(l.is_empty());
        assert_eq!(l.tail(), None);
        assert!(map.iter().all(|p| p.next().is_none() && p.prev().is_none()));
    }
}
