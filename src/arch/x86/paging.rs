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
//! No global pages: a CR3 reload must be able to flush everything, and a 386
//! or 486 has no CR4.PGE anyway.

use super::highmem::{KernelPtMem, direct_map_end_pfn, in_direct_map};
use super::tlb::ArchTlb;
use super::{boot_stack, cpu, image_sections};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::cpu_info::CpuInfo;
use crate::mm::buddy::BuddyAllocator;
use crate::mm::layout::{EARLY_MAP_BASE, KernelLayout, phys_to_virt, virt_to_phys};
use crate::mm::paging::kernel_space::{KernelSpace, KernelSpaceLayout, build_kernel_space};
use crate::mm::paging::{
    AddressSpace, DumpRange, MapError, PDEntry, PTFlags, PageTableMemory, Table, TlbFlush, Walk,
    pde_phys,
};
use portable_atomic::{AtomicBool, Ordering};
use spin::Mutex;

/// Whether CR0.WP was set (read-only pages bind the kernel too).
static WP_ENABLED: AtomicBool = AtomicBool::new(false);

/// The kernel address space, once [`paging_init`] has built it.
static KERNEL_SPACE: Mutex<Option<AddressSpace>> = Mutex::new(None);

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
    /// Physical address of the new page directory.
    pub pgd: PhysAddr,
    /// Page tables allocated (the page directory not counted).
    pub nr_pt_pages: u32,
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
    // SAFETY: the new directory maps everything the running code touches
    // from here on: the kernel image (code, data, this stack, GDT, IDT,
    // TSSs) through the direct map, the early map window (boot
    // information), and all page-table frames (lowmem, in the direct map).
    // Loading CR3 flushes every (non-global) TLB entry; no global pages
    // exist.
    unsafe { cpu::write_cr3(pgd.as_u32()) };

    let wp = cpu.has_cr0_wp();
    if wp {
        // SAFETY: setting CR0.WP only makes the kernel honour read-only
        // PTEs; nothing writes to .text or .rodata (the linker made them
        // read-only sections).
        unsafe { cpu::set_cr0_wp() };
        WP_ENABLED.store(true, Ordering::Relaxed);
    }
    let report = PagingReport {
        pgd,
        nr_pt_pages: built.nr_pt_pages,
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

/// Walks the page tables CR3 points at for `va`, without locks and without
/// creating mappings (safe in a fault handler). `None` if the page
/// directory or page table lies outside the direct map.
pub fn walk_current(va: VirtAddr) -> Option<Walk> {
    let pgd = cpu::read_cr3_pgd();
    if !in_direct_map(pgd.pfn()) {
        return None;
    }
    let mut mem = SnapshotPtMem;
    let pde = PDEntry(mem.with_table(pgd, |t| t[va.pdx() as usize]));
    if pde.is_present() && !pde.is_page() && !in_direct_map(pde_phys(pde).pfn()) {
        return None;
    }
    Some(crate::mm::paging::walk(&mut mem, pgd, va))
}

/// Page tables read through the direct map into a copy (volatile reads, no
/// reference to the live table), so that a fault handler can walk them while
/// the interrupted code holds a `&mut` to one. Writes go to the copy only.
struct SnapshotPtMem;

impl PageTableMemory for SnapshotPtMem {
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        assert!(in_direct_map(table.pfn()));
        let live = phys_to_virt(table).as_ptr::<u32>();
        let mut copy: Table = [0; 1024];
        for (i, e) in copy.iter_mut().enumerate() {
            // SAFETY: the table lies in the live direct map (asserted), 4 KiB
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
pub unsafe fn retire_early_map() {
    with_space(|s, mem| s.remove_table(mem, VirtAddr(EARLY_MAP_BASE)))
        .unwrap_or_else(|e| super::exit::fatal(format_args!("retiring the early map: {e}")))
        .flush(&mut ArchTlb);
    super::early_map::retire();
}
