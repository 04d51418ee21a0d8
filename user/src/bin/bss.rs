//! `bss`: a 4 MiB `.bss` is demand-zero.
//!
//! The program writes one byte of every 16th page (1024 pages, so 64 of
//! them), without reading first: each write is exactly one demand-zero fault
//! (a read first could map a shared zero page and fault again on the
//! write). It then checks the written bytes and that the rest of each
//! touched page reads zero.
//!
//! Expected kernel counters: 64 demand faults in `.bss`, RSS of the bss
//! 64 pages (not 1024).

#![no_std]
#![no_main]

use rt::mem::PAGE_SIZE;
use rt::{Pages, println};

rt::entry!("bss", main);

/// 4 MiB of `.bss`.
const PAGES: usize = (4 << 20) / PAGE_SIZE;
/// Every `STRIDE`-th page is touched.
const STRIDE: usize = 16;

static BIG: Pages<PAGES> = Pages::zeroed();

fn main() -> i32 {
    let touched = PAGES / STRIDE;
    println!(
        "bss: {PAGES} pages of .bss at {:#010x}, touching every {STRIDE}th",
        BIG.addr()
    );
    for page in (0..PAGES).step_by(STRIDE) {
        BIG.write(page, 0, (page / STRIDE) as u8 | 1);
    }
    for page in (0..PAGES).step_by(STRIDE) {
        let got = BIG.read(page, 0);
        if got != (page / STRIDE) as u8 | 1 {
            println!("bss: FAIL: page {page} byte 0 reads {got:#04x} after the write");
            return 1;
        }
        for off in [1, PAGE_SIZE / 2, PAGE_SIZE - 1] {
            let got = BIG.read(page, off);
            if got != 0 {
                println!(
                    "bss: FAIL: page {page} byte {off} is {got:#04x}, not zero: .bss not demand-zero"
                );
                return 1;
            }
        }
    }
    println!(
        "bss: ok: touched {touched} of {PAGES} pages of a 4 MiB bss ({touched} demand faults expected)"
    );
    0
}
