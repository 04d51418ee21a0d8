//! CPU exceptions: names, which push an error code, and how to read the code.
//!
//! The arch layer (`arch::x86::idt`) installs one entry stub per vector and
//! calls into Rust with the saved registers; this module is the pure part that
//! turns a vector and an error code into words, so it is tested on the host.
//!
//! # References
//! - Intel SDM Vol. 3A, §6.15 "Exception and Interrupt Reference" (one entry
//!   per vector, with its error code), Table 6-1 "Protected-Mode Exceptions
//!   and Interrupts".
//! - Intel SDM Vol. 3A, §4.7 "Page-Fault Exceptions", Figure 4-12 (the #PF
//!   error code).

use core::fmt;

/// Vectors 0..32 are reserved for CPU exceptions.
pub const NR_EXCEPTIONS: usize = 32;

/// Vector of the double fault (#DF), handled by a task gate.
pub const DOUBLE_FAULT_VECTOR: u8 = 8;
/// Vector of the page fault (#PF).
pub const PAGE_FAULT_VECTOR: u8 = 14;
/// Vector of the breakpoint (#BP), which the self-test raises with `int3`.
pub const BREAKPOINT_VECTOR: u8 = 3;

/// Mnemonic and name of exception `vector` (Intel SDM Vol. 3A Table 6-1);
/// `("#??", "reserved")` for reserved vectors.
pub fn exception_name(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "BOUND range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        9 => ("#CSO", "coprocessor segment overrun (386 only)"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point exception"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "reserved"),
    }
}

/// Whether the CPU pushes an error code for exception `vector` (the entry
/// stubs push a 0 for the others, so every frame has the same shape).
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The page-fault error code (Intel SDM Vol. 3A §4.7, Figure 4-12).
///
/// ```text
///  31                      5    4     3     2     1     0
/// +-----------------------+----+-----+-----+-----+-----+
/// |       reserved        | ID | RSVD| U/S | W/R |  P  |
/// +-----------------------+----+-----+-----+-----+-----+
///  P    0: the page was not present   1: a protection violation
///  W/R  0: a read                     1: a write
///  U/S  0: in supervisor mode         1: in user mode (CPL 3)
///  RSVD 1: a reserved bit was set in a paging-structure entry
///  ID   1: an instruction fetch (only with PAE/NX)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFaultError(pub u32);

impl PageFaultError {
    /// The page was present: a protection violation, not a missing page.
    pub const fn present(self) -> bool {
        self.0 & 1 != 0
    }
    /// The access was a write.
    pub const fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// The access came from user mode.
    pub const fn user(self) -> bool {
        self.0 & 4 != 0
    }
    /// A reserved bit was set in a page-directory or page-table entry.
    pub const fn reserved_bit(self) -> bool {
        self.0 & 8 != 0
    }
    /// The access was an instruction fetch.
    pub const fn instruction_fetch(self) -> bool {
        self.0 & 16 != 0
    }
}

impl fmt::Display for PageFaultError {
    /// For example `not-present read, supervisor`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.present() {
            "protection-violation"
        } else {
            "not-present"
        })?;
        f.write_str(if self.instruction_fetch() {
            " fetch"
        } else if self.write() {
            " write"
        } else {
            " read"
        })?;
        f.write_str(if self.user() {
            ", user"
        } else {
            ", supervisor"
        })?;
        if self.reserved_bit() {
            f.write_str(", reserved bit set")?;
        }
        Ok(())
    }
}

/// The selector error code of #TS, #NP, #SS and #GP (Intel SDM Vol. 3A §6.13
/// "Error Code"): which descriptor the CPU was loading.
///
/// ```text
///  31         16 15                  3   2    1    0
/// +-------------+---------------------+-----+-----+-----+
/// |  reserved   |  selector index     | TI  | IDT | EXT |
/// +-------------+---------------------+-----+-----+-----+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectorError(pub u32);

impl fmt::Display for SelectorError {
    /// For example `GDT selector 0x1f8 (index 63)`, or `no selector` for 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        if code == 0 {
            return f.write_str("no selector");
        }
        let table = if code & 2 != 0 {
            "IDT"
        } else if code & 4 != 0 {
            "LDT"
        } else {
            "GDT"
        };
        let index = (code & 0xfff8) >> 3;
        write!(f, "{table} selector {:#x} (index {index})", code & 0xfff8)?;
        if code & 1 != 0 {
            f.write_str(", external event")?;
        }
        Ok(())
    }
}

/// The error code of exception `vector` in words, or `None` when the
/// exception has no error code or it carries no information (#DF, #AC: 0).
pub fn describe_error_code(vector: u8, code: u32) -> Option<ErrorCodeText> {
    match vector {
        PAGE_FAULT_VECTOR => Some(ErrorCodeText::PageFault(PageFaultError(code))),
        10..=13 => Some(ErrorCodeText::Selector(SelectorError(code))),
        _ => None,
    }
}

/// A decoded error code, ready to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCodeText {
    /// #PF.
    PageFault(PageFaultError),
    /// #TS, #NP, #SS, #GP.
    Selector(SelectorError),
}

impl fmt::Display for ErrorCodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCodeText::PageFault(e) => e.fmt(f),
            ErrorCodeText::Selector(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_bits_decode_as_in_the_sdm_figure() {
        assert_eq!(
            PageFaultError(0).to_string(),
            "not-present read, supervisor"
        );
        assert_eq!(
            PageFaultError(0b0011).to_string(),
            "protection-violation write, supervisor"
        );
        assert_eq!(
            PageFaultError(0b0110).to_string(),
            "not-present write, user"
        );
        assert_eq!(
            PageFaultError(0b1001).to_string(),
            "protection-violation read, supervisor, reserved bit set"
        );
        assert_eq!(
            PageFaultError(0b10000).to_string(),
            "not-present fetch, supervisor"
        );
    }

    #[test]
    fn selector_error_codes_name_the_table_and_index() {
        assert_eq!(SelectorError(0).to_string(), "no selector");
        assert_eq!(
            SelectorError(0x1f8).to_string(),
            "GDT selector 0x1f8 (index 63)"
        );
        assert_eq!(
            SelectorError(0x72).to_string(),
            "IDT selector 0x70 (index 14)"
        );
        assert_eq!(
            SelectorError(0x0d).to_string(),
            "LDT selector 0x8 (index 1), external event"
        );
    }

    #[test]
    fn error_code_vectors_match_the_sdm_table() {
        let with_code: Vec<u8> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with_code, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn every_exception_vector_has_a_name() {
        assert_eq!(exception_name(14), ("#PF", "page fault"));
        assert_eq!(exception_name(15), ("#??", "reserved"));
        for v in 0..=21u8 {
            if v != 15 {
                assert_ne!(exception_name(v).0, "#??", "vector {v}");
            }
        }
    }

    #[test]
    fn describe_picks_the_decoder_by_vector() {
        assert!(matches!(
            describe_error_code(14, 2),
            Some(ErrorCodeText::PageFault(_))
        ));
        assert!(matches!(
            describe_error_code(13, 0x10),
            Some(ErrorCodeText::Selector(_))
        ));
        assert_eq!(describe_error_code(8, 0), None);
    }
}
