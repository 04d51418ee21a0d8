//! Reading page tables as the MMU does: the software walk of one address
//! ([`walk`], for fault reports and `translate`), single-entry writes into
//! tables with their own bookkeeping ([`set_pte`]), and the folded dump of
//! everything mapped ([`dump`]), in either [`Format`].

use super::entry::{EntryFlags, Format, PDEntry, PDFlags, PTEntry, PTFlags, Pdpte, Table};
use super::{PageTableMemory, TlbFlush};
use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::layout::PAGE_SHIFT;
use core::fmt;

/// A software page-table walk of one address (what the MMU does on a TLB
/// miss), for fault reports and `translate`-style logging.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    /// The address walked.
    pub va: VirtAddr,
    /// The format the tables were read in.
    pub format: Format,
    /// What CR3 holds: the page directory (32-bit paging) or the PDPT (PAE).
    pub pgd: PhysAddr,
    /// PAE: `PDPTE[va >> 30]`; `None` under 32-bit paging.
    pub pdpte: Option<Pdpte>,
    /// `va`'s PDE; 0 when a PAE PDPTE is not present.
    pub pde: PDEntry,
    /// `va`'s PTE, if the PDE is present and points at a page table.
    pub pte: Option<PTEntry>,
}

impl Walk {
    /// The physical address `va` translates to, if every level is present
    /// (a large page's offset included).
    pub fn pa(&self) -> Option<PhysAddr> {
        if self.pde.is_present() && self.pde.is_page() {
            let span = u64::from(self.format.pde_span());
            return Some(self.pde.address() + (u64::from(self.va.0) & (span - 1)));
        }
        let pte = self.pte?;
        pte.is_present()
            .then(|| pte.address() + u64::from(self.va.page_offset()))
    }

    /// The leaf's flags: the PTE's, or a large page's PDE's without PS;
    /// `None` if not mapped.
    pub fn leaf_flags(&self) -> Option<PTFlags> {
        if self.pde.is_present() && self.pde.is_page() {
            let bits = self.pde.0 & !PDFlags::PS.bits();
            return Some(PTEntry(bits).flags());
        }
        self.pte.filter(|p| p.is_present()).map(|p| p.flags())
    }
}

impl fmt::Display for Walk {
    /// One line. 32-bit paging: `va 0x...: PDE[768] = 0x... (P RW A) ->
    /// page table 0x...; PTE[257] = 0x... (P A (read-only)) -> pa 0x...`.
    /// PAE adds `PDPTE[3] = 0x... (P) -> page directory 0x...;` in front,
    /// with 64-bit entry values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.format == Format::Pae { 18 } else { 10 };
        write!(f, "va {:#010x}: ", self.va)?;
        if let Some(pdpte) = self.pdpte {
            write!(
                f,
                "PDPTE[{}] = {:#0width$x} ({})",
                self.format.pdpt_index(self.va),
                pdpte.0,
                EntryFlags::pdpte(pdpte)
            )?;
            if !pdpte.is_present() {
                return f.write_str(" -> no page directory");
            }
            write!(f, " -> page directory {:#010x}; ", pdpte.address())?;
        }
        write!(
            f,
            "PDE[{}] = {:#0width$x} ({})",
            self.format.pde_index(self.va),
            self.pde.0,
            EntryFlags::pde(self.pde)
        )?;
        if !self.pde.is_present() {
            return f.write_str(" -> no page table");
        }
        if self.pde.is_page() {
            let mib = self.format.pde_span() >> 20;
            write!(f, " -> {mib} MiB page {:#010x}", self.pde.address())?;
            if let Some(pa) = self.pa() {
                write!(f, " -> pa {pa:#010x}")?;
            }
            return Ok(());
        }
        write!(f, " -> page table {:#010x}", self.pde.address())?;
        if let Some(pte) = self.pte {
            write!(
                f,
                "; PTE[{}] = {:#0width$x} ({})",
                self.format.pte_index(self.va),
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

/// The page directory that holds `va`'s PDE under `pgd` (CR3): `pgd`
/// itself for 32-bit paging; under PAE, the one `PDPTE[va >> 30]` points
/// at, with that PDPTE (`None` for the directory when it is not present).
pub fn page_directory(
    mem: &mut impl PageTableMemory,
    format: Format,
    pgd: PhysAddr,
    va: VirtAddr,
) -> (Option<Pdpte>, Option<PhysAddr>) {
    match format {
        Format::TwoLevel => (None, Some(pgd)),
        Format::Pae => {
            let e = Pdpte(mem.with_table(pgd, |t| format.read(t, format.pdpt_index(va))));
            (Some(e), e.is_present().then(|| e.address()))
        }
    }
}

/// Walks the page tables under `pgd` (CR3) in `format` for `va`.
pub fn walk(mem: &mut impl PageTableMemory, format: Format, pgd: PhysAddr, va: VirtAddr) -> Walk {
    let (pdpte, pd) = page_directory(mem, format, pgd, va);
    let pde = match pd {
        Some(pd) => PDEntry(mem.with_table(pd, |t| format.read(t, format.pde_index(va)))),
        None => PDEntry(0),
    };
    let pte = (pde.is_present() && !pde.is_page())
        .then(|| PTEntry(mem.with_table(pde.address(), |t| format.read(t, format.pte_index(va)))));
    Walk {
        va,
        format,
        pgd,
        pdpte,
        pde,
        pte,
    }
}

/// Writes `entry` into the PTE for `va` of the page table at `table` (in
/// `format`), a table the caller owns outright (the pkmap and fixmap tables,
/// the early map's, whose slots are handed out by their own bookkeeping),
/// and returns the flush that makes the change visible.
pub fn set_pte(
    mem: &mut impl PageTableMemory,
    format: Format,
    table: PhysAddr,
    va: VirtAddr,
    entry: PTEntry,
) -> TlbFlush {
    let va = va.page_align_down();
    mem.with_table(table, |t| format.write(t, format.pte_index(va), entry.0));
    TlbFlush::new(va.0, 1)
}

/// Value: bits 8..0 but A, D and PS, and bit 63 (NX). Flags compared when
/// folding a dump: the CPU sets Accessed and Dirty behind our back, and a
/// large page's PS is shown by [`DumpRange::page_shift`].
const DUMP_FLAGS_MASK: u64 =
    (0x1ff | PTFlags::XD.bits()) & !(PTFlags::A.bits() | PTFlags::D.bits() | PDFlags::PS.bits());

/// One line of a dump: `pages` 4 KiB pages from `va` mapped to consecutive
/// frames from `pa`, all with the same flags and page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpRange {
    /// First virtual address.
    pub va: VirtAddr,
    /// First physical address.
    pub pa: PhysAddr,
    /// Number of 4 KiB pages.
    pub pages: u32,
    /// Leaf flags (bits 8..0 without A, D and PS; bit 63 NX).
    pub flags: u64,
    /// log2 of the page size that maps them: 12 (4 KiB pages), 21 (2 MiB)
    /// or 22 (4 MiB).
    pub page_shift: u32,
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
        )?;
        if self.page_shift > PAGE_SHIFT {
            write!(f, "  ({} MiB pages)", 1 << (self.page_shift - 20))?;
        }
        Ok(())
    }
}

/// Calls `out` with the present mappings under `pgd` (CR3) in `format` over
/// virtual `[start, end)`, folded: runs of pages mapped to consecutive
/// frames with equal flags and page size (Accessed and Dirty ignored) become
/// one [`DumpRange`].
pub fn dump(
    mem: &mut impl PageTableMemory,
    format: Format,
    pgd: PhysAddr,
    start: VirtAddr,
    end: u64,
    mut out: impl FnMut(&DumpRange),
) {
    let start = u64::from(start.0);
    let span = u64::from(format.pde_span());
    let mut run: Option<DumpRange> = None;
    // Extends the current run with `next` if it continues it (same flags and
    // page size, consecutive pages and frames); else emits the run and
    // starts `next` (`None`: a hole ends the run).
    let mut step = |next: Option<DumpRange>| match (run.as_mut(), next) {
        (Some(r), Some(n))
            if r.flags == n.flags
                && r.page_shift == n.page_shift
                && r.va + (r.pages << PAGE_SHIFT) == n.va
                && r.pa + (u64::from(r.pages) << PAGE_SHIFT) == n.pa =>
        {
            r.pages += n.pages
        }
        (_, next) => {
            if let Some(r) = run.take() {
                out(&r);
            }
            run = next;
        }
    };
    let range = |va: u64, pa: PhysAddr, pages, flags, page_shift| {
        Some(DumpRange {
            va: VirtAddr(va as u32),
            pa,
            pages,
            flags,
            page_shift,
        })
    };
    let pdpt_entries = if format == Format::Pae { 4 } else { 1 };
    for p in 0..pdpt_entries {
        let pd_va = (p as u64) << 30;
        let (_, pd) = page_directory(mem, format, pgd, VirtAddr(pd_va as u32));
        let Some(pd) = pd else {
            step(None);
            continue;
        };
        let directory: Table = mem.with_table(pd, |t| *t);
        for i in 0..format.entries() as usize {
            let pde_va = pd_va + ((i as u64) << format.pde_shift());
            if pde_va >= end || pde_va + span <= start {
                continue;
            }
            let pde = PDEntry(format.read(&directory, i));
            if !pde.is_present() {
                step(None);
                continue;
            }
            if pde.is_page() {
                let (pages, shift) = (format.pages_per_pde(), format.pde_shift());
                step(range(
                    pde_va,
                    pde.address(),
                    pages,
                    pde.0 & DUMP_FLAGS_MASK,
                    shift,
                ));
                continue;
            }
            let table: Table = mem.with_table(pde.address(), |t| *t);
            for j in 0..format.entries() as usize {
                let va = pde_va | ((j as u64) << PAGE_SHIFT);
                let pte = PTEntry(format.read(&table, j));
                if va < start || va >= end || !pte.is_present() {
                    step(None);
                    continue;
                }
                step(range(
                    va,
                    pte.address(),
                    1,
                    pte.0 & DUMP_FLAGS_MASK,
                    PAGE_SHIFT,
                ));
            }
        }
    }
    step(None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::paging::{AddressSpace, PAGE_KERNEL, PagingMode};
    use crate::test_support::mmu::{Frames, PhysMem};

    const PAE_NX: PagingMode = PagingMode {
        format: Format::Pae,
        large_pages: true,
        global: true,
        nx: true,
    };

    #[test]
    fn a_pae_walk_prints_three_levels_of_64_bit_entries() {
        let mut mem = PhysMem::new(4 << 20);
        mem.add_ram(5 << 30, 1 << 20);
        let mut frames = Frames::new(mem.ram.clone(), 0x10_0000, 16);
        let mut space = AddressSpace::new_in(
            PAE_NX,
            &mut mem,
            &mut frames,
            VirtAddr(0xC000_0000),
            1 << 32,
        )
        .unwrap();
        let va = VirtAddr(0xF880_3000);
        space
            .map_page(&mut mem, &mut frames, va, PhysAddr(5 << 30), PAGE_KERNEL)
            .unwrap()
            .ignore("not loaded");
        let w = space.walk(&mut mem, va + 0x10);
        assert_eq!(w.pa(), Some(PhysAddr((5 << 30) + 0x10)));
        assert_eq!(w.leaf_flags(), Some(PAGE_KERNEL));
        // The frame pool hands out the PDPT (0x100000), the page directory
        // (0x101000), then the page table (0x102000).
        assert_eq!(
            w.to_string(),
            "va 0xf8803010: PDPTE[3] = 0x0000000000101001 (P) -> page directory 0x00101000; \
             PDE[452] = 0x0000000000102003 (P RW) -> page table 0x00102000; \
             PTE[3] = 0x8000000140000103 (P RW G NX) -> pa 0x140000010"
        );
        // Below PAGE_OFFSET the PDPTE is not present.
        let user = space.walk(&mut mem, VirtAddr(0x0804_8000));
        assert_eq!(
            user.to_string(),
            "va 0x08048000: PDPTE[0] = 0x0000000000000000 (not present) -> no page directory"
        );
        assert_eq!(user.pa(), None);
    }

    #[test]
    fn a_dump_folds_large_pages_apart_from_small_ones() {
        let mut mem = PhysMem::new(4 << 20);
        let mut frames = Frames::new(mem.ram.clone(), 0x10_0000, 16);
        let mut space = AddressSpace::new_in(
            PAE_NX,
            &mut mem,
            &mut frames,
            VirtAddr(0xC000_0000),
            1 << 32,
        )
        .unwrap();
        // 8 MiB: the first 2 MiB with a hole at page 0, then three 2 MiB pages.
        space
            .map_linear(
                &mut mem,
                &mut frames,
                VirtAddr(0xC000_0000),
                PhysAddr(0),
                2048,
                true,
                |p| (p.0 != 0).then_some(PAGE_KERNEL),
            )
            .unwrap()
            .ignore("not loaded");
        let mut out = Vec::new();
        space.dump(&mut mem, |d| out.push(d.to_string()));
        assert_eq!(
            out,
            [
                "[0xc0001000, 0xc0200000) -> [0x00001000, 0x00200000)    511 pages  P RW G NX",
                "[0xc0200000, 0xc0800000) -> [0x00200000, 0x00800000)   1536 pages  P RW G NX  (2 MiB pages)",
            ]
        );
        assert_eq!(
            space.nr_pt_pages(),
            1,
            "one table, for the span with the hole"
        );
    }
}
