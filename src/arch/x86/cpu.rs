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

// The CR4 and MSR accessors below are never inlined: their instructions
// (which a 386 lacks) then live in these functions only, which run only after
// CPUID said the CPU has the feature, and the boot tests' instruction check
// (isa-i386) allows them there and nowhere else.

/// CR4.PSE (bit 4): PS in a 32-bit PDE maps a 4 MiB page.
pub const CR4_PSE: u32 = 1 << 4;
/// CR4.PAE (bit 5): PAE paging.
pub const CR4_PAE: u32 = 1 << 5;
/// CR4.PGE (bit 7): G in a leaf entry makes the translation global.
pub const CR4_PGE: u32 = 1 << 7;

/// CR4. Only on a CPU that has it (`CpuFeatures::cr4`).
#[inline(never)]
pub fn read_cr4() -> u32 {
    // SAFETY: reading CR4 at CPL 0 has no side effects; callers check that
    // the CPU has CR4.
    unsafe { x86::controlregs::cr4().bits() as u32 }
}

/// Writes CR4. Changing PSE, PGE or PAE flushes the whole TLB, global
/// entries included (Intel SDM Vol. 3A §4.10.4.1).
///
/// # Safety
/// The CPU must have CR4 and every feature set; the current page tables
/// must be valid in the mode the new value selects.
#[inline(never)]
pub unsafe fn write_cr4(v: u32) {
    // SAFETY: as the caller guarantees.
    unsafe {
        x86::controlregs::cr4_write(x86::controlregs::Cr4::from_bits_truncate(v as usize));
    }
}

/// Value: 0xC000_0080. The IA32_EFER MSR.
const IA32_EFER: u32 = 0xC000_0080;
/// EFER.NXE (bit 11): the NX bit of PAE entries is honoured.
const EFER_NXE: u64 = 1 << 11;

/// Sets IA32_EFER.NXE: from then on, bit 63 of a PAE entry forbids
/// instruction fetches (it is a reserved bit, a fault, without NXE; Intel
/// SDM Vol. 3A §4.1.4).
///
/// # Safety
/// The CPU must have NX (`CPUID.80000001H:EDX[20]`), else the write #GPs.
#[inline(never)]
pub unsafe fn set_efer_nxe() {
    // SAFETY: the MSR exists on a CPU with NX (the caller's promise); only
    // NXE changes, and it has no effect until PAE paging is on.
    unsafe {
        let efer = x86::msr::rdmsr(IA32_EFER);
        x86::msr::wrmsr(IA32_EFER, efer | EFER_NXE);
    }
}

/// Switches from 32-bit paging to PAE paging with the PDPT at `pdpt`:
/// `mov cr3, pdpt` then `mov cr4, cr4 | PAE | extra`, back to back.
///
/// The SDM allows the switch while paging is on ("software can make
/// transitions between 32-bit paging and PAE paging by changing the value
/// of CR4.PAE with MOV to CR4", Vol. 3A §4.1.2), and that MOV to CR4 loads
/// the four PDPTE registers from CR3 (§4.4.1), so CR3 must hold the PDPT
/// first. Between the two instructions the CPU still runs 32-bit paging,
/// with CR3 pointing at the PDPT's frame: the frame is read as a 32-bit page
/// directory for that one instruction fetch.
///
/// # Safety
/// - `pdpt` is a page-aligned frame below 4 GiB whose first 32 bytes are
///   the PDPT of PAE tables that map everything the kernel uses, and whose
///   32-bit view maps this code and the stack (the caller copies the boot
///   directory's kernel entries into it, above the PDPT's 32 bytes).
/// - The CPU has PAE (and every bit of `extra`); interrupts are disabled.
#[inline(never)]
pub unsafe fn switch_to_pae(pdpt: PhysAddr, extra: u32) {
    let cr4 = read_cr4() | CR4_PAE | extra;
    // SAFETY: as the caller guarantees; no memory access lies between the
    // two moves, so no data access is translated through the PDPT frame's
    // 32-bit view, only the fetch of the second instruction.
    unsafe {
        core::arch::asm!(
            "mov cr3, {pdpt}",
            "mov cr4, {cr4}",
            pdpt = in(reg) pdpt.as_u32(),
            cr4 = in(reg) cr4,
            options(nostack, preserves_flags),
        );
    }
}
