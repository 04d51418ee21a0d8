//! The kernel command line: the words after the kernel's path in GRUB's
//! `multiboot2` line, or QEMU's `-append`.
//!
//! Parsed once at boot, before anything else is logged, so that `loglevel=`
//! applies to every line. Parsing is pure and allocation-free: options are
//! matched against a fixed table, unknown words and bad values become
//! [`CmdlineWarning`]s that the caller logs, and nothing is ever fatal (Linux
//! ignores what it does not understand in the same way).
//!
//! | word | effect |
//! |---|---|
//! | `loglevel=error\|warn\|info\|debug\|trace` | most verbose level printed (default `info`) |
//! | `selftest` | run the in-kernel self-tests before `KERNEL OK` |
//! | `tlb=auto\|invlpg\|cr3` | TLB invalidation method (default `auto`: `invlpg` on a 486 or later) |
//! | `paging=auto\|2level\|pae` | page-table format of the final page directory (`auto`: PAE where the CPU has it). Without any paging word the kernel keeps 2-level paging with 4 KiB pages and no global pages, the mode chapters 1-6 of the book show |
//! | `pse=on\|off`, `pge=on\|off`, `nx=on\|off` | large pages for the direct map, global kernel pages, no-execute data (once a paging word is given, each defaults to on where the CPU has it) |
//! | `memblock=debug` | print the memblock regions in Linux's format |
//! | `slub_debug` | kmalloc debugging: allocation headers, poison, red zones (always on in self-tests) |
//! | `mem=<size>[K\|M\|G]` | ignore RAM at and above `size` bytes (Linux's `mem=`) |
//! | `crashtest=<what>` | test only: fail on purpose to exercise the fatal path (see [`CrashTest`]) |
//!
//! # References
//! - Multiboot2 spec §3.6.3 "Boot command line"; Multiboot 0.6.96 §3.3
//!   "Boot information format" (`cmdline`, flags bit 2).
//! - Linux: `Documentation/admin-guide/kernel-parameters.txt` (`mem=`,
//!   `loglevel=`, `memblock=debug`).

use core::fmt;

/// Most verbose log level printed on the serial line.
///
/// Mirrors `log::LevelFilter` without `Off`: a teaching kernel always prints
/// errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// The boot story (default).
    Info,
    /// Details such as each memory-map entry as received.
    Debug,
    /// Everything, including per-operation allocator traces.
    Trace,
}

impl LogLevel {
    /// The `log` crate's equivalent filter.
    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// How the kernel invalidates a TLB entry after changing a page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbMode {
    /// `invlpg` if the CPU has it (486 and later), else a CR3 reload.
    Auto,
    /// Always `invlpg` (one page).
    Invlpg,
    /// Always reload CR3 (whole TLB, as a 386 must).
    Cr3,
}

impl TlbMode {
    fn name(self) -> &'static str {
        match self {
            TlbMode::Auto => "auto",
            TlbMode::Invlpg => "invlpg",
            TlbMode::Cr3 => "cr3",
        }
    }
}

/// The page-table format asked for with `paging=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingRequest {
    /// The best the CPU offers: PAE if it has it, else 32-bit paging.
    Auto,
    /// 32-bit paging, two levels of 4-byte entries.
    TwoLevel,
    /// PAE paging: three levels of 8-byte entries.
    Pae,
}

impl PagingRequest {
    /// The word's value: `auto`, `2level`, `pae`.
    pub fn name(self) -> &'static str {
        match self {
            PagingRequest::Auto => "auto",
            PagingRequest::TwoLevel => "2level",
            PagingRequest::Pae => "pae",
        }
    }
}

/// A paging feature asked for with `pse=`, `pge=` or `nx=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// On where the CPU (and the format) allow it (no word given).
    Auto,
    /// `on`: wanted; refused with a warning where the CPU lacks it.
    On,
    /// `off`: not used.
    Off,
}

impl Switch {
    /// The word's value: `auto`, `on`, `off`.
    pub fn name(self) -> &'static str {
        match self {
            Switch::Auto => "auto",
            Switch::On => "on",
            Switch::Off => "off",
        }
    }
}

/// A deliberate failure requested with `crashtest=<what>`, so that the boot
/// tests can check that each kind of fatal error is reported by a `PANIC:`
/// line and exit status 35 (never a triple fault or a hang).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashTest {
    /// `crashtest=null`: read virtual address 0 (page fault, not present).
    Null,
    /// `crashtest=unmapped`: map a page in the vmalloc area, unmap it (with
    /// its TLB flush), then read it (page fault, not present).
    Unmapped,
    /// `crashtest=rodata`: write to the kernel's `.text` (page fault,
    /// protection violation, once CR0.WP is set).
    Rodata,
    /// `crashtest=ud`: execute `ud2` (#UD, invalid opcode).
    Ud,
    /// `crashtest=div0`: divide by zero (#DE).
    Div0,
    /// `crashtest=gp`: load a segment selector past the GDT limit (#GP).
    Gp,
    /// `crashtest=stack`: overflow the boot stack into its guard page; the
    /// double fault is caught by a task gate running on its own stack.
    Stack,
    /// `crashtest=panic`: a Rust `panic!`.
    Panic,
    /// `crashtest=vmalloc`: touch the guard page after a demand-paged
    /// vmalloc area (page fault in the vmalloc region outside any area's
    /// pages: the demand handler refuses it).
    Vmalloc,
    /// `crashtest=oom`: a `Vec` larger than all memory; the allocation
    /// failure goes through Rust's `alloc` error handler.
    Oom,
    /// `crashtest=kfree`: `kfree` of a pointer kmalloc never returned,
    /// reported and then escalated by this test (a kmalloc report is
    /// otherwise not fatal).
    Kfree,
    /// `crashtest=nx`: call into a kmalloc'd (data) page holding a `ret`:
    /// with NX, a page fault on the instruction fetch; without NX, the `ret`
    /// runs and the test reports that the data page executed.
    Nx,
}

impl CrashTest {
    /// Every variant with its command-line spelling.
    pub const ALL: [(CrashTest, &'static str); 12] = [
        (CrashTest::Null, "null"),
        (CrashTest::Unmapped, "unmapped"),
        (CrashTest::Rodata, "rodata"),
        (CrashTest::Ud, "ud"),
        (CrashTest::Div0, "div0"),
        (CrashTest::Gp, "gp"),
        (CrashTest::Stack, "stack"),
        (CrashTest::Panic, "panic"),
        (CrashTest::Vmalloc, "vmalloc"),
        (CrashTest::Oom, "oom"),
        (CrashTest::Kfree, "kfree"),
        (CrashTest::Nx, "nx"),
    ];

    /// The spelling used on the command line.
    pub fn name(self) -> &'static str {
        CrashTest::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

/// Everything the command line can set, with the defaults of a plain boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// `loglevel=`; default [`LogLevel::Info`].
    pub loglevel: LogLevel,
    /// `selftest`: run the in-kernel self-tests.
    pub selftest: bool,
    /// `tlb=`; default [`TlbMode::Auto`].
    pub tlb: TlbMode,
    /// `memblock=debug`.
    pub memblock_debug: bool,
    /// `slub_debug`: kmalloc's debug layer (header, poison, red zones).
    pub slub_debug: bool,
    /// `mem=`: usable RAM limit in bytes, if given.
    pub mem_limit_bytes: Option<u64>,
    /// `crashtest=`: a deliberate failure (tests only).
    pub crashtest: Option<CrashTest>,
    /// `paging=`; default [`PagingRequest::Auto`].
    pub paging: PagingRequest,
    /// `pse=`: 4 MiB (2 MiB under PAE) pages for the direct map.
    pub pse: Switch,
    /// `pge=`: global kernel pages.
    pub pge: Switch,
    /// `nx=`: no-execute data pages (PAE only).
    pub nx: Switch,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            loglevel: LogLevel::Info,
            selftest: false,
            tlb: TlbMode::Auto,
            memblock_debug: false,
            slub_debug: false,
            mem_limit_bytes: None,
            crashtest: None,
            paging: PagingRequest::Auto,
            pse: Switch::Auto,
            pge: Switch::Auto,
            nx: Switch::Auto,
        }
    }
}

impl fmt::Display for BootOptions {
    /// One line, every option with its effective value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loglevel={} selftest={} tlb={} memblock={} slub_debug={}",
            self.loglevel.name(),
            if self.selftest { "on" } else { "off" },
            self.tlb.name(),
            if self.memblock_debug { "debug" } else { "off" },
            if self.slub_debug { "on" } else { "off" },
        )?;
        match self.mem_limit_bytes {
            Some(bytes) => write!(f, " mem={bytes:#x}")?,
            None => write!(f, " mem=all")?,
        }
        if let Some(c) = self.crashtest {
            write!(f, " crashtest={}", c.name())?;
        }
        // `paging=` always; each switch only when it is not left to the CPU.
        write!(f, " paging={}", self.paging.name())?;
        for (name, s) in [("pse", self.pse), ("pge", self.pge), ("nx", self.nx)] {
            if s != Switch::Auto {
                write!(f, " {name}={}", s.name())?;
            }
        }
        Ok(())
    }
}

/// Something on the command line that was ignored, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineWarning<'a> {
    /// A word no option matches.
    Unknown(&'a str),
    /// A known option with a value it does not accept; `expected` lists the
    /// accepted forms.
    BadValue {
        /// The whole word, e.g. `loglevel=loud`.
        word: &'a str,
        /// What the option accepts.
        expected: &'static str,
    },
}

impl fmt::Display for CmdlineWarning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineWarning::Unknown(w) => write!(f, "unknown option '{w}' ignored"),
            CmdlineWarning::BadValue { word, expected } => {
                write!(f, "bad value in '{word}' ignored (expected {expected})")
            }
        }
    }
}

/// What [`copy_lossy`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossyCopy {
    /// Bytes written to the buffer, all valid UTF-8.
    pub len: usize,
    /// Invalid byte sequences replaced by U+FFFD.
    pub replaced: u32,
    /// Whether the buffer was too small and the copy was cut (at a
    /// character boundary).
    pub cut: bool,
}

/// Copies the loader's command-line bytes `raw` into `buf` as UTF-8, the
/// way `String::from_utf8_lossy` would: each invalid sequence becomes one
/// U+FFFD REPLACEMENT CHARACTER. A word holding one then matches no option
/// and is warned about and ignored by [`parse`]; the boot goes on. The copy
/// is cut at a character boundary if `buf` is too small.
pub fn copy_lossy(raw: &[u8], buf: &mut [u8]) -> LossyCopy {
    let mut out = LossyCopy {
        len: 0,
        replaced: 0,
        cut: false,
    };
    let mut put = |s: &str, out: &mut LossyCopy| {
        for c in s.chars() {
            let n = c.len_utf8();
            if out.len + n > buf.len() {
                out.cut = true;
                return;
            }
            c.encode_utf8(&mut buf[out.len..out.len + n]);
            out.len += n;
        }
    };
    for chunk in raw.utf8_chunks() {
        put(chunk.valid(), &mut out);
        if !chunk.invalid().is_empty() && !out.cut {
            put("\u{FFFD}", &mut out);
            out.replaced += u32::from(!out.cut);
        }
        if out.cut {
            break;
        }
    }
    out
}

/// Parses a command line into [`BootOptions`], reporting every ignored word
/// through `warn`.
///
/// Words are separated by ASCII whitespace. If the first word contains a `/`
/// and no `=`, it is the kernel's own path (QEMU's `-kernel` and GRUB's
/// Multiboot 1 loader put it there) and is skipped. Later words override
/// earlier ones.
pub fn parse<'a>(cmdline: &'a str, mut warn: impl FnMut(CmdlineWarning<'a>)) -> BootOptions {
    let mut opts = BootOptions::default();
    let mut words = cmdline.split_ascii_whitespace().peekable();
    if let Some(first) = words.peek()
        && first.contains('/')
        && !first.contains('=')
    {
        words.next();
    }
    for word in words {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let bad = |expected| CmdlineWarning::BadValue { word, expected };
        match (key, value) {
            ("selftest", None) => opts.selftest = true,
            ("loglevel", Some(v)) => match parse_loglevel(v) {
                Some(level) => opts.loglevel = level,
                None => warn(bad("error|warn|info|debug|trace")),
            },
            ("tlb", Some(v)) => match v {
                "auto" => opts.tlb = TlbMode::Auto,
                "invlpg" => opts.tlb = TlbMode::Invlpg,
                "cr3" => opts.tlb = TlbMode::Cr3,
                _ => warn(bad("auto|invlpg|cr3")),
            },
            ("paging" | "pse" | "pge" | "nx", Some(v)) => {
                parse_paging_word(&mut opts, key, v, &mut |e| warn(bad(e)));
            }
            ("memblock", Some("debug")) => opts.memblock_debug = true,
            ("memblock", Some(_)) => warn(bad("debug")),
            ("slub_debug", None) => opts.slub_debug = true,
            ("mem", Some(v)) => match parse_size(v) {
                Some(bytes) if bytes > 0 => opts.mem_limit_bytes = Some(bytes),
                _ => warn(bad("<size>[K|M|G], greater than 0")),
            },
            ("crashtest", Some(v)) => match CrashTest::ALL.iter().find(|(_, n)| *n == v) {
                Some((c, _)) => opts.crashtest = Some(*c),
                None => warn(bad(
                    "null|unmapped|rodata|ud|div0|gp|stack|panic|vmalloc|oom|kfree|nx",
                )),
            },
            _ => warn(CmdlineWarning::Unknown(word)),
        }
    }
    opts
}

/// `paging=`, `pse=`, `pge=` or `nx=` with value `v`; `bad(expected)` for
/// a value the option does not accept.
fn parse_paging_word(
    opts: &mut BootOptions,
    key: &str,
    v: &str,
    bad: &mut impl FnMut(&'static str),
) {
    if key == "paging" {
        opts.paging = match v {
            "auto" => PagingRequest::Auto,
            "2level" => PagingRequest::TwoLevel,
            "pae" => PagingRequest::Pae,
            _ => return bad("auto|2level|pae"),
        };
        return;
    }
    let switch = match v {
        "on" => Switch::On,
        "off" => Switch::Off,
        _ => return bad("on|off"),
    };
    match key {
        "pse" => opts.pse = switch,
        "pge" => opts.pge = switch,
        _ => opts.nx = switch,
    }
}

fn parse_loglevel(v: &str) -> Option<LogLevel> {
    Some(match v {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

/// Parses `<number>[K|M|G]` (suffix case-insensitive, as Linux's `memparse`)
/// into bytes; the number is decimal, or hexadecimal with `0x`.
///
/// Returns `None` for an empty or malformed number, an unknown suffix, or a
/// value that does not fit in 64 bits.
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let number = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    number.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests;
