//! Process entry: `_start`, `main` and the initial stack.
//!
//! Linux i386 starts a process with `ESP` pointing at `argc`, followed by
//! the `argv` pointers and a null, the `envp` pointers and a null, and the
//! auxiliary vector (Linux `create_elf_tables()`). Registers other than
//! `ESP` hold nothing useful. `_start` (emitted by [`entry!`](crate::entry)
//! in each program) clears `EBP` (the end of the frame-pointer chain),
//! aligns the stack to 16 bytes (the data layout's `S128`) and calls
//! [`run`] with the entry `ESP`. The initial stack is only read if the
//! program asks for its arguments ([`args`]).

use crate::sys;
use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// `ESP` at process entry (the address of `argc`), 0 before [`run`].
static INITIAL_SP: AtomicUsize = AtomicUsize::new(0);
/// The program's name, for messages (set by [`run`]).
static NAME: AtomicUsize = AtomicUsize::new(0);
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);

/// Defines the program's `_start`, which calls `$main` (a `fn() -> i32`)
/// and exits with its return value. `$name` names the program in messages
/// (the panic handler's, [`program_name`]).
///
/// ```ignore
/// rt::entry!("hello", main);
/// fn main() -> i32 { rt::println!("hello"); 0 }
/// ```
#[macro_export]
macro_rules! entry {
    ($name:literal, $main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn __rt_entry(sp: usize) -> ! {
            $crate::start::run(sp, $name, $main)
        }

        core::arch::global_asm!(
            ".section .text._start, \"ax\", @progbits",
            ".globl _start",
            ".type _start, @function",
            "_start:",
            "    xor ebp, ebp",
            "    mov eax, esp",
            "    and esp, -16",
            "    sub esp, 12",
            "    push eax",
            "    call __rt_entry",
            "    ud2",
            ".size _start, . - _start",
        );
    };
}

/// Called by `_start` with the entry `ESP`: records it and the program's
/// name, runs `main` and exits with its return value.
pub fn run(sp: usize, name: &'static str, main: fn() -> i32) -> ! {
    INITIAL_SP.store(sp, Ordering::Relaxed);
    NAME.store(name.as_ptr() as usize, Ordering::Relaxed);
    NAME_LEN.store(name.len(), Ordering::Relaxed);
    let status = main();
    sys::exit(status)
}

/// The name given to [`entry!`](crate::entry), `"?"` before `main` runs.
pub fn program_name() -> &'static str {
    let (ptr, len) = (
        NAME.load(Ordering::Relaxed),
        NAME_LEN.load(Ordering::Relaxed),
    );
    if ptr == 0 {
        return "?";
    }
    // SAFETY: `run` stored the pointer and length of a `&'static str`.
    unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr as *const u8, len)) }
}

/// The program's arguments (`argv[0..argc]`), read from the initial stack.
///
/// # Panics
/// If called before [`run`] (there is no initial stack yet).
///
/// Relies on the kernel laying out `argc` and `argv` as Linux does; a kernel
/// that leaves the stack empty faults here, so programs that do not need
/// their arguments never call it.
pub fn args() -> impl Iterator<Item = &'static CStr> {
    let sp = INITIAL_SP.load(Ordering::Relaxed);
    assert!(sp != 0, "args() before the program started");
    // SAFETY: the kernel put `argc` at the entry `ESP` (Linux's layout, see
    // the module doc); the stack is never unmapped while the process runs.
    let argc = unsafe { *(sp as *const usize) };
    let argv = (sp + 4) as *const *const core::ffi::c_char;
    (0..argc).map(move |i| {
        // SAFETY: `argv[0..argc]` are pointers to NUL-terminated strings that
        // the kernel copied onto the stack, which lives as long as the process.
        unsafe { CStr::from_ptr(*argv.add(i)) }
    })
}
