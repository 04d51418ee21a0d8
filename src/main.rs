//! The kernel binary: the boot assembly, the Rust entry point and the panic
//! handler. `kernel_entry` reads as the boot story, one stage after another;
//! each stage logs what it did.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use core::panic::PanicInfo;
use kernel::arch::x86::{
    self, cpu,
    direct_map::{self, BootDirectMap},
    early_map, exit,
    exit::{ExitCode, fatal},
    gdt, highmem, idt, kmalloc,
    paging::{self, ArchTlb, PagingReport},
    selftest, serial, tlb, vmalloc,
};
use kernel::boot_info::{
    BootInfo, BootInfoError, COMMAND_LINE_SIZE, MAX_BOOT_DATA, MAX_MODULES, Protocol, mb1, mb2,
    multiboot2_total_size, ranges,
};
use kernel::cmdline::{self, BootOptions, CrashTest, TlbMode};
use kernel::klog::Logger;
use kernel::mm::buddy::BuddyAllocator;
use kernel::mm::gfp::GFP_KERNEL;
use kernel::mm::layout::{
    self, BOOT_MAP_LIMIT, BOOT_PAGE_TABLES, EARLY_MAP_BASE, EARLY_MAP_PAGES, PAGE_OFFSET,
    PAGE_SIZE, virt_to_phys,
};
use kernel::mm::memblock::Memblock;
use kernel::mm::page::Page;
use kernel::mm::paging::{DumpRange, PTFlags};
use kernel::mm::setup::{self, KernelImage};
use kernel::mm::zone::DEFAULT_MAX_LOW_PFN;
use log::{debug, info, warn};

// The boot stub (boot/*.S) with the layout constants it shares with Rust.
// The `__layout_*` symbols let linker.ld check its own copy of them.
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

static LOGGER: Logger = Logger::new(serial::write_fmt);

/// The command line, copied out of the loader's memory (Linux:
/// `boot_command_line`), which later stages may reuse.
static COMMAND_LINE: spin::Once<([u8; COMMAND_LINE_SIZE], cmdline::LossyCopy)> = spin::Once::new();

/// Called by `boot/entry.S` on the boot stack, with paging on and the kernel
/// running at its higher-half address.
///
/// `magic`: EAX from the loader; `info_pa`: EBX, the physical address of the
/// boot information (Multiboot2 spec §3.3).
#[unsafe(no_mangle)]
pub extern "C" fn kernel_entry(magic: u32, info_pa: u32) -> ! {
    // 1. A voice first, so that anything below can fail with a PANIC: line.
    let have_serial = serial::init();

    // 2. Our own GDT (the loader's may be anywhere) and the exception table.
    // SAFETY: first thing at boot, interrupts disabled (Multiboot machine
    // state), CR3 holds the boot page directory that stays in use.
    unsafe {
        gdt::init();
        idt::init();
    }

    // 3. The CPU: the early map below flushes TLB entries, which needs to know
    // whether `invlpg` exists (provisional until the command line is read).
    let cpu = cpu::detect();
    tlb::init(&cpu, TlbMode::Auto);

    // 4. Boot information, wherever the loader put it.
    let protocol = Protocol::from_magic(magic).unwrap_or_else(|e| fatal(format_args!("{e}")));
    let boot = read_boot_info(protocol, info_pa)
        .unwrap_or_else(|e| fatal(format_args!("{protocol} boot information: {e}")));
    check_loader_ranges(&boot);
    let (cmdline, copy) = save_command_line(boot.cmdline);

    // 5. The command line decides the log level, so it is parsed before the
    // first log line, and again once logging is on to report what it ignored.
    let opts = cmdline::parse(cmdline, |_| {});
    // SAFETY: set_logger_racy (the target has no compare-and-swap, so the
    // synchronised set_logger does not exist) requires that no other logging
    // call runs concurrently: one CPU, interrupts off, called once. It fails
    // only if a logger was already set, which cannot happen here.
    let _ = unsafe { log::set_logger_racy(&LOGGER) };
    // SAFETY: as above: nothing else touches the logger state concurrently.
    unsafe { log::set_max_level_racy(opts.loglevel.to_filter()) };

    info!(target: "boot", "i386 memory bring-up kernel {}", env!("CARGO_PKG_VERSION"));
    if !have_serial {
        warn!(target: "boot", "no UART answered at COM1; output may be lost");
    }
    info!(target: "boot",
        "booted by {} via {protocol}; boot information at [{:#010x}, {:#010x}), {} bytes",
        boot.loader_name.unwrap_or("an unnamed loader"),
        boot.info_pa,
        boot.info_pa as u64 + boot.info_size as u64,
        boot.info_size
    );
    if let Some(m) = boot.meminfo {
        info!(target: "boot", "basic meminfo: lower {} KiB, upper {} KiB ({} MiB total)",
            m.mem_lower_kib, m.mem_upper_kib, (m.mem_lower_kib as u64 + m.mem_upper_kib as u64 + 1024) >> 10);
    }
    if let Some(e) = boot.elf_sections {
        info!(target: "boot", "ELF section headers: {} of {} bytes at {:#010x}, names in section {}",
            e.num, e.entsize, e.addr, e.shndx);
    }
    for (i, m) in boot.modules.iter().enumerate() {
        info!(target: "boot", "module {i} '{}' at [{:#010x}-{:#010x})", m.string, m.start, m.end);
    }
    log_command_line(cmdline, copy, &opts);
    let checksums = boot_checksums(&boot, true);

    // 6. CPU identification and the TLB policy.
    log_cpu(&cpu, &opts);

    // 7. Where everything is: the image, the boot page tables, the stack.
    log_layout();

    // 8. Memory: the map, memblock, reservations (memblock's self-tests run
    // here, while it still serves allocations).
    let (mut memblock, mut phys) = memory_init(&boot, &opts);
    let mut passed = 0;
    if opts.selftest {
        passed += selftest::run() + selftest::memblock(&mut memblock, &mut phys);
    }

    // 9. memblock hands its free memory to the zoned buddy allocator.
    let mut buddy = buddy_init(&mut memblock, &mut phys);
    if opts.selftest {
        passed += selftest::buddy(&mut buddy);
    }

    // 10. The final page directory, built from buddy pages: the direct map
    // of low memory, the pkmap and fixmap tables; CR3 switched, CR0.WP set.
    let max_low_pfn = buddy.max_low_pfn();
    // SAFETY: once, after the buddy allocator took over; nothing uses the
    // identity map any more (the kernel runs at PAGE_OFFSET).
    let report = unsafe { paging::paging_init(&mut buddy, &cpu, max_low_pfn) };
    log_final_paging(&report, &opts);
    if opts.selftest {
        passed += selftest::paging(&mut buddy);
    }

    // 11. kmalloc: the buddy allocator moves behind the mm lock, the slab
    // caches start empty; Rust's heap (Box, Vec, ...) works from here, and
    // vmalloc with demand paging on top.
    kmalloc::kmem_init(buddy, opts.slub_debug || opts.selftest);
    vmalloc::vmalloc_init();
    log_kmem_init(&opts);
    kmem_demo();
    if opts.selftest {
        passed += selftest::kmem();
    }

    // 12. The loader's data checked; then the early map window, the last
    // user of the boot information, goes away.
    check_boot_data(&boot, &checksums);
    drop(boot);
    // SAFETY: `boot`, the only holder of references into the early map
    // window, is gone.
    unsafe { paging::retire_early_map() };
    info!(target: "paging", "early map window [{EARLY_MAP_BASE:#010x}, {:#010x}) unmapped: boot information no longer needed",
        EARLY_MAP_BASE as u64 + (EARLY_MAP_PAGES * PAGE_SIZE) as u64);

    // 13. Self-test summary, a deliberate failure if one was asked for, and
    // the closing counters.
    if opts.selftest {
        info!(target: "selftest", "all {passed} self-tests passed");
    }
    if let Some(crash) = opts.crashtest {
        crash_on_purpose(crash);
    }
    log_closing_counters();

    serial::write_fmt(format_args!("KERNEL OK\n"));
    exit::exit(ExitCode::Success)
}

/// Maps and parses the boot information through the early map window.
fn read_boot_info(protocol: Protocol, info_pa: u32) -> Result<BootInfo<'static>, BootInfoError> {
    let map = |pa: u32, len: usize| {
        early_map::early_memremap_ro(u64::from(pa), len)
            .map_err(|_| BootInfoError::Unmappable { pa, len })
    };
    match protocol {
        Protocol::Multiboot2 => {
            if !info_pa.is_multiple_of(8) {
                return Err(BootInfoError::Misaligned {
                    addr: info_pa,
                    align: 8,
                });
            }
            let total = multiboot2_total_size(map(info_pa, 8)?)?;
            mb2::parse(info_pa, map(info_pa, total as usize)?)
        }
        Protocol::Multiboot1 => mb1::parse(info_pa, map),
    }
}

/// CRC-32 (ISO-HDLC, as zlib and gzip compute it) of physical
/// `[pa, pa + len)`, read a page at a time through `kmap_local` (the direct
/// map where it reaches, else a temporary mapping), so a module of any size
/// can be checked without filling the early map window.
/// CRC-32 of `[pa, pa + len)`, reading every `step`-th page of it
/// (`ranges::checksum_step`: every page up to 16 MiB).
fn crc32_phys(pa: u64, len: u64, step: u64) -> u32 {
    const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = CRC32.digest();
    let end = pa + len;
    let mut at = pa;
    let mut index = 0;
    while at < end {
        let page = at & !u64::from(PAGE_SIZE - 1);
        let chunk_end = end.min(page + u64::from(PAGE_SIZE));
        let (offset, n) = ((at - page) as usize, (chunk_end - at) as usize);
        if index % step == 0 {
            highmem::kmap_local((page >> 12) as u32, |ptr| {
                // SAFETY: `ptr` maps the frame for this closure; the bytes
                // are loader data in RAM (checked by `check_loader_ranges`)
                // that nothing writes (reserved in memblock).
                digest.update(unsafe { core::slice::from_raw_parts(ptr.add(offset), n) });
            });
        }
        at = chunk_end;
        index += 1;
    }
    digest.finalize()
}

/// Refuses the boot if a module or a loader structure is not in RAM or
/// overlaps the kernel image (`boot_info::ranges`), before anything reads it.
fn check_loader_ranges(boot: &BootInfo<'_>) {
    let kernel = x86::image_sections().map(|s| ranges::KernelSection {
        name: s.name,
        base: u64::from(s.phys_start()),
        end: u64::from(s.phys_start() + (s.end - s.start)),
    });
    if let Err(e) = ranges::check(boot, &boot.sanitized_map(), &kernel) {
        fatal(format_args!("{} boot information: {e}", boot.protocol));
    }
}

/// Checksums of the loader's data (boot information, then modules), taken
/// before memory initialisation and compared after it.
type BootChecksums = heapless::Vec<u32, { MAX_BOOT_DATA + MAX_MODULES }>;

/// CRC-32 of every loader range (`ranges::loader_ranges`: the loader's
/// structures, then the modules), large ones sampled; with `log`, says what
/// is read.
fn boot_checksums(boot: &BootInfo<'_>, log: bool) -> BootChecksums {
    let (mut bytes, mut read) = (0u64, 0u64);
    let sums = ranges::loader_ranges(boot)
        .map(|r| {
            let len = r.end - r.base;
            let step = ranges::checksum_step(r.base, len);
            bytes += len;
            read += len.div_ceil(step);
            if log && step > 1 {
                info!(target: "boot",
                    "{r}: {} MiB, its CRC-32 reads one page in {step} (at most {} pages per range)",
                    len >> 20, ranges::CHECKSUM_MAX_PAGES);
            }
            crc32_phys(r.base, len, step)
        })
        .collect();
    if log {
        info!(target: "boot",
            "CRC-32 of {} loader ranges and {} modules: {bytes} bytes, about {} KiB read",
            boot.boot_data.len(), boot.modules.len(), read.div_ceil(1024));
    }
    sums
}

/// Memory initialisation, stage by stage: the map, memblock, reservations.
fn memory_init(boot: &BootInfo<'_>, opts: &BootOptions) -> (Memblock, BootDirectMap) {
    // SAFETY: the only BootDirectMap, handed to the only Memblock (created
    // below); the boot page tables stay in use until final paging.
    let mut phys = unsafe { BootDirectMap::new() };
    let (memory, reserved) = direct_map::initial_region_arrays();
    let mut memblock = Memblock::new(memory, reserved);
    let (start, end) = x86::kernel_image();
    let image = KernelImage {
        start: u64::from(virt_to_phys(start)),
        end: u64::from(virt_to_phys(end)),
    };
    // Until the final page tables exist, memblock may only hand out memory
    // the boot direct map reaches.
    memblock.set_current_limit(u64::from(BOOT_MAP_LIMIT));
    setup::memblock_setup(boot, opts.mem_limit_bytes, image, &mut memblock, &mut phys)
        .unwrap_or_else(|e| fatal(format_args!("memblock setup: {e}")));
    if memblock.memory.total_size() == 0 {
        fatal(format_args!(
            "no usable RAM below 4 GiB (check the memory map above and mem=)"
        ));
    }
    setup::check_free_memory(&memblock).unwrap_or_else(|e| fatal(format_args!("{e}")));
    info!(target: "memblock",
        "allocations limited to [0, {BOOT_MAP_LIMIT:#010x}) (memblock current_limit: the boot direct map), {}",
        if memblock.bottom_up() { "bottom-up" } else { "top-down" });
    if opts.memblock_debug {
        memblock.dump(|line| info!(target: "memblock", "{line}"));
    }
    info!(target: "memblock", "{memblock}");
    (memblock, phys)
}

/// The buddy allocator takes over from memblock: `mem_map` is allocated from
/// memblock, the zones are laid out, memblock's free memory is handed off,
/// and the result is reported.
fn buddy_init(memblock: &mut Memblock, phys: &mut BootDirectMap) -> BuddyAllocator<'static> {
    let max_pfn = memblock
        .memory
        .regions()
        .last()
        .map_or(0, |r| r.end() >> layout::PAGE_SHIFT) as u32;
    let max_low_pfn = max_pfn.min(DEFAULT_MAX_LOW_PFN);
    let desc = core::mem::size_of::<Page>() as u64;
    let bytes = u64::from(max_pfn) * desc;
    let pa = memblock
        .alloc_range(bytes, u64::from(PAGE_SIZE), 0, u64::MAX, phys)
        .unwrap_or_else(|e| fatal(format_args!("cannot allocate mem_map ({bytes} bytes): {e}")));
    info!(target: "buddy",
        "mem_map: {max_pfn} page descriptors of {desc} bytes = {} KiB at physical [{pa:#010x}, {:#010x})",
        bytes >> 10, pa + bytes);
    // SAFETY: memblock just allocated (and zeroed) this range for mem_map, it
    // stays reserved for good, and it lies below the current limit, i.e. in
    // the boot direct map.
    let mem_map = unsafe { direct_map::mem_map_slice(pa, max_pfn as usize) };
    let mut buddy = BuddyAllocator::new(mem_map, max_low_pfn, direct_map::zero_pages);
    for z in buddy.zones() {
        info!(target: "buddy", "zone {:<7} pfn [{:#07x}, {:#07x}), {} pages spanned{}",
            z.zone_type().name(), z.start_pfn(), z.end_pfn(), z.spanned_pages(),
            if z.spanned_pages() == 0 { " (empty)" } else { "" });
    }
    let accounts = setup::buddy_handoff(memblock, &mut buddy)
        .unwrap_or_else(|e| fatal(format_args!("memblock hand-off: {e}")));
    for z in buddy.zones().iter().filter(|z| z.is_populated()) {
        let a = accounts[z.zone_type().index()];
        info!(target: "buddy", "zone {}: managed {} = present {} - reserved {} (checked against memblock)",
            z.zone_type().name(), a.managed, a.present, a.reserved);
    }
    info!(target: "buddy",
        "memblock handed off: {} pages free, min_free_kbytes {}; memblock retires",
        buddy.nr_free_pages(), buddy.min_free_kbytes());
    buddy.zone_summary(|l| info!(target: "buddy", "{l}"));
    buddy.buddyinfo(|l| info!(target: "buddyinfo", "{l}"));
    buddy.zoneinfo(|l| debug!(target: "zoneinfo", "{l}"));
    buddy.vmstat(|l| debug!(target: "vmstat", "{l}"));
    buddy
}

/// Checks that the loader's data survived memory initialisation and logs
/// each module with its checksum.
fn check_boot_data(boot: &BootInfo<'_>, before: &BootChecksums) {
    let after = boot_checksums(boot, false);
    let n = boot.boot_data.len();
    for (i, d) in boot.boot_data.iter().enumerate() {
        if before[i] != after[i] {
            fatal(format_args!(
                "{} at {:#010x} was overwritten during memory initialisation",
                d.what, d.base
            ));
        }
    }
    for (i, m) in boot.modules.iter().enumerate() {
        let crc = after[n + i];
        if before[n + i] != crc {
            fatal(format_args!(
                "module {i} '{}' was overwritten during memory initialisation",
                m.string
            ));
        }
        info!(target: "boot", "module {i} '{}' [{:#010x}-{:#010x}), {} bytes, crc32 {crc:#010x}: intact",
            m.string, m.start, m.end, m.end - m.start);
    }
    info!(target: "boot", "boot information ({n} ranges) and {} modules intact after memory initialisation",
        boot.modules.len());
}

/// Copies the loader's command-line bytes into [`COMMAND_LINE`] as UTF-8
/// (`cmdline::copy_lossy`: bytes that are not UTF-8 replaced, cut to fit).
fn save_command_line(raw: &[u8]) -> (&'static str, cmdline::LossyCopy) {
    let (buf, copy) = COMMAND_LINE.call_once(|| {
        let mut buf = [0u8; COMMAND_LINE_SIZE];
        let copy = cmdline::copy_lossy(raw, &mut buf[..COMMAND_LINE_SIZE - 1]);
        (buf, copy)
    });
    (core::str::from_utf8(&buf[..copy.len]).unwrap_or(""), *copy)
}

fn log_command_line(cmdline: &str, copy: cmdline::LossyCopy, opts: &BootOptions) {
    info!(target: "cmdline", "command line: \"{cmdline}\"");
    if copy.replaced > 0 {
        warn!(target: "cmdline",
            "{} byte sequences that are not UTF-8 replaced by U+FFFD (the words holding them match no option)",
            copy.replaced);
    }
    if copy.cut {
        warn!(target: "cmdline", "command line longer than {} bytes: cut", COMMAND_LINE_SIZE - 1);
    }
    cmdline::parse(cmdline, |w| warn!(target: "cmdline", "{w}"));
    info!(target: "cmdline", "options: {opts}");
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn log_cpu(cpu: &kernel::cpu_info::CpuInfo, opts: &BootOptions) {
    info!(target: "cpu", "{cpu}");
    info!(target: "cpu", "features: invlpg {} PSE {} PGE {} PAE {} CR4 {} CR0.WP {}",
        yes_no(cpu.has_invlpg()), yes_no(cpu.features.pse), yes_no(cpu.features.pge),
        yes_no(cpu.features.pae), yes_no(cpu.features.cr4), yes_no(cpu.has_cr0_wp()));
    let (method, reason) = tlb::init(cpu, opts.tlb);
    let why = match reason {
        tlb::FlushReason::Auto if cpu.has_invlpg() => "tlb=auto, the CPU has invlpg",
        tlb::FlushReason::Auto => "tlb=auto, a 386 has no invlpg",
        tlb::FlushReason::Forced => "forced on the command line",
        tlb::FlushReason::ForcedButUnsupported => {
            warn!(target: "tlb", "tlb=invlpg ignored: this CPU has no invlpg (it would fault)");
            "invlpg unsupported"
        }
    };
    let method = match method {
        tlb::FlushMethod::Invlpg => "invlpg (one page)",
        tlb::FlushMethod::Cr3Reload => "CR3 reload (whole TLB)",
    };
    info!(target: "tlb", "invalidation by {method} ({why}); global pages not used");
}

fn log_layout() {
    let (start, end) = x86::kernel_image();
    info!(target: "layout",
        "kernel image [{start:#010x}, {end:#010x}) = physical [{:#010x}, {:#010x}), {} KiB",
        virt_to_phys(start), virt_to_phys(end), (end - start) / 1024);
    for s in x86::image_sections() {
        info!(target: "layout", "  {:<8} [{:#010x}, {:#010x}) at physical {:#010x}, {:>4} KiB",
            s.name, s.start, s.end, s.phys_start(), (s.end - s.start).div_ceil(1024));
    }
    info!(target: "paging",
        "boot page directory at physical {:#010x} (CR3 {:#010x}), paging on (CR0 {:#010x})",
        virt_to_phys(x86::boot_page_directory_va()), cpu::read_cr3(), cpu::read_cr0());
    info!(target: "paging",
        "boot map: physical [{PAGE_SIZE:#010x}, {BOOT_MAP_LIMIT:#010x}) at virtual +0 (identity) and +{PAGE_OFFSET:#x}, \
         {} pages through {BOOT_PAGE_TABLES} page tables of 4 KiB pages (no PSE, no CR4)",
        (BOOT_MAP_LIMIT - PAGE_SIZE) / PAGE_SIZE - 1);
    info!(target: "paging",
        "early map window [{EARLY_MAP_BASE:#010x}, {:#010x}): {EARLY_MAP_PAGES} slots for boot information",
        EARLY_MAP_BASE as u64 + (EARLY_MAP_PAGES * PAGE_SIZE) as u64);
    let (guard, bottom, top) = x86::boot_stack();
    info!(target: "paging",
        "boot stack [{bottom:#010x}, {top:#010x}), {} KiB; guard page [{guard:#010x}, {bottom:#010x}) unmapped; null page unmapped",
        (top - bottom) / 1024);
    info!(target: "traps",
        "GDT: flat code 0x08, data 0x10, kernel TSS 0x18, double-fault TSS 0x20; IDT: 32 exception vectors, #DF by task gate");
}

/// The final page directory's story: what it maps, with what flags, from
/// how many page tables; the folded page-table dump; a few walks at debug.
fn log_final_paging(r: &PagingReport, opts: &BootOptions) {
    let low_end = paging::direct_map_end_pfn() << layout::PAGE_SHIFT;
    info!(target: "paging",
        "final page directory at physical {:#010x} (from the buddy allocator) loaded into CR3; \
         the boot page directory and its identity map of [{PAGE_SIZE:#x}, {BOOT_MAP_LIMIT:#x}) are gone", r.pgd);
    info!(target: "paging",
        "direct map: physical [0x00000000, {low_end:#010x}) at [{PAGE_OFFSET:#010x}, {:#010x}): {} pages mapped, \
         {} of them read-only (.boot .text .rodata); page 0 and the boot stack guard left unmapped",
        PAGE_OFFSET + low_end, r.direct_pages, r.ro_pages);
    if r.wp {
        info!(target: "paging", "CR0.WP set: kernel writes to read-only pages fault");
    } else {
        warn!(target: "paging", "CR0.WP not set: this CPU (a 386) has none, so read-only pages bind user mode only");
    }

    // Per region: pages mapped (from the page tables themselves).
    let mut ranges: heapless::Vec<DumpRange, 64> = heapless::Vec::new();
    let mut more = 0u32;
    paging::dump(|d| {
        if ranges.push(*d).is_err() {
            more += 1;
        }
    });
    let mapped_in = |start: u32, end: u64| -> u32 {
        ranges
            .iter()
            .map(|d| {
                let (a, b) = (
                    u64::from(d.va),
                    u64::from(d.va) + (u64::from(d.pages) << 12),
                );
                let (lo, hi) = (a.max(u64::from(start)), b.min(end));
                if hi > lo { ((hi - lo) >> 12) as u32 } else { 0 }
            })
            .sum()
    };
    let (kmaps, _, _, held) = highmem::stats();
    let _ = kmaps;
    info!(target: "layout", "final kernel address space (virtual; pages mapped now):");
    let rows: [(&str, u32, u64, &str); 8] = [
        ("null page", 0, u64::from(PAGE_SIZE), "never mapped"),
        (
            "low",
            PAGE_SIZE,
            u64::from(PAGE_OFFSET),
            "nothing (no identity map, no user space)",
        ),
        (
            "direct map",
            PAGE_OFFSET,
            u64::from(layout::DIRECT_MAP_MAX_END),
            "lowmem at PAGE_OFFSET + physical",
        ),
        (
            "vmalloc gap",
            layout::DIRECT_MAP_MAX_END,
            u64::from(layout::VMALLOC_START),
            "VMALLOC_OFFSET, never mapped",
        ),
        (
            "vmalloc",
            layout::VMALLOC_START,
            u64::from(layout::VMALLOC_END),
            "vmalloc(), demand-paged areas",
        ),
        (
            "pkmap",
            layout::PKMAP_BASE,
            u64::from(layout::PKMAP_END),
            "kmap() of HighMem, one page table",
        ),
        (
            "early map",
            EARLY_MAP_BASE,
            u64::from(EARLY_MAP_BASE) + u64::from(EARLY_MAP_PAGES * PAGE_SIZE),
            "boot information, read-only, until checked",
        ),
        (
            "fixmap",
            layout::FIXADDR_START,
            u64::from(layout::FIXADDR_TOP),
            "kmap_local slots, one page table",
        ),
    ];
    for (name, start, end, what) in rows {
        info!(target: "layout", "  {name:<12} [{start:#010x}, {end:#010x}) {:>6} pages  {what}",
            mapped_in(start, end));
    }
    info!(target: "layout", "  pkmap: {} slots, {held} held; fixmap: {} kmap_local slots",
        layout::LAST_PKMAP, layout::KM_SLOTS);
    info!(target: "paging",
        "page tables: 1 page directory + {} page tables = {} KiB from the buddy allocator (plus the boot early map table, borrowed)",
        r.nr_pt_pages, (r.nr_pt_pages + 1) * 4);
    info!(target: "paging", "page-table dump (consecutive frames with equal flags folded into one line):");
    for d in &ranges {
        info!(target: "paging", "  {d}");
    }
    if more > 0 {
        info!(target: "paging", "  ... and {more} more ranges");
    }
    let (invlpg, cr3) = tlb::flush_counts();
    info!(target: "tlb", "flushes so far: {invlpg} invlpg, {cr3} CR3 reloads (plus the CR3 load of the new directory)");
    if opts.loglevel >= cmdline::LogLevel::Debug {
        let probes = [
            ("kernel_entry", kernel_entry as *const () as u32),
            ("a .rodata byte", LOGGER_NAME.as_ptr() as u32),
            ("direct map start", PAGE_OFFSET + PAGE_SIZE),
            ("last lowmem page", PAGE_OFFSET + low_end - PAGE_SIZE),
            ("vmalloc start", layout::VMALLOC_START),
            ("pkmap base", layout::PKMAP_BASE),
            ("null page", 0),
        ];
        for (what, va) in probes {
            match paging::walk_current(va) {
                Some(w) => debug!(target: "paging", "translate {what}: {w}"),
                None => {
                    debug!(target: "paging", "translate {what}: {va:#010x}: tables outside the direct map")
                }
            }
        }
    }
}

/// Printed in `.rodata`, so the debug walk has a read-only address to show.
static LOGGER_NAME: &str = "klog";

/// The last lines before `KERNEL OK`: TLB flushes by kind, kmap use and
/// leaks.
/// kmalloc's caches and the vmalloc region, right after `kmem_init`.
fn log_kmem_init(opts: &BootOptions) {
    kmalloc::with_mm(|mm| {
        let k = &mm.kmalloc;
        info!(target: "kmalloc",
            "{} caches kmalloc-8 .. kmalloc-2k (slabs of 1-8 lowmem pages from the buddy allocator, via the direct map); larger sizes as whole pages; slub_debug {}{}",
            k.caches().len(),
            if k.debug() { "on" } else { "off" },
            if k.debug() && !opts.slub_debug { " (for the self-tests)" } else { "" });
        info!(target: "kmalloc",
            "alignment: each object aligned to the largest power of two dividing its class (8 -> 8, 96 -> 32, 2048 -> 2048), pages for large ones; kmalloc(0) = ZERO_SIZE_PTR (0x10)");
        debug!(target: "slabinfo", "{}", kernel::mm::slab::SLABINFO_HEADER);
        for c in k.caches() {
            debug!(target: "slabinfo", "{c}   stride {} align {}", c.stride(), c.align());
        }
    });
    let s = vmalloc::stats();
    info!(target: "vmalloc",
        "vmalloc region [{:#010x}, {:#010x}): {} MiB of kernel virtual space; areas get a guard page; demand-paging fault handler registered",
        layout::VMALLOC_START, layout::VMALLOC_END, s.free_bytes >> 20);
}

/// kmalloc, the Rust collections and vmalloc at work, in a few log lines:
/// what every boot shows (the self-tests go much further).
fn kmem_demo() {
    use alloc::{collections::BTreeMap, string::String, vec::Vec};
    let mut samples = [core::ptr::null_mut(); 4];
    for (slot, size) in samples.iter_mut().zip([13, 100, 700, 5000]) {
        *slot = kmalloc::kmalloc(size, GFP_KERNEL);
        let cache = kernel::mm::slab::kmalloc_cache_name(size).unwrap_or("whole pages");
        let ksize = kmalloc::ksize(*slot).unwrap_or(0);
        info!(target: "kmalloc", "kmalloc({size}) = {:#010x} from {cache} (ksize {ksize})", *slot as u32);
    }
    for p in samples {
        // SAFETY: the samples are not used after this.
        let _ = unsafe { kmalloc::kfree(p) };
    }
    let squares: Vec<u32> = (1..=1000).map(|i| i * i).collect();
    let mut names = BTreeMap::new();
    for z in ["DMA", "Normal", "HighMem"] {
        names.insert(z, String::from(z).to_lowercase());
    }
    info!(target: "kmalloc", "Rust collections on kmalloc: Vec of {} squares (last {}, capacity {} bytes at {:#010x}), BTreeMap {:?}",
        squares.len(), squares[999], squares.capacity() * 4, squares.as_ptr() as u32, names);
    drop(squares);
    let Ok(p) = vmalloc::vmalloc(64 << 10) else {
        warn!(target: "vmalloc", "vmalloc(64 KiB) failed");
        return;
    };
    let frames = (0..16)
        .filter_map(|i| paging::translate(p as u32 + i * PAGE_SIZE).ok())
        .map(|(pa, _)| pa >> 12);
    let (first, last) = frames.fold((u32::MAX, 0), |(lo, hi), pfn| (lo.min(pfn), hi.max(pfn)));
    info!(target: "vmalloc", "vmalloc(64 KiB) = {:#010x}: 16 pages mapped now, frames pfn {first:#x}..{last:#x} (HighMem first when there is some)", p as u32);
    // SAFETY: the area is not touched after this.
    let _ = unsafe { vmalloc::vfree(p) };
    let Ok(d) = vmalloc::vmalloc_demand(16 * PAGE_SIZE as usize) else {
        warn!(target: "vmalloc", "vmalloc_demand(64 KiB) failed");
        return;
    };
    let faults = vmalloc::demand_faults();
    let va = d as u32 + 5 * PAGE_SIZE;
    let mapped_before = paging::translate(va).is_ok();
    // SAFETY: inside the demand area just reserved: the first touch faults
    // and the handler maps a zeroed frame.
    let value = unsafe { core::ptr::read_volatile(va as *const u32) };
    let (pa, _) = paging::translate(va).unwrap_or((0, PTFlags::empty()));
    info!(target: "vmalloc", "vmalloc_demand(64 KiB) = {:#010x}: nothing mapped; reading {va:#010x} (mapped before: {mapped_before}) took {} demand fault, mapped frame {pa:#010x}, read {value}",
        d as u32, vmalloc::demand_faults() - faults);
    // SAFETY: as above.
    let _ = unsafe { vmalloc::vfree(d) };
}

/// The one-line kmalloc summary (and `/proc/slabinfo` under
/// `loglevel=debug`), the vmalloc totals.
fn log_kmem_summary() {
    kmalloc::kmem_shrink();
    kmalloc::with_mm(|mm| {
        let k = &mm.kmalloc;
        let objs: u32 = k.caches().iter().map(|c| c.active_objs()).sum();
        let slabs: u32 = k.caches().iter().map(|c| c.nr_slabs()).sum();
        let allocs: u64 = k.caches().iter().map(|c| c.allocs()).sum::<u64>() + k.large().allocs;
        let frees: u64 = k.caches().iter().map(|c| c.frees()).sum::<u64>() + k.large().frees;
        let slab_pages = k.pages() - k.large().pages;
        info!(target: "kmalloc",
            "{objs} objects in use in {slabs} slabs ({} KiB), {} large allocations ({} KiB); {allocs} allocations, {frees} frees since boot; {} problems reported; slub_debug {}",
            slab_pages * 4, k.large().live, k.large().pages * 4, k.reports(),
            if k.debug() { "on" } else { "off" });
        debug!(target: "slabinfo", "{}", kernel::mm::slab::SLABINFO_HEADER);
        for c in k.caches() {
            debug!(target: "slabinfo", "{c}");
        }
    });
    let s = vmalloc::stats();
    info!(target: "vmalloc", "{} areas, {} KiB reserved; {} demand faults since boot",
        s.nr_areas, s.used_bytes >> 10, vmalloc::demand_faults());
}

fn log_closing_counters() {
    log_kmem_summary();
    let (invlpg, cr3) = tlb::flush_counts();
    let method = if tlb::uses_invlpg() {
        "invlpg"
    } else {
        "CR3 reload"
    };
    info!(target: "tlb", "TLB flushes: {invlpg} invlpg, {cr3} CR3 reloads (method: {method})");
    let (kmaps, kunmaps, refused, _) = highmem::stats();
    let leaks = highmem::report_leaks(
        |h| warn!(target: "kmap", "leak: pfn {:#x} still kmapped at {:#010x} ({} users)", h.pfn, h.va, h.users),
    );
    info!(target: "kmap", "{kmaps} kmaps, {kunmaps} kunmaps, {refused} refused kunmaps, {leaks} mappings still held");
}

/// `crashtest=...`: fail on purpose, so that the tests see each fatal path.
fn crash_on_purpose(crash: CrashTest) -> ! {
    warn!(target: "crashtest", "crashtest={}: failing on purpose", crash.name());
    // Each asm arm raises its CPU exception at the first instruction that can
    // change state; the exception handler ends on the fatal path.
    match crash {
        // SAFETY: a read of address 0, which is never mapped: #PF.
        CrashTest::Null => unsafe {
            core::arch::asm!("mov eax, dword ptr [0]", out("eax") _);
        },
        CrashTest::Unmapped => {
            // No vmalloc area is live here, so the demand handler leaves the
            // fault alone.
            let va = layout::VMALLOC_START;
            kmalloc::with_mm(|mm| {
                let frame = mm
                    .buddy
                    .alloc_pages(GFP_KERNEL, 0)
                    .unwrap_or_else(|| fatal(format_args!("crashtest=unmapped: no page")));
                paging::map_page(&mut mm.buddy, va, frame.phys_addr(), PTFlags::RW)
                    .unwrap_or_else(|e| fatal(format_args!("crashtest=unmapped: {e}")))
                    .flush(&mut ArchTlb);
                let (_, flush) = paging::unmap_page(&mut mm.buddy, va)
                    .unwrap_or_else(|e| fatal(format_args!("crashtest=unmapped: {e}")));
                flush.flush(&mut ArchTlb);
            });
            warn!(target: "crashtest", "page {va:#010x} mapped, unmapped and flushed; now reading it");
            // SAFETY: a read of a page just unmapped (and flushed): #PF.
            unsafe { core::ptr::read_volatile(va as *const u32) };
        }
        CrashTest::Rodata => {
            let target = crash_on_purpose as *const () as *mut u8;
            warn!(target: "crashtest", "writing to .text at {:#010x}", target as u32);
            // SAFETY: a write to the kernel's code, mapped read-only: #PF once
            // CR0.WP is set. It writes back the byte already there, so even a
            // CPU without CR0.WP (a 386) changes nothing.
            unsafe { core::ptr::write_volatile(target, core::ptr::read_volatile(target)) };
        }
        // SAFETY: ud2 is the architecturally undefined instruction: #UD.
        CrashTest::Ud => unsafe { core::arch::asm!("ud2") },
        // SAFETY: divides by ECX = 0: #DE; only the clobbered registers change.
        CrashTest::Div0 => unsafe {
            core::arch::asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx",
                out("eax") _, out("ecx") _, out("edx") _);
        },
        // SAFETY: selector 0x1f8 is GDT index 63, past the 5-entry GDT's
        // limit, so loading it into DS raises #GP before DS changes.
        CrashTest::Gp => unsafe {
            core::arch::asm!("mov ax, 0x1f8", "mov ds, ax", out("eax") _);
        },
        CrashTest::Stack => {
            let depth = recurse(0);
            fatal(format_args!("crashtest=stack: recursion returned {depth}"));
        }
        CrashTest::Panic => panic!("crashtest=panic: a deliberate Rust panic"),
        CrashTest::Vmalloc => {
            let p = vmalloc::vmalloc_demand(2 * PAGE_SIZE as usize)
                .unwrap_or_else(|e| fatal(format_args!("crashtest=vmalloc: {e}")));
            // SAFETY: the first page of a demand area: mapped on this touch.
            unsafe { core::ptr::write_volatile(p as *mut u32, 1) };
            let guard = p as u32 + 2 * PAGE_SIZE;
            warn!(target: "crashtest", "demand area at {:#010x} touched ({} demand faults); now reading its guard page {guard:#010x}",
                p as u32, vmalloc::demand_faults());
            // SAFETY: a read of the area's guard page, never mapped: #PF
            // that the demand handler refuses.
            unsafe { core::ptr::read_volatile(guard as *const u32) };
        }
        CrashTest::Oom => {
            let bytes = 1usize << 30;
            warn!(target: "crashtest", "allocating a Vec of {bytes} bytes (more than all low memory)");
            let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(bytes);
            core::hint::black_box(&v);
        }
        CrashTest::Kfree => {
            let local = 0u32;
            let p = &local as *const u32 as *mut u8;
            // SAFETY: a stack address, which kfree must refuse without
            // touching it.
            if let Err(e) = unsafe { kmalloc::kfree(p) } {
                fatal(format_args!("crashtest=kfree: kfree reported: {e}"));
            }
        }
    }
    fatal(format_args!(
        "crashtest={}: the expected exception did not happen",
        crash.name()
    ))
}

/// Recurses forever, 1 KiB of stack per level, until the guard page stops it.
#[inline(never)]
#[expect(
    unconditional_recursion,
    reason = "crashtest=stack must overflow the stack"
)]
fn recurse(depth: u32) -> u32 {
    let frame = core::hint::black_box([depth as u8; 1024]);
    recurse(depth + 1).wrapping_add(u32::from(frame[0]))
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
