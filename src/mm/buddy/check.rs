//! The executable invariants of the buddy allocator (the counterpart of
//! Linux's `VM_BUG_ON`s and `CONFIG_DEBUG_VM` checks, SerenityOS `VERIFY`).
//!
//! [`BuddyAllocator::check`] costs one pass over `mem_map` plus one walk of
//! every list: fine for tests after every operation, and for the kernel's
//! `selftest` run after the hand-off and after each buddy self-test.

use super::BuddyAllocator;
use crate::addr::Pfn;
use crate::mm::page::{Page, PageFlags, PageList, PageUse};
use crate::mm::zone::{
    MAX_PAGE_ORDER, NR_PAGE_ORDERS, PCP_BATCH_MAX, PCP_HIGH_MAX, Zone, ZoneType,
};
use core::fmt;

/// Which list of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListId {
    /// `free_area[order]`.
    FreeArea(u8),
    /// The per-cpu stack.
    Pcp,
}

impl fmt::Display for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListId::FreeArea(order) => write!(f, "free_area[{order}]"),
            ListId::Pcp => f.write_str("pcp list"),
        }
    }
}

/// A broken invariant found by [`BuddyAllocator::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A descriptor's zone differs from the zone whose span holds it.
    WrongZone {
        /// The page.
        pfn: Pfn,
        /// The zone whose span holds it.
        zone: ZoneType,
    },
    /// An impossible descriptor: several state flags, an order above
    /// `MAX_PAGE_ORDER`, an order or links on a reserved page, a prev link on
    /// an allocated head, a map count on a slab or kmalloc page.
    BadDescriptor {
        /// The page.
        pfn: Pfn,
        /// Its raw descriptor.
        raw: u64,
    },
    /// A free or allocated block not aligned to its order, or running past
    /// its zone's end.
    BadBlock {
        /// First pfn of the block.
        pfn: Pfn,
        /// Its order.
        order: u8,
    },
    /// A page inside a block has state of its own: two blocks overlap.
    Overlap {
        /// The inner page.
        pfn: Pfn,
        /// First pfn of the block it is inside.
        block_pfn: Pfn,
        /// That block's order.
        order: u8,
    },
    /// A page neither reserved nor in any free, allocated or per-cpu block
    /// (it leaked).
    Orphan {
        /// The page.
        pfn: Pfn,
    },
    /// A list's links disagree at `pfn` (a `prev` not pointing back, a wrong
    /// tail, or a cycle).
    BrokenList {
        /// The zone.
        zone: ZoneType,
        /// The list.
        list: ListId,
        /// Where the walk found it.
        pfn: Pfn,
    },
    /// A list entry outside the zone, or not in the state its list requires
    /// (`PG_buddy` of the list's order; `PG_pcp`, order 0).
    WrongListEntry {
        /// The zone.
        zone: ZoneType,
        /// The list.
        list: ListId,
        /// The entry.
        pfn: Pfn,
    },
    /// A counter differs from what the lists or `mem_map` hold: `nr_free` vs
    /// list length, `PG_buddy` heads of an order vs `nr_free`, per-cpu
    /// `count` vs list length or `PG_pcp` pages, `free_pages` vs the sum of
    /// `nr_free << order`.
    CountMismatch {
        /// The zone.
        zone: ZoneType,
        /// What was counted.
        what: &'static str,
        /// The stored counter.
        recorded: u32,
        /// What the walk found.
        counted: u32,
    },
    /// Two free blocks of the same order are buddies: they should have
    /// merged.
    Unmerged {
        /// The first block.
        pfn: Pfn,
        /// Its free buddy.
        buddy: Pfn,
        /// Their order.
        order: u8,
    },
    /// Page accounting does not add up: `managed` must equal `spanned -
    /// reserved` and `free + pcp + allocated`, and be at most `present`.
    ManagedMismatch {
        /// The zone.
        zone: ZoneType,
        /// `managed_pages`.
        managed: u32,
        /// `present_pages`.
        present: u32,
        /// `spanned_pages` minus reserved pages.
        unreserved: u32,
        /// Free pages + per-cpu pages + allocated pages.
        accounted: u32,
    },
    /// A per-cpu stack's `batch` is 0 or above `PCP_BATCH_MAX`, or its
    /// `high` above `PCP_HIGH_MAX` (the stack's capacity).
    PcpBadLimits {
        /// The zone.
        zone: ZoneType,
        /// Its `batch`.
        batch: u32,
        /// Its `high`.
        high: u32,
    },
    /// A per-cpu list holds more than `high` pages.
    PcpAboveHigh {
        /// The zone.
        zone: ZoneType,
        /// Pages on the list.
        count: u32,
        /// Its `high`.
        high: u32,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CheckError::WrongZone { pfn, zone } => {
                write!(f, "buddy: pfn {pfn:#x} in zone {zone} has another zone")
            }
            CheckError::BadDescriptor { pfn, raw } => {
                write!(f, "buddy: pfn {pfn:#x} has a bad descriptor {raw:#x}")
            }
            CheckError::BadBlock { pfn, order } => write!(
                f,
                "buddy: block at pfn {pfn:#x} order {order} is misaligned or crosses its zone"
            ),
            CheckError::Overlap {
                pfn,
                block_pfn,
                order,
            } => write!(
                f,
                "buddy: pfn {pfn:#x} inside block {block_pfn:#x} order {order} has its own state"
            ),
            CheckError::Orphan { pfn } => write!(
                f,
                "buddy: pfn {pfn:#x} is neither reserved, free, allocated nor on a pcp list"
            ),
            CheckError::BrokenList { zone, list, pfn } => {
                write!(f, "buddy: {zone} {list}: broken link at pfn {pfn:#x}")
            }
            CheckError::WrongListEntry { zone, list, pfn } => {
                write!(
                    f,
                    "buddy: {zone} {list}: entry pfn {pfn:#x} does not belong"
                )
            }
            CheckError::CountMismatch {
                zone,
                what,
                recorded,
                counted,
            } => write!(
                f,
                "buddy: {zone} {what}: recorded {recorded}, counted {counted}"
            ),
            CheckError::Unmerged { pfn, buddy, order } => write!(
                f,
                "buddy: free blocks {pfn:#x} and {buddy:#x} of order {order} are not merged"
            ),
            CheckError::ManagedMismatch {
                zone,
                managed,
                present,
                unreserved,
                accounted,
            } => write!(
                f,
                "buddy: {zone} managed {managed}, present {present}, unreserved {unreserved}, \
                 free+pcp+allocated {accounted}"
            ),
            CheckError::PcpBadLimits { zone, batch, high } => write!(
                f,
                "buddy: {zone} pcp batch {batch} or high {high} outside [1, {PCP_BATCH_MAX}] / \
                 [0, {PCP_HIGH_MAX}]"
            ),
            CheckError::PcpAboveHigh { zone, count, high } => {
                write!(f, "buddy: {zone} pcp count {count} above high {high}")
            }
        }
    }
}

/// What one pass over a zone's pages found.
#[derive(Default)]
struct ZoneWalk {
    reserved: u32,
    free: u32,
    allocated: u32,
    pcp: u32,
    buddy_heads: [u32; NR_PAGE_ORDERS],
}

impl BuddyAllocator<'_> {
    /// Verifies every invariant, returning the first broken one.
    ///
    /// Per zone:
    /// - every page of the span has the zone's zone bits, and exactly one
    ///   state: reserved, free block head, allocated block head, per-cpu, or
    ///   inside a free or allocated block (then with no state, no order and
    ///   no links); an allocated head has no prev link and a next field
    ///   that is NIL or, on a page without a slab or kmalloc mark, its map
    ///   count ([`Page::mapcount`]); blocks are naturally aligned and end inside the zone, so
    ///   none overlap or cross a zone boundary;
    /// - each `free_area[order]` list has consistent `prev`/`next` links and
    ///   tail, holds only `PG_buddy` heads of that order from this zone, has
    ///   `nr_free` entries, and lists every such head; no listed block's
    ///   buddy of the same order is free as well;
    /// - `free_pages` is the sum of `nr_free << order`;
    /// - `free_area_mask` has exactly the orders whose `nr_free` is not 0;
    /// - the per-cpu stack holds `count <= high` distinct order-0 `PG_pcp`
    ///   pages of the zone, and every `PG_pcp` page of the zone;
    /// - `managed = spanned - reserved = free + pcp + allocated <= present`.
    ///
    /// # Errors
    /// The first [`CheckError`] found.
    pub fn check(&self) -> Result<(), CheckError> {
        for z in &self.zones {
            let walk = self.walk_zone(z)?;
            let zone = z.zone_type();
            let mut free_from_lists = 0;
            for order in 0..=MAX_PAGE_ORDER {
                let area = z.free_area(order);
                let listed = self.walk_free_list(z, order, area.free_list())?;
                mismatch(zone, "nr_free", area.nr_free(), listed)?;
                mismatch(
                    zone,
                    "free block heads",
                    area.nr_free(),
                    walk.buddy_heads[order as usize],
                )?;
                free_from_lists += area.nr_free() << order;
            }
            mismatch(zone, "free_pages", z.free_pages(), free_from_lists)?;
            mismatch(zone, "free pages in mem_map", z.free_pages(), walk.free)?;
            let mask = (0..=MAX_PAGE_ORDER)
                .filter(|&o| z.free_area(o).nr_free() > 0)
                .fold(0, |m, o| m | 1 << o);
            mismatch(zone, "free_area_mask", z.free_area_mask(), mask)?;
            let pcp = z.pcp();
            if pcp.batch() == 0 || pcp.batch() > PCP_BATCH_MAX || pcp.high() > PCP_HIGH_MAX {
                return Err(CheckError::PcpBadLimits {
                    zone,
                    batch: pcp.batch(),
                    high: pcp.high(),
                });
            }
            if pcp.count() > pcp.high() {
                return Err(CheckError::PcpAboveHigh {
                    zone,
                    count: pcp.count(),
                    high: pcp.high(),
                });
            }
            self.check_pcp(z)?;
            mismatch(zone, "pcp pages in mem_map", pcp.count(), walk.pcp)?;
            let unreserved = z.spanned_pages() - walk.reserved;
            let accounted = walk.free + walk.pcp + walk.allocated;
            let managed = z.managed_pages();
            if managed != unreserved || managed != accounted || managed > z.present_pages() {
                return Err(CheckError::ManagedMismatch {
                    zone,
                    managed,
                    present: z.present_pages(),
                    unreserved,
                    accounted,
                });
            }
        }
        Ok(())
    }

    /// One pass over the zone's pages, block by block.
    fn walk_zone(&self, z: &Zone) -> Result<ZoneWalk, CheckError> {
        let zone = z.zone_type();
        let inner = Page::new(zone, PageFlags::empty());
        let mut walk = ZoneWalk::default();
        let (mut pfn, zone_end) = (z.start_pfn().0, z.end_pfn().0);
        while pfn < zone_end {
            let page = self.mem_map[pfn as usize];
            let bad = CheckError::BadDescriptor {
                pfn: Pfn(pfn),
                raw: page.raw(),
            };
            if page.zone() != zone {
                return Err(CheckError::WrongZone {
                    pfn: Pfn(pfn),
                    zone,
                });
            }
            let flags = page.flags();
            if flags == PageFlags::RESERVED {
                if page != Page::reserved(zone) {
                    return Err(bad);
                }
                walk.reserved += 1;
                pfn += 1;
                continue;
            }
            if flags == PageFlags::PCP {
                if page.order() != 0 {
                    return Err(bad);
                }
                walk.pcp += 1;
                pfn += 1;
                continue;
            }
            let free = flags == PageFlags::BUDDY;
            if flags.is_empty() {
                return Err(CheckError::Orphan { pfn: Pfn(pfn) });
            }
            // An allocated head is on no list: prev is NIL, and next is NIL
            // too unless it holds a map count (`Page::mapcount`), which only
            // a page without a slab or kmalloc mark can have.
            let mapped = page.mapcount() != 0;
            let linked = page.prev().is_some() || mapped && page.page_use() != PageUse::None;
            if !free && (flags != PageFlags::HEAD || linked) || page.order() > MAX_PAGE_ORDER {
                return Err(bad);
            }
            let order = page.order();
            let end = pfn + (1 << order);
            if !pfn.is_multiple_of(1 << order) || end > zone_end {
                return Err(CheckError::BadBlock {
                    pfn: Pfn(pfn),
                    order,
                });
            }
            if let Some(i) = (pfn + 1..end).find(|&i| self.mem_map[i as usize] != inner) {
                return Err(CheckError::Overlap {
                    pfn: Pfn(i),
                    block_pfn: Pfn(pfn),
                    order,
                });
            }
            if free {
                walk.free += 1 << order;
                walk.buddy_heads[order as usize] += 1;
            } else {
                walk.allocated += 1 << order;
            }
            pfn = end;
        }
        Ok(walk)
    }

    /// Checks the per-cpu stack's entries: each an order-0 `PG_pcp` page of
    /// the zone, none twice. (With the count of `PG_pcp` pages in the zone
    /// equal to `count`, the stack then holds every one of them.)
    fn check_pcp(&self, z: &Zone) -> Result<(), CheckError> {
        let (zone, list) = (z.zone_type(), ListId::Pcp);
        let pfns = z.pcp().pfns();
        for (i, &pfn) in pfns.iter().enumerate() {
            let pfn = Pfn(pfn);
            let page = self.mem_map.get(pfn.0 as usize);
            let listed_as_pcp = page.is_some_and(|p| p.flags() == PageFlags::PCP && p.order() == 0);
            if !z.contains(pfn) || !listed_as_pcp || pfns[..i].contains(&pfn.0) {
                return Err(CheckError::WrongListEntry { zone, list, pfn });
            }
        }
        Ok(())
    }

    /// Walks `free_area[order]`'s list checking links and entries; returns
    /// its length.
    fn walk_free_list(&self, z: &Zone, order: u8, l: &PageList) -> Result<u32, CheckError> {
        let zone = z.zone_type();
        let list = ListId::FreeArea(order);
        let mut prev = None;
        let mut cur = l.head();
        let mut len = 0u32;
        while let Some(pfn) = cur {
            if !z.contains(pfn) {
                return Err(CheckError::WrongListEntry { zone, list, pfn });
            }
            let page = self.mem_map[pfn.0 as usize];
            // A consistent prev link rules out cycles; the bound is a backstop.
            if page.prev() != prev || len > z.spanned_pages() {
                return Err(CheckError::BrokenList { zone, list, pfn });
            }
            if page.flags() != PageFlags::BUDDY || page.order() != order {
                return Err(CheckError::WrongListEntry { zone, list, pfn });
            }
            let buddy = super::buddy_pfn(pfn.0, order);
            if order < MAX_PAGE_ORDER && self.page_is_buddy(buddy, order, zone) {
                return Err(CheckError::Unmerged {
                    pfn,
                    buddy: Pfn(buddy),
                    order,
                });
            }
            len += 1;
            prev = Some(pfn);
            cur = page.next();
        }
        if l.tail() != prev {
            let pfn = l.tail().or(prev).unwrap_or(Pfn(0));
            return Err(CheckError::BrokenList { zone, list, pfn });
        }
        Ok(len)
    }
}

fn mismatch(
    zone: ZoneType,
    what: &'static str,
    recorded: u32,
    counted: u32,
) -> Result<(), CheckError> {
    if recorded == counted {
        Ok(())
    } else {
        Err(CheckError::CountMismatch {
            zone,
            what,
            recorded,
            counted,
        })
    }
}
