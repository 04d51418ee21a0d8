//! `init`: the first user process. For now it prints that it runs and
//! exits 0; once the kernel has `fork`, `execve` and `waitpid` it will start
//! the other test programs and report how each ended.

#![no_std]
#![no_main]

use rt::{println, sys};

rt::entry!("init", main);

fn main() -> i32 {
    let pid = sys::getpid();
    println!("init: started, pid {pid}");
    println!("init: ok: nothing more to run yet");
    0
}
