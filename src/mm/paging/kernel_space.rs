//! The kernel's final page directory, built as pure logic (Linux
//! `paging_init` → `kernel_physical_mapping_init`, `permanent_kmaps_init`,
//! `kmap_init`, and the read-only text of `mark_rodata_ro`, done at once).
//!
//! [`build_kernel_space`] takes the facts only the running kernel knows (the
//! end of low memory, the image's sections, the boot stack's guard frame,
//! the boot stub's early map table), fills a fresh page directory through
//! [`PageTableMemory`] with frames from a [`FrameSource`], and returns the
//! [`AddressSpace`] without loading it: loading CR3, setting CR0.WP and
//! telling the double-fault TSS stay with the architecture code. The host
//! tests build it on the emulated MMU and walk it like the CPU.
//!
//! ```text
//!  PDE (2-level) virtual                    what the built directory holds
//!  0..767   [0, PAGE_OFFSET)           nothing (the boot identity map is gone)
//!  768..    [PAGE_OFFSET, +end)        direct map of physical [0, end): page 0
//!                                      and the stack guard frame not present;
//!                                      code P (RX), rodata P, the rest P RW,
//!                                      G and NX as the mode allows; a pinned
//!                                      page table per PDE, or with large pages
//!                                      a 4 MiB / 2 MiB page wherever the span
//!                                      has no hole and one set of flags
//!  ..1020   up to PKMAP_BASE           nothing (vmalloc maps on demand)
//!  1021     [PKMAP_BASE, +4 MiB)       pkmap table(s): allocated, pinned, empty
//!  1022     [EARLY_MAP_BASE, +4 MiB)   the boot stub's early map table, borrowed
//!                                      (PAE: its entries copied into 2 tables)
//!  1023     [0xFFC0_0000, 4 GiB)       fixmap table: allocated, pinned, empty
//!
//!  end = max(max_low_pfn, end of the image's last section)   (pfns)
//!  PAE: the same spans in a PDPT -> page directory (PDPTE 3) -> 512-entry
//!  tables; each 4 MiB row above is two PDEs of 2 MiB.
//! ```
//!
//! The map API of the returned space manages `[PAGE_OFFSET, PKMAP_BASE)`
//! only: the pkmap, early map and fixmap slots have their own bookkeeping.

use super::entry::{Format, PagingMode};
use super::{
    AddressSpace, FrameSource, MapError, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_RX, PTEntry,
    PTFlags, PageTableMemory,
};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::mm::layout::{
    EARLY_MAP_BASE, EARLY_MAP_PAGES, FIXADDR_START, MAXMEM, PAGE_OFFSET, PAGE_SHIFT, PKMAP_BASE,
    PKMAP_END,
};
use crate::mm::zone::DEFAULT_MAX_LOW_PFN;
use core::fmt;

/// Value: 229 376 (896 MiB of frames). The most frames the direct map
/// holds (Linux `MAXMEM_PFN`): the zones' end of low memory,
/// [`DEFAULT_MAX_LOW_PFN`], under the name this module's checks read best
/// with.
pub const MAX_DIRECT_MAP_PFN: Pfn = DEFAULT_MAX_LOW_PFN;

/// A section of the kernel image, by physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysSection {
    /// The section's name, as in the linker script (`.text`, ...).
    pub name: &'static str,
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte (the page holding it is the section's last).
    pub end: PhysAddr,
    /// Whether its pages are mapped without R/W (`.boot`, `.text`,
    /// `.rodata`).
    pub read_only: bool,
    /// Whether its pages hold code (`.boot`, `.text`): the only kernel
    /// pages left executable when the mode has NX.
    pub executable: bool,
}

impl PhysSection {
    /// The frames the section touches, `[start.pfn(), end.pfn_up())`; empty
    /// for an empty section.
    pub fn frames(&self) -> (Pfn, Pfn) {
        if self.end <= self.start {
            return (self.start.pfn(), self.start.pfn());
        }
        (self.start.pfn(), self.end.pfn_up())
    }

    fn contains(&self, pfn: Pfn) -> bool {
        let (first, end) = self.frames();
        (first..end).contains(&pfn)
    }
}

/// What [`build_kernel_space`] needs to know about the running kernel.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpaceLayout<'a> {
    /// The paging mode to build the tables in.
    pub mode: PagingMode,
    /// End of low memory: the direct map covers frames `[0, max_low_pfn)`,
    /// and more if the image reaches further.
    pub max_low_pfn: Pfn,
    /// Every section of the kernel image (the direct map reaches at least
    /// the end of the last one, so a `mem=` below the image's end cannot
    /// unmap the running kernel).
    pub sections: &'a [PhysSection],
    /// The frame under the boot stack, left unmapped so that an overflow
    /// faults.
    pub stack_guard: Pfn,
    /// The boot stub's early map page table, installed (borrowed, not owned)
    /// at `EARLY_MAP_BASE`.
    pub early_map_table: PhysAddr,
}

impl KernelSpaceLayout<'_> {
    /// First frame past the image's last section.
    pub fn image_end(&self) -> Pfn {
        self.sections
            .iter()
            .map(|s| s.frames().1)
            .max()
            .unwrap_or(Pfn(0))
    }

    /// First frame past the direct map: `max(max_low_pfn, image_end())`.
    pub fn direct_map_end(&self) -> Pfn {
        self.max_low_pfn.max(self.image_end())
    }

    /// Whether frame `pfn` lies in a read-only section.
    pub fn is_read_only(&self, pfn: Pfn) -> bool {
        self.sections.iter().any(|s| s.read_only && s.contains(pfn))
    }

    /// Whether frame `pfn` lies in a section of code.
    pub fn is_executable(&self, pfn: Pfn) -> bool {
        self.sections
            .iter()
            .any(|s| s.executable && s.contains(pfn))
    }

    /// The direct map's flags for frame `pfn`: `None` for a hole (page 0,
    /// the stack guard), [`PAGE_KERNEL_RX`] for code, [`PAGE_KERNEL_RO`]
    /// for other read-only sections, [`PAGE_KERNEL`] for the rest (the
    /// address space drops G and NX where the mode has none).
    pub fn direct_map_flags(&self, pfn: Pfn) -> Option<PTFlags> {
        if pfn == Pfn(0) || pfn == self.stack_guard {
            return None;
        }
        Some(match (self.is_read_only(pfn), self.is_executable(pfn)) {
            (true, true) => PAGE_KERNEL_RX,
            (true, false) => PAGE_KERNEL_RO,
            (false, _) => PAGE_KERNEL,
        })
    }
}

/// One step of [`build_kernel_space`], for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStep {
    /// Allocating the page directory.
    PageDirectory,
    /// Mapping low memory at `PAGE_OFFSET`.
    DirectMap,
    /// The pkmap window's page table.
    PkmapTable,
    /// The fixmap's page table.
    FixmapTable,
    /// Copying the early map window into PAE page tables.
    EarlyMapCopy,
    /// Installing the boot stub's early map table.
    EarlyMapWindow,
}

impl BuildStep {
    /// The step as the boot log names it.
    pub fn name(self) -> &'static str {
        match self {
            BuildStep::PageDirectory => "page directory",
            BuildStep::DirectMap => "direct map",
            BuildStep::PkmapTable => "pkmap page table",
            BuildStep::FixmapTable => "fixmap page table",
            BuildStep::EarlyMapWindow => "early map window",
            BuildStep::EarlyMapCopy => "early map window copy",
        }
    }
}

/// Why the final page directory could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelSpaceError {
    /// The direct map would end past [`MAX_DIRECT_MAP_PFN`] (into the
    /// vmalloc gap). Nothing was allocated.
    TooLarge {
        /// Where the direct map would end.
        end: Pfn,
    },
    /// Frame `pfn` holds both a read-only and a writable section, so it can
    /// be neither. Nothing was allocated.
    SharedPage {
        /// The frame.
        pfn: Pfn,
        /// The read-only section.
        read_only: &'static str,
        /// The writable section.
        writable: &'static str,
    },
    /// A step of the build failed (e.g. [`MapError::NoMemory`] when the
    /// frame source ran dry). The frames taken so far are not given back:
    /// the kernel cannot boot on without this directory.
    Map {
        /// The step.
        step: BuildStep,
        /// What the address space reported.
        err: MapError,
    },
}

impl fmt::Display for KernelSpaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KernelSpaceError::TooLarge { end } => write!(
                f,
                "direct map: frames [0, {:#x}) exceed the {} MiB of low memory",
                end,
                MAXMEM >> 20
            ),
            KernelSpaceError::SharedPage {
                pfn,
                read_only,
                writable,
            } => write!(
                f,
                "direct map: frame {pfn:#x} holds read-only {read_only} and writable {writable}"
            ),
            KernelSpaceError::Map { step, err } => write!(f, "{}: {err}", step.name()),
        }
    }
}

/// What was built, counted from what was mapped (for the boot log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSpaceReport {
    /// Physical address of the page directory, or under PAE of the PDPT
    /// (what CR3 will hold).
    pub pgd: PhysAddr,
    /// Page tables allocated (page directories, the PDPT and the borrowed
    /// early map table not counted).
    pub nr_pt_pages: u32,
    /// PAE: page directories under the PDPT (1 for the kernel's quarter);
    /// 0 for 32-bit paging.
    pub nr_pd_pages: u32,
    /// Large pages (4 MiB or 2 MiB) in the direct map.
    pub large_pages: u32,
    /// First frame past the direct map.
    pub direct_map_end: Pfn,
    /// Pages the direct map maps (its frames less the holes).
    pub direct_pages: u32,
    /// Of those, read-only.
    pub ro_pages: u32,
}

/// The built kernel address space and its pinned tables.
pub struct KernelSpace {
    /// The address space; its map API manages `[PAGE_OFFSET, PKMAP_BASE)`.
    pub space: AddressSpace,
    /// The pkmap window's page table (for `kmap`).
    pub pkmap_table: PhysAddr,
    /// The fixmap's page table (for `kmap_local`).
    pub fixmap_table: PhysAddr,
    /// The counts.
    pub report: KernelSpaceReport,
}

/// Builds the kernel's final page directory (see the module documentation
/// for what it holds). It is not loaded, so no TLB flush is needed: loading
/// it into CR3 flushes everything.
///
/// Frames come from `frames` in this order: the page directory, one page
/// table per page-directory entry of the direct map that is not a large
/// page, the pkmap table(s), the fixmap table (PAE: the PDPT and the page
/// directory first, the two early-map tables last).
///
/// # Errors
/// [`KernelSpaceError::TooLarge`] and [`KernelSpaceError::SharedPage`] for a
/// layout that cannot be mapped (checked before anything is allocated);
/// [`KernelSpaceError::Map`] for a failed step, e.g. `NoMemory` when
/// `frames` runs dry, or `FrameOutOfRange` at step
/// [`BuildStep::EarlyMapWindow`] for an early map table at or above 4 GiB.
pub fn build_kernel_space(
    layout: &KernelSpaceLayout,
    frames: &mut impl FrameSource,
    mem: &mut impl PageTableMemory,
) -> Result<KernelSpace, KernelSpaceError> {
    let end = layout.direct_map_end();
    if end > MAX_DIRECT_MAP_PFN {
        return Err(KernelSpaceError::TooLarge { end });
    }
    check_sections(layout.sections)?;
    let fail = |step| move |err| KernelSpaceError::Map { step, err };

    let mode = layout.mode;
    let mut space = AddressSpace::new_in(mode, mem, frames, VirtAddr(PAGE_OFFSET), 1 << 32)
        .map_err(fail(BuildStep::PageDirectory))?;

    // The direct map, with its holes, read-only kernel code and (with NX)
    // non-executable data (Linux `kernel_physical_mapping_init`, then
    // `mark_rodata_ro` and `mark_nxdata_nx`).
    space
        .map_linear(
            mem,
            frames,
            VirtAddr(PAGE_OFFSET),
            PhysAddr(0),
            end.0,
            mode.large_pages,
            |pfn| layout.direct_map_flags(pfn),
        )
        .map_err(fail(BuildStep::DirectMap))?
        .ignore("the new page directory is not loaded yet: the CR3 load flushes");
    let (mut mapped, mut ro) = (0, 0);
    for pfn in Pfn(0).range_to(end) {
        if let Some(flags) = layout.direct_map_flags(pfn) {
            mapped += 1;
            ro += u32::from(!flags.contains(PTFlags::RW));
        }
    }
    let large_pages = if mode.large_pages {
        let mut n = 0;
        space.dump(mem, |d| {
            if d.page_shift > PAGE_SHIFT {
                n += d.pages >> (d.page_shift - PAGE_SHIFT);
            }
        });
        n
    } else {
        0
    };

    // Page tables for the pkmap window and the fixmap, made now so that
    // kmap never allocates (Linux `permanent_kmaps_init`, `kmap_init`): one
    // per page-directory entry the window spans (two under PAE).
    let span = mode.format.pde_span();
    let mut pkmap_table = None;
    for va in (PKMAP_BASE..PKMAP_END).step_by(span as usize) {
        let t = space
            .ensure_table(mem, frames, VirtAddr(va), true)
            .map_err(fail(BuildStep::PkmapTable))?;
        pkmap_table.get_or_insert(t);
    }
    let pkmap_table = pkmap_table.unwrap_or(PhysAddr(0));
    let fixmap_table = space
        .ensure_table(mem, frames, VirtAddr(FIXADDR_START), true)
        .map_err(fail(BuildStep::FixmapTable))?;
    // The boot information still lives in the early map window. A 32-bit
    // directory borrows the boot stub's table; a PAE one cannot (its entries
    // are 8 bytes), so the window's entries are copied into tables of its
    // own, which retire_early_map frees.
    match mode.format {
        Format::TwoLevel => space
            .install_table(mem, VirtAddr(EARLY_MAP_BASE), layout.early_map_table)
            .map_err(fail(BuildStep::EarlyMapWindow))?
            .ignore("the new page directory is not loaded yet: the CR3 load flushes"),
        Format::Pae => copy_early_map(&mut space, mem, frames, layout.early_map_table)
            .map_err(fail(BuildStep::EarlyMapCopy))?,
    }

    // From here on the map API manages [PAGE_OFFSET, PKMAP_BASE) only.
    space.set_end(u64::from(PKMAP_BASE));
    let report = KernelSpaceReport {
        pgd: space.pgd(),
        nr_pt_pages: space.nr_pt_pages(),
        nr_pd_pages: space.nr_pd_pages(),
        large_pages,
        direct_map_end: end,
        direct_pages: mapped,
        ro_pages: ro,
    };
    Ok(KernelSpace {
        space,
        pkmap_table,
        fixmap_table,
        report,
    })
}

/// Copies the boot stub's early map window (a 32-bit page table at
/// `boot_table`) into pinned PAE page tables of `space`, entry by entry,
/// with the same frames and flags.
fn copy_early_map(
    space: &mut AddressSpace,
    mem: &mut impl PageTableMemory,
    frames: &mut impl FrameSource,
    boot_table: PhysAddr,
) -> Result<(), MapError> {
    let format = space.mode().format;
    let boot: super::Table = mem.with_table(boot_table, |t| *t);
    for i in 0..EARLY_MAP_PAGES {
        let va = VirtAddr(EARLY_MAP_BASE + (i << PAGE_SHIFT));
        if format.pte_index(va) == 0 {
            space.ensure_table(mem, frames, va, true)?;
        }
        let e = PTEntry(Format::TwoLevel.read(&boot, i as usize));
        if e.is_present() {
            let table = space.walk(mem, va).pde.address();
            mem.with_table(table, |t| format.write(t, format.pte_index(va), e.0));
        }
    }
    Ok(())
}

/// Refuses a frame shared by a read-only and a writable section.
fn check_sections(sections: &[PhysSection]) -> Result<(), KernelSpaceError> {
    for r in sections.iter().filter(|s| s.read_only) {
        for w in sections.iter().filter(|s| !s.read_only) {
            let (r0, r1) = r.frames();
            let (w0, w1) = w.frames();
            let (lo, hi) = (r0.max(w0), r1.min(w1));
            if lo < hi {
                return Err(KernelSpaceError::SharedPage {
                    pfn: lo,
                    read_only: r.name,
                    writable: w.name,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
