//! The kernel binary: the boot assembly, the Rust entry point and the panic
//! handler. `kernel_entry` is the boot's table of contents (like Linux
//! `start_kernel()`): one call per stage, in order; each stage lives in
//! `kernel::init` (or the module that owns its logic) and logs what it did.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use core::panic::PanicInfo;
use kernel::arch::x86::{
    exit::{self, ExitCode, fatal},
    serial, tlb,
};
use kernel::cmdline;
use kernel::init::{self, boot_data, crashtest, demo, memory, report, selftest};

// The boot stub (boot/*.S) with the layout constants it shares with Rust.
// The `__layout_*` symbols let linker.ld check its own copy of them.
#[allow(unsafe_code, reason = "the boot stub is assembly")]
mod boot_stub {
    use kernel::mm::layout;

    core::arch::global_asm!(
        ".set PAGE_OFFSET, {page_offset}",
        ".set PAGE_SIZE, {page_size}",
        ".set BOOT_PAGE_TABLES, {boot_page_tables}",
        ".set PAGE_OFFSET_PDE, {page_offset_pde}",
        ".set EARLY_MAP_PDE, {early_map_pde}",
        ".set BOOT_MAP_LIMIT, {boot_map_limit}",
        ".set PTE_FLAGS, {pte_flags}",
        ".set PDE_FLAGS, {pde_flags}",
        ".globl __layout_page_offset",
        ".set __layout_page_offset, {page_offset}",
        ".globl __layout_kernel_phys_base",
        ".set __layout_kernel_phys_base, {kernel_phys_base}",
        ".globl __layout_boot_map_limit",
        ".set __layout_boot_map_limit, {boot_map_limit}",
        include_str!("../boot/multiboot_header.S"),
        include_str!("../boot/entry.S"),
        page_offset = const layout::PAGE_OFFSET,
        page_size = const layout::PAGE_SIZE,
        boot_page_tables = const layout::BOOT_PAGE_TABLES,
        page_offset_pde = const layout::PAGE_OFFSET_PDE,
        early_map_pde = const layout::EARLY_MAP_PDE,
        kernel_phys_base = const layout::KERNEL_PHYS_BASE,
        boot_map_limit = const layout::BOOT_MAP_LIMIT,
        pte_flags = const kernel::mm::paging::BOOT_PTE_FLAGS,
        pde_flags = const kernel::mm::paging::BOOT_PDE_FLAGS,
        options(att_syntax),
    );
}

/// Called by `boot/entry.S` on the boot stack, with paging on and the kernel
/// running at its higher-half address.
///
/// `magic`: EAX from the loader; `info_pa`: EBX, the physical address of the
/// boot information (Multiboot2 spec §3.3).
#[allow(unsafe_code, reason = "boot/entry.S calls it by its unmangled name")]
#[unsafe(no_mangle)]
pub extern "C" fn kernel_entry(magic: u32, info_pa: u32) -> ! {
    // 1. A voice first, so that anything below can fail with a PANIC: line.
    let have_serial = serial::init();

    // 2. Our own GDT (the loader's may be anywhere) and the exception table.
    init::trap_init();

    // 3. The CPU: the early map below flushes TLB entries, which needs to know
    // whether `invlpg` exists (provisional until the command line is read).
    let cpu = init::cpu_init();

    // 4. Boot information, wherever the loader put it, its ranges checked;
    // the command line copied out of it.
    let boot = boot_data::read(magic, info_pa);
    let (cmdline, copy) = boot_data::save_command_line(boot.cmdline);

    // 5. The command line decides the log level, so it is parsed before the
    // first log line, and again once logging is on to report what it ignored.
    let opts = cmdline::parse(cmdline, |_| {});
    init::log_init(&opts);
    report::boot_info(have_serial, &boot);
    report::command_line(cmdline, copy, &opts);
    let checksums = boot_data::checksums(&boot);
    report::checksums(&boot, &checksums);

    // 6. CPU identification, the TLB policy and the paging mode the final
    // page directory will use.
    let tlb_policy = tlb::init(&cpu, opts.tlb);
    report::cpu(&cpu);
    let paging_mode = memory::paging_mode(&cpu, &opts);
    report::tlb_policy(&cpu, tlb_policy, paging_mode);

    // 7. Where everything is: the image, the boot page tables, the stack.
    report::layout();

    // 8. Memory: the map, memblock, reservations (memblock's self-tests run
    // here, while it still serves allocations).
    let (mut memblock, mut phys) = memory::memblock_init(&boot, &opts, paging_mode, &cpu);
    let mut passed = 0;
    if opts.selftest {
        passed += selftest::run() + selftest::memblock(&mut memblock, &mut phys);
    }

    // 9. memblock hands its free memory to the zoned buddy allocator.
    let mut buddy = memory::buddy_init(&mut memblock, &mut phys);
    if opts.selftest {
        passed += selftest::buddy(&mut buddy);
    }

    // 10. The final page directory, built from buddy pages: the direct map
    // of low memory, the pkmap and fixmap tables; CR3 switched, CR0.WP set.
    let paging = memory::paging_init(&mut buddy, &cpu, paging_mode);
    report::final_paging(&paging, &opts);
    if opts.selftest {
        passed += selftest::paging(&mut buddy);
    }

    // 11. kmalloc: the buddy allocator moves behind the mm lock, the slab
    // caches start empty; Rust's heap (Box, Vec, ...) works from here, and
    // vmalloc with demand paging on top.
    memory::kmem_init(buddy, &opts);
    demo::kmem_demo();
    if opts.selftest {
        passed += selftest::kmem();
    }

    // 12. The loader's data checked; then the early map window, the last
    // user of the boot information, goes away.
    let after = boot_data::check_intact(&boot, &checksums);
    report::boot_data_intact(&boot, &after);
    memory::retire_early_map(boot);

    // 13. Self-test summary, a deliberate failure if one was asked for, and
    // the closing counters.
    if opts.selftest {
        report::selftests_passed(passed);
    }
    if let Some(crash) = opts.crashtest {
        crashtest::crash_on_purpose(crash);
    }
    report::closing_counters();

    serial::write_fmt(format_args!("KERNEL OK\n"));
    exit::exit(ExitCode::Success)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => fatal(format_args!(
            "{} at {}:{}",
            info.message(),
            loc.file(),
            loc.line()
        )),
        None => fatal(format_args!("{}", info.message())),
    }
}
