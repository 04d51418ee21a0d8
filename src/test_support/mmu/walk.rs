//! The page walk of the emulated MMU, decoded from the bits in memory as
//! the Intel SDM Vol. 3A gives them: §4.3 "32-Bit Paging" (Tables 4-4 to
//! 4-6) and §4.4 "PAE Paging" (Tables 4-8 to 4-11), with the access rights
//! of §4.6 and the error codes of §4.7.

use super::tlb::{PageSize, TlbEntry};
use super::{A, Access, AccessKind, D, Fault, G, GpFault, MAXPHYADDR, Mmu, NX, P, PS, PhysMem};
use super::{RW, US};

/// Bits 21:17 of a 32-bit PDE that maps a 4 MiB page: reserved with
/// MAXPHYADDR 36 (Table 4-4: bits 21:(M-19)).
pub const PDE4M_RSVD: u32 = 0x003E_0000;
/// Bits 16:13 of a 32-bit PDE that maps a 4 MiB page: physical address bits
/// 35:32 (PSE-36; Table 4-4: bits (M-20):13).
const PDE4M_HIGH: u32 = 0x0001_E000;
/// Address bits 35:12 of a PAE entry (MAXPHYADDR 36).
pub const PAE_ADDR: u64 = ((1 << MAXPHYADDR) - 1) & !0xfff;
/// Bits 62:36 of a PAE PDE or PTE: reserved (Tables 4-9 to 4-11); bit 63 is
/// XD with EFER.NXE, reserved without.
const PAE_HIGH_RSVD: u64 = !((1 << MAXPHYADDR) - 1) & !NX;
/// Bits 20:13 of a PAE PDE that maps a 2 MiB page: reserved (Table 4-9).
pub const PDE2M_RSVD: u64 = 0x001F_E000;
/// Reserved bits of a PAE PDPTE (Table 4-8): 2:1, 8:5 and 63:36; checked
/// when the PDPTE registers are loaded (§4.4.1).
pub const PDPTE_RSVD: u64 = 0b110 | 0x1E0 | !((1 << MAXPHYADDR) - 1);

/// The level of a paging-structure entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A PAE page-directory-pointer-table entry (one of the four PDPTE
    /// registers).
    Pdpte,
    /// A page-directory entry.
    Pde,
    /// A page-table entry.
    Pte,
}

/// One entry the walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Which level.
    pub level: Level,
    /// Physical address of the entry (for a PDPTE, where it was loaded from
    /// at the last CR3 load).
    pub pa: u64,
    /// The entry (32-bit entries zero-extended); for a PDPTE, the register.
    pub entry: u64,
}

/// A successful walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the byte at the virtual address walked.
    pub pa: u64,
    /// What the TLB caches for the page.
    pub entry: TlbEntry,
    /// The entries read, from the top level down; the last is the leaf.
    pub path: Vec<Step>,
}

/// Loads the four PDPTEs from the 32-byte-aligned PDPT at CR3 bits 31:5
/// (§4.4.1).
///
/// # Errors
/// [`GpFault::PdpteReserved`] if a present PDPTE has a reserved bit set.
pub fn load_pdptes(mem: &PhysMem, cr3: u32) -> Result<[u64; 4], GpFault> {
    let base = u64::from(cr3 & !0x1f);
    let mut pdptes = [0; 4];
    for (i, e) in pdptes.iter_mut().enumerate() {
        *e = mem.read_u64(base + 8 * i as u64);
        if *e & P64 != 0 && *e & PDPTE_RSVD != 0 {
            return Err(GpFault::PdpteReserved {
                index: i,
                pdpte: *e,
            });
        }
    }
    Ok(pdptes)
}

const P64: u64 = P as u64;

impl Mmu {
    /// The page-fault exception `acc` at `va` raises (§4.7).
    pub(super) fn fault(&self, va: u32, acc: Access, present: bool, rsvd: bool) -> Fault {
        Fault {
            va,
            write: acc.kind == AccessKind::Write,
            present,
            user: acc.user,
            rsvd,
            // I/D: an instruction fetch where NX could have blocked it.
            instr: acc.kind == AccessKind::Fetch && self.pae() && self.nxe(),
        }
    }

    /// Whether `acc` may use a translation with these rights (§4.6).
    pub(super) fn allowed(&self, e: &TlbEntry, acc: Access) -> bool {
        if acc.user && !e.us {
            return false;
        }
        match acc.kind {
            AccessKind::Read => true,
            AccessKind::Write => e.rw || (!acc.user && !self.wp()),
            AccessKind::Fetch => !(e.nx && self.pae() && self.nxe()),
        }
    }

    /// The walk for `va` in the current mode, reading memory only; the
    /// rights are checked against `acc`.
    pub(super) fn walk_tables(
        &self,
        mem: &PhysMem,
        va: u32,
        acc: Access,
    ) -> Result<Translation, Fault> {
        let t = if self.pae() {
            self.walk_pae(mem, va, acc)?
        } else {
            self.walk_32(mem, va, acc)?
        };
        if !self.allowed(&t.entry, acc) {
            return Err(self.fault(va, acc, true, false));
        }
        Ok(t)
    }

    /// 32-bit paging (§4.3): CR3 -> PDE -> PTE, or a 4 MiB PDE with
    /// CR4.PSE on (PSE-36 address bits 35:32 in PDE bits 16:13).
    fn walk_32(&self, mem: &PhysMem, va: u32, acc: Access) -> Result<Translation, Fault> {
        let mut path = Vec::with_capacity(2);
        let pde_pa = u64::from(self.cr3.as_u32() & !0xfff) + 4 * u64::from(va >> 22);
        let pde = mem.read_phys_u32(pde_pa);
        path.push(Step {
            level: Level::Pde,
            pa: pde_pa,
            entry: pde.into(),
        });
        if pde & P == 0 {
            return Err(self.fault(va, acc, false, false));
        }
        let (leaf, page, size, rw, us) = if self.pse() && pde & PS != 0 {
            if pde & PDE4M_RSVD != 0 {
                return Err(self.fault(va, acc, true, true));
            }
            let page = u64::from(pde & 0xFFC0_0000) | (u64::from((pde & PDE4M_HIGH) >> 13) << 32);
            (pde, page, PageSize::Size4M, pde & RW, pde & US)
        } else {
            // Without CR4.PSE, bit 7 is ignored: the PDE names a page table.
            let pte_pa = u64::from(pde & !0xfff) + 4 * u64::from((va >> 12) & 0x3ff);
            let pte = mem.read_phys_u32(pte_pa);
            path.push(Step {
                level: Level::Pte,
                pa: pte_pa,
                entry: pte.into(),
            });
            if pte & P == 0 {
                return Err(self.fault(va, acc, false, false));
            }
            let page = u64::from(pte & !0xfff);
            (pte, page, PageSize::Size4K, pde & pte & RW, pde & pte & US)
        };
        let entry = TlbEntry {
            page,
            size,
            leaf_pa: path[path.len() - 1].pa,
            rw: rw != 0,
            us: us != 0,
            nx: false,
            global: self.pge() && leaf & G != 0,
            dirty: leaf & D != 0,
            flags: (leaf & 0xfff & !(RW | US)) | rw | us,
        };
        Ok(Translation {
            pa: entry.pa(va),
            entry,
            path,
        })
    }

    /// PAE paging (§4.4): PDPTE register -> PDE -> PTE, or a 2 MiB PDE;
    /// 64-bit entries, XD in bit 63 with EFER.NXE.
    fn walk_pae(&self, mem: &PhysMem, va: u32, acc: Access) -> Result<Translation, Fault> {
        let mut path = Vec::with_capacity(3);
        let i = (va >> 30) as usize;
        let pdpte = self.pdptes[i];
        path.push(Step {
            level: Level::Pdpte,
            pa: u64::from(self.cr3.as_u32() & !0x1f) + 8 * i as u64,
            entry: pdpte,
        });
        if pdpte & P64 == 0 {
            return Err(self.fault(va, acc, false, false));
        }
        let rsvd = PAE_HIGH_RSVD | if self.nxe() { 0 } else { NX };
        let pde_pa = (pdpte & PAE_ADDR) + 8 * u64::from((va >> 21) & 0x1ff);
        let pde = mem.read_u64(pde_pa);
        path.push(Step {
            level: Level::Pde,
            pa: pde_pa,
            entry: pde,
        });
        if pde & P64 == 0 {
            return Err(self.fault(va, acc, false, false));
        }
        if pde & rsvd != 0 || (pde & u64::from(PS) != 0 && pde & PDE2M_RSVD != 0) {
            return Err(self.fault(va, acc, true, true));
        }
        let (leaf, page, size, rights) = if pde & u64::from(PS) != 0 {
            (pde, pde & PAE_ADDR & !0x1F_FFFF, PageSize::Size2M, pde)
        } else {
            let pte_pa = (pde & PAE_ADDR) + 8 * u64::from((va >> 12) & 0x1ff);
            let pte = mem.read_u64(pte_pa);
            path.push(Step {
                level: Level::Pte,
                pa: pte_pa,
                entry: pte,
            });
            if pte & P64 == 0 {
                return Err(self.fault(va, acc, false, false));
            }
            if pte & rsvd != 0 {
                return Err(self.fault(va, acc, true, true));
            }
            // R/W and U/S ANDed, XD ORed over the levels.
            let rights = (pde & pte & u64::from(RW | US)) | ((pde | pte) & NX);
            (pte, pte & PAE_ADDR, PageSize::Size4K, rights)
        };
        let (rw, us) = (rights as u32 & RW, rights as u32 & US);
        let entry = TlbEntry {
            page,
            size,
            leaf_pa: path[path.len() - 1].pa,
            rw: rw != 0,
            us: us != 0,
            nx: self.nxe() && rights & NX != 0,
            global: self.pge() && leaf as u32 & G != 0,
            dirty: leaf as u32 & D != 0,
            flags: (leaf as u32 & 0xfff & !(RW | US)) | rw | us,
        };
        Ok(Translation {
            pa: entry.pa(va),
            entry,
            path,
        })
    }

    /// A write through the cached entry `e` whose D is clear: sets D in the
    /// leaf entry it came from, if that entry still maps the same page with
    /// P set (§4.8); if the tables changed under the stale entry, memory is
    /// left alone and the write still goes where the entry says.
    pub(super) fn set_dirty(&self, mem: &PhysMem, e: &TlbEntry) {
        let (entry, page) = if self.pae() {
            let v = mem.read_u64(e.leaf_pa);
            let mask = match e.size {
                PageSize::Size2M => PAE_ADDR & !0x1F_FFFF,
                _ => PAE_ADDR,
            };
            (v as u32, v & mask)
        } else {
            let v = mem.read_phys_u32(e.leaf_pa);
            let page = match e.size {
                PageSize::Size4M => {
                    u64::from(v & 0xFFC0_0000) | (u64::from((v & PDE4M_HIGH) >> 13) << 32)
                }
                _ => u64::from(v & !0xfff),
            };
            (v, page)
        };
        if entry & P != 0 && page == e.page {
            mem.write_phys_u32(e.leaf_pa, entry | A | D);
        }
    }

    /// A TLB miss: the walk, then the Accessed bits of the entries used set
    /// as the CPU sets them (PAE PDPTEs have none), and on a write the Dirty
    /// bit of the leaf (§4.8). A faulting walk sets nothing.
    pub(super) fn walk(
        &mut self,
        mem: &PhysMem,
        va: u32,
        acc: Access,
    ) -> Result<Translation, Fault> {
        self.walks += 1;
        let mut t = self.walk_tables(mem, va, acc)?;
        let write = acc.kind == AccessKind::Write;
        let last = t.path.len() - 1;
        for (i, s) in t.path.iter_mut().enumerate() {
            if s.level == Level::Pdpte {
                continue;
            }
            // A and D are in the low word of 64-bit entries too.
            let bits = A | if i == last && write { D } else { 0 };
            let now = mem.read_phys_u32(s.pa);
            mem.write_phys_u32(s.pa, now | bits);
            s.entry |= u64::from(bits);
        }
        t.entry.flags |= A | if write { D } else { 0 };
        t.entry.dirty |= write;
        Ok(t)
    }
}
