//! Atomics without `cmpxchg`: the critical section behind `portable-atomic`.
//!
//! The 386 has no compare-and-swap (`cmpxchg` arrived with the 486, `xadd`
//! too), so the kernel target says `"atomic-cas": false` and Rust's `core`
//! offers atomic loads and stores only. Read-modify-write operations (the
//! `spin` locks, counters) come from `portable-atomic`, which runs them inside
//! a `critical-section`: on this single-CPU kernel, a section with interrupts
//! disabled is atomic with respect to everything else that can run.
//!
//! Linux i386 did the same for `cmpxchg` on a 386 (`cmpxchg_386()` with
//! interrupts off, `CONFIG_X86_CMPXCHG`).

/// The single-CPU critical section: save EFLAGS, `cli`; restore IF after.
struct InterruptsOff;
critical_section::set_impl!(InterruptsOff);

/// EFLAGS.IF, interrupt enable (bit 9).
const EFLAGS_IF: u32 = 1 << 9;

// SAFETY: with one CPU and interrupts disabled, nothing else runs until
// `release`, which restores the interrupt flag saved by the matching
// `acquire` (nested sections restore "disabled" and stay nested correctly).
unsafe impl critical_section::Impl for InterruptsOff {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        let eflags: u32;
        // SAFETY: reads EFLAGS through the stack (balanced) and clears IF.
        unsafe {
            core::arch::asm!("pushfd", "pop {}", "cli", out(reg) eflags, options(nomem));
        }
        eflags
    }

    unsafe fn release(eflags: critical_section::RawRestoreState) {
        if eflags & EFLAGS_IF != 0 {
            // SAFETY: interrupts were enabled when the section began.
            unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        }
    }
}
