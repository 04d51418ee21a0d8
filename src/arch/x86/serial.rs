//! COM1 at 115200 baud, 8 data bits, no parity, 1 stop bit (8N1), through
//! the `uart_16550` crate; the sink of the kernel's log.
//!
//! Two ways to write:
//! - [`write_fmt`] for log lines: takes a lock, so lines never interleave;
//! - [`write_fmt_unlocked`] for the fatal path: ignores the lock, because a
//!   panic may strike while the lock is held (inside a log call) and waiting
//!   for it would hang forever.
//!
//! [`drain`] waits until the transmitter has sent the last bit (LSR bit 6,
//! TEMT): without it, an emulator that stops right after the last write
//! (Bochs) drops the final bytes.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::spec::registers::LSR;
use uart_16550::{BaudRate, Config, Uart16550};

/// I/O port base of COM1.
pub const COM1: u16 = 0x3F8;

static PORT: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

struct Writer<'a>(&'a mut Uart16550<PioBackend>);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // Serial terminals want CR LF.
            if b == b'\n' {
                self.0.send_bytes_exact(b"\r");
            }
            self.0.send_bytes_exact(&[b]);
        }
        Ok(())
    }
}

fn com1() -> Uart16550<PioBackend> {
    // SAFETY: COM1's eight ports at 0x3F8 belong to the UART on every PC; this
    // kernel touches them only through this module.
    unsafe { Uart16550::new_port(COM1) }.expect("0x3F8 is a valid port base")
}

/// Programs COM1 for 115200 8N1 with FIFOs. Safe to call more than once.
///
/// Returns `false` if no UART answers at COM1 (output is then lost, but the
/// kernel still boots and exits with the right status).
pub fn init() -> bool {
    let mut uart = com1();
    let config = Config {
        baud_rate: BaudRate::Baud115200,
        ..Config::DEFAULT
    };
    let ok = uart.init(config).is_ok();
    *PORT.lock() = Some(uart);
    ok
}

/// Writes formatted text, holding the port lock for the whole call.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut guard = PORT.lock();
    match guard.as_mut() {
        Some(uart) => {
            let _ = Writer(uart).write_fmt(args);
        }
        None => {
            drop(guard);
            write_fmt_unlocked(args);
        }
    }
}

/// Writes formatted text without taking the lock (fatal path only).
pub fn write_fmt_unlocked(args: fmt::Arguments<'_>) {
    let mut uart = com1();
    let _ = Writer(&mut uart).write_fmt(args);
}

/// Waits until the transmitter is empty (LSR bit 6, TEMT), at most ~1M polls
/// so that a missing UART cannot hang the exit path.
pub fn drain() {
    let mut uart = com1();
    for _ in 0..1_000_000 {
        if uart.lsr().contains(LSR::TRANSMITTER_EMPTY) {
            return;
        }
    }
}
