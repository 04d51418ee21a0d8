//! TLB invalidation, hardware half: `invlpg` for one page where the CPU has
//! it, a CR3 reload where it does not, as `crate::mm::tlb` decides.
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
use crate::mm::tlb::choose_flush_method;
use portable_atomic::{AtomicBool, AtomicU32, Ordering};

static USE_INVLPG: AtomicBool = AtomicBool::new(false);
/// Set once CR4.PGE is on: a full flush must then toggle it.
static GLOBAL_PAGES: AtomicBool = AtomicBool::new(false);
static NR_INVLPG: AtomicU32 = AtomicU32::new(0);
static NR_CR3_RELOAD: AtomicU32 = AtomicU32::new(0);
static NR_PGE_TOGGLE: AtomicU32 = AtomicU32::new(0);

pub use crate::mm::tlb::{FlushMethod, FlushReason};

/// Chooses the flush method (`crate::mm::tlb::choose_flush_method`) and
/// uses it from now on.
pub fn init(cpu: &CpuInfo, mode: TlbMode) -> (FlushMethod, FlushReason) {
    let (method, reason) = choose_flush_method(cpu, mode);
    USE_INVLPG.store(method == FlushMethod::Invlpg, Ordering::Relaxed);
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

/// Records that CR4.PGE is on (`paging::paging_init`): from now on
/// [`flush_tlb_all`] toggles it, since a CR3 reload keeps global entries.
pub fn set_global_pages() {
    GLOBAL_PAGES.store(true, Ordering::Relaxed);
}

/// Whether kernel mappings are global (CR4.PGE on).
pub fn global_pages() -> bool {
    GLOBAL_PAGES.load(Ordering::Relaxed)
}

/// Drops every cached translation: with global pages, by turning CR4.PGE
/// off and on again (Linux `__flush_tlb_global`; a change of PGE flushes
/// global entries too, Intel SDM Vol. 3A §4.10.4.1); else by reloading CR3.
pub fn flush_tlb_all() {
    if global_pages() {
        NR_PGE_TOGGLE.fetch_add(1, Ordering::Relaxed);
        let cr4 = super::cpu::read_cr4();
        // SAFETY: PGE was on (set_global_pages) and comes back on; in
        // between the kernel runs on the same tables without global
        // translations, which is always valid.
        unsafe {
            super::cpu::write_cr4(cr4 & !super::cpu::CR4_PGE);
            super::cpu::write_cr4(cr4);
        }
    } else {
        flush_tlb_nonglobal();
    }
}

/// Reloads CR3 with its current value: drops every non-global translation,
/// and with CR4.PGE on leaves the global ones (the TLB self-test's lesson).
pub fn flush_tlb_nonglobal() {
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

/// Full flushes by CR4.PGE toggle so far.
pub fn global_flush_count() -> u32 {
    NR_PGE_TOGGLE.load(Ordering::Relaxed)
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
