//! Deliberate CPU exceptions, one instruction each, for `crashtest=`
//! (`crate::init::crashtest`): each raises its exception at the first
//! instruction that could change state, and the exception handler
//! (`super::idt`) ends on the fatal path, so none of them returns.
//!
//! They are safe functions: the faulting instruction changes nothing before
//! it faults, and the fatal path never resumes it.

/// Reads address 0, which is never mapped: `#PF`.
pub fn read_null() {
    // SAFETY: a 4-byte read of the null page, never mapped: it faults
    // before anything changes, and the fatal path never returns here.
    unsafe { core::arch::asm!("mov eax, dword ptr [0]", out("eax") _) };
}

/// `ud2`, the architecturally undefined instruction: `#UD`.
pub fn undefined_opcode() {
    // SAFETY: ud2 raises #UD and changes nothing.
    unsafe { core::arch::asm!("ud2") };
}

/// Divides by ECX = 0: `#DE`.
pub fn divide_by_zero() {
    // SAFETY: only the clobbered registers change before `div` faults.
    unsafe {
        core::arch::asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx",
            out("eax") _, out("ecx") _, out("edx") _);
    }
}

/// Loads selector 0x1f8 (GDT index 63, past the 5-entry GDT's limit) into
/// DS: `#GP` before DS changes.
pub fn bad_selector_load() {
    // SAFETY: the load faults before DS changes; only EAX is clobbered.
    unsafe { core::arch::asm!("mov ax, 0x1f8", "mov ds, ax", out("eax") _) };
}
