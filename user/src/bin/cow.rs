//! `cow`: `fork` shares private pages copy-on-write.
//!
//! The parent fills `PAGES` pages of `.bss` with its pattern (so that they
//! are present and private before the fork), forks, and the child writes its
//! own pattern to one byte of every page, checks that it reads its own
//! pattern back and exits. The parent waits and checks that every page
//! still holds the parent's pattern.
//!
//! Expected kernel counters: the child's writes are `PAGES` COW faults,
//! each a page copy (the parent still maps every page); the parent's
//! writes after the child has exited find the page's map count back at 1
//! and take the page back writable (`PAGES` reuses, no copy).

#![no_std]
#![no_main]

use rt::sys::{self, WaitStatus};
use rt::{Pages, println};

rt::entry!("cow", main);

/// Pages shared copy-on-write.
const PAGES: usize = 8;
/// Bytes per page checked (spread over the page).
const OFFSETS: [usize; 3] = [0, 1234, 4095];

static BUF: Pages<PAGES> = Pages::zeroed();

fn parent_byte(page: usize, offset: usize) -> u8 {
    (0x40 + page * 7 + offset) as u8
}

fn child_byte(page: usize, offset: usize) -> u8 {
    !parent_byte(page, offset)
}

fn main() -> i32 {
    for page in 0..PAGES {
        for off in OFFSETS {
            BUF.write(page, off, parent_byte(page, off));
        }
    }
    let child = match sys::fork() {
        Err(e) => {
            println!("cow: FAIL: fork: {e}");
            return 1;
        }
        Ok(0) => return child(),
        Ok(pid) => pid,
    };
    match sys::waitpid(child as i32) {
        Ok((pid, WaitStatus::Exited(0))) if pid == child => {}
        Ok((pid, status)) => {
            println!("cow: FAIL: child {pid} {status}");
            return 1;
        }
        Err(e) => {
            println!("cow: FAIL: waitpid({child}): {e}");
            return 1;
        }
    }
    let mut bad = 0;
    for page in 0..PAGES {
        for off in OFFSETS {
            let got = BUF.read(page, off);
            if got != parent_byte(page, off) {
                println!(
                    "cow: FAIL: parent page {page} byte {off} is {got:#04x}, expected {:#04x}: the child's write reached the parent",
                    parent_byte(page, off)
                );
                bad += 1;
            }
        }
    }
    if bad != 0 {
        return 1;
    }
    println!("cow: ok: child writes did not reach the parent ({PAGES} COW faults expected)");
    // The child is gone: each page is mapped once again, so these writes
    // take the pages back writable without copying.
    for page in 0..PAGES {
        BUF.write(page, 0, 0x5a);
        if BUF.read(page, 0) != 0x5a || BUF.read(page, 4095) != parent_byte(page, 4095) {
            println!("cow: FAIL: parent write to page {page} after the child exited did not stick");
            return 1;
        }
    }
    println!(
        "cow: ok: parent writes after the child exited ({PAGES} pages reused, none copied, expected)"
    );
    0
}

/// The child: writes one byte of every page (one COW fault each), then
/// checks all of its view.
fn child() -> i32 {
    for page in 0..PAGES {
        for off in OFFSETS {
            BUF.write(page, off, child_byte(page, off));
        }
    }
    for page in 0..PAGES {
        for off in OFFSETS {
            let got = BUF.read(page, off);
            if got != child_byte(page, off) {
                println!(
                    "cow: FAIL: child page {page} byte {off} reads {got:#04x} after writing {:#04x}",
                    child_byte(page, off)
                );
                return 1;
            }
        }
    }
    println!("cow: child {} wrote {PAGES} pages", sys::getpid());
    0
}
