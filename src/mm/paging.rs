//! Page tables: map, unmap and translate in every i386 paging format
//! (32-bit two-level and PAE), with large pages, global pages and NX, and
//! with TLB invalidation the caller cannot forget.
//!
//! This module is pure logic. It reaches page-table memory through
//! [`PageTableMemory`], gets page-table frames from a [`FrameSource`] (the
//! buddy allocator in the kernel) and invalidates translations through a
//! [`TlbFlusher`]; the kernel implements these in `arch::x86::paging`, the
//! host tests with the emulated machine of `crate::test_support::mmu`
//! (physical memory, an MMU of each mode with a TLB that only changes on
//! invalidation, written from the SDM independently of this code).
//! [`kernel_space`] builds the kernel's final page directory from these
//! pieces, so the host tests walk the very directory the kernel runs on.
//!
//! ```text
//!  32-bit:  CR3 -> page directory (1024 x 4 B) -> page table (1024 x 4 B) -> frame
//!                  PDE[va >> 22]                  PTE[(va >> 12) & 1023]
//!                  (PS: a 4 MiB page)
//!  PAE:     CR3 -> PDPT (4 x 8 B) -> page directory (512 x 8 B) -> page table (512 x 8 B)
//!                  PDPTE[va >> 30]   PDE[(va >> 21) & 511]           PTE[(va >> 12) & 511]
//!                                    (PS: a 2 MiB page)
//! ```
//!
//! [`entry`] has the formats ([`Format`]), the entries ([`PDEntry`],
//! [`PTEntry`], [`Pdpte`], all 64-bit values: a 32-bit entry is the low half
//! of the same layout) and the mode the kernel runs ([`PagingMode`]);
//! [`mod@walk`] reads tables as the MMU does; [`choose`] picks the mode at boot.
//! Flags are the `x86` crate's 64-bit `PTFlags`/`PDFlags`; an address space
//! drops the ones its mode does not support (G without PGE, NX without NX),
//! as Linux masks with `__supported_pte_mask`. Page-directory entries that
//! point at page tables are always present and writable: the CPU combines
//! the R/W bits of the levels, so the PTE alone decides (Intel SDM Vol. 3A
//! §4.6 "Access Rights").
//!
//! Addresses in the API are [`crate::addr`]'s types: [`VirtAddr`] for what
//! is mapped, [`PhysAddr`] (64-bit) for frames and tables. A frame at or
//! above the format's reach (4 GiB for 32-bit entries, 64 GiB under PAE) is
//! refused with [`MapError::FrameOutOfRange`].
//!
//! # TLB invalidation
//! Every change to a present mapping returns a [`TlbFlush`] token, marked
//! `#[must_use]`. The caller either runs it ([`TlbFlush::flush`]) once the
//! change should be visible, or discards it with a reason
//! ([`TlbFlush::ignore`]), e.g. because the page directory is not loaded
//! yet. Dropping a token without either is a bug and panics: a stale TLB
//! entry would otherwise let the CPU keep using the old frame silently.
//! (The x86_64 crate's `MapperFlush` is the model; the panic on drop is
//! stricter.) With global pages a full flush is a CR4.PGE toggle, not a CR3
//! reload ([`TlbFlusher::flush_all`]).
//!
//! # References
//! - Intel SDM Vol. 3A, §4.3 "32-Bit Paging" (Tables 4-4 to 4-6, the entry
//!   formats), §4.4 "PAE Paging" (Tables 4-7 to 4-11), §4.10.4
//!   "Invalidation of TLBs and Paging-Structure Caches".
//! - Linux: `mm/memory.c`, `arch/x86/mm/init_32.c`
//!   (`kernel_physical_mapping_init`, `one_page_table_init`),
//!   `arch/x86/mm/tlb.c` (`tlb_single_page_flush_ceiling`,
//!   `__flush_tlb_global`).

pub mod choose;
pub mod entry;
pub mod kernel_space;
pub mod walk;

use super::buddy::BuddyAllocator;
use super::gfp::{GFP_KERNEL, Gfp};
use super::layout::{PAGE_SHIFT, PAGE_SIZE};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use core::fmt;
pub use entry::{
    EntryFlags, Format, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_RX, PDEntry, PDFlags, PTEntry,
    PTFlags, PagingMode, Pdpte, Table,
};
pub use walk::{DumpRange, Walk, dump, page_directory, set_pte, walk};

/// The page-table entry that maps frame `pfn` with `flags` (Linux
/// `pfn_pte`; `P` is not added).
pub fn pfn_pte(pfn: Pfn, flags: PTFlags) -> PTEntry {
    PTEntry::new(pfn.phys(), flags)
}

/// Flags of every page-directory entry that points at a page table, the
/// boot stub's included: present and writable. The CPU combines the R/W
/// bits of the levels, so the PTE alone decides (Intel SDM Vol. 3A §4.6).
pub const PDE_TABLE_FLAGS: PDFlags = PDFlags::P.union(PDFlags::RW);

/// Value: 0x003 (`P RW`). `PDE_FLAGS` in `boot/entry.S`: the flags of the
/// boot page directory's entries ([`PDE_TABLE_FLAGS`] as a number, for a
/// `global_asm!` operand).
pub const BOOT_PDE_FLAGS: u32 = PDE_TABLE_FLAGS.bits() as u32;

/// Value: 0x003 (`P RW`). `PTE_FLAGS` in `boot/entry.S`: the flags of the
/// boot page tables' entries, present and writable, supervisor-only (the
/// boot map covers the image and memblock's first allocations; the final
/// directory makes the kernel's code read-only).
pub const BOOT_PTE_FLAGS: u32 = PTFlags::P.union(PTFlags::RW).bits() as u32;

/// Access to the memory that holds page tables.
pub trait PageTableMemory {
    /// Runs `f` on the 4 KiB table (a page directory or page table) at
    /// physical address `table`.
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R;
}

/// Frames for page tables.
pub trait FrameSource {
    /// A zeroed frame for a page table, reachable through
    /// [`PageTableMemory`], below 4 GiB; `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// Gives back a page-table frame from [`FrameSource::alloc_table`].
    fn free_table(&mut self, table: PhysAddr);
}

/// Executes TLB invalidations.
pub trait TlbFlusher {
    /// Drops the translation of the page holding `va` (`invlpg`, or a full
    /// flush where the CPU has no `invlpg`).
    fn flush_page(&mut self, va: VirtAddr);
    /// Drops every translation, global ones too: a CR3 reload without
    /// global pages, a CR4.PGE toggle with them (Linux `__flush_tlb_all`).
    fn flush_all(&mut self);
    /// Whether [`TlbFlusher::flush_page`] really flushes one page; if not,
    /// a range is flushed with one [`TlbFlusher::flush_all`].
    fn has_invlpg(&self) -> bool;
}

/// Value: 33. A range of more pages is flushed with one CR3 reload instead of
/// one `invlpg` per page (Linux `tlb_single_page_flush_ceiling`).
pub const FLUSH_CEILING: u32 = 33;

/// A pending TLB invalidation of the `pages` pages from `va`, returned by
/// every change to a mapping.
///
/// # Panics
/// When dropped without [`TlbFlush::flush`] or [`TlbFlush::ignore`].
#[must_use = "the TLB may still hold the old translation: call .flush(tlb), or .ignore(reason)"]
#[derive(Debug)]
pub struct TlbFlush {
    va: u32,
    pages: u32,
}

impl TlbFlush {
    fn new(va: u32, pages: u32) -> Self {
        TlbFlush { va, pages }
    }

    /// First virtual address the token covers.
    pub fn va(&self) -> VirtAddr {
        VirtAddr(self.va)
    }

    /// Number of pages the token covers.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Invalidates the translations: one `flush_page` per page for up to
    /// [`FLUSH_CEILING`] pages on a CPU with `invlpg`, else one `flush_all`.
    pub fn flush(self, tlb: &mut impl TlbFlusher) {
        match self.pages {
            0 => {}
            n if tlb.has_invlpg() && n <= FLUSH_CEILING => {
                for i in 0..n {
                    tlb.flush_page(VirtAddr(self.va.wrapping_add(i << PAGE_SHIFT)));
                }
            }
            _ => tlb.flush_all(),
        }
        core::mem::forget(self);
    }

    /// Discards the token without flushing. `reason` documents why that is
    /// correct at the call site (e.g. "page directory not loaded yet").
    pub fn ignore(self, reason: &'static str) {
        let _ = reason;
        core::mem::forget(self);
    }
}

impl Drop for TlbFlush {
    fn drop(&mut self) {
        #[cfg(test)]
        if std::thread::panicking() {
            return;
        }
        panic!(
            "TLB flush token for {} page(s) at {:#010x} dropped: call flush() or ignore(reason)",
            self.pages, self.va
        );
    }
}

/// Why a mapping change was refused. Nothing was changed when one is
/// returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `va` or `pa` is not a multiple of 4 KiB.
    Misaligned {
        /// The virtual address.
        va: VirtAddr,
        /// The physical address.
        pa: PhysAddr,
    },
    /// `va` lies outside the range this address space manages.
    OutOfRange {
        /// The virtual address.
        va: VirtAddr,
    },
    /// `va` is already mapped, to frame `pa`.
    AlreadyMapped {
        /// The virtual address.
        va: VirtAddr,
        /// Where it points now.
        pa: PhysAddr,
    },
    /// `va` is not mapped.
    NotMapped {
        /// The virtual address.
        va: VirtAddr,
    },
    /// No frame for a page table.
    NoMemory {
        /// The virtual address that needed it.
        va: VirtAddr,
    },
    /// The page-directory entry for `va` maps a 4 MiB page, which this code
    /// never creates and does not change.
    LargePage {
        /// The virtual address.
        va: VirtAddr,
    },
    /// The frames of a range starting at `pa` would run past 4 GiB.
    FrameOutOfRange {
        /// The first physical address.
        pa: PhysAddr,
    },
    /// [`AddressSpace::remove_table`] on a page table this address space
    /// allocated itself (only borrowed tables may be removed that way).
    OwnedTable {
        /// The virtual address.
        va: VirtAddr,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MapError::Misaligned { va, pa } => {
                write!(f, "va {va:#010x} or pa {pa:#010x} is not page-aligned")
            }
            MapError::OutOfRange { va } => {
                write!(f, "va {va:#010x} lies outside this address space's range")
            }
            MapError::AlreadyMapped { va, pa } => {
                write!(f, "va {va:#010x} is already mapped (to pa {pa:#010x})")
            }
            MapError::NotMapped { va } => write!(f, "va {va:#010x} is not mapped"),
            MapError::NoMemory { va } => {
                write!(f, "no memory for a page table to map va {va:#010x}")
            }
            MapError::LargePage { va } => write!(f, "va {va:#010x} lies in a 4 MiB page"),
            MapError::FrameOutOfRange { pa } => {
                write!(f, "the frames from pa {pa:#010x} run past 4 GiB")
            }
            MapError::OwnedTable { va } => write!(
                f,
                "the page table for va {va:#010x} belongs to this address space: unmap its pages instead"
            ),
        }
    }
}

/// Words in the pinned/borrowed bitmaps: one bit per page-directory entry
/// over 4 GiB (2048 under PAE).
const PDE_BITMAP_WORDS: usize = 2048 / 32;

/// One address space: a page directory (under PAE: a PDPT and its page
/// directories) and the page tables it allocated, in one [`PagingMode`].
///
/// It manages virtual `[start, end)` (for the kernel, `PAGE_OFFSET` up);
/// requests outside it are refused with [`MapError::OutOfRange`]. Page
/// tables are allocated when a mapping first needs one and freed when their
/// last entry is unmapped, except *pinned* ones (tables installed with
/// [`AddressSpace::install_table`] or kept with [`AddressSpace::ensure_table`]
/// `pin = true`: the direct map's, the pkmap and fixmap tables, tables
/// borrowed from the boot page directory).
///
/// Under PAE the page directories behind the PDPTEs covering `[start, end)`
/// are allocated with the space and never freed: the CPU reads the four
/// PDPTEs only when CR3 is loaded (SDM §4.4.1), so a PDPTE made present
/// later would not be seen until the next CR3 load (Linux preallocates them
/// for the same reason, `PREALLOCATED_PMDS`).
pub struct AddressSpace {
    mode: PagingMode,
    pgd: PhysAddr,
    /// Under PAE: the page directory behind each PDPTE this space manages.
    pds: [Option<PhysAddr>; 4],
    start: u32,
    end: u64,
    nr_pt_pages: u32,
    nr_pd_pages: u32,
    pinned: [u32; PDE_BITMAP_WORDS],
    borrowed: [u32; PDE_BITMAP_WORDS],
}

impl AddressSpace {
    /// Allocates an empty 32-bit page directory ([`PagingMode::LEGACY`])
    /// managing virtual `[start, end)`.
    ///
    /// # Errors
    /// [`MapError::NoMemory`] if no frame is available.
    pub fn new(frames: &mut impl FrameSource, start: VirtAddr, end: u64) -> Result<Self, MapError> {
        let pgd = frames
            .alloc_table()
            .ok_or(MapError::NoMemory { va: start })?;
        Ok(Self::empty(PagingMode::LEGACY, pgd, start, end))
    }

    /// A space in `mode` with its top-level table at `pgd` and nothing
    /// else: no page directory under a PAE PDPT yet, no page table.
    fn empty(mode: PagingMode, pgd: PhysAddr, start: VirtAddr, end: u64) -> Self {
        AddressSpace {
            mode,
            pgd,
            pds: [None; 4],
            start: start.0,
            end,
            nr_pt_pages: 0,
            nr_pd_pages: 0,
            pinned: [0; PDE_BITMAP_WORDS],
            borrowed: [0; PDE_BITMAP_WORDS],
        }
    }

    /// Allocates an empty address space in `mode` managing virtual
    /// `[start, end)`: a page directory, or under PAE a PDPT with a page
    /// directory behind each PDPTE that `[start, end)` touches (the PDPTEs
    /// written, present and nothing else: R/W and U/S are reserved in a PAE
    /// PDPTE, SDM Table 4-8).
    ///
    /// # Errors
    /// [`MapError::NoMemory`] if no frame is available (frames taken for
    /// the PDPT and earlier page directories are given back).
    pub fn new_in(
        mode: PagingMode,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        start: VirtAddr,
        end: u64,
    ) -> Result<Self, MapError> {
        let no_memory = MapError::NoMemory { va: start };
        let pgd = frames.alloc_table().ok_or(no_memory)?;
        let mut space = Self::empty(mode, pgd, start, end);
        if mode.format == Format::Pae {
            let first = (start.0 >> 30) as usize;
            let last = ((end.max(1) - 1) >> 30).min(3) as usize;
            for i in first..=last {
                let Some(pd) = frames.alloc_table() else {
                    for pd in space.pds.iter().flatten() {
                        frames.free_table(*pd);
                    }
                    frames.free_table(pgd);
                    return Err(no_memory);
                };
                space.pds[i] = Some(pd);
                space.nr_pd_pages += 1;
                let pdpte = pd.0 | PDFlags::P.bits();
                mem.with_table(pgd, |t| Format::Pae.write(t, i, pdpte));
            }
        }
        Ok(space)
    }

    /// The paging mode the tables are written in.
    pub fn mode(&self) -> PagingMode {
        self.mode
    }

    /// What CR3 holds: the page directory (32-bit paging) or the PDPT
    /// (PAE).
    pub fn pgd(&self) -> PhysAddr {
        self.pgd
    }

    /// Page tables this address space allocated and still holds (page
    /// directories and the PDPT not counted).
    pub fn nr_pt_pages(&self) -> u32 {
        self.nr_pt_pages
    }

    /// Page directories under the PDPT (PAE), 0 under 32-bit paging.
    pub fn nr_pd_pages(&self) -> u32 {
        self.nr_pd_pages
    }

    /// The managed virtual range, `[start, end)` (`end` a number: it may be
    /// 4 GiB).
    pub fn range(&self) -> (VirtAddr, u64) {
        (VirtAddr(self.start), self.end)
    }

    /// Moves the end of the managed range to `end`: the kernel stops
    /// managing the areas above `PKMAP_BASE` through this API once their
    /// tables exist, since their slots have their own bookkeeping. Tables
    /// installed earlier stay, and [`AddressSpace::remove_table`] and
    /// [`AddressSpace::dump`] still reach them.
    pub fn set_end(&mut self, end: u64) {
        self.end = end;
    }

    fn check(&self, va: u32, pa: u64) -> Result<(), MapError> {
        if !(u64::from(va) | pa).is_multiple_of(u64::from(PAGE_SIZE)) {
            return Err(MapError::Misaligned {
                va: VirtAddr(va),
                pa: PhysAddr(pa),
            });
        }
        if va < self.start || u64::from(va) >= self.end {
            return Err(MapError::OutOfRange { va: VirtAddr(va) });
        }
        Ok(())
    }

    fn bit(&self, va: u32) -> (usize, u32) {
        let n = self.mode.format.pde_number(VirtAddr(va));
        (n / 32, 1 << (n % 32))
    }

    fn is_pinned(&self, va: u32) -> bool {
        let (i, bit) = self.bit(va);
        self.pinned[i] & bit != 0
    }

    fn pin(&mut self, va: u32) {
        let (i, bit) = self.bit(va);
        self.pinned[i] |= bit;
    }

    /// Checks that `pages` pages from `va` and from `pa` stay inside the
    /// managed range and below the format's physical limit.
    fn check_span(&self, va: u32, pa: u64, pages: u32) -> Result<(), MapError> {
        let bytes = u64::from(pages) << PAGE_SHIFT;
        if u64::from(va) + bytes > self.end {
            // The first page past the end (0 if that is 4 GiB itself).
            return Err(MapError::OutOfRange {
                va: VirtAddr(self.end.max(u64::from(va)) as u32),
            });
        }
        if pa + bytes > self.mode.format.phys_limit() {
            return Err(MapError::FrameOutOfRange { pa: PhysAddr(pa) });
        }
        Ok(())
    }

    /// The page directory holding `va`'s PDE.
    ///
    /// # Panics
    /// Under PAE, for an address whose page directory this space does not
    /// hold (outside the range given to [`AddressSpace::new_in`]).
    fn pd(&self, va: u32) -> PhysAddr {
        match self.mode.format {
            Format::TwoLevel => self.pgd,
            Format::Pae => self.pds[(va >> 30) as usize]
                .unwrap_or_else(|| panic!("va {va:#010x}: no page directory in this space")),
        }
    }

    fn pde(&self, mem: &mut impl PageTableMemory, va: u32) -> PDEntry {
        let f = self.mode.format;
        PDEntry(mem.with_table(self.pd(va), |t| f.read(t, f.pde_index(VirtAddr(va)))))
    }

    fn set_pde(&self, mem: &mut impl PageTableMemory, va: u32, e: u64) {
        let f = self.mode.format;
        mem.with_table(self.pd(va), |t| f.write(t, f.pde_index(VirtAddr(va)), e));
    }

    fn pte(&self, mem: &mut impl PageTableMemory, table: PhysAddr, va: u32) -> PTEntry {
        let f = self.mode.format;
        PTEntry(mem.with_table(table, |t| f.read(t, f.pte_index(VirtAddr(va)))))
    }

    /// The leaf entry for `flags` at `pa`: P added, and the flags this mode
    /// does not support (G without PGE, NX without NX) dropped, as Linux
    /// masks with `__supported_pte_mask`.
    fn leaf(&self, pa: u64, flags: PTFlags) -> u64 {
        PTEntry::new(PhysAddr(pa), (flags | PTFlags::P) & self.mode.supported()).0
    }

    /// Bits 21..0 (4 MiB) or 20..0 (2 MiB) of a virtual address: the
    /// offset within one PDE's span.
    fn pde_mask(&self) -> u32 {
        self.mode.format.pde_span() - 1
    }

    /// The page table for `va`, allocated (zeroed) and installed if there is
    /// none yet (Linux `one_page_table_init`). With `pin`, it is never freed.
    ///
    /// # Errors
    /// [`MapError::OutOfRange`], [`MapError::NoMemory`],
    /// [`MapError::LargePage`].
    pub fn ensure_table(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pin: bool,
    ) -> Result<PhysAddr, MapError> {
        self.check(va.page_align_down().0, 0)?;
        let pde = self.pde(mem, va.0);
        let table = if pde.is_present() {
            if pde.is_page() {
                return Err(MapError::LargePage { va });
            }
            pde.address()
        } else {
            let table = frames.alloc_table().ok_or(MapError::NoMemory { va })?;
            self.set_pde(mem, va.0, table.0 | PDE_TABLE_FLAGS.bits());
            self.nr_pt_pages += 1;
            table
        };
        if pin {
            self.pin(va.0);
        }
        Ok(table)
    }

    /// Points the page-directory entry for `va` at an existing page table
    /// that this address space does not own (it is pinned, never freed or
    /// counted): how the final 32-bit page directory borrows the boot stub's
    /// early map table. The table must be in this space's format.
    ///
    /// # Errors
    /// [`MapError::OutOfRange`], [`MapError::Misaligned`] (a table address
    /// that is not page-aligned), [`MapError::FrameOutOfRange`] (a table
    /// beyond what a directory entry can hold), or
    /// [`MapError::AlreadyMapped`] if the entry is present.
    pub fn install_table(
        &mut self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
        table: PhysAddr,
    ) -> Result<TlbFlush, MapError> {
        let asked = va;
        let va = va.0 & !self.pde_mask();
        self.check(va, table.0)?;
        if table.0 >= self.mode.format.phys_limit() {
            return Err(MapError::FrameOutOfRange { pa: table });
        }
        let pde = self.pde(mem, va);
        if pde.is_present() {
            return Err(MapError::AlreadyMapped {
                va: asked,
                pa: pde.address(),
            });
        }
        self.set_pde(mem, va, table.0 | PDE_TABLE_FLAGS.bits());
        self.pin(va);
        let (i, bit) = self.bit(va);
        self.borrowed[i] |= bit;
        Ok(TlbFlush::new(va, self.mode.format.pages_per_pde()))
    }

    /// Clears the page-directory entry of a table installed with
    /// [`AddressSpace::install_table`] (its span becomes unmapped).
    ///
    /// # Errors
    /// [`MapError::OutOfRange`] below the managed start,
    /// [`MapError::NotMapped`] if the entry is not present,
    /// [`MapError::OwnedTable`] if the table was not installed with
    /// [`AddressSpace::install_table`].
    pub fn remove_table(
        &mut self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
    ) -> Result<TlbFlush, MapError> {
        if va.0 < self.start {
            return Err(MapError::OutOfRange { va });
        }
        if !self.pde(mem, va.0).is_present() {
            return Err(MapError::NotMapped { va });
        }
        let (i, bit) = self.bit(va.0);
        if self.borrowed[i] & bit == 0 {
            return Err(MapError::OwnedTable { va });
        }
        let va = va.0 & !self.pde_mask();
        self.borrowed[i] &= !bit;
        self.pinned[i] &= !bit;
        self.set_pde(mem, va, 0);
        Ok(TlbFlush::new(va, self.mode.format.pages_per_pde()))
    }

    /// Clears the page-directory entry of a pinned table this space
    /// allocated (with [`AddressSpace::ensure_table`]) and frees the table,
    /// whatever it still maps: how the PAE directory drops its copy of the
    /// early map window.
    ///
    /// # Errors
    /// [`MapError::OutOfRange`], [`MapError::NotMapped`] if the entry is not
    /// present, [`MapError::LargePage`], [`MapError::OwnedTable`] if the
    /// table is borrowed (use [`AddressSpace::remove_table`]) or not pinned
    /// (unmap its pages instead).
    pub fn free_pinned_table(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
    ) -> Result<TlbFlush, MapError> {
        if va.0 < self.start {
            return Err(MapError::OutOfRange { va });
        }
        let pde = self.pde(mem, va.0);
        if !pde.is_present() {
            return Err(MapError::NotMapped { va });
        }
        if pde.is_page() {
            return Err(MapError::LargePage { va });
        }
        let (i, bit) = self.bit(va.0);
        if self.borrowed[i] & bit != 0 || self.pinned[i] & bit == 0 {
            return Err(MapError::OwnedTable { va });
        }
        let va = va.0 & !self.pde_mask();
        self.pinned[i] &= !bit;
        self.set_pde(mem, va, 0);
        frames.free_table(pde.address());
        self.nr_pt_pages -= 1;
        Ok(TlbFlush::new(va, self.mode.format.pages_per_pde()))
    }

    /// Maps the page at `va` to the frame at `pa` with `flags` (`P` is
    /// added; flags the mode does not support are dropped), allocating a
    /// page table if needed.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::OutOfRange`],
    /// [`MapError::AlreadyMapped`], [`MapError::NoMemory`],
    /// [`MapError::LargePage`], [`MapError::FrameOutOfRange`]. On error no
    /// entry changed.
    pub fn map_page(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PTFlags,
    ) -> Result<TlbFlush, MapError> {
        self.map_range(mem, frames, va, pa, 1, flags)
    }

    /// Points the mapped page at `va` to frame `pa` with `flags`, returning
    /// the previous frame. Until the token is flushed the CPU may still use
    /// the old frame: this is the change the TLB self-test makes.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::OutOfRange`],
    /// [`MapError::FrameOutOfRange`], [`MapError::NotMapped`],
    /// [`MapError::LargePage`].
    pub fn remap_page(
        &mut self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PTFlags,
    ) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.check(va.0, pa.0)?;
        self.check_span(va.0, pa.0, 1)?;
        let table = self.leaf_table(mem, va)?;
        let old = self.pte(mem, table, va.0).address();
        let entry = self.leaf(pa.0, flags);
        let f = self.mode.format;
        mem.with_table(table, |t| f.write(t, f.pte_index(va), entry));
        Ok((old, TlbFlush::new(va.0, 1)))
    }

    /// The page table holding the present PTE of `va`.
    fn leaf_table(
        &self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
    ) -> Result<PhysAddr, MapError> {
        let pde = self.pde(mem, va.0);
        if !pde.is_present() {
            return Err(MapError::NotMapped { va });
        }
        if pde.is_page() {
            return Err(MapError::LargePage { va });
        }
        if !self.pte(mem, pde.address(), va.0).is_present() {
            return Err(MapError::NotMapped { va });
        }
        Ok(pde.address())
    }

    /// Unmaps the page at `va` and returns the frame it mapped. A page table
    /// left empty is freed (unless pinned) and its directory entry cleared;
    /// the token's flush also covers that (an `invlpg` drops cached
    /// paging-structure entries too, Intel SDM Vol. 3A §4.10.4.1).
    ///
    /// The freed table goes back to the frame source at once, before the
    /// caller flushes: flush the token before the next allocation, or a CPU
    /// with paging-structure caches could still walk the old directory entry
    /// into the frame's next use (Linux defers the free instead,
    /// `tlb_remove_table`).
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::OutOfRange`],
    /// [`MapError::NotMapped`], [`MapError::LargePage`].
    pub fn unmap_page(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
    ) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.check(va.0, 0)?;
        let table = self.leaf_table(mem, va)?;
        let pa = self.pte(mem, table, va.0).address();
        let f = self.mode.format;
        let empty = mem.with_table(table, |t| {
            f.write(t, f.pte_index(va), 0);
            t.iter().all(|&e| e == 0)
        });
        if empty && !self.is_pinned(va.0) {
            self.set_pde(mem, va.0, 0);
            frames.free_table(table);
            self.nr_pt_pages -= 1;
        }
        Ok((pa, TlbFlush::new(va.0, 1)))
    }

    /// The physical address `va` maps to (with the offset within the page,
    /// or within a large page) and the leaf entry's flags (Linux
    /// `slow_virt_to_phys`).
    ///
    /// # Errors
    /// [`MapError::NotMapped`].
    pub fn translate(
        &self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
    ) -> Result<(PhysAddr, PTFlags), MapError> {
        let w = self.walk(mem, va);
        match (w.pa(), w.leaf_flags()) {
            (Some(pa), Some(flags)) => Ok((pa, flags)),
            _ => Err(MapError::NotMapped { va }),
        }
    }

    /// Walks the page tables for `va` (see [`fn@walk`]).
    pub fn walk(&self, mem: &mut impl PageTableMemory, va: VirtAddr) -> Walk {
        walk(mem, self.mode.format, self.pgd, va)
    }

    /// Maps `pages` pages from `va` to consecutive frames from `pa`.
    ///
    /// # Errors
    /// As [`AddressSpace::map_page`], for the first page that cannot be
    /// mapped, and [`MapError::FrameOutOfRange`] if the frames run past what
    /// the format can hold (4 GiB, or 64 GiB under PAE). Every page is
    /// checked before any entry is written, so on error no entry changed;
    /// after [`MapError::NoMemory`], page tables allocated for the first
    /// part of the range stay, empty, for later mappings.
    pub fn map_range(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pa: PhysAddr,
        pages: u32,
        flags: PTFlags,
    ) -> Result<TlbFlush, MapError> {
        self.check(va.0, pa.0)?;
        self.check_span(va.0, pa.0, pages)?;
        let (va, pa) = (va.0, pa.0);
        let page = |i: u32| {
            (
                VirtAddr(va + (i << PAGE_SHIFT)),
                pa + (u64::from(i) << PAGE_SHIFT),
            )
        };
        for i in 0..pages {
            let (v, p) = page(i);
            self.check(v.0, p)?;
            let pde = self.pde(mem, v.0);
            if pde.is_present() && pde.is_page() {
                return Err(MapError::LargePage { va: v });
            }
            if let Ok((old, _)) = self.translate(mem, v) {
                return Err(MapError::AlreadyMapped { va: v, pa: old });
            }
        }
        let f = self.mode.format;
        for i in 0..pages {
            let (v, _) = page(i);
            if i == 0 || f.pte_index(v) == 0 {
                self.ensure_table(mem, frames, v, false)?;
            }
        }
        for i in 0..pages {
            let (v, p) = page(i);
            let table = self.pde(mem, v.0).address();
            let entry = self.leaf(p, flags);
            mem.with_table(table, |t| f.write(t, f.pte_index(v), entry));
        }
        Ok(TlbFlush::new(va, pages))
    }

    /// Unmaps `pages` pages from `va`, calling `on_page(va, pa)` for each
    /// frame unmapped; empty page tables are freed as in
    /// [`AddressSpace::unmap_page`].
    ///
    /// # Errors
    /// [`MapError::NotMapped`] (or another [`AddressSpace::unmap_page`]
    /// error) for the first page that is not mapped; all pages are checked
    /// before any is unmapped, so on error nothing changed.
    pub fn unmap_range(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pages: u32,
        mut on_page: impl FnMut(VirtAddr, PhysAddr),
    ) -> Result<TlbFlush, MapError> {
        let va = va.0;
        self.check(va, 0)?;
        self.check_span(va, 0, pages)?;
        for i in 0..pages {
            let v = va + (i << PAGE_SHIFT);
            self.check(v, 0)?;
            self.leaf_table(mem, VirtAddr(v))?;
        }
        for i in 0..pages {
            let v = VirtAddr(va + (i << PAGE_SHIFT));
            let (pa, flush) = self.unmap_page(mem, frames, v)?;
            flush.ignore("covered by the range token returned below");
            on_page(v, pa);
        }
        Ok(TlbFlush::new(va, pages))
    }

    /// Maps `pages` pages from `va` to the consecutive frames from `pa`, a
    /// page-directory entry at a time, with the flags `flags_for(pfn)`
    /// returns; `None` leaves that page unmapped (a hole, such as the null
    /// page). This is how the direct map is built (Linux
    /// `kernel_physical_mapping_init`): one [`PageTableMemory::with_table`]
    /// per page table, not per page.
    ///
    /// With `large_pages`, a whole page-directory entry's span (4 MiB, or
    /// 2 MiB under PAE) whose frames are aligned to it and all get the same
    /// flags is mapped by one large-page PDE (PS), without a page table;
    /// any other span gets a pinned page table. `flags_for` is called once
    /// or twice per frame: it must give the same answer each time.
    ///
    /// # Errors
    /// As [`AddressSpace::map_range`], except that the pages are not all
    /// checked first: on error, the pages before the failing one are mapped
    /// (the caller, at boot, treats this as fatal).
    #[allow(clippy::too_many_arguments)]
    pub fn map_linear(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pa: PhysAddr,
        pages: u32,
        large_pages: bool,
        flags_for: impl Fn(Pfn) -> Option<PTFlags>,
    ) -> Result<TlbFlush, MapError> {
        self.check(va.0, pa.0)?;
        self.check_span(va.0, pa.0, pages)?;
        let (va, first) = (va.0, pa.pfn());
        let f = self.mode.format;
        let per_pde = f.pages_per_pde();
        let mut done = 0;
        while done < pages {
            let v = VirtAddr(va + (done << PAGE_SHIFT));
            let n = (per_pde - f.pte_index(v) as u32).min(pages - done);
            let base = first + done;
            if large_pages && n == per_pde && base.0.is_multiple_of(per_pde) {
                let flags = flags_for(base);
                if let Some(flags) =
                    flags.filter(|&fl| (1..n).all(|i| flags_for(base + i) == Some(fl)))
                {
                    let pde = self.pde(mem, v.0);
                    if pde.is_present() {
                        return Err(MapError::AlreadyMapped {
                            va: v,
                            pa: pde.address(),
                        });
                    }
                    let e = self.leaf(base.phys().0, flags);
                    self.set_pde(mem, v.0, e | PDFlags::PS.bits());
                    done += n;
                    continue;
                }
            }
            let table = self.ensure_table(mem, frames, v, true)?;
            let supported = self.mode.supported();
            let conflict = mem.with_table(table, |t| {
                for i in 0..n {
                    let pfn = base + i;
                    let slot = f.pte_index(v) + i as usize;
                    let old = PTEntry(f.read(t, slot));
                    if old.is_present() {
                        return Some((v + (i << PAGE_SHIFT), old.address()));
                    }
                    if let Some(flags) = flags_for(pfn) {
                        let e = PTEntry::new(pfn.phys(), (flags | PTFlags::P) & supported);
                        f.write(t, slot, e.0);
                    }
                }
                None
            });
            if let Some((va, pa)) = conflict {
                return Err(MapError::AlreadyMapped { va, pa });
            }
            done += n;
        }
        Ok(TlbFlush::new(va, pages))
    }

    /// Calls `out` with the present mappings from `start` to 4 GiB (past
    /// the managed end too: borrowed and pinned tables are shown), folded:
    /// runs of pages mapped to consecutive frames with equal flags and page
    /// size (Accessed and Dirty ignored) become one [`DumpRange`].
    pub fn dump(&self, mem: &mut impl PageTableMemory, out: impl FnMut(&DumpRange)) {
        dump(
            mem,
            self.mode.format,
            self.pgd,
            VirtAddr(self.start),
            1 << 32,
            out,
        )
    }
}

/// Page tables come from the buddy allocator: one zeroed lowmem page each
/// (`GFP_KERNEL | __GFP_ZERO`, order 0; Linux `pte_alloc_one_kernel`).
impl FrameSource for BuddyAllocator<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        // Ownership ends here: the directory entry holds the table until
        // `free_table`.
        let (pfn, _) = self.alloc_pages(GFP_KERNEL | Gfp::ZERO, 0)?.into_raw();
        Some(pfn.phys())
    }

    fn free_table(&mut self, table: PhysAddr) {
        if let Err(e) = self.free_pages_raw(table.pfn(), 0) {
            panic!("page table {table:#010x} could not be freed: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
