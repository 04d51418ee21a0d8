//! Page tables: map, unmap and translate over two-level 32-bit paging, with
//! TLB invalidation the caller cannot forget.
//!
//! This module is pure logic. It reaches page-table memory through
//! [`PageTableMemory`], gets page-table frames from a [`FrameSource`] (the
//! buddy allocator in the kernel) and invalidates translations through a
//! [`TlbFlusher`]; the kernel implements these in `arch::x86::paging`, the
//! host tests with the emulated machine of `crate::test_support::mmu`
//! (physical memory in a byte vector, a TLB that only changes on
//! invalidation). [`kernel_space`] builds the kernel's final page directory
//! from these pieces, so the host tests walk the very directory the kernel
//! runs on.
//!
//! ```text
//!  CR3 ──> page directory (1024 PDEs)        page table (1024 PTEs)
//!          PDE[va >> 22] ─────────────────>  PTE[(va >> 12) & 1023] ──> frame
//!                                                                 + (va & 0xfff)
//!  PDE/PTE: bits 31..12 frame address, 8 G, 7 PS (PDE) / PAT (PTE), 6 D,
//!           5 A, 4 PCD, 3 PWT, 2 U/S, 1 R/W, 0 P
//! ```
//!
//! Entries use the `x86` crate's 32-bit types (`PDEntry`, `PTEntry`,
//! `PDFlags`, `PTFlags`). Page directory entries are always made present and
//! writable: the CPU combines the R/W bits of both levels, so the PTE alone
//! decides (Intel SDM Vol. 3A §4.6 "Access Rights").
//!
//! Addresses in the API are [`crate::addr`]'s types: [`VirtAddr`] for what
//! is mapped, [`PhysAddr`] for frames and tables. The crate's `PAddr` only
//! appears where an entry is built or decoded ([`pfn_pte`], [`pte_phys`],
//! [`pde_phys`]): a two-level entry holds a 32-bit frame address, so a
//! [`PhysAddr`] at or above 4 GiB cannot go into one.
//!
//! # TLB invalidation
//! Every change to a present mapping returns a [`TlbFlush`] token, marked
//! `#[must_use]`. The caller either runs it ([`TlbFlush::flush`]) once the
//! change should be visible, or discards it with a reason
//! ([`TlbFlush::ignore`]), e.g. because the page directory is not loaded
//! yet. Dropping a token without either is a bug and panics: a stale TLB
//! entry would otherwise let the CPU keep using the old frame silently.
//! (The x86_64 crate's `MapperFlush` is the model; the panic on drop is
//! stricter.)
//!
//! # References
//! - Intel SDM Vol. 3A, §4.3 "32-Bit Paging" (Tables 4-4 to 4-6, the entry
//!   formats), §4.10.4 "Invalidation of TLBs and Paging-Structure Caches".
//! - Linux: `mm/memory.c`, `arch/x86/mm/init_32.c`
//!   (`kernel_physical_mapping_init`, `one_page_table_init`),
//!   `arch/x86/mm/tlb.c` (`tlb_single_page_flush_ceiling`).

pub mod kernel_space;

use super::buddy::BuddyAllocator;
use super::gfp::{GFP_KERNEL, Gfp};
use super::layout::{ENTRIES_PER_TABLE, PAGE_SHIFT, PAGE_SIZE, pdx, ptx};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use core::fmt;
use x86::bits32::paging::PAddr;
pub use x86::bits32::paging::{PDEntry, PDFlags, PTEntry, PTFlags};

/// The page-table entry that maps frame `pfn` with `flags` (Linux
/// `pfn_pte`; `P` is not added).
///
/// # Panics
/// If the frame lies at or above 4 GiB (a two-level entry holds 32 bits).
pub fn pfn_pte(pfn: Pfn, flags: PTFlags) -> PTEntry {
    PTEntry::new(PAddr(pfn.phys().as_u32()), flags)
}

/// The frame address a page-table entry holds (bits 31..12).
pub fn pte_phys(pte: PTEntry) -> PhysAddr {
    PhysAddr::from_u32(pte.address().as_u32())
}

/// The address a page-directory entry holds: its page table's, or a 4 MiB
/// page's.
pub fn pde_phys(pde: PDEntry) -> PhysAddr {
    PhysAddr::from_u32(pde.address().as_u32())
}

/// The entry that points a page-directory slot at page table `table`, with
/// [`PDE_TABLE_FLAGS`].
fn table_pde(table: PhysAddr) -> PDEntry {
    PDEntry::new(PAddr(table.as_u32()), PDE_TABLE_FLAGS)
}

/// Flags of every page-directory entry the kernel writes, the boot stub's
/// included: present and writable. The CPU combines the R/W bits of both
/// levels, so the PTE alone decides (Intel SDM Vol. 3A §4.6).
pub const PDE_TABLE_FLAGS: PDFlags = PDFlags::P.union(PDFlags::RW);

/// Value: 0x003 (`P RW`). `PDE_FLAGS` in `boot/entry.S`: the flags of the
/// boot page directory's entries ([`PDE_TABLE_FLAGS`] as a number, for a
/// `global_asm!` operand).
pub const BOOT_PDE_FLAGS: u32 = PDE_TABLE_FLAGS.bits();

/// Value: 0x003 (`P RW`). `PTE_FLAGS` in `boot/entry.S`: the flags of the
/// boot page tables' entries, present and writable, supervisor-only (the
/// boot map covers the image and memblock's first allocations; the final
/// directory makes the kernel's code read-only).
pub const BOOT_PTE_FLAGS: u32 = PTFlags::P.union(PTFlags::RW).bits();

/// Entries of one page directory or page table.
pub type Table = [u32; ENTRIES_PER_TABLE as usize];

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
    /// Drops every non-global translation (a CR3 reload).
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

/// The entry flags as short names (`P RW US PWT PCD A D PS/PAT G`), or
/// `not present`.
pub struct EntryFlags {
    bits: u32,
    is_pde: bool,
}

impl EntryFlags {
    /// Flags of a page-directory entry.
    pub fn pde(e: PDEntry) -> Self {
        EntryFlags {
            bits: e.0,
            is_pde: true,
        }
    }

    /// Flags of a page-table entry.
    pub fn pte(e: PTEntry) -> Self {
        EntryFlags {
            bits: e.0,
            is_pde: false,
        }
    }
}

impl fmt::Display for EntryFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits & PTFlags::P.bits() == 0 {
            return f.write_str("not present");
        }
        let bit7 = if self.is_pde { "PS" } else { "PAT" };
        let names = ["P", "RW", "US", "PWT", "PCD", "A", "D", bit7, "G"];
        let mut first = true;
        for (i, name) in names.iter().enumerate() {
            if self.bits & (1 << i) != 0 {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if self.bits & PTFlags::RW.bits() == 0 {
            f.write_str(" (read-only)")?;
        }
        Ok(())
    }
}

/// A software page-table walk of one address (what the MMU does on a TLB
/// miss), for fault reports and `translate`-style logging.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    /// The address walked.
    pub va: VirtAddr,
    /// The page directory (CR3).
    pub pgd: PhysAddr,
    /// `PDE[pdx(va)]`.
    pub pde: PDEntry,
    /// `PTE[ptx(va)]`, if the PDE is present and points at a page table.
    pub pte: Option<PTEntry>,
}

impl Walk {
    /// The physical address `va` translates to, if both levels are present.
    pub fn pa(&self) -> Option<PhysAddr> {
        let pte = self.pte?;
        pte.is_present()
            .then(|| pte_phys(pte) + u64::from(self.va.page_offset()))
    }
}

impl fmt::Display for Walk {
    /// One line: `va 0x... : PDE[768] = 0x... (P RW A) -> page table 0x...;
    /// PTE[257] = 0x... (P A (read-only)) -> pa 0x...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "va {:#010x}: PDE[{}] = {:#010x} ({})",
            self.va,
            self.va.pdx(),
            self.pde.0,
            EntryFlags::pde(self.pde)
        )?;
        if !self.pde.is_present() {
            return f.write_str(" -> no page table");
        }
        if self.pde.is_page() {
            return write!(f, " -> 4 MiB page {:#010x}", self.pde.address().as_u32());
        }
        write!(f, " -> page table {:#010x}", self.pde.address().as_u32())?;
        if let Some(pte) = self.pte {
            write!(
                f,
                "; PTE[{}] = {:#010x} ({})",
                self.va.ptx(),
                pte.0,
                EntryFlags::pte(pte)
            )?;
            match self.pa() {
                Some(pa) => write!(f, " -> pa {pa:#010x}")?,
                None => f.write_str(" -> no frame")?,
            }
        }
        Ok(())
    }
}

/// Walks the page tables under page directory `pgd` for `va`.
pub fn walk(mem: &mut impl PageTableMemory, pgd: PhysAddr, va: VirtAddr) -> Walk {
    let pde = PDEntry(mem.with_table(pgd, |t| t[va.pdx() as usize]));
    let pte = (pde.is_present() && !pde.is_page())
        .then(|| PTEntry(mem.with_table(pde_phys(pde), |t| t[va.ptx() as usize])));
    Walk { va, pgd, pde, pte }
}

/// Writes `entry` into the PTE for `va` of the page table at `table`, a
/// table the caller owns outright (the pkmap and fixmap tables, whose slots
/// are handed out by their own bookkeeping), and returns the flush that makes
/// the change visible.
pub fn set_pte(
    mem: &mut impl PageTableMemory,
    table: PhysAddr,
    va: VirtAddr,
    entry: PTEntry,
) -> TlbFlush {
    let va = va.page_align_down();
    mem.with_table(table, |t| t[va.ptx() as usize] = entry.0);
    TlbFlush::new(va.0, 1)
}

/// Value: 0x19f. Flags compared when folding a dump: bits 8..0 but
/// Accessed and Dirty, which the CPU sets behind our back.
const DUMP_FLAGS_MASK: u32 = 0x1ff & !PTFlags::A.union(PTFlags::D).bits();

/// One line of [`AddressSpace::dump`]: `pages` pages from `va` mapped to
/// consecutive frames from `pa`, all with the same flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpRange {
    /// First virtual address.
    pub va: VirtAddr,
    /// First physical address.
    pub pa: PhysAddr,
    /// Number of 4 KiB pages.
    pub pages: u32,
    /// PTE flags (low 12 bits, without A and D).
    pub flags: u32,
}

impl fmt::Display for DumpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = u64::from(self.pages) << PAGE_SHIFT;
        write!(
            f,
            "[{:#010x}, {:#010x}) -> [{:#010x}, {:#010x}) {:>6} pages  {}",
            self.va,
            u64::from(self.va.0) + bytes,
            self.pa,
            self.pa.0 + bytes,
            self.pages,
            EntryFlags::pte(PTEntry(self.flags))
        )
    }
}

/// One address space: a page directory and the page tables it allocated.
///
/// It manages virtual `[start, end)` (for the kernel, `PAGE_OFFSET` up);
/// requests outside it are refused with [`MapError::OutOfRange`]. Page
/// tables are allocated when a mapping first needs one and freed when their
/// last entry is unmapped, except *pinned* ones (tables installed with
/// [`AddressSpace::install_table`] or kept with [`AddressSpace::ensure_table`]
/// `pin = true`: the direct map's, the pkmap and fixmap tables, tables
/// borrowed from the boot page directory).
pub struct AddressSpace {
    pgd: PhysAddr,
    start: u32,
    end: u64,
    nr_pt_pages: u32,
    pinned: [u32; ENTRIES_PER_TABLE as usize / 32],
    borrowed: [u32; ENTRIES_PER_TABLE as usize / 32],
}

impl AddressSpace {
    /// Allocates an empty page directory managing virtual `[start, end)`.
    ///
    /// # Errors
    /// [`MapError::NoMemory`] if no frame is available.
    pub fn new(frames: &mut impl FrameSource, start: VirtAddr, end: u64) -> Result<Self, MapError> {
        let pgd = frames
            .alloc_table()
            .ok_or(MapError::NoMemory { va: start })?;
        Ok(AddressSpace {
            pgd,
            start: start.0,
            end,
            nr_pt_pages: 0,
            pinned: [0; ENTRIES_PER_TABLE as usize / 32],
            borrowed: [0; ENTRIES_PER_TABLE as usize / 32],
        })
    }

    /// Physical address of the page directory (what CR3 holds).
    pub fn pgd(&self) -> PhysAddr {
        self.pgd
    }

    /// Page tables this address space allocated and still holds (the page
    /// directory not counted).
    pub fn nr_pt_pages(&self) -> u32 {
        self.nr_pt_pages
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

    fn is_pinned(&self, pde: u32) -> bool {
        self.pinned[pde as usize / 32] & (1 << (pde % 32)) != 0
    }

    fn pin(&mut self, pde: u32) {
        self.pinned[pde as usize / 32] |= 1 << (pde % 32);
    }

    /// Checks that `pages` pages from `va` and from `pa` stay inside the
    /// managed range and below 4 GiB.
    fn check_span(&self, va: u32, pa: u64, pages: u32) -> Result<(), MapError> {
        let bytes = u64::from(pages) << PAGE_SHIFT;
        if u64::from(va) + bytes > self.end {
            // The first page past the end (0 if that is 4 GiB itself).
            return Err(MapError::OutOfRange {
                va: VirtAddr(self.end.max(u64::from(va)) as u32),
            });
        }
        if pa + bytes > 1 << 32 {
            return Err(MapError::FrameOutOfRange { pa: PhysAddr(pa) });
        }
        Ok(())
    }

    fn pde(&self, mem: &mut impl PageTableMemory, va: u32) -> PDEntry {
        PDEntry(mem.with_table(self.pgd, |t| t[pdx(va) as usize]))
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
            pde_phys(pde)
        } else {
            let table = frames.alloc_table().ok_or(MapError::NoMemory { va })?;
            let entry = table_pde(table);
            mem.with_table(self.pgd, |t| t[va.pdx() as usize] = entry.0);
            self.nr_pt_pages += 1;
            table
        };
        if pin {
            self.pin(va.pdx());
        }
        Ok(table)
    }

    /// Points the page-directory entry for `va` at an existing page table
    /// that this address space does not own (it is pinned, never freed or
    /// counted): how the final page directory borrows the boot stub's early
    /// map table.
    ///
    /// # Errors
    /// [`MapError::OutOfRange`], [`MapError::Misaligned`] (a table address
    /// that is not page-aligned), [`MapError::FrameOutOfRange`] (a table at
    /// or above 4 GiB, which no directory entry can hold), or
    /// [`MapError::AlreadyMapped`] if the entry is present.
    pub fn install_table(
        &mut self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
        table: PhysAddr,
    ) -> Result<TlbFlush, MapError> {
        let va = va.0;
        self.check(va & !PDE_MASK, table.0)?;
        if table.0 >= 1 << 32 {
            return Err(MapError::FrameOutOfRange { pa: table });
        }
        let pde = self.pde(mem, va);
        if pde.is_present() {
            return Err(MapError::AlreadyMapped {
                va: VirtAddr(va),
                pa: pde_phys(pde),
            });
        }
        let entry = table_pde(table);
        mem.with_table(self.pgd, |t| t[pdx(va) as usize] = entry.0);
        self.pin(pdx(va));
        let i = pdx(va);
        self.borrowed[i as usize / 32] |= 1 << (i % 32);
        Ok(TlbFlush::new(va & !PDE_MASK, ENTRIES_PER_TABLE))
    }

    /// Clears the page-directory entry of a table installed with
    /// [`AddressSpace::install_table`] (its 4 MiB become unmapped).
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
        let (i, bit) = (va.pdx() as usize / 32, 1 << (va.pdx() % 32));
        if self.borrowed[i] & bit == 0 {
            return Err(MapError::OwnedTable { va });
        }
        let va = va.0;
        self.borrowed[i] &= !bit;
        self.pinned[i] &= !bit;
        mem.with_table(self.pgd, |t| t[pdx(va) as usize] = 0);
        Ok(TlbFlush::new(va & !PDE_MASK, ENTRIES_PER_TABLE))
    }

    /// Maps the page at `va` to the frame at `pa` with `flags` (`P` is
    /// added), allocating a page table if needed.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::OutOfRange`],
    /// [`MapError::AlreadyMapped`], [`MapError::NoMemory`],
    /// [`MapError::LargePage`]. On error no entry changed.
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
    /// [`MapError::FrameOutOfRange`] (a frame at or above 4 GiB),
    /// [`MapError::NotMapped`].
    pub fn remap_page(
        &mut self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PTFlags,
    ) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.check(va.0, pa.0)?;
        self.check_span(va.0, pa.0, 1)?;
        let (old, _) = self.translate(mem, va)?;
        let table = pde_phys(self.pde(mem, va.0));
        let entry = pfn_pte(pa.pfn(), flags | PTFlags::P);
        let va = va.0;
        mem.with_table(table, |t| t[ptx(va) as usize] = entry.0);
        Ok((old, TlbFlush::new(va, 1)))
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
        let (pa, _) = self.translate(mem, va)?;
        let table = pde_phys(self.pde(mem, va.0));
        let va = va.0;
        let empty = mem.with_table(table, |t| {
            t[ptx(va) as usize] = 0;
            t.iter().all(|&e| e == 0)
        });
        if empty && !self.is_pinned(pdx(va)) {
            mem.with_table(self.pgd, |t| t[pdx(va) as usize] = 0);
            frames.free_table(table);
            self.nr_pt_pages -= 1;
        }
        Ok((pa, TlbFlush::new(va, 1)))
    }

    /// The frame `va` maps to (with the offset within the page) and the
    /// PTE's flags (Linux `slow_virt_to_phys`).
    ///
    /// # Errors
    /// [`MapError::NotMapped`], or [`MapError::LargePage`].
    pub fn translate(
        &self,
        mem: &mut impl PageTableMemory,
        va: VirtAddr,
    ) -> Result<(PhysAddr, PTFlags), MapError> {
        let w = walk(mem, self.pgd, va);
        if w.pde.is_present() && w.pde.is_page() {
            return Err(MapError::LargePage { va });
        }
        match (w.pa(), w.pte) {
            (Some(pa), Some(pte)) => Ok((pa, pte.flags())),
            _ => Err(MapError::NotMapped { va }),
        }
    }

    /// Walks the page tables for `va` (see [`walk`]).
    pub fn walk(&self, mem: &mut impl PageTableMemory, va: VirtAddr) -> Walk {
        walk(mem, self.pgd, va)
    }

    /// Maps `pages` pages from `va` to consecutive frames from `pa`.
    ///
    /// # Errors
    /// As [`AddressSpace::map_page`], for the first page that cannot be
    /// mapped, and [`MapError::FrameOutOfRange`] if the frames run past
    /// 4 GiB. Every page is checked before any entry is written, so on error
    /// no entry changed; after [`MapError::NoMemory`], page tables allocated
    /// for the first part of the range stay, empty, for later mappings.
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
        // Below 4 GiB from here on: check_span saw to it.
        let (va, pa) = (va.0, pa.0 as u32);
        for i in 0..pages {
            let (v, p) = (va + (i << PAGE_SHIFT), pa + (i << PAGE_SHIFT));
            self.check(v, u64::from(p))?;
            if let Ok((old, _)) = self.translate(mem, VirtAddr(v)) {
                return Err(MapError::AlreadyMapped {
                    va: VirtAddr(v),
                    pa: old,
                });
            }
        }
        for i in 0..pages {
            let v = VirtAddr(va + (i << PAGE_SHIFT));
            if i == 0 || v.ptx() == 0 {
                self.ensure_table(mem, frames, v, false)?;
            }
        }
        for i in 0..pages {
            let (v, p) = (va + (i << PAGE_SHIFT), pa + (i << PAGE_SHIFT));
            let table = pde_phys(self.pde(mem, v));
            let entry = pfn_pte(Pfn(p >> PAGE_SHIFT), flags | PTFlags::P);
            mem.with_table(table, |t| t[ptx(v) as usize] = entry.0);
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
            self.translate(mem, VirtAddr(v))?;
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
    /// page table at a time, with the flags `flags_for(pfn)` returns; `None`
    /// leaves that page unmapped (a hole, such as the null page). The page
    /// tables are pinned. This is how the direct map is built (Linux
    /// `kernel_physical_mapping_init`): one [`PageTableMemory::with_table`]
    /// per 4 MiB, not per page.
    ///
    /// # Errors
    /// As [`AddressSpace::map_range`], except that the pages are not all
    /// checked first: on error, the pages before the failing one are mapped
    /// (the caller, at boot, treats this as fatal).
    pub fn map_linear(
        &mut self,
        mem: &mut impl PageTableMemory,
        frames: &mut impl FrameSource,
        va: VirtAddr,
        pa: PhysAddr,
        pages: u32,
        flags_for: impl Fn(Pfn) -> Option<PTFlags>,
    ) -> Result<TlbFlush, MapError> {
        self.check(va.0, pa.0)?;
        self.check_span(va.0, pa.0, pages)?;
        let (va, first) = (va.0, pa.pfn());
        let mut done = 0;
        while done < pages {
            let v = VirtAddr(va + (done << PAGE_SHIFT));
            let n = (ENTRIES_PER_TABLE - v.ptx()).min(pages - done);
            let table = self.ensure_table(mem, frames, v, true)?;
            let base = first + done;
            let conflict = mem.with_table(table, |t| {
                for i in 0..n {
                    let pfn = base + i;
                    let slot = &mut t[(v.ptx() + i) as usize];
                    if *slot & PTFlags::P.bits() != 0 {
                        return Some((v + (i << PAGE_SHIFT), pte_phys(PTEntry(*slot))));
                    }
                    if let Some(flags) = flags_for(pfn) {
                        *slot = pfn_pte(pfn, flags | PTFlags::P).0;
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
    /// runs of pages mapped to consecutive frames with equal flags (Accessed
    /// and Dirty ignored) become one [`DumpRange`].
    pub fn dump(&self, mem: &mut impl PageTableMemory, out: impl FnMut(&DumpRange)) {
        dump(mem, self.pgd, VirtAddr(self.start), 1 << 32, out)
    }
}

/// Bits 21..0 of a virtual address: the offset within one PDE's 4 MiB.
const PDE_MASK: u32 = (1 << 22) - 1;

/// [`AddressSpace::dump`] for any page directory, over virtual
/// `[start, end)`.
pub fn dump(
    mem: &mut impl PageTableMemory,
    pgd: PhysAddr,
    start: VirtAddr,
    end: u64,
    mut out: impl FnMut(&DumpRange),
) {
    let start = start.0;
    let mut run: Option<DumpRange> = None;
    let mut emit = |run: &mut Option<DumpRange>, next: Option<DumpRange>| {
        if let Some(r) = run.take() {
            out(&r);
        }
        *run = next;
    };
    let directory: Table = mem.with_table(pgd, |t| *t);
    for (i, &pde) in directory.iter().enumerate() {
        let pde_va = (i as u32) << 22;
        if u64::from(pde_va) >= end || u64::from(pde_va) + u64::from(PDE_MASK) < u64::from(start) {
            continue;
        }
        let pde = PDEntry(pde);
        if !pde.is_present() || pde.is_page() {
            emit(&mut run, None);
            continue;
        }
        let table: Table = mem.with_table(pde_phys(pde), |t| *t);
        for (j, &pte) in table.iter().enumerate() {
            let va = pde_va | ((j as u32) << PAGE_SHIFT);
            if va < start || u64::from(va) >= end || pte & PTFlags::P.bits() == 0 {
                emit(&mut run, None);
                continue;
            }
            let (va, pa) = (VirtAddr(va), pte_phys(PTEntry(pte)));
            let flags = pte & DUMP_FLAGS_MASK;
            match run.as_mut() {
                Some(r)
                    if r.flags == flags
                        && r.va + (r.pages << PAGE_SHIFT) == va
                        && r.pa + (u64::from(r.pages) << PAGE_SHIFT) == pa =>
                {
                    r.pages += 1
                }
                _ => emit(
                    &mut run,
                    Some(DumpRange {
                        va,
                        pa,
                        pages: 1,
                        flags,
                    }),
                ),
            }
        }
    }
    emit(&mut run, None);
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
