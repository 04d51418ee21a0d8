//! The boot, stage by stage: what `kernel_entry` (src/main.rs) calls, one
//! function per stage, plus the reports, the demo, the self-tests and the
//! crash tests that run on the boot path.
//!
//! - this file: the first stages (descriptor tables, CPU, logger);
//! - [`boot_data`]: the boot information, the loader-range checks, the
//!   command-line copy, the checksums of the loader's data;
//! - [`memory`]: memblock, the buddy hand-off, final paging, kmalloc and
//!   vmalloc, the end of the early map window;
//! - [`report`]: every line of the boot log that reports a stage;
//! - [`demo`]: kmalloc, collections and vmalloc at work in a few lines;
//! - [`selftest`] (`selftest`) and [`crashtest`] (`crashtest=`).
//!
//! Compiled only for the kernel target. Stage logic that can be pure lives
//! in `crate::mm` and `crate::boot_info` (host-tested); hardware in
//! `crate::arch::x86`; the run-time glue in `crate::runtime`.

pub mod boot_data;
pub mod crashtest;
pub mod demo;
pub mod memory;
pub mod report;
#[allow(
    unsafe_code,
    reason = "the self-tests touch memory and page tables on purpose"
)]
pub mod selftest;

use crate::arch::x86::{cpu, gdt, idt, serial, tlb};
use crate::cmdline::{BootOptions, TlbMode};
use crate::cpu_info::CpuInfo;
use crate::klog::Logger;

static LOGGER: Logger = Logger::new(serial::write_fmt);

/// Our own GDT (the loader's may be anywhere) and the exception table
/// (Linux `trap_init()`).
#[allow(unsafe_code, reason = "loads GDTR, IDTR and the task register")]
pub fn trap_init() {
    // SAFETY: first thing at boot after the serial port, interrupts disabled
    // (Multiboot machine state), CR3 holds the boot page directory that
    // stays in use.
    unsafe {
        gdt::init();
        idt::init();
    }
}

/// The CPU's identification, and a provisional TLB policy: the early map
/// flushes TLB entries, which needs to know whether `invlpg` exists (the
/// command line may change the policy later, `tlb::init` again).
pub fn cpu_init() -> CpuInfo {
    let cpu = cpu::detect();
    tlb::init(&cpu, TlbMode::Auto);
    cpu
}

/// The logger, at the level the command line asked for; nothing is logged
/// before this.
#[allow(
    unsafe_code,
    reason = "the racy logger setters (no compare-and-swap on a 386)"
)]
pub fn log_init(opts: &BootOptions) {
    // SAFETY: set_logger_racy (the target has no compare-and-swap, so the
    // synchronised set_logger does not exist) requires that no other logging
    // call runs concurrently: one CPU, interrupts off, called once. It fails
    // only if a logger was already set, which cannot happen here.
    let _ = unsafe { log::set_logger_racy(&LOGGER) };
    // SAFETY: as above: nothing else touches the logger state concurrently.
    unsafe { log::set_max_level_racy(opts.loglevel.to_filter()) };
}
