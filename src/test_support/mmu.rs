//! The emulated i386 machine for host tests of page-table code: physical
//! memory in a byte vector ([`PhysMem`], a [`PageTableMemory`]), a pool of
//! page-table frames ([`Frames`], a [`FrameSource`]) and an [`Mmu`] with CR3
//! and a TLB that changes only on invalidation (a [`TlbFlusher`]).
//!
//! Loads and stores go through the MMU the way the CPU does them (two-level
//! walk, Accessed/Dirty bits, CR0.WP on), so a forgotten TLB flush shows up
//! as a stale read and a wrong R/W bit as a fault. Entry bits come from the
//! `x86` crate's `PDFlags`/`PTFlags`, the same definition the kernel uses.
//!
//! ```text
//!  Ram (Rc<RefCell<Vec<u8>>>) ──┬── PhysMem: with_table, read_u32, write_u32
//!                               └── Frames: zeroes on alloc, 0xA5 on free
//!  Mmu { cr3, tlb: vpn -> (frame, flags) } ── access(va, write) -> pa | Fault
//! ```

use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::layout::{ENTRIES_PER_TABLE, PAGE_SHIFT, PAGE_SIZE, PDE_SPAN, pdx, ptx};
use crate::mm::paging::{FrameSource, PDFlags, PTFlags, PageTableMemory, Table, TlbFlusher};
use core::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Present (PDE and PTE bit 0).
pub const P: u32 = PTFlags::P.bits() as u32;
/// Read/write (bit 1).
pub const RW: u32 = PTFlags::RW.bits() as u32;
/// Accessed (bit 5).
pub const A: u32 = PTFlags::A.bits() as u32;
/// Dirty (bit 6).
pub const D: u32 = PTFlags::D.bits() as u32;
/// Page size, in a PDE (bit 7): a 4 MiB page.
pub const PS: u32 = PDFlags::PS.bits() as u32;

/// Physical memory shared by [`PhysMem`] and [`Frames`] (which zeroes and
/// poisons frames in it).
pub type Ram = Rc<RefCell<Vec<u8>>>;

/// Physical memory, as the page-table code and the MMU see it.
pub struct PhysMem {
    /// The bytes, from physical address 0.
    pub ram: Ram,
}

impl PhysMem {
    /// `bytes` of zeroed physical memory.
    pub fn new(bytes: u32) -> Self {
        PhysMem {
            ram: Rc::new(RefCell::new(vec![0; bytes as usize])),
        }
    }

    /// Size of the memory in bytes.
    pub fn len(&self) -> u32 {
        self.ram.borrow().len() as u32
    }

    /// Whether the memory has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The little-endian word at `pa`.
    ///
    /// # Panics
    /// Beyond the end of the memory.
    pub fn read_u32(&self, pa: u32) -> u32 {
        let ram = self.ram.borrow();
        let at = pa as usize;
        assert!(
            at + 4 <= ram.len(),
            "physical read at {pa:#010x} beyond RAM"
        );
        u32::from_le_bytes(ram[at..at + 4].try_into().unwrap())
    }

    /// Stores `v` little-endian at `pa`.
    ///
    /// # Panics
    /// Beyond the end of the memory.
    pub fn write_u32(&self, pa: u32, v: u32) {
        let mut ram = self.ram.borrow_mut();
        let at = pa as usize;
        assert!(
            at + 4 <= ram.len(),
            "physical write at {pa:#010x} beyond RAM"
        );
        ram[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A copy of the 1024 entries of the table at `pa`.
    pub fn table(&self, pa: u32) -> Table {
        let mut t: Table = [0; ENTRIES_PER_TABLE as usize];
        for (i, e) in t.iter_mut().enumerate() {
            *e = self.read_u32(pa + 4 * i as u32);
        }
        t
    }
}

impl PageTableMemory for PhysMem {
    /// Copies the 1024 little-endian entries out, runs `f`, copies them back.
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        let pa = table.as_u32();
        let len = self.ram.borrow().len();
        assert!(
            pa.is_multiple_of(PAGE_SIZE) && (pa as usize) + PAGE_SIZE as usize <= len,
            "with_table({pa:#010x}): not a 4 KiB-aligned frame in RAM"
        );
        let mut t = self.table(pa);
        let r = f(&mut t);
        for (i, e) in t.iter().enumerate() {
            self.write_u32(pa + 4 * i as u32, *e);
        }
        r
    }
}

/// The page-table frame pool: a LIFO free list over a physical range,
/// handing out the lowest frame first. Frames are zeroed on allocation and
/// filled with `0xA5` on free, so that a walk through a freed table finds
/// garbage, not a plausible empty table.
pub struct Frames {
    ram: Ram,
    free: Vec<u32>,
    /// Frames handed out and not given back.
    pub live: BTreeSet<u32>,
    /// Every `free_table`, in order.
    pub freed: Vec<u32>,
}

impl Frames {
    /// `count` frames from physical `first` in `ram`.
    pub fn new(ram: Ram, first: u32, count: u32) -> Self {
        Frames {
            ram,
            free: (0..count).rev().map(|i| first + i * PAGE_SIZE).collect(),
            live: BTreeSet::new(),
            freed: Vec::new(),
        }
    }

    fn fill(&self, pa: u32, byte: u8) {
        let at = pa as usize;
        self.ram.borrow_mut()[at..at + PAGE_SIZE as usize].fill(byte);
    }

    /// Whether `pa` is in the free list.
    pub fn is_free(&self, pa: u32) -> bool {
        self.free.contains(&pa)
    }

    /// Frames still free.
    pub fn nr_free(&self) -> u32 {
        self.free.len() as u32
    }
}

impl FrameSource for Frames {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = self.free.pop()?;
        self.fill(pa, 0);
        assert!(self.live.insert(pa));
        Some(PhysAddr::from_u32(pa))
    }

    fn free_table(&mut self, table: PhysAddr) {
        let pa = table.as_u32();
        assert!(
            self.live.remove(&pa),
            "double free of page table {pa:#010x} (or never allocated)"
        );
        self.fill(pa, 0xA5);
        self.freed.push(pa);
        self.free.push(pa);
    }
}

/// A page fault, with what the x86 error code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The faulting address (CR2).
    pub va: u32,
    /// The access was a write (error code bit 1).
    pub write: bool,
    /// The page was present: a protection violation (error code bit 0).
    pub present: bool,
}

/// What a read of an unmapped `va` gives: a not-present read fault.
pub fn not_present<T>(va: u32) -> Result<T, Fault> {
    Err(Fault {
        va,
        write: false,
        present: false,
    })
}

/// The MMU: CR3 and a TLB of `vpn -> (frame, PTE flags)`.
///
/// A miss walks the tables in physical memory like the CPU (CR4.PSE on,
/// CR0.WP on: a supervisor write to a read-only page faults), setting the
/// Accessed bit of the PDE and PTE and, on a write, the Dirty bit of the PTE.
/// A hit uses the cached translation as it is, whatever the tables say now;
/// a write hit on a clean entry does not set Dirty again (simplification).
/// Faults are never cached, and a fault drops the TLB entry of its page
/// (Intel SDM Vol. 3A §4.10.4.1).
pub struct Mmu {
    /// The page directory in use.
    pub cr3: PhysAddr,
    /// Cached translations: `vpn -> (frame, flags)`.
    pub tlb: BTreeMap<u32, (u32, u32)>,
    /// Whether `flush_page` is an `invlpg` (else a range flush reloads CR3).
    pub has_invlpg: bool,
    /// Address of every `flush_page`, in order.
    pub page_flushes: Vec<u32>,
    /// Number of `flush_all`s.
    pub full_flushes: u32,
    /// Number of page walks (TLB misses).
    pub walks: u32,
}

impl Mmu {
    /// An MMU with page directory `cr3` loaded and an empty TLB.
    pub fn new(cr3: PhysAddr, has_invlpg: bool) -> Self {
        Mmu {
            cr3,
            tlb: BTreeMap::new(),
            has_invlpg,
            page_flushes: Vec::new(),
            full_flushes: 0,
            walks: 0,
        }
    }

    /// The CPU's checks of a walk for `va`, without touching the TLB or the
    /// Accessed and Dirty bits: `(frame, flags)`, where the flags' R/W bit
    /// is that of the PDE and PTE combined, or the fault the access raises.
    pub fn probe(&self, mem: &PhysMem, va: u32, write: bool) -> Result<(u32, u32), Fault> {
        let fault = |present| Fault { va, write, present };
        let pde = mem.read_u32(self.cr3.as_u32() + 4 * pdx(va));
        if pde & P == 0 {
            return Err(fault(false));
        }
        if pde & PS != 0 {
            if write && pde & RW == 0 {
                return Err(fault(true));
            }
            let frame = (pde & !(PDE_SPAN - 1)) | (va & (PDE_SPAN - 1) & !(PAGE_SIZE - 1));
            return Ok((frame, pde & (PAGE_SIZE - 1)));
        }
        let pte = mem.read_u32((pde & !(PAGE_SIZE - 1)) + 4 * ptx(va));
        if pte & P == 0 {
            return Err(fault(false));
        }
        let rw = pde & pte & RW;
        if write && rw == 0 {
            return Err(fault(true));
        }
        Ok((pte & !(PAGE_SIZE - 1), (pte & (PAGE_SIZE - 1) & !RW) | rw))
    }

    /// A TLB miss: [`Mmu::probe`], then the Accessed (and on a write,
    /// Dirty) bits set as the CPU sets them.
    fn walk(&mut self, mem: &PhysMem, va: u32, write: bool) -> Result<(u32, u32), Fault> {
        self.walks += 1;
        let found = self.probe(mem, va, write)?;
        let pde_pa = self.cr3.as_u32() + 4 * pdx(va);
        let pde = mem.read_u32(pde_pa);
        if pde & PS != 0 {
            mem.write_u32(pde_pa, pde | A | if write { D } else { 0 });
            return Ok(found);
        }
        mem.write_u32(pde_pa, pde | A);
        let pte_pa = (pde & !(PAGE_SIZE - 1)) + 4 * ptx(va);
        mem.write_u32(pte_pa, mem.read_u32(pte_pa) | A | if write { D } else { 0 });
        Ok((found.0, found.1 | A | if write { D } else { 0 }))
    }

    /// The physical address of an aligned 4-byte access at `va`, through
    /// the TLB.
    ///
    /// # Panics
    /// If `va` is not 4-byte aligned.
    pub fn access(&mut self, mem: &PhysMem, va: u32, write: bool) -> Result<u32, Fault> {
        assert!(va.is_multiple_of(4), "unaligned access at {va:#010x}");
        let vpn = va >> PAGE_SHIFT;
        let (frame, flags) = match self.tlb.get(&vpn) {
            Some(&hit) => hit,
            None => {
                let e = self.walk(mem, va, write)?;
                self.tlb.insert(vpn, e);
                e
            }
        };
        if write && flags & RW == 0 {
            self.tlb.remove(&vpn);
            return Err(Fault {
                va,
                write,
                present: true,
            });
        }
        Ok(frame | (va & (PAGE_SIZE - 1)))
    }

    /// A load of the word at `va`.
    pub fn read_u32(&mut self, mem: &PhysMem, va: u32) -> Result<u32, Fault> {
        let pa = self.access(mem, va, false)?;
        Ok(mem.read_u32(pa))
    }

    /// A store of `v` at `va`.
    pub fn write_u32(&mut self, mem: &PhysMem, va: u32, v: u32) -> Result<(), Fault> {
        let pa = self.access(mem, va, true)?;
        mem.write_u32(pa, v);
        Ok(())
    }

    /// Whether the TLB holds a translation for the page of `va`.
    pub fn cached(&self, va: u32) -> bool {
        self.tlb.contains_key(&(va >> PAGE_SHIFT))
    }

    /// Forgets the recorded flushes.
    pub fn reset_counts(&mut self) {
        self.page_flushes.clear();
        self.full_flushes = 0;
    }
}

impl TlbFlusher for Mmu {
    fn flush_page(&mut self, va: VirtAddr) {
        self.page_flushes.push(va.0);
        self.tlb.remove(&(va.0 >> PAGE_SHIFT));
    }

    fn flush_all(&mut self) {
        self.full_flushes += 1;
        self.tlb.clear();
    }

    fn has_invlpg(&self) -> bool {
        self.has_invlpg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_combines_both_levels_and_walk_sets_accessed_and_dirty() {
        let mut mem = PhysMem::new(64 << 10);
        let (pgd, pt) = (0x1000, 0x2000);
        mem.with_table(PhysAddr::from_u32(pgd), |t| t[0] = pt | P);
        mem.with_table(PhysAddr::from_u32(pt), |t| {
            t[3] = 0x5000 | P | RW;
            t[4] = 0x6000 | P;
        });
        let mut mmu = Mmu::new(PhysAddr::from_u32(pgd), true);
        // The PDE is read-only: it binds the writable PTE too.
        assert_eq!(mmu.probe(&mem, 0x3000, false), Ok((0x5000, P)));
        assert_eq!(
            mmu.probe(&mem, 0x3000, true),
            Err(Fault {
                va: 0x3000,
                write: true,
                present: true
            })
        );
        assert_eq!(mmu.probe(&mem, 0x5000, false), not_present(0x5000));
        assert_eq!(mem.read_u32(pgd), pt | P, "probe sets no bit");
        assert_eq!(mmu.access(&mem, 0x4008, false), Ok(0x6008));
        assert_eq!(mem.read_u32(pgd), pt | P | A);
        assert_eq!(mem.read_u32(pt + 16), 0x6000 | P | A);
        assert!(mmu.cached(0x4000));
        mmu.flush_all();
        assert!(!mmu.cached(0x4000));
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn frame_pool_catches_a_double_free() {
        let mut frames = Frames::new(PhysMem::new(64 << 10).ram, 0x1000, 2);
        let t = frames.alloc_table().unwrap();
        frames.free_table(t);
        frames.free_table(t);
    }
}
