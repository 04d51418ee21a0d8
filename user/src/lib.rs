//! `rt`: the user runtime of the test programs (ring 3, i386, `no_std`).
//!
//! What a program gets:
//! - [`entry!`]: its `_start` (the Linux i386 process entry: `ESP` points at
//!   `argc`), which calls the program's `fn main() -> i32` and exits with
//!   its return value;
//! - [`sys`]: the system calls, Linux i386 ABI (`int 0x80`, number in `EAX`,
//!   arguments in `EBX`, `ECX`, `EDX`, `ESI`, `EDI`, `EBP`, result in `EAX`,
//!   `-errno` on error) with Linux's numbers;
//! - [`print!`]/[`println!`]: `core::fmt` over `write(1, ...)`, one
//!   `write` per call;
//! - [`Pages`]: statically allocated, page-aligned memory with checked
//!   volatile access (`.bss` when it starts zeroed, as the programs want for
//!   demand-zero and copy-on-write tests);
//! - a panic handler that prints the message and exits with status 101
//!   (Rust's own exit status for a panicking program).
//!
//! Processes are single-threaded: nothing here is shared between threads,
//! and `fork` copies (copy-on-write) rather than shares.

#![no_std]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod io;
pub mod mem;
pub mod start;
pub mod sys;

pub use mem::Pages;
pub use sys::Errno;

/// Exit status of a program that panicked (as Rust's `std` uses).
pub const PANIC_EXIT_STATUS: i32 = 101;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("{}: panic: {}", start::program_name(), info);
    sys::exit(PANIC_EXIT_STATUS)
}
