//! The early map window: read-only access to any physical page before the
//! kernel has its own page tables (Linux: `early_memremap_ro()`).
//!
//! The boot stub maps only the kernel image. The boot information, its
//! strings and modules may lie anywhere below 4 GiB (GRUB puts the
//! information right after the kernel, other loaders low or at the top of
//! RAM), so early code maps the pages it needs into a 4 MiB virtual window,
//! `[EARLY_MAP_BASE, EARLY_MAP_BASE + 4 MiB)`, covered by one boot page table.
//!
//! This module is the pure half: it plans which window slots (page-table
//! entries) a request uses and what goes into them, with the `x86` crate's
//! `PTFlags` like every other page-table entry. `arch::x86::early_map`
//! writes the entries through `PageTableMemory` (`paging::set_pte`) and
//! runs the TLB flush each write returns.
//!
//! Slots are handed out bottom-up and never reused (a bump allocator), so no
//! stale TLB entry can ever point at an old frame; the window lives until the
//! final page directory replaces the boot one. The last slot is the
//! exception: [`TEMP_SLOT`] is remapped again and again, and every change of
//! it is followed by a TLB flush.
//!
//! # References
//! - Intel SDM Vol. 3A, §4.3 "32-Bit Paging", Table 4-6 "Format of a 32-Bit
//!   Page-Table Entry that Maps a 4-KByte Page".
//! - Linux: `mm/early_ioremap.c` `early_memremap_ro()`.

use super::layout::{EARLY_MAP_BASE, EARLY_MAP_PAGES, PAGE_SIZE};
use super::paging::{PTEntry, PTFlags, pfn_pte};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use core::fmt;

/// Flags of the window's entries: present only, so read-only and
/// supervisor-only.
pub const EARLY_MAP_FLAGS: PTFlags = PTFlags::P;

/// Flags of the temporary slot's entry: present and writable.
pub const TEMP_SLOT_FLAGS: PTFlags = PTFlags::P.union(PTFlags::RW);

/// Value: 1023. The window's last slot is not handed out by
/// [`EarlyMapWindow::plan`]: it is a temporary, writable mapping that code
/// maps, uses and unmaps in one go (Linux: `kmap_local_page()` on a fixmap
/// slot), e.g. to zero a page the boot direct map does not reach.
pub const TEMP_SLOT: u32 = EARLY_MAP_PAGES - 1;

/// Virtual address of the temporary slot: `EARLY_MAP_BASE + TEMP_SLOT * 4 KiB`.
pub const TEMP_SLOT_VA: VirtAddr = VirtAddr(EARLY_MAP_BASE + TEMP_SLOT * PAGE_SIZE);

/// The PTE that maps frame `pfn` (below 4 GiB) writable in the temporary
/// slot.
///
/// # Panics
/// If frame `pfn` lies at or above 4 GiB.
pub fn temp_slot_pte(pfn: Pfn) -> PTEntry {
    pfn_pte(pfn, TEMP_SLOT_FLAGS)
}

/// Why a range cannot be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyMapError {
    /// A zero-length request.
    Empty,
    /// Part of `[pa, pa + len)` lies at or above 4 GiB, which 32-bit paging
    /// cannot reach.
    AboveFourGiB {
        /// Start of the request.
        pa: PhysAddr,
        /// Length in bytes.
        len: u64,
    },
    /// The window has too few free slots left.
    WindowFull {
        /// Pages the request needs.
        needed: u32,
        /// Pages still free in the window.
        free: u32,
    },
}

impl fmt::Display for EarlyMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EarlyMapError::Empty => f.write_str("early map of zero bytes"),
            EarlyMapError::AboveFourGiB { pa, len } => write!(
                f,
                "early map of [{pa:#x}, {:#x}) reaches above 4 GiB",
                pa.0.saturating_add(len)
            ),
            EarlyMapError::WindowFull { needed, free } => write!(
                f,
                "early map window full: {needed} pages needed, {free} free"
            ),
        }
    }
}

/// Where a request lands in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlyMapping {
    /// First window slot (page-table index) used.
    pub first_slot: u32,
    /// Physical frame number of the first page.
    pub first_pfn: Pfn,
    /// Pages mapped.
    pub nr_pages: u32,
    /// Byte offset of the requested address within the first page.
    pub offset: u32,
}

impl EarlyMapping {
    /// Virtual address of slot `first_slot + i`.
    pub fn slot_va(&self, i: u32) -> VirtAddr {
        VirtAddr(EARLY_MAP_BASE + (self.first_slot + i) * PAGE_SIZE)
    }

    /// The PTE for slot `first_slot + i`: frame `first_pfn + i`, with
    /// [`EARLY_MAP_FLAGS`] (present, read-only).
    pub fn pte(&self, i: u32) -> PTEntry {
        pfn_pte(self.first_pfn + i, EARLY_MAP_FLAGS)
    }

    /// Virtual address of the requested physical address.
    pub fn va(&self) -> VirtAddr {
        self.slot_va(0) + self.offset
    }
}

/// The window's allocation state: slots `[0, next_slot)` are in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarlyMapWindow {
    next_slot: u32,
}

impl EarlyMapWindow {
    /// An empty window.
    pub const fn new() -> Self {
        EarlyMapWindow { next_slot: 0 }
    }

    /// Pages still free (the temporary slot is never handed out).
    pub fn free_pages(&self) -> u32 {
        TEMP_SLOT - self.next_slot
    }

    /// Reserves slots for physical `[pa, pa + len)` (bytes) and says what
    /// to write into them.
    ///
    /// Whole pages are mapped: the first page holding `pa` to the last page
    /// holding `pa + len - 1`.
    ///
    /// # Errors
    /// [`EarlyMapError::Empty`] for `len == 0`, [`EarlyMapError::AboveFourGiB`]
    /// if the range ends above 4 GiB, [`EarlyMapError::WindowFull`] if the
    /// window cannot hold it (nothing is reserved then).
    pub fn plan(&mut self, pa: PhysAddr, len: u64) -> Result<EarlyMapping, EarlyMapError> {
        if len == 0 {
            return Err(EarlyMapError::Empty);
        }
        let end = match pa.0.checked_add(len) {
            Some(end) if end <= 1 << 32 => PhysAddr(end),
            _ => return Err(EarlyMapError::AboveFourGiB { pa, len }),
        };
        let (first_pfn, end_pfn) = (pa.pfn(), end.pfn_up());
        let nr_pages = end_pfn - first_pfn;
        if nr_pages > self.free_pages() {
            return Err(EarlyMapError::WindowFull {
                needed: nr_pages,
                free: self.free_pages(),
            });
        }
        let mapping = EarlyMapping {
            first_slot: self.next_slot,
            first_pfn,
            nr_pages,
            offset: pa.page_offset(),
        };
        self.next_slot += mapping.nr_pages;
        Ok(mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_inside_one_page_takes_one_slot() {
        let mut w = EarlyMapWindow::new();
        let m = w.plan(PhysAddr(0x0012_3458), 16).unwrap();
        assert_eq!(
            m,
            EarlyMapping {
                first_slot: 0,
                first_pfn: Pfn(0x123),
                nr_pages: 1,
                offset: 0x458
            }
        );
        assert_eq!(m.va(), VirtAddr(0xFF80_0458));
        assert_eq!(m.pte(0).0, 0x0012_3001);
    }

    #[test]
    fn a_range_crossing_a_page_boundary_takes_two_slots() {
        let mut w = EarlyMapWindow::new();
        w.plan(PhysAddr(0x1000), 1).unwrap();
        let m = w.plan(PhysAddr(0x0010_aff8), 16).unwrap();
        assert_eq!((m.first_slot, m.nr_pages), (1, 2));
        assert_eq!(m.slot_va(1), VirtAddr(0xFF80_2000));
        assert_eq!(m.pte(1).0, 0x0010_b001);
        assert_eq!(w.free_pages(), 1023 - 3);
    }

    #[test]
    fn the_last_page_below_4_gib_can_be_mapped() {
        let mut w = EarlyMapWindow::new();
        let m = w.plan(PhysAddr(0xFFFF_F000), 0x1000).unwrap();
        assert_eq!((m.first_pfn, m.nr_pages), (Pfn(0xFFFFF), 1));
        assert_eq!(m.pte(0).0, 0xFFFF_F001);
    }

    #[test]
    fn ranges_above_4_gib_or_overflowing_are_refused() {
        let mut w = EarlyMapWindow::new();
        assert_eq!(
            w.plan(PhysAddr(0xFFFF_F000), 0x1001),
            Err(EarlyMapError::AboveFourGiB {
                pa: PhysAddr(0xFFFF_F000),
                len: 0x1001
            })
        );
        assert!(matches!(
            w.plan(PhysAddr(u64::MAX), 2),
            Err(EarlyMapError::AboveFourGiB { .. })
        ));
        assert_eq!(w.plan(PhysAddr(0x1000), 0), Err(EarlyMapError::Empty));
        assert_eq!(w.free_pages(), 1023, "failed requests reserve nothing");
    }

    #[test]
    fn a_full_window_refuses_without_reserving() {
        let mut w = EarlyMapWindow::new();
        w.plan(PhysAddr(0), 1022 * 4096).unwrap();
        assert_eq!(
            w.plan(PhysAddr(0x10_0000), 2 * 4096),
            Err(EarlyMapError::WindowFull { needed: 2, free: 1 })
        );
        assert!(w.plan(PhysAddr(0x10_0000), 4096).is_ok());
        assert_eq!(w.free_pages(), 0);
    }

    #[test]
    fn the_temporary_slot_is_the_last_page_of_the_window() {
        assert_eq!(TEMP_SLOT_VA, VirtAddr(0xFFBF_F000));
        assert_eq!(temp_slot_pte(Pfn(0x12345)).0, 0x1234_5003);
    }
}
