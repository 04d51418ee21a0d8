//! Every report of the boot log: what each stage found and did, in the
//! words the docs quote. The stages (`super::memory`, `super::boot_data`, ...)
//! decide and change things; this module only reads and prints.

use super::boot_data::BootChecksums;
use crate::addr::{PhysAddr, VirtAddr};
use crate::arch::x86::{self, cpu, highmem, paging, paging::PagingReport, tlb};
use crate::boot_info::{BootInfo, COMMAND_LINE_SIZE, ranges};
use crate::cmdline::PagingRequest;
use crate::cmdline::{self, BootOptions};
use crate::cpu_info::CpuInfo;
use crate::mm::buddy::BuddyAllocator;
use crate::mm::layout::{
    self, BOOT_MAP_LIMIT, BOOT_PAGE_TABLES, EARLY_MAP_BASE, EARLY_MAP_PAGES, KERNEL_SPACE_MAP,
    PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, virt_to_phys,
};
use crate::mm::memblock::Memblock;
use crate::mm::paging::choose::{ModeChoice, ModeRequest};
use crate::mm::paging::{DumpRange, Format, PagingMode};
use crate::mm::setup::{MemMap, ZoneAccount};
use crate::mm::zone::MAX_NR_ZONES;
use crate::runtime::{kmalloc, vmalloc};
use log::{debug, info, warn};

/// The banner and what the loader told us: who booted us, where the boot
/// information lies, basic meminfo, ELF sections, modules.
pub fn boot_info(have_serial: bool, boot: &BootInfo<'_>) {
    info!(target: "boot", "i386 memory bring-up kernel {}", env!("CARGO_PKG_VERSION"));
    if !have_serial {
        warn!(target: "boot", "no UART answered at COM1; output may be lost");
    }
    info!(target: "boot",
        "booted by {} via {}; boot information at [{:#010x}, {:#010x}), {} bytes",
        boot.loader_name.unwrap_or("an unnamed loader"),
        boot.protocol,
        boot.info_pa,
        boot.info_pa + u64::from(boot.info_size),
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
}

/// The loader ranges' checksums: which large ranges were sampled, and the
/// totals.
pub fn checksums(boot: &BootInfo<'_>, c: &BootChecksums) {
    for r in ranges::loader_ranges(boot) {
        let len = r.end - r.base;
        let step = ranges::checksum_step(r.base, len);
        if step > 1 {
            info!(target: "boot",
                "{r}: {} MiB, its CRC-32 reads one page in {step} (at most {} pages per range)",
                len >> 20, ranges::CHECKSUM_MAX_PAGES);
        }
    }
    info!(target: "boot",
        "CRC-32 of {} loader ranges and {} modules: {} bytes, about {} KiB read",
        boot.boot_data.len(), boot.modules.len(), c.bytes, c.read.div_ceil(1024));
}

/// The loader's data after memory initialisation: each module with its
/// checksum (all intact, or the boot would have stopped).
pub fn boot_data_intact(boot: &BootInfo<'_>, after: &BootChecksums) {
    let n = boot.boot_data.len();
    for (i, m) in boot.modules.iter().enumerate() {
        info!(target: "boot", "module {i} '{}' [{:#010x}-{:#010x}), {} bytes, crc32 {:#010x}: intact",
            m.string, m.start, m.end, m.end - m.start, after.sums[n + i]);
    }
    info!(target: "boot", "boot information ({n} ranges) and {} modules intact after memory initialisation",
        boot.modules.len());
}

/// The command line as copied, what the parser ignored, the options.
pub fn command_line(cmdline: &str, copy: cmdline::LossyCopy, opts: &BootOptions) {
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

/// CPU identification and the TLB policy `tlb::init` chose (`tlb`, its
/// result).
pub fn cpu(cpu: &CpuInfo) {
    info!(target: "cpu", "{cpu}");
    info!(target: "cpu", "features: invlpg {} PSE {} PGE {} PAE {} CR4 {} CR0.WP {} NX {}",
        yes_no(cpu.has_invlpg()), yes_no(cpu.features.pse), yes_no(cpu.features.pge),
        yes_no(cpu.features.pae), yes_no(cpu.features.cr4), yes_no(cpu.has_cr0_wp()),
        yes_no(cpu.features.nx));
}

/// The TLB invalidation method, and whether kernel pages are global.
pub fn tlb_policy(cpu: &CpuInfo, tlb: (tlb::FlushMethod, tlb::FlushReason), mode: PagingMode) {
    let (method, reason) = tlb;
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
    if mode.global {
        info!(target: "tlb",
            "invalidation by {method} ({why}); kernel pages global (CR4.PGE): a full flush toggles CR4.PGE");
    } else {
        info!(target: "tlb", "invalidation by {method} ({why}); global pages not used");
    }
}

/// The boot direct map was extended for `mem_map` (`x86::boot_map`).
pub fn boot_map_extended(from: PhysAddr, to: PhysAddr, tables: u32) {
    info!(target: "memblock",
        "boot direct map extended from {from:#010x} to {to:#010x} for mem_map: {tables} page tables from memblock; allocations limited to [0, {to:#010x})");
}

/// The boot direct map could not be extended to `to` (no page for a table).
pub fn boot_map_not_extended(to: PhysAddr, e: crate::mm::memblock::MemblockError) {
    warn!(target: "memblock", "boot direct map not extended to {to:#010x} for mem_map: {e}");
}

/// The paging mode chosen for the final page directory, and what was
/// refused on the way.
pub fn paging_mode(choice: &ModeChoice, req: ModeRequest, phys_bits: u8) {
    for note in &choice.notes {
        warn!(target: "paging", "{note}");
    }
    let why = match req.paging {
        PagingRequest::Auto => "paging=auto: the best this CPU offers",
        _ => "as the command line asks",
    };
    info!(target: "paging", "mode: {} ({why})", choice.mode);
    if choice.mode.format == Format::Pae {
        info!(target: "paging",
            "PAE: 64-bit entries, physical addresses of {phys_bits} bits (MAXPHYADDR) reach {} GiB",
            (1u64 << phys_bits) >> 30);
    }
}

/// Where everything is: the image, the boot page tables, the stack.
pub fn layout() {
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

/// memblock after setup: its allocation limit and direction, the full dump
/// under `memblock=debug`, the summary.
pub fn memblock(memblock: &Memblock, opts: &BootOptions) {
    info!(target: "memblock",
        "allocations limited to [0, {:#010x}) (memblock current_limit: the boot direct map), {}",
        memblock.current_limit(),
        if memblock.bottom_up() { "bottom-up" } else { "top-down" });
    if opts.memblock_debug {
        memblock.dump(|line| info!(target: "memblock", "{line}"));
    }
    info!(target: "memblock", "{memblock}");
}

/// Where `mem_map` went.
pub fn mem_map(m: &MemMap) {
    info!(target: "buddy",
        "mem_map: {} page descriptors of {} bytes = {} KiB at physical [{:#010x}, {:#010x})",
        m.nr_pages, m.desc_size, m.bytes() >> 10, m.pa, m.pa + m.bytes());
}

/// The zones as laid out, before memblock hands anything over.
pub fn zones(buddy: &BuddyAllocator<'_>) {
    for z in buddy.zones() {
        info!(target: "buddy", "zone {:<7} pfn [{:#07x}, {:#07x}), {} pages spanned{}",
            z.zone_type().name(), z.start_pfn(), z.end_pfn(), z.spanned_pages(),
            if z.spanned_pages() == 0 { " (empty)" } else { "" });
    }
}

/// The hand-off's accounts per populated zone, then the buddy allocator's
/// summaries (`/proc/buddyinfo`; `/proc/zoneinfo` and `/proc/vmstat` at
/// debug).
pub fn handoff(buddy: &BuddyAllocator<'_>, accounts: &[ZoneAccount; MAX_NR_ZONES]) {
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
}

/// The final page directory's story: what it maps, with what flags, from
/// how many page tables; the folded page-table dump; a few walks at debug.
pub fn final_paging(r: &PagingReport, opts: &BootOptions) {
    let low_end = r.direct_map_end_pfn.phys().as_u32();
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
                    u64::from(d.va.0),
                    u64::from(d.va.0) + (u64::from(d.pages) << PAGE_SHIFT),
                );
                let (lo, hi) = (a.max(u64::from(start)), b.min(end));
                if hi > lo {
                    ((hi - lo) >> PAGE_SHIFT) as u32
                } else {
                    0
                }
            })
            .sum()
    };
    let (_, _, _, held) = highmem::stats();
    info!(target: "layout", "final kernel address space (virtual; pages mapped now):");
    for s in KERNEL_SPACE_MAP {
        info!(target: "layout", "  {:<12} [{:#010x}, {:#010x}) {:>6} pages  {}",
            s.label, s.start, s.end, mapped_in(s.start.0, s.end), s.what);
    }
    info!(target: "layout", "  pkmap: {} slots, {held} held; fixmap: {} kmap_local slots",
        layout::LAST_PKMAP, layout::KM_SLOTS);
    match r.mode.format {
        Format::TwoLevel => info!(target: "paging",
            "page tables: 1 page directory + {} page tables = {} KiB from the buddy allocator (plus the boot early map table, borrowed)",
            r.nr_pt_pages, (r.nr_pt_pages + 1) * 4),
        Format::Pae => info!(target: "paging",
            "page tables: 1 PDPT + {} page {} + {} page tables = {} KiB from the buddy allocator (the early map window copied into 2 of them)",
            r.nr_pd_pages, if r.nr_pd_pages == 1 { "directory" } else { "directories" },
            r.nr_pt_pages, (1 + r.nr_pd_pages + r.nr_pt_pages) * 4),
    }
    if r.mode.large_pages {
        info!(target: "paging", "direct map: {} large pages of {} MiB, page tables only where permissions change or holes are",
            r.large_pages, r.mode.format.pde_span() >> 20);
    }
    info!(target: "paging", "page-table dump (consecutive frames with equal flags folded into one line):");
    for d in &ranges {
        info!(target: "paging", "  {d}");
    }
    if more > 0 {
        info!(target: "paging", "  ... and {more} more ranges");
    }
    let (invlpg, cr3) = tlb::flush_counts();
    info!(target: "tlb", "flushes so far: {invlpg} invlpg, {cr3} CR3 reloads (plus the CR3 load of the new directory)");
    if r.mode.global {
        info!(target: "tlb", "full flushes by CR4.PGE toggle so far: {}", tlb::global_flush_count());
    }
    if opts.loglevel >= cmdline::LogLevel::Debug {
        let probes = [
            ("kernel_entry", x86::kernel_entry_va()),
            ("a .rodata byte", VirtAddr(LOGGER_NAME.as_ptr() as u32)),
            ("direct map start", VirtAddr(PAGE_OFFSET + PAGE_SIZE)),
            (
                "last lowmem page",
                VirtAddr(PAGE_OFFSET + low_end - PAGE_SIZE),
            ),
            ("vmalloc start", VirtAddr(layout::VMALLOC_START)),
            ("pkmap base", VirtAddr(layout::PKMAP_BASE)),
            ("null page", VirtAddr(0)),
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

/// The early map window is gone.
pub fn early_map_retired() {
    info!(target: "paging", "early map window [{EARLY_MAP_BASE:#010x}, {:#010x}) unmapped: boot information no longer needed",
        EARLY_MAP_BASE as u64 + (EARLY_MAP_PAGES * PAGE_SIZE) as u64);
}

/// The self-tests' total.
pub fn selftests_passed(passed: u32) {
    info!(target: "selftest", "all {passed} self-tests passed");
}

/// kmalloc's caches and the vmalloc region, right after `kmem_init`.
pub fn kmem_init(opts: &BootOptions) {
    kmalloc::with_mm(|mm| {
        let k = &mm.kmalloc;
        info!(target: "kmalloc",
            "{} caches kmalloc-8 .. {} (slabs of 1-8 lowmem pages from the buddy allocator, via the direct map); larger sizes as whole pages; slub_debug {}{}",
            k.caches().len(),
            k.caches()[k.caches().len() - 1].name(),
            if k.debug() { "on" } else { "off" },
            if k.debug() && !opts.slub_debug { " (for the self-tests)" } else { "" });
        info!(target: "kmalloc",
            "alignment: each object aligned to the largest power of two dividing its class (8 -> 8, 96 -> 32, 8192 -> 8192), pages for large ones; kmalloc(0) = ZERO_SIZE_PTR (0x10)");
        debug!(target: "slabinfo", "{}", crate::mm::slab::SLABINFO_HEADER);
        for c in k.caches() {
            debug!(target: "slabinfo", "{c}   stride {} align {}", c.stride(), c.align());
        }
    });
    let s = vmalloc::stats();
    info!(target: "vmalloc",
        "vmalloc region [{:#010x}, {:#010x}): {} MiB of kernel virtual space; areas get a guard page; demand-paging fault handler registered",
        layout::VMALLOC_START, layout::VMALLOC_END, s.free_bytes >> 20);
}

/// The one-line kmalloc summary (and `/proc/slabinfo` under
/// `loglevel=debug`), the vmalloc totals.
fn kmem_summary() {
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
        info!(target: "kmalloc", "size-class rounding since boot: caches {}; large allocations {}",
            k.cache_rounding(), k.large_rounding());
        debug!(target: "slabinfo", "{}", crate::mm::slab::SLABINFO_HEADER);
        for c in k.caches() {
            debug!(target: "slabinfo", "{c}");
        }
    });
    let s = vmalloc::stats();
    info!(target: "vmalloc", "{} areas, {} KiB reserved; {} demand faults since boot",
        s.nr_areas, s.used_bytes >> 10, vmalloc::demand_faults());
}

/// The last lines before `KERNEL OK`: kmalloc and vmalloc totals, TLB
/// flushes by kind, kmap use and leaks.
pub fn closing_counters() {
    kmem_summary();
    let (invlpg, cr3) = tlb::flush_counts();
    let method = if tlb::uses_invlpg() {
        "invlpg"
    } else {
        "CR3 reload"
    };
    if tlb::global_pages() {
        info!(target: "tlb", "TLB flushes: {invlpg} invlpg, {cr3} CR3 reloads, {} CR4.PGE toggles (method: {method}; a full flush toggles CR4.PGE)",
            tlb::global_flush_count());
    } else {
        info!(target: "tlb", "TLB flushes: {invlpg} invlpg, {cr3} CR3 reloads (method: {method})");
    }
    let (kmaps, kunmaps, refused, _) = highmem::stats();
    let leaks = highmem::report_leaks(
        |h| warn!(target: "kmap", "leak: pfn {:#x} still kmapped at {:#010x} ({} users)", h.pfn, h.va, h.users),
    );
    info!(target: "kmap", "{kmaps} kmaps, {kunmaps} kunmaps, {refused} refused kunmaps, {leaks} mappings still held");
}
