//! The memory stages of the boot, in order: memblock from the memory map,
//! the hand-off to the buddy allocator, final paging, kmalloc and vmalloc,
//! and the end of the early map window. Each stage calls the pure logic in
//! `crate::mm` (host-tested) and the hardware in `crate::arch::x86`, and has
//! `super::report` say what it did.

use super::report;
use crate::addr::PhysAddr;
use crate::arch::x86::{self, exit::fatal, highmem, idt, paging, paging::PagingReport};
use crate::boot_info::BootInfo;
use crate::boot_info::memmap::PhysLimit;
use crate::cmdline::BootOptions;
use crate::cpu_info::CpuInfo;
use crate::mm::buddy::BuddyAllocator;
use crate::mm::layout::{BOOT_MAP_LIMIT, virt_to_phys};
use crate::mm::memblock::Memblock;
use crate::mm::paging::choose::{ModeRequest, choose_mode};
use crate::mm::paging::{Format, PagingMode};
use crate::mm::setup::{self, KernelImage};
use crate::mm::zone::DEFAULT_MAX_LOW_PFN;
use crate::runtime::direct_map::{self, BootDirectMap};
use crate::runtime::{kmalloc, vmalloc};

/// Memory initialisation, stage by stage: the map, memblock, reservations
/// (Linux `setup_arch()`'s `e820__memblock_setup()` and reservations).
/// Returns memblock and its window on physical memory, the boot direct map.
#[allow(unsafe_code, reason = "creates the one BootDirectMap")]
pub fn memblock_init(
    boot: &BootInfo<'_>,
    opts: &BootOptions,
    mode: PagingMode,
    cpu: &CpuInfo,
) -> (Memblock, BootDirectMap) {
    // SAFETY: the only BootDirectMap, handed to the only Memblock (created
    // below); the boot page tables stay in use until final paging.
    let mut phys = unsafe { BootDirectMap::new() };
    let (memory, reserved) = direct_map::initial_region_arrays();
    let mut memblock = Memblock::new(memory, reserved);
    let (start, end) = x86::kernel_image();
    let image = KernelImage {
        start: virt_to_phys(start),
        end: virt_to_phys(end),
    };
    // Until the final page tables exist, memblock may only hand out memory
    // the boot direct map reaches.
    memblock.set_current_limit(PhysAddr::from_u32(BOOT_MAP_LIMIT));
    // RAM at or above 4 GiB is usable under PAE only (else ignored, and
    // logged by memblock_setup).
    let phys_limit = match mode.format {
        Format::TwoLevel => PhysLimit::NoPae,
        Format::Pae if cpu.features.phys_bits > 32 => PhysLimit::Pae,
        Format::Pae => PhysLimit::PaePhys32,
    };
    setup::memblock_setup(
        boot,
        opts.mem_limit_bytes,
        phys_limit,
        image,
        &mut memblock,
        &mut phys,
    )
    .unwrap_or_else(|e| fatal(format_args!("memblock setup: {e}")));
    if memblock.memory.total_size() == 0 {
        fatal(format_args!(
            "no usable RAM below {:#x} (check the memory map above and mem=)",
            phys_limit.end()
        ));
    }
    // mem_map must fit in the boot direct map: map more low memory first
    // if it does not (RAM above 4 GiB).
    if let Some(end) = setup::boot_map_end_needed(&memblock, DEFAULT_MAX_LOW_PFN) {
        let from = memblock.current_limit();
        // Without a page for a table the map stays as it is, and the check
        // below says what is missing.
        match x86::boot_map::extend(&mut memblock, &mut phys, end) {
            Ok(tables) => report::boot_map_extended(from, end, tables),
            Err(e) => report::boot_map_not_extended(end, e),
        }
    }
    setup::check_free_memory(&memblock).unwrap_or_else(|e| fatal(format_args!("{e}")));
    report::memblock(&memblock, opts);
    (memblock, phys)
}

/// The buddy allocator takes over from memblock: `mem_map` is allocated from
/// memblock (`setup::alloc_mem_map`), the zones are laid out, memblock's free
/// memory is handed off (`setup::buddy_handoff`, Linux
/// `memblock_free_all()`), and the result is reported.
#[allow(
    unsafe_code,
    reason = "turns the mem_map memblock allocated into a slice"
)]
pub fn buddy_init(memblock: &mut Memblock, phys: &mut BootDirectMap) -> BuddyAllocator<'static> {
    let max_pfn = setup::max_pfn(memblock);
    let map = setup::alloc_mem_map(memblock, max_pfn, phys)
        .unwrap_or_else(|e| fatal(format_args!("{e}")));
    report::mem_map(&map);
    // SAFETY: memblock just allocated (and zeroed) this range for mem_map, it
    // stays reserved for good, and it lies below the current limit, i.e. in
    // the boot direct map.
    let mem_map = unsafe { direct_map::mem_map_slice(map.pa, map.nr_pages as usize) };
    let mut buddy = BuddyAllocator::new(mem_map, DEFAULT_MAX_LOW_PFN, direct_map::zero_pages);
    report::zones(&buddy);
    let accounts = setup::buddy_handoff(memblock, &mut buddy)
        .unwrap_or_else(|e| fatal(format_args!("memblock hand-off: {e}")));
    report::handoff(&buddy, &accounts);
    buddy
}

/// The paging mode of the final page directory, from the CPU and the
/// command line (`crate::mm::paging::choose`); what was refused is logged
/// as a warning, the choice on a `paging:` line.
pub fn paging_mode(cpu: &CpuInfo, opts: &BootOptions) -> PagingMode {
    let req = ModeRequest {
        paging: opts.paging,
        pse: opts.pse,
        pge: opts.pge,
        nx: opts.nx,
    };
    let choice = choose_mode(&cpu.features, req);
    report::paging_mode(&choice, req, cpu.features.phys_bits);
    choice.mode
}

/// The final page directory, built from buddy pages (the direct map of low
/// memory, the pkmap and fixmap tables) and loaded, CR0.WP set
/// (`arch::x86::paging::paging_init`); then the rest of the switch: the
/// double-fault task's CR3 and the kmap state (`highmem::init`).
#[allow(unsafe_code, reason = "switches CR3 and the double-fault task's CR3")]
pub fn paging_init(
    buddy: &mut BuddyAllocator<'static>,
    cpu: &CpuInfo,
    mode: PagingMode,
) -> PagingReport {
    let max_low_pfn = buddy.max_low_pfn();
    // SAFETY: once, after the buddy allocator took over; nothing uses the
    // identity map any more (the kernel runs at PAGE_OFFSET).
    let r = unsafe { paging::paging_init(buddy, cpu, mode, max_low_pfn) };
    // SAFETY: the new directory stays in use for good; the double-fault
    // task must switch to it, not to the boot one. Interrupts are disabled.
    unsafe { idt::set_double_fault_cr3(r.pgd) };
    highmem::init(r.direct_map_end_pfn, r.pgd, r.mode);
    r
}

/// kmalloc and vmalloc: the buddy allocator moves behind the mm lock, the
/// slab caches start empty (with slub_debug under `slub_debug` or
/// `selftest`), the vmalloc demand-fault handler is registered.
pub fn kmem_init(buddy: BuddyAllocator<'static>, opts: &BootOptions) {
    kmalloc::kmem_init(buddy, opts.slub_debug || opts.selftest);
    vmalloc::vmalloc_init();
    report::kmem_init(opts);
}

/// Unmaps the early map window, taking `boot`, the last holder of
/// references into it.
#[allow(
    unsafe_code,
    reason = "unmaps the window the boot information lives in"
)]
pub fn retire_early_map(boot: BootInfo<'static>) {
    drop(boot);
    // SAFETY: `boot`, the only holder of references into the early map
    // window, is gone.
    crate::runtime::kmalloc::with_mm(|mm| unsafe { paging::retire_early_map(&mut mm.buddy) });
    report::early_map_retired();
}
