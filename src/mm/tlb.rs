//! The TLB invalidation policy: which instruction drops a stale
//! translation on this CPU, decided from the CPU and `tlb=` (pure; the
//! instructions themselves are in `arch::x86::tlb`).
//!
//! `invlpg` is "not supported on IA-32 processors earlier than the Intel486";
//! on a 386 the only way to drop a stale translation is to reload CR3, which
//! flushes every non-global entry (this kernel never sets the global bit, so
//! that is every entry). Linux i386 made the same choice at run time
//! (`cpu_has_invlpg`, `boot_cpu_data.x86 > 3`).
//!
//! # References
//! - Intel SDM Vol. 3A, §4.10.4 "Invalidation of TLBs and Paging-Structure
//!   Caches"; Vol. 2A "INVLPG".

use crate::cmdline::TlbMode;
use crate::cpu_info::CpuInfo;

/// How a single page's translation is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMethod {
    /// `invlpg`, one page at a time.
    Invlpg,
    /// A CR3 reload, the whole TLB.
    Cr3Reload,
}

/// Why [`choose_flush_method`] chose what it chose, for the boot log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    /// `tlb=auto` and the CPU has `invlpg` (or not).
    Auto,
    /// Forced by `tlb=invlpg` or `tlb=cr3`.
    Forced,
    /// `tlb=invlpg` on a CPU without `invlpg`: ignored.
    ForcedButUnsupported,
}

/// The flush method for `cpu` under `tlb=mode`. `tlb=invlpg` on a 386 would
/// fault (#UD), so it falls back to CR3 reloads, with the reason saying so.
pub fn choose_flush_method(cpu: &CpuInfo, mode: TlbMode) -> (FlushMethod, FlushReason) {
    let (invlpg, reason) = match mode {
        TlbMode::Auto => (cpu.has_invlpg(), FlushReason::Auto),
        TlbMode::Cr3 => (false, FlushReason::Forced),
        TlbMode::Invlpg if cpu.has_invlpg() => (true, FlushReason::Forced),
        TlbMode::Invlpg => (false, FlushReason::ForcedButUnsupported),
    };
    let method = if invlpg {
        FlushMethod::Invlpg
    } else {
        FlushMethod::Cr3Reload
    };
    (method, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlushMethod::{Cr3Reload, Invlpg};
    use FlushReason::{Auto, Forced, ForcedButUnsupported};

    #[test]
    fn every_cpu_and_mode() {
        let (i386, i486) = (CpuInfo::I386, CpuInfo::I486_NO_CPUID);
        let cases = [
            (&i386, TlbMode::Auto, (Cr3Reload, Auto)),
            (&i386, TlbMode::Cr3, (Cr3Reload, Forced)),
            (&i386, TlbMode::Invlpg, (Cr3Reload, ForcedButUnsupported)),
            (&i486, TlbMode::Auto, (Invlpg, Auto)),
            (&i486, TlbMode::Cr3, (Cr3Reload, Forced)),
            (&i486, TlbMode::Invlpg, (Invlpg, Forced)),
        ];
        for (cpu, mode, want) in cases {
            assert_eq!(choose_flush_method(cpu, mode), want, "{mode:?} on {cpu}");
        }
    }
}
