//! CPU identification and control registers.
//!
//! [`detect`] runs the classic tests in order (Linux `head_32.S`, Intel SDM
//! Vol. 1 §19.1): toggle EFLAGS.AC (a 386 cannot), toggle EFLAGS.ID (only CPUs
//! with CPUID can), then ask CPUID. The decisions are in `crate::cpu_info`.

use crate::addr::PhysAddr;
use crate::cpu_info::CpuInfo;
use x86::controlregs::Cr0;
use x86::cpuid::CpuIdResult;

/// EFLAGS.AC, alignment check (bit 18): settable on a 486 and later.
const EFLAGS_AC: u32 = 1 << 18;
/// EFLAGS.ID (bit 21): settable only on CPUs with CPUID.
const EFLAGS_ID: u32 = 1 << 21;

/// Whether software can flip `bit` in EFLAGS. Restores EFLAGS afterwards.
fn eflags_bit_toggles(bit: u32) -> bool {
    let before: u32;
    let after: u32;
    // SAFETY: reads EFLAGS, writes it back with one bit flipped, reads it
    // again and restores the original. AC and ID have no effect on this code
    // (AC checks alignment only at CPL 3); the stack is used balanced.
    unsafe {
        core::arch::asm!(
            "pushfd",
            "pop {before}",
            "mov {after}, {before}",
            "xor {after}, {bit}",
            "push {after}",
            "popfd",
            "pushfd",
            "pop {after}",
            "push {before}",
            "popfd",
            before = out(reg) before,
            after = out(reg) after,
            bit = in(reg) bit,
        );
    }
    (before ^ after) & bit != 0
}

fn cpuid(leaf: u32, subleaf: u32) -> CpuIdResult {
    // Newer `core` declares the intrinsic safe (assuming every x86 CPU has
    // CPUID; 1.95 does), older releases unsafe (1.91 does): the block keeps
    // the kernel building on the oldest supported compiler (Cargo.toml's
    // rust-version).
    #[allow(unused_unsafe)]
    // SAFETY: only called after the EFLAGS.ID test showed that CPUID exists.
    let r = unsafe { core::arch::x86::__cpuid_count(leaf, subleaf) };
    CpuIdResult {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Identifies the boot CPU.
pub fn detect() -> CpuInfo {
    if !eflags_bit_toggles(EFLAGS_AC) {
        CpuInfo::I386
    } else if !eflags_bit_toggles(EFLAGS_ID) {
        CpuInfo::I486_NO_CPUID
    } else {
        CpuInfo::from_cpuid(cpuid)
    }
}

/// CR0 (PE bit 0, WP bit 16, PG bit 31).
pub fn read_cr0() -> u32 {
    // SAFETY: reading CR0 at CPL 0 has no side effects.
    unsafe { x86::controlregs::cr0().bits() as u32 }
}

/// CR2: the linear address of the last page fault.
pub fn read_cr2() -> u32 {
    // SAFETY: reading CR2 at CPL 0 has no side effects.
    unsafe { x86::controlregs::cr2() as u32 }
}

/// CR3: the physical address of the current page directory.
pub fn read_cr3() -> u32 {
    // SAFETY: reading CR3 at CPL 0 has no side effects.
    unsafe { x86::controlregs::cr3() as u32 }
}

/// The current page directory: CR3's base address (bits 31..12; the low
/// bits are the PCD/PWT cache controls, zero here).
pub fn read_cr3_pgd() -> PhysAddr {
    PhysAddr::from_u32(read_cr3() & !0xfff)
}

/// Whether CR0.PG (paging) is set.
pub fn paging_enabled() -> bool {
    read_cr0() & Cr0::CR0_ENABLE_PAGING.bits() as u32 != 0
}

/// Loads CR3 with the page directory at physical `pgd`, which flushes every
/// non-global TLB entry.
///
/// # Safety
/// The page directory at `pgd` must map everything the kernel uses from
/// here on: its code, stack and data, and the tables themselves.
pub unsafe fn write_cr3(pgd: u32) {
    // SAFETY: the caller guarantees the new directory is complete.
    unsafe { x86::controlregs::cr3_write(u64::from(pgd)) };
}

/// Sets CR0.WP (bit 16): supervisor writes to read-only pages then fault
/// (Intel SDM Vol. 3A §4.6). The 486 introduced the bit.
///
/// # Safety
/// The CPU must have CR0.WP (a 486 or later), and nothing may write to
/// memory that is mapped read-only.
pub unsafe fn set_cr0_wp() {
    // SAFETY: as the caller guarantees; the other CR0 bits are kept.
    unsafe {
        let cr0 = x86::controlregs::cr0();
        x86::controlregs::cr0_write(cr0 | x86::controlregs::Cr0::CR0_WRITE_PROTECT);
    }
}
