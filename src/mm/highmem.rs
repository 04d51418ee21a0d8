//! kmap bookkeeping: which pkmap slot maps which HighMem frame, and how many
//! users each has (pure logic; `arch::x86::highmem` writes the PTEs).
//!
//! HighMem frames (physical memory above 896 MiB) have no permanent virtual
//! address. `kmap(page)` gives one a slot in the pkmap window
//! (`[PKMAP_BASE, PKMAP_END)`, one page table of `LAST_PKMAP` entries) until
//! the matching `kunmap(page)`; a frame already mapped shares its slot and
//! counts one more user. Lowmem frames never come here: they have their
//! direct-map address.
//!
//! Linux keeps a freed slot's PTE until the slot counter wraps round and then
//! flushes every unused slot at once (`flush_all_zero_pkmaps`). This kernel
//! clears the PTE and flushes that one page at the last `kunmap`: one flush
//! more per use, and a slot never holds a stale translation.
//!
//! # References
//! - Linux `mm/highmem.c` (`kmap_high`, `map_new_virtual`, `kunmap_high`,
//!   `pkmap_count`, `last_pkmap_nr`).

use super::layout::{LAST_PKMAP, PAGE_SHIFT, PKMAP_BASE};
use crate::addr::{Pfn, VirtAddr};
use core::fmt;

/// Why a kmap or kunmap was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmapError {
    /// All `LAST_PKMAP` slots are in use (Linux would sleep until a
    /// `kunmap`; with nothing to wait for, this is an error).
    Full,
    /// `kunmap` of a frame that is not kmapped: a double `kunmap`, or a
    /// `kunmap` without `kmap`.
    NotMapped {
        /// The frame.
        pfn: Pfn,
    },
    /// A frame's user count would overflow.
    TooManyUsers {
        /// The frame.
        pfn: Pfn,
    },
}

impl fmt::Display for KmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KmapError::Full => write!(f, "all {LAST_PKMAP} pkmap slots are in use"),
            KmapError::NotMapped { pfn } => write!(
                f,
                "kunmap of pfn {pfn:#x}, which is not kmapped (double kunmap?)"
            ),
            KmapError::TooManyUsers { pfn } => {
                write!(f, "pfn {pfn:#x} kmapped {} times", u16::MAX)
            }
        }
    }
}

/// What a successful `kmap` means for the page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kmapped {
    /// The frame was mapped already, at `va`: nothing to write.
    Shared {
        /// Its pkmap address.
        va: VirtAddr,
    },
    /// A free slot at `va` was taken: its PTE must now point at the frame.
    New {
        /// The slot's address.
        va: VirtAddr,
    },
}

impl Kmapped {
    /// The frame's pkmap address.
    pub fn va(self) -> VirtAddr {
        match self {
            Kmapped::Shared { va } | Kmapped::New { va } => va,
        }
    }
}

/// A kmapped frame still held: for leak reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmapHeld {
    /// The pkmap address.
    pub va: VirtAddr,
    /// The frame.
    pub pfn: Pfn,
    /// Outstanding `kmap`s.
    pub users: u16,
}

/// The pkmap slots (Linux `pkmap_count[]` and `page_address_htable`).
pub struct Pkmap {
    pfn: [Pfn; LAST_PKMAP as usize],
    users: [u16; LAST_PKMAP as usize],
    /// Where the search for a free slot starts (Linux `last_pkmap_nr`).
    next: u32,
    nr_kmap: u32,
    nr_kunmap: u32,
}

impl Default for Pkmap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pkmap {
    /// No slot in use.
    pub const fn new() -> Self {
        Pkmap {
            pfn: [Pfn(0); LAST_PKMAP as usize],
            users: [0; LAST_PKMAP as usize],
            next: 0,
            nr_kmap: 0,
            nr_kunmap: 0,
        }
    }

    fn slot_va(slot: u32) -> VirtAddr {
        VirtAddr(PKMAP_BASE + (slot << PAGE_SHIFT))
    }

    fn slot_of(&self, pfn: Pfn) -> Option<usize> {
        (0..LAST_PKMAP as usize).find(|&i| self.users[i] > 0 && self.pfn[i] == pfn)
    }

    /// Takes a reference on `pfn`'s mapping, giving it a slot if it has none
    /// (Linux `kmap_high`).
    ///
    /// # Errors
    /// [`KmapError::Full`], [`KmapError::TooManyUsers`].
    pub fn kmap(&mut self, pfn: Pfn) -> Result<Kmapped, KmapError> {
        if let Some(i) = self.slot_of(pfn) {
            self.users[i] = self.users[i]
                .checked_add(1)
                .ok_or(KmapError::TooManyUsers { pfn })?;
            self.nr_kmap += 1;
            return Ok(Kmapped::Shared {
                va: Self::slot_va(i as u32),
            });
        }
        let slot = (0..LAST_PKMAP)
            .map(|k| (self.next + k) % LAST_PKMAP)
            .find(|&s| self.users[s as usize] == 0)
            .ok_or(KmapError::Full)?;
        self.pfn[slot as usize] = pfn;
        self.users[slot as usize] = 1;
        self.next = (slot + 1) % LAST_PKMAP;
        self.nr_kmap += 1;
        Ok(Kmapped::New {
            va: Self::slot_va(slot),
        })
    }

    /// Drops a reference on `pfn`'s mapping (Linux `kunmap_high`). Returns
    /// the slot's address when this was the last user: its PTE must be
    /// cleared and the page flushed.
    ///
    /// # Errors
    /// [`KmapError::NotMapped`]: nothing changed.
    pub fn kunmap(&mut self, pfn: Pfn) -> Result<Option<VirtAddr>, KmapError> {
        let i = self.slot_of(pfn).ok_or(KmapError::NotMapped { pfn })?;
        self.users[i] -= 1;
        self.nr_kunmap += 1;
        Ok((self.users[i] == 0).then(|| Self::slot_va(i as u32)))
    }

    /// The pkmap address of `pfn`, if it is kmapped (Linux `page_address`
    /// for a HighMem page).
    pub fn page_address(&self, pfn: Pfn) -> Option<VirtAddr> {
        self.slot_of(pfn).map(|i| Self::slot_va(i as u32))
    }

    /// The slots in use, in address order.
    pub fn held(&self) -> impl Iterator<Item = KmapHeld> + '_ {
        (0..LAST_PKMAP).filter_map(|s| {
            let users = self.users[s as usize];
            (users > 0).then(|| KmapHeld {
                va: Self::slot_va(s),
                pfn: self.pfn[s as usize],
                users,
            })
        })
    }

    /// Successful `kmap`s and `kunmap`s so far.
    pub fn counts(&self) -> (u32, u32) {
        (self.nr_kmap, self.nr_kunmap)
    }
}

#[cfg(test)]
mod tests;
