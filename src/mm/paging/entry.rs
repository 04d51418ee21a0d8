//! The paging-structure formats: two-level 32-bit paging and PAE, their
//! entries, and the paging mode the kernel runs (format plus PSE, PGE, NX).
//!
//! ```text
//!  32-bit paging (SDM Vol. 3A §4.3)       PAE paging (SDM Vol. 3A §4.4)
//!  CR3 -> page directory, 1024 x 4 B      CR3 -> PDPT, 4 x 8 B (loaded into
//!         PDE[va >> 22]                          PDPTE registers at the load)
//!          -> page table, 1024 x 4 B             PDPTE[va >> 30]
//!             PTE[(va >> 12) & 1023]              -> page directory, 512 x 8 B
//!          or, with PS (CR4.PSE): a                  PDE[(va >> 21) & 511]
//!             4 MiB page                              -> page table, 512 x 8 B
//!                                                        PTE[(va >> 12) & 511]
//!                                                     or, with PS: a 2 MiB page
//!
//!  entry bits   63 NX (PAE, EFER.NXE) | 51..12 frame (32-bit: 31..12) |
//!               8 G  7 PS (PDE) / PAT (PTE)  6 D  5 A  4 PCD  3 PWT  2 U/S  1 R/W  0 P
//!  PDPTE        only P, PWT, PCD and the address: R/W, U/S, A, D, PS, G, NX
//!               are reserved there (a set reserved bit makes the CR3 load #GP)
//! ```
//!
//! Every entry is handled as a 64-bit value: a 32-bit entry is the low half
//! of the same layout, so one set of flags (the `x86` crate's 64-bit
//! `PTFlags`/`PDFlags`) describes both. [`Format`] reads and writes an
//! entry in a table in its own width.
//!
//! # References
//! - Intel SDM Vol. 3A §4.3 "32-Bit Paging" (Tables 4-4 to 4-6), §4.4 "PAE
//!   Paging" (Tables 4-7 to 4-11), §4.4.1 "PDPTE Registers", §4.6 "Access
//!   Rights", §4.10 "Caching Translation Information".
//! - Linux: `arch/x86/include/asm/pgtable-2level*.h` and
//!   `pgtable-3level*.h` (the two formats), `native_set_pte()` for PAE (the
//!   order of the two halves), `__supported_pte_mask`.

use crate::addr::{PhysAddr, VirtAddr};
use core::fmt;
use core::sync::atomic::{Ordering, compiler_fence};
pub use x86::bits64::paging::{PDFlags, PTFlags};

/// Entries of one 4 KiB table seen as 32-bit words (a page directory or page
/// table of 32-bit paging; under PAE, entry `i` is words `2i` and `2i + 1`).
pub type Table = [u32; 1024];

/// Value: bits 51..12. The frame address bits of a 64-bit entry.
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// The paging-structure format (what CR4.PAE selects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// 32-bit paging: a page directory of 1024 4-byte entries, page tables
    /// of 1024, 4 MiB large pages (SDM §4.3).
    TwoLevel,
    /// PAE paging: a PDPT of four 8-byte entries, page directories and page
    /// tables of 512, 2 MiB large pages, NX (SDM §4.4).
    Pae,
}

impl Format {
    /// Bytes per entry: 4 or 8.
    pub const fn entry_bytes(self) -> u32 {
        match self {
            Format::TwoLevel => 4,
            Format::Pae => 8,
        }
    }

    /// Entries in a page directory or page table: 1024 or 512.
    pub const fn entries(self) -> u32 {
        4096 / self.entry_bytes()
    }

    /// log2 of the bytes one page-directory entry maps: 22 (4 MiB) or 21
    /// (2 MiB).
    pub const fn pde_shift(self) -> u32 {
        match self {
            Format::TwoLevel => 22,
            Format::Pae => 21,
        }
    }

    /// Bytes one page-directory entry maps, the large-page size: 4 MiB or
    /// 2 MiB.
    pub const fn pde_span(self) -> u32 {
        1 << self.pde_shift()
    }

    /// 4 KiB pages per page-directory entry: 1024 or 512.
    pub const fn pages_per_pde(self) -> u32 {
        self.pde_span() >> 12
    }

    /// The first physical address the format cannot map: 4 GiB (32-bit
    /// entries) or 64 GiB (PAE, with MAXPHYADDR 36 as on the Pentium Pro to
    /// Pentium 4; later CPUs reach further, this kernel does not need to).
    pub const fn phys_limit(self) -> u64 {
        match self {
            Format::TwoLevel => 1 << 32,
            Format::Pae => 1 << 36,
        }
    }

    /// Index of `va`'s PDPTE (PAE: bits 31..30); 0 for 32-bit paging.
    pub const fn pdpt_index(self, va: VirtAddr) -> usize {
        match self {
            Format::TwoLevel => 0,
            Format::Pae => (va.0 >> 30) as usize,
        }
    }

    /// Index of `va`'s PDE in its page directory.
    pub const fn pde_index(self, va: VirtAddr) -> usize {
        ((va.0 >> self.pde_shift()) & (self.entries() - 1)) as usize
    }

    /// Index of `va`'s PTE in its page table.
    pub const fn pte_index(self, va: VirtAddr) -> usize {
        ((va.0 >> 12) & (self.entries() - 1)) as usize
    }

    /// Number of `va`'s page-directory entry counted over the whole 4 GiB
    /// (0..1024, or 0..2048 under PAE): `va >> pde_shift`.
    pub const fn pde_number(self, va: VirtAddr) -> usize {
        (va.0 >> self.pde_shift()) as usize
    }

    /// Entry `i` of `table`, zero-extended for 32-bit paging.
    pub fn read(self, table: &Table, i: usize) -> u64 {
        match self {
            Format::TwoLevel => u64::from(table[i]),
            Format::Pae => u64::from(table[2 * i]) | u64::from(table[2 * i + 1]) << 32,
        }
    }

    /// Writes entry `i` of `table`.
    ///
    /// Under PAE an 8-byte entry is two 4-byte stores, and the CPU may walk
    /// the table between them (a speculative walk, or a fault handler's
    /// access). The low half, which holds P, is cleared first, the high half
    /// written, then the low half: the CPU never sees a present entry made of
    /// two different values (Linux `native_set_pte()` for PAE; there,
    /// `cmpxchg8b` where the old entry may be live).
    ///
    /// # Panics
    /// For 32-bit paging, if `e` has bits above 31 (a frame at or above
    /// 4 GiB, or NX): the callers check frames and mask flags before.
    pub fn write(self, table: &mut Table, i: usize, e: u64) {
        match self {
            Format::TwoLevel => {
                assert!(e >> 32 == 0, "32-bit paging entry {e:#x} has bits above 31");
                table[i] = e as u32;
            }
            Format::Pae => {
                table[2 * i] = 0;
                compiler_fence(Ordering::SeqCst);
                table[2 * i + 1] = (e >> 32) as u32;
                compiler_fence(Ordering::SeqCst);
                table[2 * i] = e as u32;
            }
        }
    }

    /// The format's name for the log: `2-level` or `PAE`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::TwoLevel => "2-level",
            Format::Pae => "PAE",
        }
    }
}

/// The paging mode the final page directory uses: the format, and which of
/// the CPU's paging features the kernel turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PagingMode {
    /// 32-bit or PAE entries.
    pub format: Format,
    /// Large pages for the direct map: 4 MiB (32-bit paging, needs CR4.PSE)
    /// or 2 MiB (PAE, where PS needs no CR4 bit).
    pub large_pages: bool,
    /// Kernel mappings are global (G set, CR4.PGE on): a CR3 reload keeps
    /// them in the TLB.
    pub global: bool,
    /// Data mappings are not executable (NX set, EFER.NXE on; PAE only).
    pub nx: bool,
}

impl PagingMode {
    /// Value: 32-bit paging, 4 KiB pages only, no global pages, no NX: what
    /// a 386 runs, and the classic mode of the book's chapter 5
    /// (`paging=2level pse=off pge=off`).
    pub const LEGACY: PagingMode = PagingMode {
        format: Format::TwoLevel,
        large_pages: false,
        global: false,
        nx: false,
    };

    /// The leaf flags this mode may set (Linux `__supported_pte_mask`):
    /// every flag, less G without global pages and NX without NX.
    pub fn supported(self) -> PTFlags {
        let mut mask = PTFlags::all();
        if !self.global {
            mask.remove(PTFlags::G);
        }
        if !self.nx || self.format != Format::Pae {
            mask.remove(PTFlags::XD);
        }
        mask
    }
}

impl fmt::Display for PagingMode {
    /// `2-level, 4 KiB pages` / `2-level, 4 MiB pages (PSE), global (PGE)` /
    /// `PAE, 2 MiB pages, global (PGE), NX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format.name())?;
        match (self.large_pages, self.format) {
            (false, _) => f.write_str(", 4 KiB pages")?,
            (true, Format::TwoLevel) => f.write_str(", 4 MiB pages (PSE)")?,
            (true, Format::Pae) => f.write_str(", 2 MiB pages")?,
        }
        if self.global {
            f.write_str(", global (PGE)")?;
        }
        if self.nx {
            f.write_str(", NX")?;
        }
        Ok(())
    }
}

/// Kernel data: present, writable, global, not executable (Linux
/// `PAGE_KERNEL`). The address space drops what its mode does not support.
pub const PAGE_KERNEL: PTFlags = PTFlags::P
    .union(PTFlags::RW)
    .union(PTFlags::G)
    .union(PTFlags::XD);
/// Kernel read-only data (`.rodata`): present, global, not executable
/// (Linux `PAGE_KERNEL_RO`).
pub const PAGE_KERNEL_RO: PTFlags = PTFlags::P.union(PTFlags::G).union(PTFlags::XD);
/// Kernel code (`.boot`, `.text`): present, global, read-only, executable
/// (Linux `PAGE_KERNEL_RX`).
pub const PAGE_KERNEL_RX: PTFlags = PTFlags::P.union(PTFlags::G);

/// A page-directory entry (either format): a page table's address, or with
/// PS a large page's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PDEntry(pub u64);

/// A page-table entry (either format).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PTEntry(pub u64);

/// A PAE page-directory-pointer-table entry: a page directory's address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pdpte(pub u64);

impl PDEntry {
    /// Whether P is set.
    pub const fn is_present(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether PS is set: the entry maps a large page (only honoured with
    /// CR4.PSE under 32-bit paging; always under PAE).
    pub const fn is_page(self) -> bool {
        self.0 & PDFlags::PS.bits() != 0
    }

    /// The address the entry holds: a page table's, or a large page's
    /// (bits 51..12; a 4 MiB page's bits 21..12 are 0 here, as this kernel
    /// writes no PSE-36 addresses).
    pub const fn address(self) -> PhysAddr {
        PhysAddr(self.0 & ADDR_MASK)
    }

    /// The flag bits (all but the address).
    pub const fn flags(self) -> PDFlags {
        PDFlags::from_bits_truncate(self.0 & !ADDR_MASK)
    }
}

impl PTEntry {
    /// The entry mapping `pa` with `flags` (Linux `pfn_pte`; P is not
    /// added).
    pub const fn new(pa: PhysAddr, flags: PTFlags) -> PTEntry {
        PTEntry((pa.0 & ADDR_MASK) | flags.bits())
    }

    /// Whether P is set.
    pub const fn is_present(self) -> bool {
        self.0 & 1 != 0
    }

    /// The frame address.
    pub const fn address(self) -> PhysAddr {
        PhysAddr(self.0 & ADDR_MASK)
    }

    /// The flag bits (all but the address).
    pub const fn flags(self) -> PTFlags {
        PTFlags::from_bits_truncate(self.0 & !ADDR_MASK)
    }
}

impl Pdpte {
    /// Whether P is set.
    pub const fn is_present(self) -> bool {
        self.0 & 1 != 0
    }

    /// The page directory's address.
    pub const fn address(self) -> PhysAddr {
        PhysAddr(self.0 & ADDR_MASK)
    }
}

macro_rules! entry_debug {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({:#x})"), self.0)
            }
        }
    )*};
}
entry_debug!(PDEntry, PTEntry, Pdpte);

/// The entry flags as short names (`P RW US PWT PCD A D PS/PAT G NX`), or
/// `not present`.
pub struct EntryFlags {
    bits: u64,
    kind: Level,
}

/// Which level an entry comes from: bit 7 and R/W mean different things.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Pdpte,
    Pde,
    Pte,
}

impl EntryFlags {
    /// Flags of a page-directory entry.
    pub fn pde(e: PDEntry) -> Self {
        EntryFlags {
            bits: e.0,
            kind: Level::Pde,
        }
    }

    /// Flags of a page-table entry.
    pub fn pte(e: PTEntry) -> Self {
        EntryFlags {
            bits: e.0,
            kind: Level::Pte,
        }
    }

    /// Flags of a PDPTE (only P, PWT, PCD are defined).
    pub fn pdpte(e: Pdpte) -> Self {
        EntryFlags {
            bits: e.0,
            kind: Level::Pdpte,
        }
    }
}

impl fmt::Display for EntryFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits & 1 == 0 {
            return f.write_str("not present");
        }
        let bit7 = if self.kind == Level::Pde { "PS" } else { "PAT" };
        let names = ["P", "RW", "US", "PWT", "PCD", "A", "D", bit7, "G"];
        let mut first = true;
        let mut name = |f: &mut fmt::Formatter<'_>, s: &str| {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s)
        };
        for (i, s) in names.iter().enumerate() {
            if self.bits & (1 << i) != 0 {
                name(f, s)?;
            }
        }
        if self.bits & PTFlags::XD.bits() != 0 {
            name(f, "NX")?;
        }
        if self.kind != Level::Pdpte && self.bits & PTFlags::RW.bits() == 0 {
            f.write_str(" (read-only)")?;
        }
        Ok(())
    }
}
