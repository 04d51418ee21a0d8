//! Final paging, hardware half: gathers what only the running kernel knows
//! (the image's sections, the boot stack's guard page, the boot stub's
//! early map table), has `crate::mm::paging::kernel_space` build the
//! permanent page directory from buddy pages, switches CR3 to it, turns on
//! CR0.WP, and owns the kernel address space afterwards (Linux
//! `paging_init()` / `kernel_physical_mapping_init()` / `mark_rodata_ro()`
//! on i386).
//!
//! The page-table logic is `crate::mm::paging` (pure, host-tested: the
//! builder on the emulated MMU, region by region); this module supplies its
//! three interfaces:
//! - `highmem::KernelPtMem`: page-table frames through the direct map, or
//!   through a temporary mapping for frames the direct map does not reach;
//! - the buddy allocator as the `FrameSource`;
//! - `tlb::ArchTlb`: `invlpg` or a CR3 reload.
//!
//! What the final page directory holds, and what it leaves out:
//! - the direct map: physical `[0, max_low_pfn)` at `PAGE_OFFSET`, except
//!   page 0 and the boot stack's guard page; the kernel's `.boot`, `.text`
//!   and `.rodata` read-only, everything else writable;
//! - one pinned page table each for the pkmap window and the fixmap;
//! - the boot stub's early map table, borrowed until the boot information
//!   is no longer needed ([`retire_early_map`]);
//! - nothing below `PAGE_OFFSET`: the boot identity map is gone.
//!
//! The directory is built in the [`PagingMode`] chosen at boot
//! (`crate::mm::paging::choose`): 32-bit or PAE entries, large pages for
//! the direct map (CR4.PSE), global kernel pages (CR4.PGE), NX data
//! (EFER.NXE). Switching from the boot stub's 32-bit directory to a PAE one
//! is [`cpu::switch_to_pae`]; its precondition is met here.

use super::highmem::{KernelPtMem, direct_map_end_pfn, in_direct_map};
use super::tlb::ArchTlb;
use super::{boot_stack, cpu, image_sections};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::cpu_info::CpuInfo;
use crate::mm::buddy::BuddyAllocator;
use crate::mm::layout::{EARLY_MAP_BASE, KernelLayout, phys_to_virt, virt_to_phys};
use crate::mm::paging::kernel_space::{KernelSpace, KernelSpaceLayout, build_kernel_space};
use crate::mm::paging::{
    AddressSpace, DumpRange, Format, MapError, PTFlags, PageTableMemory, PagingMode, Table,
    TlbFlush, Walk,
};
use portable_atomic::{AtomicBool, AtomicU8, Ordering};
use spin::Mutex;

/// Whether CR0.WP was set (read-only pages bind the kernel too).
static WP_ENABLED: AtomicBool = AtomicBool::new(false);

/// The kernel address space, once [`paging_init`] has built it.
static KERNEL_SPACE: Mutex<Option<AddressSpace>> = Mutex::new(None);

/// The format CR3 is walked in: 0 32-bit (the boot directory too), 1 PAE.
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// The format of the page tables in use.
pub fn current_format() -> Format {
    match FORMAT.load(Ordering::Relaxed) {
        0 => Format::TwoLevel,
        _ => Format::Pae,
    }
}

/// Whether CR0.WP is set, so that kernel writes to read-only pages fault.
pub fn write_protect_enabled() -> bool {
    WP_ENABLED.load(Ordering::Relaxed)
}

/// The address-space facts fault reports name regions with.
pub fn kernel_layout() -> KernelLayout {
    let (guard, bottom, _) = boot_stack();
    KernelLayout {
        sections: image_sections().map(|s| (s.name, s.start, s.end)),
        stack_guard: (guard, bottom),
        direct_map_end: phys_to_virt(direct_map_end_pfn().phys()),
    }
}

/// What [`paging_init`] built, for the boot log.
#[derive(Clone, Copy, Debug)]
pub struct PagingReport {
    /// The mode the directory runs in.
    pub mode: PagingMode,
    /// Physical address of the new page directory (PAE: of the PDPT).
    pub pgd: PhysAddr,
    /// Page tables allocated (the page directory not counted).
    pub nr_pt_pages: u32,
    /// PAE: page directories under the PDPT; 0 for 32-bit paging.
    pub nr_pd_pages: u32,
    /// Large pages in the direct map.
    pub large_pages: u32,
    /// Pages mapped by the direct map.
    pub direct_pages: u32,
    /// Of those, read-only (kernel `.boot`, `.text`, `.rodata`).
    pub ro_pages: u32,
    /// Whether CR0.WP was set.
    pub wp: bool,
    /// First pfn past the new direct map (`highmem::init` records it).
    pub direct_map_end_pfn: Pfn,
    /// Physical address of the pinned pkmap page table.
    pub pkmap_pt: PhysAddr,
    /// Physical address of the pinned fixmap page table.
    pub fixmap_pt: PhysAddr,
}

/// Builds the final page directory (`build_kernel_space`), loads it, and
/// sets CR0.WP where the CPU has it (Linux `paging_init`, `mark_rodata_ro`).
///
/// The caller finishes the switch: the double-fault task's CR3
/// (`idt::set_double_fault_cr3`) and the new direct map's end and kmap
/// tables (`highmem::init`), from the returned report.
///
/// The direct map covers `[0, max(max_low_pfn, end of the kernel image))`,
/// so that a `mem=` below the image's end cannot unmap the running kernel.
///
/// # Panics
/// If the buddy allocator cannot supply the page tables.
///
/// # Safety
/// Call once, after the buddy allocator took over and before anything uses
/// an identity-mapped (below `PAGE_OFFSET`) address. Interrupts disabled.
pub unsafe fn paging_init(
    buddy: &mut BuddyAllocator<'static>,
    cpu: &CpuInfo,
    mode: PagingMode,
    max_low_pfn: Pfn,
) -> PagingReport {
    // SAFETY: only page-table frames pass through it (this function's and
    // the AddressSpace's).
    let mut mem = unsafe { KernelPtMem::new() };
    // What only the running kernel knows; the directory itself is built by
    // pure, host-tested code.
    let sections = image_sections().map(|s| s.phys_section());
    let (guard, _, _) = boot_stack();
    let layout = KernelSpaceLayout {
        mode,
        max_low_pfn,
        sections: &sections,
        stack_guard: virt_to_phys(guard).pfn(),
        early_map_table: super::early_map::table_phys(),
    };
    let KernelSpace {
        space,
        pkmap_table,
        fixmap_table,
        report: built,
    } = build_kernel_space(&layout, buddy, &mut mem)
        .unwrap_or_else(|e| super::exit::fatal(format_args!("paging_init: {e}")));
    let pgd = built.pgd;
    // SAFETY: the directory was built in `mode`, which choose_mode allowed
    // for this CPU; it maps the kernel image (code, data, this stack, GDT,
    // IDT, TSSs) through the direct map, the early map window (boot
    // information), and all page-table frames (lowmem, in the direct map).
    unsafe { load_directory(&mut mem, mode, pgd, built.direct_map_end) };

    let wp = cpu.has_cr0_wp();
    if wp {
        // SAFETY: setting CR0.WP only makes the kernel honour read-only
        // PTEs; nothing writes to .text or .rodata (the linker made them
        // read-only sections).
        unsafe { cpu::set_cr0_wp() };
        WP_ENABLED.store(true, Ordering::Relaxed);
    }
    let report = PagingReport {
        mode,
        pgd,
        nr_pt_pages: built.nr_pt_pages,
        nr_pd_pages: built.nr_pd_pages,
        large_pages: built.large_pages,
        direct_pages: built.direct_pages,
        ro_pages: built.ro_pages,
        wp,
        direct_map_end_pfn: built.direct_map_end,
        pkmap_pt: pkmap_table,
        fixmap_pt: fixmap_table,
    };
    *KERNEL_SPACE.lock() = Some(space);
    report
}

/// Loads the built directory at `pgd` in `mode`: CR4.PSE before a 32-bit
/// directory with 4 MiB pages (without it PS is ignored and the PDE read as
/// a page table), EFER.NXE before tables with NX bits (without it they are
/// reserved-bit faults), the switch to PAE (see [`cpu::switch_to_pae`]),
/// CR4.PGE last.
///
/// # Safety
/// The directory must be complete (see [`paging_init`]) and `mode` allowed
/// by the CPU.
unsafe fn load_directory(mem: &mut KernelPtMem, mode: PagingMode, pgd: PhysAddr, end: Pfn) {
    if mode.nx {
        // SAFETY: choose_mode allows NX only on a CPU with it.
        unsafe { cpu::set_efer_nxe() };
    }
    match mode.format {
        Format::TwoLevel => {
            if mode.large_pages {
                // SAFETY: the CPU has PSE; the boot directory has no PS
                // entries, so nothing changes for it.
                unsafe { cpu::write_cr4(cpu::read_cr4() | cpu::CR4_PSE) };
            }
            // SAFETY: the directory maps everything in use (the caller).
            unsafe { cpu::write_cr3(pgd.as_u32()) };
            super::highmem::set_direct_map_end(end);
        }
        Format::Pae => {
            // Between `mov cr3` and `mov cr4` the CPU reads the PDPT's
            // frame as a 32-bit page directory: give it the boot
            // directory's kernel entries (768..1023; the PDPT uses bytes
            // 0..31 only, entries 0..7 of that view), and take them away
            // after the switch.
            let boot = cpu::read_cr3_pgd();
            let kernel_pdes: Table = mem.with_table(boot, |t| *t);
            let first = crate::mm::layout::PAGE_OFFSET_PDE as usize;
            mem.with_table(pgd, |t| t[first..].copy_from_slice(&kernel_pdes[first..]));
            let pge = if mode.global { cpu::CR4_PGE } else { 0 };
            // SAFETY: the CPU has PAE (choose_mode) and PGE if asked; the
            // PDPT's frame maps this code and stack in both views; the
            // caller disabled interrupts.
            unsafe { cpu::switch_to_pae(pgd, pge) };
            FORMAT.store(1, Ordering::Relaxed);
            super::early_map::copied_to_pae();
            // The PDPT's frame is in the new direct map (lowmem).
            super::highmem::set_direct_map_end(end);
            mem.with_table(pgd, |t| t[first..].fill(0));
        }
    }
    if mode.global {
        // SAFETY: the CPU has PGE (choose_mode); the kernel's entries are
        // global from now on, and flush_tlb_all toggles PGE to drop them.
        unsafe { cpu::write_cr4(cpu::read_cr4() | cpu::CR4_PGE) };
        super::tlb::set_global_pages();
    }
}

/// Runs `f` on the kernel address space.
///
/// # Panics
/// Before [`paging_init`].
fn with_space<R>(f: impl FnOnce(&mut AddressSpace, &mut KernelPtMem) -> R) -> R {
    let mut guard = KERNEL_SPACE.lock();
    let space = guard
        .as_mut()
        .expect("kernel address space used before paging_init");
    // SAFETY: the AddressSpace only passes its own page-table frames.
    let mut mem = unsafe { KernelPtMem::new() };
    f(space, &mut mem)
}

/// Maps the page at kernel `va` to frame `pa` (see
/// `AddressSpace::map_page`); page tables come from `buddy`.
///
/// # Errors
/// See `AddressSpace::map_page`.
pub fn map_page(
    buddy: &mut BuddyAllocator<'static>,
    va: VirtAddr,
    pa: PhysAddr,
    flags: PTFlags,
) -> Result<TlbFlush, MapError> {
    with_space(|s, mem| s.map_page(mem, buddy, va, pa, flags))
}

/// [`map_page`] for the page-fault handler: `None` instead of waiting when
/// the address space is locked (the fault hit code that holds it; waiting
/// would spin for ever on this one-CPU kernel).
pub fn try_map_page(
    buddy: &mut BuddyAllocator<'static>,
    va: VirtAddr,
    pa: PhysAddr,
    flags: PTFlags,
) -> Option<Result<TlbFlush, MapError>> {
    let mut guard = KERNEL_SPACE.try_lock()?;
    let space = guard.as_mut()?;
    // SAFETY: the AddressSpace only passes its own page-table frames.
    let mut mem = unsafe { KernelPtMem::new() };
    Some(space.map_page(&mut mem, buddy, va, pa, flags))
}

/// Maps `pages` pages from `va` to consecutive frames from `pa`.
///
/// # Errors
/// See `AddressSpace::map_range`.
pub fn map_range(
    buddy: &mut BuddyAllocator<'static>,
    va: VirtAddr,
    pa: PhysAddr,
    pages: u32,
    flags: PTFlags,
) -> Result<TlbFlush, MapError> {
    with_space(|s, mem| s.map_range(mem, buddy, va, pa, pages, flags))
}

/// Unmaps the page at `va`; returns the frame it mapped.
///
/// # Errors
/// See `AddressSpace::unmap_page`.
pub fn unmap_page(
    buddy: &mut BuddyAllocator<'static>,
    va: VirtAddr,
) -> Result<(PhysAddr, TlbFlush), MapError> {
    with_space(|s, mem| s.unmap_page(mem, buddy, va))
}

/// Unmaps `pages` pages from `va`, calling `on_page(va, pa)` for each.
///
/// # Errors
/// See `AddressSpace::unmap_range`.
pub fn unmap_range(
    buddy: &mut BuddyAllocator<'static>,
    va: VirtAddr,
    pages: u32,
    on_page: impl FnMut(VirtAddr, PhysAddr),
) -> Result<TlbFlush, MapError> {
    with_space(|s, mem| s.unmap_range(mem, buddy, va, pages, on_page))
}

/// Points mapped `va` at frame `pa`; returns the old frame.
///
/// # Errors
/// See `AddressSpace::remap_page`.
pub fn remap_page(
    va: VirtAddr,
    pa: PhysAddr,
    flags: PTFlags,
) -> Result<(PhysAddr, TlbFlush), MapError> {
    with_space(|s, mem| s.remap_page(mem, va, pa, flags))
}

/// The physical address kernel `va` maps to, and the PTE flags.
///
/// # Errors
/// [`MapError::NotMapped`].
pub fn translate(va: VirtAddr) -> Result<(PhysAddr, PTFlags), MapError> {
    with_space(|s, mem| s.translate(mem, va))
}

/// Page tables the kernel address space holds (page directory not counted).
pub fn nr_pt_pages() -> u32 {
    with_space(|s, _| s.nr_pt_pages())
}

/// The kernel's mappings, folded (see `AddressSpace::dump`).
pub fn dump(out: impl FnMut(&DumpRange)) {
    with_space(|s, mem| s.dump(mem, out))
}

/// Walks the page tables CR3 points at for `va`, in the current format,
/// without locks and without creating mappings (safe in a fault handler).
/// `None` if a table on the way lies outside the direct map.
pub fn walk_current(va: VirtAddr) -> Option<Walk> {
    let pgd = cpu::read_cr3_pgd();
    let mut mem = SnapshotPtMem { outside: false };
    let w = crate::mm::paging::walk(&mut mem, current_format(), pgd, va);
    (!mem.outside).then_some(w)
}

/// Page tables read through the direct map into a copy (volatile reads, no
/// reference to the live table), so that a fault handler can walk them while
/// the interrupted code holds a `&mut` to one. Writes go to the copy only.
/// A table outside the direct map reads as zeros and sets `outside`.
struct SnapshotPtMem {
    outside: bool,
}

impl PageTableMemory for SnapshotPtMem {
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        let mut copy: Table = [0; 1024];
        if !in_direct_map(table.pfn()) {
            self.outside = true;
            return f(&mut copy);
        }
        let live = phys_to_virt(table).as_ptr::<u32>();
        for (i, e) in copy.iter_mut().enumerate() {
            // SAFETY: the table lies in the live direct map (checked), 4 KiB
            // and aligned; volatile reads create no reference to it.
            *e = unsafe { live.add(i).read_volatile() };
        }
        f(&mut copy)
    }
}

/// Unmaps the early map window: the boot information is no longer
/// reachable after this. Call once nothing refers to it.
///
/// # Safety
/// No reference into the early map window (the `BootInfo` strings and
/// slices) may be used afterwards.
pub unsafe fn retire_early_map(buddy: &mut BuddyAllocator<'static>) {
    with_space(|s, mem| {
        let span = s.mode().format.pde_span();
        match s.mode().format {
            // The borrowed boot table goes back to the boot stub's .bss.
            Format::TwoLevel => s
                .remove_table(mem, VirtAddr(EARLY_MAP_BASE))
                .map(|f| f.flush(&mut ArchTlb)),
            // The PAE copy's tables are the kernel's: freed.
            Format::Pae => (EARLY_MAP_BASE..EARLY_MAP_BASE + crate::mm::layout::PDE_SPAN)
                .step_by(span as usize)
                .try_for_each(|va| {
                    s.free_pinned_table(mem, buddy, VirtAddr(va))
                        .map(|f| f.flush(&mut ArchTlb))
                }),
        }
    })
    .unwrap_or_else(|e| super::exit::fatal(format_args!("retiring the early map: {e}")));
    super::early_map::retire();
}
