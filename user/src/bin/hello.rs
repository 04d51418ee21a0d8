//! `hello`: the smallest user program. Prints a greeting and its pid
//! (`write`, `getpid`), checks the pid is positive and exits 0.

#![no_std]
#![no_main]

use rt::{println, sys};

rt::entry!("hello", main);

fn main() -> i32 {
    let pid = sys::getpid();
    println!("hello: hello from ring 3, pid {pid}");
    if pid == 0 || pid > i32::MAX as u32 {
        println!("hello: FAIL: getpid returned {pid:#x}, not a positive pid");
        return 1;
    }
    println!("hello: ok: write and getpid work");
    0
}
