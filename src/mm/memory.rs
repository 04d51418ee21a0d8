//! What a page fault at a user address means (Linux `mm/memory.c`
//! `handle_mm_fault()` with `arch/x86/mm/fault.c`'s `do_user_addr_fault()`
//! and `access_error()`), as a pure decision: the page-fault handler reads
//! CR2, the error code and the PTE, asks [`decide_fault`], and carries out
//! the answer (allocate, copy, remap, or kill with the reason's text).
//!
//! ```text
//!  addr >= TASK_SIZE ───────────────────────────────> Kill(KernelAddress)
//!  no area ── below a stack, within its limit ──────> StackGrow (then zero)
//!          └─ otherwise ────────────────────────────> Kill(NoArea / NullPage /
//!                                                          StackLimit)
//!  area ── access not allowed by vm_flags ──────────> Kill(WriteToReadOnly /
//!                                                          ExecNotAllowed / NoAccess)
//!       └─ PTE none ── bss/heap/stack/anon ─────────> DemandZero
//!       └─ PTE present read-only, write ── count > 1 > CowCopy
//!                                       └─ count 1 ─> CowReuse
//!       └─ PTE already allows the access ───────────> Spurious
//! ```
//!
//! Faults the kernel takes on user addresses (`copy_from_user` and
//! friends) go through the same decision: a `Kill` there means the
//! exception fixup returns `-EFAULT` instead.
//!
//! # References
//! - Linux: `mm/memory.c` (`handle_pte_fault`, `do_anonymous_page`,
//!   `do_wp_page`, `wp_page_reuse`, `wp_page_copy`), `arch/x86/mm/fault.c`
//!   (`do_user_addr_fault`, `access_error`, `bad_area`), `mm/mmap.c`
//!   (`expand_stack`).
//! - Intel SDM Vol. 3A §4.7 (the error code, [`PageFaultError`]).

#![forbid(unsafe_code)]

use super::mmap::{MMAP_MIN_ADDR, MmAreas, TASK_SIZE, VmFlags, VmKind};
use crate::addr::VirtAddr;
use crate::trap::PageFaultError;
use core::fmt;

#[cfg(test)]
mod tests;

/// What the faulting address's PTE holds, as the handler read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteState {
    /// No PTE, or a PTE without the present bit (or no page table).
    None,
    /// A present PTE; `writable` is its R/W bit.
    Present {
        /// The R/W bit.
        writable: bool,
    },
}

/// What the fault handler does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultDecision {
    /// Allocate a zeroed page and map it with the area's rights (Linux
    /// `do_anonymous_page()`): a first touch of bss, heap, stack or an
    /// anonymous map.
    DemandZero,
    /// Grow the stack area down to `new_start` first
    /// ([`MmAreas::expand_stack`], which the decision checked), then as
    /// [`DemandZero`](Self::DemandZero).
    StackGrow {
        /// The stack's new first page.
        new_start: VirtAddr,
    },
    /// A write to a page shared copy-on-write with another mapping (map
    /// count above 1): copy it into a new page, map the copy writable, and
    /// drop one map count of the old page (Linux `wp_page_copy()`).
    CowCopy,
    /// A write to a read-only PTE of a writable private area whose page has
    /// no other mapping (map count 1): make the PTE writable, no copy
    /// (Linux `wp_page_reuse()`).
    CowReuse,
    /// The PTE already allows the access (a stale TLB entry, or the fault
    /// was resolved meanwhile): flush the page's TLB entry and return
    /// (Linux `spurious_kernel_fault()` and the `pte_same` retry).
    Spurious,
    /// The access is not allowed: kill the process (Linux `bad_area()`,
    /// `SIGSEGV`), or `-EFAULT` for a kernel access with a fixup.
    Kill(KillReason),
}

/// Why a fault kills the process; displays as the kill report's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// No area contains the address, and no stack lies just above it.
    NoArea,
    /// No area, and the address is in the null page (below
    /// `MMAP_MIN_ADDR`): a null pointer dereference.
    NullPage,
    /// Below a stack, but growing it there would pass its limit, its guard
    /// gap or `MMAP_MIN_ADDR`.
    StackLimit,
    /// A write to an area without `VM_WRITE` (text, or `mprotect`ed).
    WriteToReadOnly,
    /// An instruction fetch from an area without `VM_EXEC` (the CPU
    /// reports fetches only with NX, under PAE).
    ExecNotAllowed,
    /// A read of an area without any access (`PROT_NONE`).
    NoAccess,
    /// A user access at or above `TASK_SIZE`: the kernel's part.
    KernelAddress,
    /// A reserved bit set in a paging-structure entry: corrupt page tables.
    ReservedBit,
    /// A protection fault that the areas and PTE do not explain, with what
    /// was found.
    Unexpected(&'static str),
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillReason::NoArea => f.write_str("no area (address not mapped)"),
            KillReason::NullPage => f.write_str("null pointer dereference (no area)"),
            KillReason::StackLimit => f.write_str("stack cannot grow there (limit or guard gap)"),
            KillReason::WriteToReadOnly => f.write_str("write to a read-only area"),
            KillReason::ExecNotAllowed => {
                f.write_str("instruction fetch from a non-executable area")
            }
            KillReason::NoAccess => f.write_str("access to an area without access rights"),
            KillReason::KernelAddress => f.write_str("user access to a kernel address"),
            KillReason::ReservedBit => f.write_str("reserved bit set in a page-table entry"),
            KillReason::Unexpected(what) => write!(f, "unexpected protection fault ({what})"),
        }
    }
}

/// Decides what a page fault at `addr` means (Linux `do_user_addr_fault()`
/// then `handle_mm_fault()`).
///
/// `mm` is the faulting process's areas; `err` the #PF error code; `pte`
/// the faulting address's PTE as read now; `mapcount` the map count of the
/// page that PTE maps ([`super::page::Page::mapcount`], ignored without a
/// present PTE).
///
/// The order of the tests, each first match wins: a reserved bit; an
/// address at or above [`TASK_SIZE`] (the caller handles kernel-space
/// faults, such as vmalloc's lazy PDE sync, before asking); no area (stack
/// growth, or a kill); the area's rights (Linux `access_error()`: a write
/// needs `VM_WRITE`, a fetch `VM_EXEC`, a read any right; a read that is
/// a protection violation is never allowed); then the PTE.
pub fn decide_fault(
    mm: &MmAreas,
    addr: VirtAddr,
    err: PageFaultError,
    pte: PteState,
    mapcount: u32,
) -> FaultDecision {
    use FaultDecision::*;
    if err.reserved_bit() {
        return Kill(KillReason::ReservedBit);
    }
    if addr.0 >= TASK_SIZE {
        return Kill(KillReason::KernelAddress);
    }
    let (area, grow) = match mm.find_vma(addr) {
        Some(a) => (a, None),
        None => match mm.find_vma_from(addr) {
            Some(a) if a.flags.contains(VmFlags::GROWSDOWN) => match mm.check_expand_stack(addr) {
                Ok(new_start) => (a, Some(new_start)),
                Err(_) => return Kill(KillReason::StackLimit),
            },
            _ if addr.0 < MMAP_MIN_ADDR => return Kill(KillReason::NullPage),
            _ => return Kill(KillReason::NoArea),
        },
    };
    if let Some(reason) = access_error(area.flags, err) {
        return Kill(reason);
    }
    if let Some(new_start) = grow {
        return StackGrow { new_start };
    }
    match pte {
        PteState::None if area.kind.is_demand_zero() => DemandZero,
        PteState::None => Kill(KillReason::Unexpected(match area.kind {
            VmKind::Text => "no page in the text",
            _ => "no page in the data",
        })),
        PteState::Present { writable: false } if err.write() => match mapcount {
            0 => Kill(KillReason::Unexpected("mapped page with map count 0")),
            1 => CowReuse,
            _ => CowCopy,
        },
        // The PTE allows the access now: a read or fetch of a present page,
        // a write to a writable one. If the CPU said "present" for it, the
        // page was not readable then and is now (a stale TLB entry): the
        // same answer, unless the CPU reported a read protection violation
        // on a page that is present and readable, which paging cannot do.
        PteState::Present { .. } if err.present() && !err.write() && !err.instruction_fetch() => {
            Kill(KillReason::Unexpected(
                "read protection fault on a present page",
            ))
        }
        PteState::Present { .. } => Spurious,
    }
}

/// Whether `flags` forbid the access (Linux x86 `access_error()`), and why.
fn access_error(flags: VmFlags, err: PageFaultError) -> Option<KillReason> {
    if err.instruction_fetch() {
        return (!flags.contains(VmFlags::EXEC)).then_some(KillReason::ExecNotAllowed);
    }
    if err.write() {
        return (!flags.contains(VmFlags::WRITE)).then_some(KillReason::WriteToReadOnly);
    }
    flags.prot().is_empty().then_some(KillReason::NoAccess)
}
