//! Leaving the kernel: the success and fatal paths.
//!
//! Both end the same way, so that every emulator stops and reports:
//! 1. wait until COM1 has sent its last byte;
//! 2. write the status to port 0xF4: QEMU's `isa-debug-exit` device (when
//!    present, `-device isa-debug-exit,iobase=0xf4,iosize=0x04`) exits with
//!    `(value << 1) | 1`: 0x10 → **33** (success), 0x11 → **35** (failure);
//! 3. write `Shutdown` to port 0x8900, which stops Bochs;
//! 4. `cli; hlt` forever (real hardware, or an emulator without either).
//!
//! The fatal path prints one line starting `PANIC: ` before that; a second
//! fault on the way down prints `PANIC: nested ...` and exits at once.

use super::serial;
use core::fmt;
use portable_atomic::{AtomicBool, Ordering};

/// What the kernel tells the emulator when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Boot finished: QEMU exits with status 33.
    Success = 0x10,
    /// A panic or fatal exception: QEMU exits with status 35.
    Failure = 0x11,
}

/// I/O port of QEMU's isa-debug-exit device.
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0xF4;
/// I/O port on which Bochs shuts down after reading `Shutdown`.
pub const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Stops the machine with `code` (see the module docs for the sequence).
pub fn exit(code: ExitCode) -> ! {
    serial::drain();
    // SAFETY: port 0xF4 is QEMU's debug-exit device or unused; port 0x8900 is
    // Bochs' shutdown port or unused. Neither write touches memory.
    unsafe {
        x86::io::outl(QEMU_DEBUG_EXIT_PORT, code as u32);
        for b in b"Shutdown" {
            x86::io::outb(BOCHS_SHUTDOWN_PORT, *b);
        }
    }
    halt_forever()
}

/// Disables interrupts and halts, forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this CPU; nothing is left to run.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// The fatal path: prints `PANIC: <reason>` as one line and exits with
/// [`ExitCode::Failure`].
///
/// Used by the panic handler, the exception handlers and bad boot input.
/// Writes without the serial lock (it may be held by the code that failed).
pub fn fatal(reason: fmt::Arguments<'_>) -> ! {
    // SAFETY: clearing IF only masks interrupts (none are enabled anyway).
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    if PANICKING.swap(true, Ordering::SeqCst) {
        serial::write_fmt_unlocked(format_args!(
            "\nPANIC: nested failure while handling an earlier one: {reason}\n"
        ));
        exit(ExitCode::Failure);
    }
    serial::write_fmt_unlocked(format_args!("PANIC: {reason}\n"));
    exit(ExitCode::Failure)
}
