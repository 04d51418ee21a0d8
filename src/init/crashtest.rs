//! `crashtest=...`: the kernel fails on purpose, once per fatal path (a
//! page fault on the null page, on an unmapped or read-only page, on a
//! vmalloc guard page; #UD, #DE, #GP; a stack overflow into the guard page
//! and its double fault; a Rust panic; out of memory; a refused `kfree`), so
//! that the boot tests see each report. Runs at the end of the boot, next to
//! the self-tests.

use crate::addr::VirtAddr;
use crate::arch::x86::{exit::fatal, fault, paging, tlb::ArchTlb};
use crate::cmdline::CrashTest;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::layout::{self, PAGE_SIZE};
use crate::mm::paging::PTFlags;
use crate::runtime::{kmalloc, vmalloc};
use log::warn;

/// `crashtest=...`: fail on purpose, so that the tests see each fatal path.
///
/// `#[track_caller]`: the `crashtest=panic` message names the call in
/// `kernel_entry` (`src/main.rs:<line>`), where the boot stops.
#[track_caller]
#[allow(
    unsafe_code,
    reason = "touches unmapped, read-only and guard pages on purpose"
)]
pub fn crash_on_purpose(crash: CrashTest) -> ! {
    warn!(target: "crashtest", "crashtest={}: failing on purpose", crash.name());
    // Each arm raises its CPU exception (the one-instruction ones are in
    // `arch::x86::fault`); the exception handler ends on the fatal path.
    match crash {
        CrashTest::Null => fault::read_null(),
        CrashTest::Unmapped => {
            // No vmalloc area is live here, so the demand handler leaves the
            // fault alone.
            let va = VirtAddr(layout::VMALLOC_START);
            kmalloc::with_mm(|mm| {
                // The frame is never freed: the read below stops the kernel.
                let (frame, _) = mm
                    .buddy
                    .alloc_pages(GFP_KERNEL, 0)
                    .unwrap_or_else(|| fatal(format_args!("crashtest=unmapped: no page")))
                    .into_raw();
                paging::map_page(&mut mm.buddy, va, frame.phys(), PTFlags::RW)
                    .unwrap_or_else(|e| fatal(format_args!("crashtest=unmapped: {e}")))
                    .flush(&mut ArchTlb);
                let (_, flush) = paging::unmap_page(&mut mm.buddy, va)
                    .unwrap_or_else(|e| fatal(format_args!("crashtest=unmapped: {e}")));
                flush.flush(&mut ArchTlb);
            });
            warn!(target: "crashtest", "page {va:#010x} mapped, unmapped and flushed; now reading it");
            // SAFETY: a read of a page just unmapped (and flushed): #PF.
            unsafe { core::ptr::read_volatile(va.as_ptr::<u32>()) };
        }
        CrashTest::Rodata => {
            // `recurse`, not this function: a pointer to a `#[track_caller]`
            // function is a shim's address.
            let target = recurse as *const () as *mut u8;
            warn!(target: "crashtest", "writing to .text at {:#010x}", target as u32);
            // SAFETY: a write to the kernel's code, mapped read-only: #PF once
            // CR0.WP is set. It writes back the byte already there, so even a
            // CPU without CR0.WP (a 386) changes nothing.
            unsafe { core::ptr::write_volatile(target, core::ptr::read_volatile(target)) };
        }
        CrashTest::Nx => {
            let code = kmalloc::kmalloc(16, GFP_KERNEL);
            if code.is_null() {
                fatal(format_args!("crashtest=nx: no memory"));
            }
            warn!(target: "crashtest", "calling a `ret` in kmalloc'd data at {:#010x}", code as u32);
            // SAFETY: 16 bytes just allocated; the one written is `ret`
            // (0xC3), so if the page is executable the call returns at once
            // with no other effect; with NX the fetch faults.
            unsafe {
                code.write_volatile(0xC3);
                let f: extern "C" fn() = core::mem::transmute(code);
                f();
            }
            fatal(format_args!(
                "crashtest=nx: data at {:#010x} executed: this paging mode has no NX",
                code as u32
            ));
        }
        CrashTest::Ud => fault::undefined_opcode(),
        CrashTest::Div0 => fault::divide_by_zero(),
        CrashTest::Gp => fault::bad_selector_load(),
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
