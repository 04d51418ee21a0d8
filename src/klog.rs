//! The kernel's log lines, behind the `log` crate.
//!
//! Every line has the same shape, so that a reader (or a test) can find a
//! subsystem's story with `grep`:
//!
//! ```text
//! [INFO ] cpu: family 6 model 6 stepping 3 (AuthenticAMD), via CPUID
//! ^level  ^subsystem, then the message
//! ```
//!
//! The subsystem is the `target` of the `log` record: either an explicit
//! `target: "boot"` or, by default, the last component of the module path
//! (`kernel::arch::x86::cpu` → `cpu`). The level is set by `loglevel=` on the
//! command line through `log::set_max_level`.
//!
//! Two lines are not log records: `KERNEL OK` (success) and `PANIC: ...`
//! (the fatal path); they are written directly so that nothing can filter
//! them out.

use core::fmt;

/// Where formatted lines go: the arch layer's serial port in the kernel, a
/// buffer in tests. Called once per whole line (including the `\n`), so a
/// sink that locks per call never interleaves two lines.
pub type Sink = fn(fmt::Arguments<'_>);

/// A `log::Log` that formats records as described in the module docs.
pub struct Logger {
    sink: Sink,
}

impl Logger {
    /// A logger writing to `sink`.
    pub const fn new(sink: Sink) -> Logger {
        Logger { sink }
    }
}

/// The subsystem shown for a record's `target`.
pub fn subsystem(target: &str) -> &str {
    target.rsplit("::").next().unwrap_or(target)
}

/// The fixed-width level tag, e.g. `INFO ` or `WARN `.
pub fn level_tag(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARN ",
        log::Level::Info => "INFO ",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            (self.sink)(format_args!(
                "[{}] {}: {}\n",
                level_tag(record.level()),
                subsystem(record.target()),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Log;
    use std::sync::Mutex;

    static LINES: Mutex<String> = Mutex::new(String::new());

    fn capture(args: fmt::Arguments<'_>) {
        LINES.lock().unwrap().push_str(&args.to_string());
    }

    #[test]
    fn lines_show_level_and_subsystem() {
        let logger = Logger::new(capture);
        log::set_max_level(log::LevelFilter::Info);
        let record = |level, target: &'static str, msg: &'static str| {
            logger.log(
                &log::Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{msg}"))
                    .build(),
            )
        };
        record(log::Level::Info, "kernel::arch::x86::cpu", "hello");
        record(log::Level::Warn, "cmdline", "careful");
        record(log::Level::Debug, "boot", "hidden at info");
        assert_eq!(
            *LINES.lock().unwrap(),
            "[INFO ] cpu: hello\n[WARN ] cmdline: careful\n"
        );
    }
}
