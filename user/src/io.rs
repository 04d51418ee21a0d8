//! Output: `core::fmt` over `write(1, ...)`.
//!
//! [`print!`](crate::print) and [`println!`](crate::println) format into a
//! 256-byte buffer on the stack and hand it to the kernel in one `write`
//! (the kernel prefixes each write with the process, so one line should be
//! one call); longer output is written in 256-byte pieces.

use crate::sys;
use core::fmt::{self, Write};

/// Standard output, file descriptor 1.
pub const STDOUT: u32 = 1;

const BUF: usize = 256;

/// A `core::fmt::Write` sink that buffers and writes to a file descriptor.
pub struct Writer {
    fd: u32,
    buf: [u8; BUF],
    len: usize,
}

impl Writer {
    /// An empty buffer for `fd`.
    pub const fn new(fd: u32) -> Writer {
        Writer {
            fd,
            buf: [0; BUF],
            len: 0,
        }
    }

    /// Writes what is buffered. Errors are dropped: a program has nowhere
    /// else to report them.
    pub fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            match sys::write(self.fd, &self.buf[done..self.len]) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        self.len = 0;
    }
}

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == BUF {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Formats `args` to standard output in as few `write` calls as fit.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut w = Writer::new(STDOUT);
    // Writer::write_str never fails; a Display impl that fails only cuts
    // the line short.
    let _ = w.write_fmt(args);
    w.flush();
}

/// Prints to standard output (`write(1, ...)`).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to standard output (`write(1, ...)`, one call per line up
/// to 256 bytes).
#[macro_export]
macro_rules! println {
    () => { $crate::io::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
