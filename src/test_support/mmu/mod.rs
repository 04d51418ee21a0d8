//! The emulated i386 machine for host tests of page-table code: physical
//! memory with 64-bit addresses ([`PhysMem`], a [`PageTableMemory`]), a pool
//! of page-table frames ([`Frames`], a [`FrameSource`]) and an [`Mmu`] with
//! CR0, CR3, CR4, EFER.NXE, the PAE PDPTE registers and a TLB that changes
//! only on invalidation (a [`TlbFlusher`]).
//!
//! It is the independent oracle the kernel's page-table code is tested
//! against, so it shares nothing with it: the walk reads raw memory and
//! decodes the bits itself, from the Intel SDM Vol. 3A chapter 4. Loads,
//! stores and instruction fetches go through the MMU the way the CPU does
//! them, so a forgotten TLB flush shows up as a stale read, a wrong R/W bit
//! as a fault, a missing NX as a fetch that succeeds.
//!
//! ```text
//!  PhysMem ── ram: Rc<RefCell<Vec<u8>>>   dense, [0, len)      ──┐
//!          └─ high: sparse 4 KiB pages in add_ram() ranges,      │ read/write
//!             e.g. [4 GiB, 64 GiB), allocated on first write     │ u32/u64 at
//!  Frames  ── page-table frames in the dense part:               │ u64 pa,
//!             zeroed on alloc, 0xA5 on free                    ──┘ with_table
//!
//!  Mmu  CR0.PG/WP  CR3  CR4.PSE/PAE/PGE  EFER.NXE  PDPTE[4]
//!   access(va, Access{Read|Write|Fetch, user})
//!     │ TLB hit (4K/2M/4M entry, whatever the tables say now) ── rights ── pa
//!     └ miss: walk ──────────────────────────────────────────── rights ── pa
//!        32-bit (§4.3):  CR3 ─> PDE[31:22] ─> PTE[21:12]   or 4 MiB PDE (PSE)
//!        PAE    (§4.4):  PDPTE[31:30] ─> PDE[29:21] ─> PTE[20:12]  or 2 MiB PDE
//!        sets A on each entry used, D on the leaf of a write, caches the entry
//!   load_cr3: drops non-global entries, reloads PDPTEs (PAE)
//!   write_cr4: a change of PGE, PAE or PSE drops every entry, global too
//!   invlpg: drops every entry covering va, global or not
//! ```
//!
//! # What is modelled
//! - 32-bit paging (§4.3): PDE -> PTE; with CR4.PSE a PDE with PS maps a
//!   4 MiB page, its bits 16:13 giving physical bits 35:32 (PSE-36 with
//!   MAXPHYADDR 36) and bits 21:17 reserved; without CR4.PSE bit 7 of a PDE
//!   is ignored.
//! - PAE paging (§4.4): CR3 bits 31:5 name a 32-byte PDPT whose four entries
//!   are loaded into PDPTE registers by a CR3 load, and by a CR0/CR4 write
//!   that changes PG, PAE, PGE or PSE with PAE paging in use after it
//!   (§4.4.1); a present PDPTE with a reserved bit (2:1, 8:5, 63:36) makes
//!   the load a #GP ([`GpFault`]) that changes nothing. Edits to the PDPT
//!   in memory are not seen until the next load. PDE -> PTE or a 2 MiB PDE
//!   (bits 20:13 reserved); 64-bit entries with bits 62:36 reserved and bit
//!   63 the XD bit with EFER.NXE, reserved without. Frames above 4 GiB.
//! - Access rights (§4.6): R/W and U/S ANDed over the levels (PDPTEs have
//!   neither), XD ORed; supervisor writes to read-only pages fault only with
//!   CR0.WP; user accesses fault on supervisor pages and on read-only pages
//!   for writes; fetches fault on XD pages with EFER.NXE (no SMEP/SMAP).
//! - Page faults (§4.7): CR2 and the error code, see [`Fault`].
//! - Accessed and Dirty flags (§4.8): set in memory by a walk, A on every
//!   PDE and PTE used, D on the leaf of a write; a write through a cached
//!   entry whose D is clear sets D in the leaf entry the walk found.
//! - The TLB (§4.10): one entry per page of its size, holding the frame, the
//!   combined rights, XD, D and G (the leaf's G, honoured with CR4.PGE);
//!   faults are not cached and a fault drops the entries of its address
//!   (§4.10.4.1); invalidation as §4.10.4.1 lists it for CR3, CR4, CR0.PG
//!   and `invlpg`.
//!
//! # What is simplified
//! - No paging-structure caches (§4.10.3): a miss always walks from CR3
//!   (from the PDPTE registers under PAE), so a stale upper-level entry is
//!   never used once the TLB entry is gone.
//! - A TLB of unlimited size that never evicts; real TLBs may drop any entry
//!   at any time, so a test may rely on an entry being stale only to show
//!   what software must not rely on.
//! - A faulting walk sets no Accessed bit; a CPU may set them on the levels
//!   above the fault.
//! - A write through a clean cached entry does not walk again (a CPU walks
//!   to set D): it goes where the entry says, so a stale entry stays stale
//!   for writes too, and D is set only if the leaf entry still maps the
//!   same page.
//! - No memory types (PWT, PCD, PAT), no SMEP/SMAP/PKE/PCID, no 4-level
//!   paging; CR4 bits other than PSE, PAE, PGE are kept but mean nothing.
//!   MAXPHYADDR is 36 ([`MAXPHYADDR`]).
//! - A PSE change flushes every entry, as older SDM editions say (the
//!   current §4.10.4.1 lists PGE and PAE only).

mod mem;
#[cfg(test)]
mod tests;
mod tlb;
mod walk;

pub use mem::{Frames, PhysMem, Ram, SparseRam};
pub use tlb::{PageSize, Tlb, TlbEntry};
pub use walk::{
    Level, PAE_ADDR, PDE2M_RSVD, PDE4M_RSVD, PDPTE_RSVD, Step, Translation, load_pdptes,
};

use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::paging::TlbFlusher;
#[cfg(doc)]
use crate::mm::paging::{FrameSource, PageTableMemory};
use core::fmt;

/// Present (bit 0 of every entry).
pub const P: u32 = 1 << 0;
/// Read/write (bit 1): writes allowed.
pub const RW: u32 = 1 << 1;
/// User/supervisor (bit 2): user-mode accesses allowed.
pub const US: u32 = 1 << 2;
/// Accessed (bit 5).
pub const A: u32 = 1 << 5;
/// Dirty (bit 6, in an entry that maps a page).
pub const D: u32 = 1 << 6;
/// Page size, in a PDE (bit 7): a 4 MiB page (32-bit paging with CR4.PSE) or
/// a 2 MiB page (PAE).
pub const PS: u32 = 1 << 7;
/// Global (bit 8, in an entry that maps a page), honoured with CR4.PGE.
pub const G: u32 = 1 << 8;
/// Execute-disable (bit 63 of a PAE PDE or PTE), with EFER.NXE.
pub const NX: u64 = 1 << 63;

/// Physical-address width of the emulated CPU in bits (CPUID 0x80000008
/// EAX[7:0] on real ones; 36 on the P6 family).
pub const MAXPHYADDR: u32 = 36;

/// CR0.WP (bit 16): supervisor writes honour R/W.
pub const CR0_WP: u32 = 1 << 16;
/// CR0.PG (bit 31): paging on.
pub const CR0_PG: u32 = 1 << 31;
/// CR0.PE (bit 0): protected mode.
pub const CR0_PE: u32 = 1 << 0;
/// CR4.PSE (bit 4): 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u32 = 1 << 4;
/// CR4.PAE (bit 5): PAE paging.
pub const CR4_PAE: u32 = 1 << 5;
/// CR4.PGE (bit 7): global pages.
pub const CR4_PGE: u32 = 1 << 7;

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// An access: its kind, and whether it is made in user mode (CPL 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// A user-mode access (CPL 3); else supervisor (CPL 0).
    pub user: bool,
}

impl Access {
    /// A supervisor data read.
    pub const READ: Access = Access {
        kind: AccessKind::Read,
        user: false,
    };
    /// A supervisor data write.
    pub const WRITE: Access = Access {
        kind: AccessKind::Write,
        user: false,
    };
    /// A supervisor instruction fetch.
    pub const FETCH: Access = Access {
        kind: AccessKind::Fetch,
        user: false,
    };

    /// A supervisor read, or a write if `write`.
    pub const fn data(write: bool) -> Access {
        if write { Access::WRITE } else { Access::READ }
    }

    /// The same access made in user mode.
    pub const fn user(self) -> Access {
        Access {
            kind: self.kind,
            user: true,
        }
    }
}

/// A page fault: CR2 and what the error code says (§4.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    /// The faulting address (CR2).
    pub va: u32,
    /// The access was a write (error code bit 1, W/R).
    pub write: bool,
    /// The page was present: a protection or reserved-bit violation (bit 0,
    /// P); false for a not-present entry at any level.
    pub present: bool,
    /// The access was made in user mode (bit 2, U/S).
    pub user: bool,
    /// A reserved bit was set in some entry (bit 3, RSVD; `present` is then
    /// true).
    pub rsvd: bool,
    /// An instruction fetch with NX possible, i.e. PAE with EFER.NXE (bit 4,
    /// I/D); false for a fetch under 32-bit paging or without NXE.
    pub instr: bool,
}

impl Fault {
    /// The error code the CPU pushes (Linux `X86_PF_PROT`, `X86_PF_WRITE`,
    /// `X86_PF_USER`, `X86_PF_RSVD`, `X86_PF_INSTR` in bits 0 to 4).
    pub const fn error_code(&self) -> u32 {
        (self.present as u32)
            | (self.write as u32) << 1
            | (self.user as u32) << 2
            | (self.rsvd as u32) << 3
            | (self.instr as u32) << 4
    }

    /// The faulting address, as CR2 holds it.
    pub const fn cr2(&self) -> u32 {
        self.va
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#PF at {:#010x}, error code {:#x} ({}, {} {})",
            self.va,
            self.error_code(),
            if self.rsvd {
                "reserved bit set"
            } else if self.present {
                "protection violation"
            } else {
                "not present"
            },
            if self.user { "user" } else { "supervisor" },
            if self.instr {
                "instruction fetch"
            } else if self.write {
                "write"
            } else {
                "read"
            },
        )
    }
}

/// What a supervisor read of an unmapped `va` gives: a not-present read
/// fault.
pub fn not_present<T>(va: u32) -> Result<T, Fault> {
    Err(Fault {
        va,
        ..Fault::default()
    })
}

/// A general-protection exception raised by a control-register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpFault {
    /// Loading the PDPTE registers found a present PDPTE with a reserved bit
    /// set (§4.4.1): the write that caused the load has no effect.
    PdpteReserved {
        /// Which PDPTE, 0 to 3.
        index: usize,
        /// Its value in memory.
        pdpte: u64,
    },
}

impl fmt::Display for GpFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpFault::PdpteReserved { index, pdpte } => write!(
                f,
                "#GP(0): PDPTE {index} = {pdpte:#018x} has reserved bits {:#x}",
                pdpte & PDPTE_RSVD
            ),
        }
    }
}

/// The MMU: control registers, the PAE PDPTE registers and a TLB.
///
/// A miss walks the tables in physical memory like the CPU; a hit uses the
/// cached translation as it is, whatever the tables say now. See the module
/// docs for what is modelled.
pub struct Mmu {
    /// CR3 as loaded: the page directory (32-bit paging, bits 31:12) or the
    /// PDPT (PAE, bits 31:5). Change it with [`Mmu::load_cr3`].
    pub cr3: PhysAddr,
    /// The cached translations.
    pub tlb: Tlb,
    /// Whether `flush_page` is an `invlpg` (else a range flush reloads CR3).
    pub has_invlpg: bool,
    /// Address of every `invlpg` ([`Mmu::invlpg`], `flush_page`), in order.
    pub page_flushes: Vec<u32>,
    /// Number of CR3 loads: [`Mmu::load_cr3`] and `flush_all` without PGE.
    pub full_flushes: u32,
    /// Number of `flush_all`s done by toggling CR4.PGE (Linux
    /// `native_flush_tlb_global`).
    pub global_flushes: u32,
    /// Number of page walks (TLB misses).
    pub walks: u32,
    cr0: u32,
    cr4: u32,
    nxe: bool,
    pdptes: [u64; 4],
    /// The memory the PDPTEs are reloaded from when a `flush_all` toggles
    /// CR4.PGE or reloads CR3 under PAE (the trait passes no memory).
    mem: Option<PhysMem>,
}

impl Mmu {
    /// 32-bit paging with page directory `cr3` loaded and an empty TLB:
    /// CR0.WP on, CR4.PSE on (PS honoured), CR4.PGE off, no NX.
    pub fn new(cr3: PhysAddr, has_invlpg: bool) -> Self {
        assert!(cr3.0 <= u64::from(u32::MAX), "CR3 is 32 bits");
        Mmu {
            cr3,
            tlb: Tlb::default(),
            has_invlpg,
            page_flushes: Vec::new(),
            full_flushes: 0,
            global_flushes: 0,
            walks: 0,
            cr0: CR0_PE | CR0_PG | CR0_WP,
            cr4: CR4_PSE,
            nxe: false,
            pdptes: [0; 4],
            mem: None,
        }
    }

    /// PAE paging with the PDPT at `cr3` (32-byte aligned, below 4 GiB)
    /// loaded into the PDPTE registers, EFER.NXE as `nxe`, CR0.WP on,
    /// CR4.PGE off, an empty TLB. Keeps a handle on `mem` for the PDPTE
    /// reloads of `flush_all`.
    ///
    /// # Errors
    /// [`GpFault::PdpteReserved`] as [`Mmu::load_cr3`].
    pub fn new_pae(
        mem: &PhysMem,
        cr3: PhysAddr,
        has_invlpg: bool,
        nxe: bool,
    ) -> Result<Self, GpFault> {
        let mut mmu = Mmu::new(cr3, has_invlpg);
        mmu.cr4 = CR4_PAE;
        mmu.nxe = nxe;
        mmu.pdptes = load_pdptes(mem, cr3.as_u32())?;
        mmu.mem = Some(mem.share());
        Ok(mmu)
    }

    /// The same MMU with CR4.PGE set as `on` (before any access: nothing to
    /// flush).
    pub fn with_pge(mut self, on: bool) -> Self {
        self.cr4 = set_bit(self.cr4, CR4_PGE, on);
        self
    }

    /// The same MMU with CR4.PSE set as `on` (32-bit paging; ignored by PAE).
    pub fn with_pse(mut self, on: bool) -> Self {
        self.cr4 = set_bit(self.cr4, CR4_PSE, on);
        self
    }

    /// The same MMU with CR0.WP set as `on`.
    pub fn with_wp(mut self, on: bool) -> Self {
        self.cr0 = set_bit(self.cr0, CR0_WP, on);
        self
    }

    /// CR0.
    pub fn cr0(&self) -> u32 {
        self.cr0
    }

    /// CR4.
    pub fn cr4(&self) -> u32 {
        self.cr4
    }

    /// EFER.NXE.
    pub fn nxe(&self) -> bool {
        self.nxe
    }

    /// The PDPTE registers (meaningful under PAE paging).
    pub fn pdptes(&self) -> [u64; 4] {
        self.pdptes
    }

    /// Whether paging is on (CR0.PG).
    pub fn paging(&self) -> bool {
        self.cr0 & CR0_PG != 0
    }

    /// Whether PAE paging is in use (CR0.PG and CR4.PAE).
    pub fn pae(&self) -> bool {
        self.paging() && self.cr4 & CR4_PAE != 0
    }

    /// Whether CR4.PSE is on.
    pub fn pse(&self) -> bool {
        self.cr4 & CR4_PSE != 0
    }

    /// Whether CR4.PGE is on.
    pub fn pge(&self) -> bool {
        self.cr4 & CR4_PGE != 0
    }

    /// Whether CR0.WP is on.
    pub fn wp(&self) -> bool {
        self.cr0 & CR0_WP != 0
    }

    /// `mov cr3, pa`: drops every non-global TLB entry and, under PAE,
    /// loads the PDPTE registers from `pa` bits 31:5 (§4.4.1, §4.10.4.1).
    /// Counted in `full_flushes`.
    ///
    /// # Errors
    /// [`GpFault::PdpteReserved`] under PAE if a present PDPTE has a
    /// reserved bit; CR3, the PDPTEs and the TLB are then unchanged.
    ///
    /// # Panics
    /// If `pa` is at or above 4 GiB (CR3 is 32 bits).
    pub fn load_cr3(&mut self, mem: &PhysMem, pa: PhysAddr) -> Result<(), GpFault> {
        let cr3 = pa.as_u32();
        if self.pae() {
            self.pdptes = load_pdptes(mem, cr3)?;
            self.mem = Some(mem.share());
        }
        self.cr3 = pa;
        self.tlb.flush_non_global();
        self.full_flushes += 1;
        Ok(())
    }

    /// `mov cr4, v`. A change of PGE, PAE or PSE drops every TLB entry,
    /// global ones too (§4.10.4.1); with such a change and PAE paging in
    /// use afterwards, the PDPTE registers are loaded from CR3 (§4.4.1).
    /// Setting PAE with paging on switches from 32-bit to PAE paging
    /// directly, as §4.1.2 allows: CR3 must then name a PDPT.
    ///
    /// # Errors
    /// [`GpFault::PdpteReserved`] from the PDPTE load; CR4 is then
    /// unchanged.
    pub fn write_cr4(&mut self, mem: &PhysMem, v: u32) -> Result<(), GpFault> {
        let changed = self.cr4 ^ v;
        let flushing = changed & (CR4_PGE | CR4_PAE | CR4_PSE) != 0;
        if flushing && self.paging() && v & CR4_PAE != 0 {
            self.pdptes = load_pdptes(mem, self.cr3.as_u32())?;
            self.mem = Some(mem.share());
        }
        self.cr4 = v;
        if flushing {
            self.tlb.clear();
        }
        Ok(())
    }

    /// `mov cr0, v`. Clearing PG drops every TLB entry (§4.10.4.1); setting
    /// PG with CR4.PAE loads the PDPTE registers (§4.4.1). A WP change
    /// flushes nothing: the TLB holds the rights, WP is applied per access.
    ///
    /// # Errors
    /// [`GpFault::PdpteReserved`] from the PDPTE load; CR0 is then
    /// unchanged.
    pub fn write_cr0(&mut self, mem: &PhysMem, v: u32) -> Result<(), GpFault> {
        let changed = self.cr0 ^ v;
        if changed & CR0_PG != 0 && v & CR0_PG != 0 && self.cr4 & CR4_PAE != 0 {
            self.pdptes = load_pdptes(mem, self.cr3.as_u32())?;
            self.mem = Some(mem.share());
        }
        self.cr0 = v;
        if changed & CR0_PG != 0 && v & CR0_PG == 0 {
            self.tlb.clear();
        }
        Ok(())
    }

    /// `wrmsr` of EFER.NXE. Flushes nothing (the SDM lists no invalidation
    /// for it); entries cached with XD keep it, and it counts only while
    /// NXE is on.
    pub fn set_nxe(&mut self, on: bool) {
        self.nxe = on;
    }

    /// `invlpg va`: drops every TLB entry whose page holds `va`, global or
    /// not, 4 KiB or large (§4.10.4.1). Recorded in `page_flushes`.
    pub fn invlpg(&mut self, va: u32) {
        self.page_flushes.push(va);
        self.tlb.invalidate(va);
    }

    /// The walk the CPU would do for `acc` at `va`, without touching the
    /// TLB or the Accessed and Dirty bits: the translation with every entry
    /// read, or the fault the access raises.
    ///
    /// # Errors
    /// The page fault (§4.7).
    pub fn probe_as(&self, mem: &PhysMem, va: u32, acc: Access) -> Result<Translation, Fault> {
        if !self.paging() {
            return Ok(identity(va));
        }
        self.walk_tables(mem, va, acc)
    }

    /// [`Mmu::probe_as`] for a supervisor read or write: `(frame, flags)`,
    /// the 4 KiB frame holding `va` and the leaf's bits 11:0 with R/W and
    /// U/S those of every level combined.
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If the frame is at or above 4 GiB (use [`Mmu::probe_as`]).
    pub fn probe(&self, mem: &PhysMem, va: u32, write: bool) -> Result<(u32, u32), Fault> {
        let t = self.probe_as(mem, va, Access::data(write))?;
        Ok((low(t.pa & !0xfff), t.entry.flags))
    }

    /// The physical address of the byte at `va` for `acc`, through the TLB:
    /// a hit is checked against the cached rights and used whatever the
    /// tables say now (a write through an entry whose D is clear sets D in
    /// its leaf, if the leaf still maps that page); a miss walks and caches
    /// the translation if it succeeds. A fault drops the entries of `va`.
    /// With paging off, `va` itself.
    ///
    /// # Errors
    /// The page fault.
    pub fn translate(&mut self, mem: &PhysMem, va: u32, acc: Access) -> Result<u64, Fault> {
        if !self.paging() {
            return Ok(u64::from(va));
        }
        let write = acc.kind == AccessKind::Write;
        if let Some(e) = self.tlb.lookup(va).copied() {
            if !self.allowed(&e, acc) {
                self.tlb.invalidate(va);
                return Err(self.fault(va, acc, true, false));
            }
            if write && !e.dirty {
                self.set_dirty(mem, &e);
                self.tlb.insert(
                    va,
                    TlbEntry {
                        dirty: true,
                        flags: e.flags | D,
                        ..e
                    },
                );
            }
            return Ok(e.pa(va));
        }
        match self.walk(mem, va, acc) {
            Ok(t) => {
                self.tlb.invalidate(va);
                self.tlb.insert(va, t.entry);
                Ok(t.pa)
            }
            Err(f) => {
                self.tlb.invalidate(va);
                Err(f)
            }
        }
    }

    /// The physical address of an aligned 4-byte supervisor access at `va`,
    /// through the TLB ([`Mmu::translate`]).
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If `va` is not 4-byte aligned, or the address is at or above 4 GiB
    /// (use [`Mmu::translate`]).
    pub fn access(&mut self, mem: &PhysMem, va: u32, write: bool) -> Result<u32, Fault> {
        assert!(va.is_multiple_of(4), "unaligned access at {va:#010x}");
        self.translate(mem, va, Access::data(write)).map(low)
    }

    /// A supervisor instruction fetch at `va`: its physical address.
    ///
    /// # Errors
    /// The page fault (I/D set under PAE with NXE).
    pub fn fetch(&mut self, mem: &PhysMem, va: u32) -> Result<u64, Fault> {
        self.translate(mem, va, Access::FETCH)
    }

    /// A load of the word at `va` by `acc` (a read or fetch, supervisor or
    /// user).
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If `va` is not 4-byte aligned or `acc` is a write.
    pub fn load_u32(&mut self, mem: &PhysMem, va: u32, acc: Access) -> Result<u32, Fault> {
        assert!(va.is_multiple_of(4), "unaligned access at {va:#010x}");
        assert!(acc.kind != AccessKind::Write, "a load is not a write");
        let pa = self.translate(mem, va, acc)?;
        Ok(mem.read_phys_u32(pa))
    }

    /// A store of `v` at `va`, in user mode if `user`.
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If `va` is not 4-byte aligned.
    pub fn store_u32(&mut self, mem: &PhysMem, va: u32, v: u32, user: bool) -> Result<(), Fault> {
        assert!(va.is_multiple_of(4), "unaligned access at {va:#010x}");
        let acc = Access {
            kind: AccessKind::Write,
            user,
        };
        let pa = self.translate(mem, va, acc)?;
        mem.write_phys_u32(pa, v);
        Ok(())
    }

    /// A supervisor load of the word at `va`.
    ///
    /// # Errors
    /// The page fault.
    pub fn read_u32(&mut self, mem: &PhysMem, va: u32) -> Result<u32, Fault> {
        self.load_u32(mem, va, Access::READ)
    }

    /// A supervisor store of `v` at `va`.
    ///
    /// # Errors
    /// The page fault.
    pub fn write_u32(&mut self, mem: &PhysMem, va: u32, v: u32) -> Result<(), Fault> {
        self.store_u32(mem, va, v, false)
    }

    /// A supervisor load of the quadword at `va` (8-byte aligned: one page).
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If `va` is not 8-byte aligned.
    pub fn read_u64(&mut self, mem: &PhysMem, va: u32) -> Result<u64, Fault> {
        assert!(va.is_multiple_of(8), "unaligned access at {va:#010x}");
        let pa = self.translate(mem, va, Access::READ)?;
        Ok(mem.read_u64(pa))
    }

    /// A supervisor store of the quadword `v` at `va`.
    ///
    /// # Errors
    /// The page fault.
    ///
    /// # Panics
    /// If `va` is not 8-byte aligned.
    pub fn write_u64(&mut self, mem: &PhysMem, va: u32, v: u64) -> Result<(), Fault> {
        assert!(va.is_multiple_of(8), "unaligned access at {va:#010x}");
        let pa = self.translate(mem, va, Access::WRITE)?;
        mem.write_u64(pa, v);
        Ok(())
    }

    /// Whether the TLB holds a translation for `va` (of any page size).
    pub fn cached(&self, va: u32) -> bool {
        self.tlb.lookup(va).is_some()
    }

    /// Forgets the recorded flushes (not the walks).
    pub fn reset_counts(&mut self) {
        self.page_flushes.clear();
        self.full_flushes = 0;
        self.global_flushes = 0;
    }

    /// The memory handle kept for `flush_all`'s PDPTE reloads.
    ///
    /// # Panics
    /// Under PAE without one, which cannot happen: PAE is entered only
    /// through calls that pass the memory.
    fn kept_mem(&self) -> PhysMem {
        match &self.mem {
            Some(m) => m.share(),
            None if !self.pae() => PhysMem::new(0),
            None => unreachable!("PAE paging entered without memory"),
        }
    }
}

/// The translation with paging off: the linear address is the physical one.
fn identity(va: u32) -> Translation {
    Translation {
        pa: u64::from(va),
        entry: TlbEntry {
            page: u64::from(va & !0xfff),
            size: PageSize::Size4K,
            rw: true,
            us: true,
            nx: false,
            global: false,
            dirty: false,
            leaf_pa: 0,
            flags: P | RW | US,
        },
        path: Vec::new(),
    }
}

/// `pa` as a 32-bit physical address.
///
/// # Panics
/// At or above 4 GiB.
fn low(pa: u64) -> u32 {
    u32::try_from(pa).unwrap_or_else(|_| {
        panic!("physical address {pa:#x} at or above 4 GiB: use the 64-bit API")
    })
}

fn set_bit(reg: u32, bit: u32, on: bool) -> u32 {
    if on { reg | bit } else { reg & !bit }
}

impl TlbFlusher for Mmu {
    /// `invlpg va` (the caller uses it only with `has_invlpg`; without, it
    /// still drops the page, as the kernel never calls it then).
    fn flush_page(&mut self, va: VirtAddr) {
        self.invlpg(va.0);
    }

    /// With CR4.PGE: clear it and set it again, dropping every entry,
    /// global ones too (Linux `native_flush_tlb_global`), counted in
    /// `global_flushes`. Without: reload CR3 (Linux `native_flush_tlb_local`),
    /// counted in `full_flushes`.
    ///
    /// # Panics
    /// On a #GP from the PDPTE reload under PAE (a PDPT edited to hold a
    /// reserved bit): the kernel would take the same #GP.
    fn flush_all(&mut self) {
        let mem = self.kept_mem();
        let r = if self.pge() {
            self.global_flushes += 1;
            let cr4 = self.cr4;
            self.write_cr4(&mem, cr4 & !CR4_PGE)
                .and_then(|()| self.write_cr4(&mem, cr4))
        } else {
            self.load_cr3(&mem, self.cr3)
        };
        if let Err(e) = r {
            panic!("flush_all: {e}");
        }
    }

    fn has_invlpg(&self) -> bool {
        self.has_invlpg
    }
}
