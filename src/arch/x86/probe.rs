//! Memory probes that survive a page fault: the self-tests use them to show
//! that an unmapped page or a read-only page really faults, without taking
//! the fatal path (Linux: `copy_from_kernel_nofault()` and the exception
//! table, `fixup_exception()`).
//!
//! Each probe is a tiny assembly function with one instruction that may
//! fault. If it does, the page-fault handler sees that EIP is that
//! instruction ([`fixup`]), records the fault, and resumes at the probe's
//! exit with "faulted" in EAX instead of panicking. A fault anywhere else
//! stays fatal.

use crate::addr::VirtAddr;
use crate::trap::PageFaultError;
use portable_atomic::{AtomicU32, Ordering};

core::arch::global_asm!(
    r#"
    .section .text.probe, "ax"
    /* u32 kernel_probe_read(u32 addr, u32 *value): 0 = read, 1 = faulted */
    .globl kernel_probe_read
    kernel_probe_read:
        movl 4(%esp), %ecx
        xorl %eax, %eax
        xorl %edx, %edx
    .globl kernel_probe_read_insn
    kernel_probe_read_insn:
        movl (%ecx), %edx
    .globl kernel_probe_read_exit
    kernel_probe_read_exit:
        movl 8(%esp), %ecx
        movl %edx, (%ecx)
        ret

    /* u32 kernel_probe_write_u8(u32 addr, u32 value): 0 = written, 1 = faulted */
    .globl kernel_probe_write_u8
    kernel_probe_write_u8:
        movl 4(%esp), %ecx
        movl 8(%esp), %edx
        xorl %eax, %eax
    .globl kernel_probe_write_insn
    kernel_probe_write_insn:
        movb %dl, (%ecx)
    .globl kernel_probe_write_exit
    kernel_probe_write_exit:
        ret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn kernel_probe_read(addr: u32, value: *mut u32) -> u32;
    fn kernel_probe_write_u8(addr: u32, value: u32) -> u32;
    static kernel_probe_read_insn: u8;
    static kernel_probe_read_exit: u8;
    static kernel_probe_write_insn: u8;
    static kernel_probe_write_exit: u8;
}

static LAST_CR2: AtomicU32 = AtomicU32::new(0);
static LAST_ERROR: AtomicU32 = AtomicU32::new(0);
static LAST_EIP: AtomicU32 = AtomicU32::new(0);

/// A page fault a probe caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeFault {
    /// CR2: the address that faulted.
    pub cr2: VirtAddr,
    /// The #PF error code.
    pub error: PageFaultError,
    /// The probe instruction's address.
    pub eip: u32,
}

fn last_fault() -> ProbeFault {
    ProbeFault {
        cr2: VirtAddr(LAST_CR2.load(Ordering::SeqCst)),
        error: PageFaultError(LAST_ERROR.load(Ordering::SeqCst)),
        eip: LAST_EIP.load(Ordering::SeqCst),
    }
}

/// Reads the `u32` at `va`, or reports the page fault it caused.
///
/// # Errors
/// The fault, if the read faulted.
///
/// # Safety
/// `va` must not be memory-mapped I/O (the direct map covers the ISA hole
/// at 0xA0000-0xFFFFF, where a read may have side effects), nor memory
/// another `&mut` reference is writing.
pub unsafe fn probe_read(va: VirtAddr) -> Result<u32, ProbeFault> {
    let mut value = 0;
    // SAFETY: the probe reads 4 bytes at `va`, which the caller vouches for;
    // a page fault there is caught by `fixup`.
    let faulted = unsafe { kernel_probe_read(va.0, &mut value) };
    if faulted == 0 {
        Ok(value)
    } else {
        Err(last_fault())
    }
}

/// Writes byte `value` to `va`, or reports the page fault it caused.
///
/// # Errors
/// The fault, if the write faulted.
///
/// # Safety
/// If the write succeeds it changes memory: `va` must be writable by the
/// caller, or `value` must be the byte already there (how the self-test
/// checks that `.text` is read-only without changing it).
pub unsafe fn probe_write_u8(va: VirtAddr, value: u8) -> Result<(), ProbeFault> {
    // SAFETY: the caller vouches for the write; a fault is caught by `fixup`.
    let faulted = unsafe { kernel_probe_write_u8(va.0, u32::from(value)) };
    if faulted == 0 {
        Ok(())
    } else {
        Err(last_fault())
    }
}

/// Where a probe resumes after its fault: the exception handler sets the
/// interrupted EIP and EAX to these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The probe's exit label.
    pub eip: u32,
    /// The probe's return value: 1, "faulted".
    pub eax: u32,
}

/// Called by the page-fault handler with the faulting `eip`, the #PF
/// `error_code` and `cr2`: if the fault is a probe's, records it and says
/// where the probe resumes (Linux `fixup_exception()`); `None` otherwise.
///
/// Takes plain registers rather than the trap frame so that this module does
/// not depend on `idt`, which calls it.
pub fn fixup(eip: u32, error_code: u32, cr2: VirtAddr) -> Option<Resume> {
    // Taking the address of an extern static never reads it.
    let table = [
        (
            core::ptr::addr_of!(kernel_probe_read_insn) as u32,
            core::ptr::addr_of!(kernel_probe_read_exit) as u32,
        ),
        (
            core::ptr::addr_of!(kernel_probe_write_insn) as u32,
            core::ptr::addr_of!(kernel_probe_write_exit) as u32,
        ),
    ];
    let &(insn, exit) = table.iter().find(|(insn, _)| *insn == eip)?;
    LAST_CR2.store(cr2.0, Ordering::SeqCst);
    LAST_ERROR.store(error_code, Ordering::SeqCst);
    LAST_EIP.store(insn, Ordering::SeqCst);
    Some(Resume { eip: exit, eax: 1 })
}
