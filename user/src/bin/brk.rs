//! `brk`: `brk`, `mmap2` (anonymous, private), `munmap` and `mprotect` as
//! Linux defines them.
//!
//! - `brk(0)` returns the current break; raising it by 64 KiB returns the
//!   new break and the new memory reads zero and is writable; lowering it
//!   returns the lower break; an impossible break (`0xC000_0000`) returns
//!   the old break unchanged (Linux's `brk` never returns `-errno`).
//! - `mmap_anon(3 pages, RW)` returns a page-aligned address; the memory
//!   reads zero and is writable; `mmap` of length 0 is `-EINVAL`; one of
//!   3 GiB is `-ENOMEM`.
//! - `munmap` of the middle page succeeds; the other two stay; `munmap` of
//!   an unaligned address is `-EINVAL`; of a range with nothing mapped, 0.
//! - `mprotect(first page, PROT_READ)` succeeds, the page still reads its
//!   data; an unaligned `mprotect` is `-EINVAL`; one over the unmapped
//!   middle page is `-ENOMEM`.
//! - In forked children: a write to the read-only page, and a read of the
//!   unmapped page, each kill the child (`SIGSEGV`), and the parent goes on.

#![no_std]
#![no_main]

use rt::mem::PAGE_SIZE;
use rt::println;
use rt::sys::mman::{PROT_READ, PROT_WRITE};
use rt::sys::{self, Errno, WaitStatus};

rt::entry!("brk", main);

/// How far the break is raised.
const GROW: usize = 64 << 10;

/// A failed check: the message is printed by `main`.
struct Fail;

macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if $cond {
            println!("brk: ok: {}", format_args!($($arg)*));
        } else {
            println!("brk: FAIL: {}", format_args!($($arg)*));
            return Err(Fail);
        }
    };
}

fn main() -> i32 {
    match run() {
        Ok(()) => {
            println!("brk: ok: brk, mmap, munmap and mprotect behave as Linux's");
            0
        }
        Err(Fail) => 1,
    }
}

fn run() -> Result<(), Fail> {
    test_brk()?;
    test_mmap()
}

fn read(addr: usize) -> u8 {
    // SAFETY: callers pass addresses inside a mapping they just made or
    // checked; a wrong one kills only this process.
    unsafe { (addr as *const u8).read_volatile() }
}

fn write(addr: usize, value: u8) {
    // SAFETY: as in `read`.
    unsafe { (addr as *mut u8).write_volatile(value) }
}

fn test_brk() -> Result<(), Fail> {
    // SAFETY: brk(0) only asks for the break.
    let start = unsafe { sys::brk(0) };
    check!(
        start != 0 && start < 0xC000_0000,
        "brk(0) = {start:#010x}, the initial break"
    );
    // SAFETY: raising the break unmaps nothing.
    let grown = unsafe { sys::brk(start + GROW) };
    check!(
        grown == start + GROW,
        "brk({:#010x}) = {grown:#010x}, raised by {} KiB",
        start + GROW,
        GROW >> 10
    );
    let mut zero = true;
    for addr in (start..start + GROW).step_by(PAGE_SIZE) {
        zero &= read(addr) == 0;
        write(addr, 0xa5);
        zero &= read(addr) == 0xa5;
    }
    check!(
        zero,
        "the {} new heap pages read zero and take writes",
        GROW / PAGE_SIZE
    );
    // SAFETY: nothing points above `start + PAGE_SIZE` any more.
    let lowered = unsafe { sys::brk(start + PAGE_SIZE) };
    check!(
        lowered == start + PAGE_SIZE,
        "brk lowered to {lowered:#010x}"
    );
    // SAFETY: a failing brk changes nothing.
    let refused = unsafe { sys::brk(0xC000_0000) };
    check!(
        refused == lowered,
        "brk(0xc0000000) refused, returned the old break {refused:#010x}"
    );
    // SAFETY: back to the initial break; nothing points above it.
    let back = unsafe { sys::brk(start) };
    check!(back == start, "brk back to {start:#010x}");
    Ok(())
}

fn test_mmap() -> Result<(), Fail> {
    let len = 3 * PAGE_SIZE;
    let base = match sys::mmap_anon(len, PROT_READ | PROT_WRITE) {
        Ok(a) => a,
        Err(e) => {
            println!("brk: FAIL: mmap of 3 pages: {e}");
            return Err(Fail);
        }
    };
    check!(
        base % PAGE_SIZE == 0 && base + len <= 0xC000_0000,
        "mmap of 3 pages at {base:#010x}"
    );
    let mut zero = true;
    for page in 0..3 {
        let a = base + page * PAGE_SIZE;
        zero &= read(a) == 0 && read(a + PAGE_SIZE - 1) == 0;
        write(a, page as u8 + 1);
        zero &= read(a) == page as u8 + 1;
    }
    check!(zero, "the mapping reads zero and takes writes");
    let r = sys::mmap_anon(0, PROT_READ);
    check!(
        r == Err(Errno::EINVAL),
        "mmap of length 0: {r:?} (EINVAL expected)"
    );
    let r = sys::mmap_anon(0xC000_0000, PROT_READ);
    check!(
        r == Err(Errno::ENOMEM),
        "mmap of 3 GiB: {r:?} (ENOMEM expected)"
    );

    let middle = base + PAGE_SIZE;
    // SAFETY: nothing points into the middle page.
    let r = unsafe { sys::munmap(middle, PAGE_SIZE) };
    check!(r.is_ok(), "munmap of the middle page: {r:?}");
    check!(
        read(base) == 1 && read(base + 2 * PAGE_SIZE) == 3,
        "the pages on both sides keep their data"
    );
    // SAFETY: an unaligned munmap is refused before it unmaps anything.
    let r = unsafe { sys::munmap(base + 1, PAGE_SIZE) };
    check!(
        r == Err(Errno::EINVAL),
        "munmap of an unaligned address: {r:?} (EINVAL expected)"
    );
    // SAFETY: the middle page is already unmapped.
    let r = unsafe { sys::munmap(middle, PAGE_SIZE) };
    check!(
        r.is_ok(),
        "munmap of a range with nothing mapped: {r:?} (Ok expected)"
    );

    // SAFETY: the first page is only read from here on.
    let r = unsafe { sys::mprotect(base, PAGE_SIZE, PROT_READ) };
    check!(r.is_ok(), "mprotect(first page, PROT_READ): {r:?}");
    check!(read(base) == 1, "the read-only page still reads its data");
    // SAFETY: refused before it changes anything.
    let r = unsafe { sys::mprotect(base + 1, PAGE_SIZE, PROT_READ) };
    check!(
        r == Err(Errno::EINVAL),
        "mprotect of an unaligned address: {r:?} (EINVAL expected)"
    );
    // SAFETY: refused (part of the range is unmapped); PROT_READ takes away
    // nothing this program uses in any case.
    let r = unsafe { sys::mprotect(base, len, PROT_READ) };
    check!(
        r == Err(Errno::ENOMEM),
        "mprotect over the unmapped middle page: {r:?} (ENOMEM expected)"
    );

    let status = in_child(|| write(base, 0x77));
    check!(
        status == Ok(WaitStatus::Signaled(sys::SIGSEGV)),
        "a child writing to the read-only page: {status:?} (killed by SIGSEGV expected)"
    );
    check!(
        read(base) == 1,
        "the child's killed write left the parent's page alone"
    );
    let status = in_child(|| {
        read(middle);
    });
    check!(
        status == Ok(WaitStatus::Signaled(sys::SIGSEGV)),
        "a child reading the unmapped page: {status:?} (killed by SIGSEGV expected)"
    );

    // SAFETY: nothing points into the mapping any more.
    let r = unsafe { sys::munmap(base, len) };
    check!(r.is_ok(), "munmap of the whole range: {r:?}");
    Ok(())
}

/// Runs `f` in a forked child that then exits 0; returns how the child
/// ended.
fn in_child(f: impl FnOnce()) -> Result<WaitStatus, Errno> {
    match sys::fork()? {
        0 => {
            f();
            sys::exit(0)
        }
        pid => sys::waitpid(pid as i32).map(|(_, status)| status),
    }
}
