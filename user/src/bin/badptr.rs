//! `badptr`: bad pointers are refused, then a bad access kills the process.
//!
//! 1. `write(1, p, 16)` with `p` a kernel address (`0xC000_0000`, the
//!    kernel's first page), null, and an unmapped user address must each
//!    return `-EFAULT` (the kernel checks user pointers and copies with
//!    fault handling; it must never fault itself).
//! 2. A store to `0xC000_0000` from ring 3 must kill the process (the page
//!    is supervisor-only): the kernel reports the fault and the process
//!    never reaches its last line. If it does, it exits 1.
//!
//! Its parent sees it killed by `SIGSEGV`; the kernel goes on.

#![no_std]
#![no_main]

use rt::println;
use rt::sys::{self, Errno};

rt::entry!("badptr", main);

/// The start of the kernel's quarter (Linux i386 `PAGE_OFFSET`).
const KERNEL_ADDR: usize = 0xC000_0000;
/// A user address that no program maps: below Linux i386's text base and
/// above the null page's 4 KiB.
const UNMAPPED_USER_ADDR: usize = 0x0010_0000;

fn main() -> i32 {
    let mut failed = false;
    for (what, addr) in [
        ("a kernel address", KERNEL_ADDR),
        ("null", 0),
        ("an unmapped user address", UNMAPPED_USER_ADDR),
        ("a range running into kernel space", KERNEL_ADDR - 8),
    ] {
        match sys::write_raw(1, addr, 16) {
            Err(Errno::EFAULT) => {
                println!("badptr: ok: write(1, {addr:#010x}, 16), {what}, returned -EFAULT")
            }
            other => {
                println!(
                    "badptr: FAIL: write(1, {addr:#010x}, 16), {what}, returned {other:?}, expected -EFAULT"
                );
                failed = true;
            }
        }
    }
    if failed {
        return 1;
    }
    println!("badptr: writing to {KERNEL_ADDR:#010x}; the kernel must kill this process");
    // SAFETY: none; this store is meant to fault. The address is the
    // kernel's, mapped supervisor-only, so the CPU raises #PF (U/S) and the
    // kernel kills the process before the store completes.
    unsafe { (KERNEL_ADDR as *mut u32).write_volatile(0xdead_beef) };
    println!("badptr: FAIL: a user store to {KERNEL_ADDR:#010x} did not kill the process");
    1
}
