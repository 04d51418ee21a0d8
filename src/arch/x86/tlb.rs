//! TLB invalidation: `invlpg` for one page where the CPU has it, a CR3
//! reload where it does not.
//!
//! `invlpg` is "not supported on IA-32 processors earlier than the Intel486";
//! on a 386 the only way to drop a stale translation is to reload CR3, which
//! flushes every non-global entry (this kernel never sets the global bit, so
//! that is every entry). Linux i386 made the same choice at run time
//! (`cpu_has_invlpg`, `boot_cpu_data.x86 > 3`).
//!
//! The method is chosen once, by [`init`], from the CPU and `tlb=`; until
//! then the CR3 reload, which works everywhere, is used.
//!
//! # References
//! - Intel SDM Vol. 3A, §4.10.4 "Invalidation of TLBs and Paging-Structure
//!   Caches"; Vol. 2A "INVLPG".

use crate::addr::VirtAddr;
use crate::cmdline::TlbMode;
use crate::cpu_info::CpuInfo;
use crate::mm::paging::TlbFlusher;
use portable_atomic::{AtomicBool, AtomicU32, Ordering};

static USE_INVLPG: AtomicBool = AtomicBool::new(false);
static NR_INVLPG: AtomicU32 = AtomicU32::new(0);
static NR_CR3_RELOAD: AtomicU32 = AtomicU32::new(0);

/// The method chosen by [`init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMethod {
    /// `invlpg`, one page at a time.
    Invlpg,
    /// A CR3 reload, the whole TLB.
    Cr3Reload,
}

/// Why [`init`] chose what it chose, for the boot log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    /// `tlb=auto` and the CPU has `invlpg` (or not).
    Auto,
    /// Forced by `tlb=invlpg` or `tlb=cr3`.
    Forced,
    /// `tlb=invlpg` on a CPU without `invlpg`: ignored.
    ForcedButUnsupported,
}

/// Chooses the flush method. `tlb=invlpg` on a 386 would fault (#UD), so it
/// falls back to CR3 reloads and says so.
pub fn init(cpu: &CpuInfo, mode: TlbMode) -> (FlushMethod, FlushReason) {
    let (invlpg, reason) = match mode {
        TlbMode::Auto => (cpu.has_invlpg(), FlushReason::Auto),
        TlbMode::Cr3 => (false, FlushReason::Forced),
        TlbMode::Invlpg if cpu.has_invlpg() => (true, FlushReason::Forced),
        TlbMode::Invlpg => (false, FlushReason::ForcedButUnsupported),
    };
    USE_INVLPG.store(invlpg, Ordering::Relaxed);
    let method = if invlpg {
        FlushMethod::Invlpg
    } else {
        FlushMethod::Cr3Reload
    };
    (method, reason)
}

/// Whether [`flush_tlb_one`] uses `invlpg` (else it reloads CR3).
pub fn uses_invlpg() -> bool {
    USE_INVLPG.load(Ordering::Relaxed)
}

/// Drops any cached translation of the page holding `va`.
pub fn flush_tlb_one(va: VirtAddr) {
    if USE_INVLPG.load(Ordering::Relaxed) {
        NR_INVLPG.fetch_add(1, Ordering::Relaxed);
        // SAFETY: invlpg only invalidates a TLB entry; the CPU has it (init
        // checked). It cannot make memory unsafe.
        unsafe { x86::tlb::flush(va.0 as usize) };
    } else {
        flush_tlb_all();
    }
}

/// Drops every (non-global) cached translation by reloading CR3 with its
/// current value.
pub fn flush_tlb_all() {
    NR_CR3_RELOAD.fetch_add(1, Ordering::Relaxed);
    // SAFETY: writing back the CR3 value just read keeps the same page
    // directory; the only effect is the TLB flush.
    unsafe { x86::controlregs::cr3_write(x86::controlregs::cr3()) };
}

/// Flushes so far: `(invlpg, CR3 reloads)`.
pub fn flush_counts() -> (u32, u32) {
    (
        NR_INVLPG.load(Ordering::Relaxed),
        NR_CR3_RELOAD.load(Ordering::Relaxed),
    )
}

/// The CPU's TLB as the page-table code's [`TlbFlusher`], flushed as
/// [`init`] chose.
pub struct ArchTlb;

impl TlbFlusher for ArchTlb {
    fn flush_page(&mut self, va: VirtAddr) {
        flush_tlb_one(va);
    }

    fn flush_all(&mut self) {
        flush_tlb_all();
    }

    fn has_invlpg(&self) -> bool {
        uses_invlpg()
    }
}
