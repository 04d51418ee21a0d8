//! `stack`: the stack grows down on demand.
//!
//! Recurses `DEPTH` levels with a 1 KiB frame each (256 KiB in all, more
//! than any initial stack the kernel maps), writing a pattern into every
//! frame and checking it on the way back. Each new stack page below the
//! mapped part is a demand fault that extends the stack area.

#![no_std]
#![no_main]

use core::hint::black_box;
use rt::println;

rt::entry!("stack", main);

/// Recursion depth.
const DEPTH: u32 = 256;
/// Bytes of each frame's local array.
const FRAME: usize = 1024;

/// Recurses `depth` more levels; returns the sum of every level's check
/// value, and the lowest frame address seen.
fn recurse(depth: u32) -> (u32, usize) {
    let mut frame = [0u8; FRAME];
    for (i, b) in frame.iter_mut().enumerate() {
        *b = (depth as usize + i) as u8;
    }
    let frame = black_box(frame);
    let here = black_box(&frame).as_ptr() as usize;
    let (below, lowest) = if depth == 0 {
        (0, here)
    } else {
        recurse(depth - 1)
    };
    // The frame must be intact after the deeper levels ran.
    let ok = frame
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (depth as usize + i) as u8);
    (below + u32::from(ok), lowest.min(here))
}

fn main() -> i32 {
    let top = black_box(0u32);
    let top = &top as *const u32 as usize;
    let (intact, lowest) = recurse(DEPTH - 1);
    let used = top.saturating_sub(lowest);
    if intact != DEPTH {
        println!(
            "stack: FAIL: {} of {DEPTH} frames were overwritten",
            DEPTH - intact
        );
        return 1;
    }
    println!(
        "stack: ok: recursed {DEPTH} levels, {} KiB of stack down to {lowest:#010x}, every frame intact",
        used / 1024
    );
    0
}
