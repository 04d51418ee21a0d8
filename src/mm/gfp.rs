//! GFP ("get free pages") flags: what an allocation request may use and how
//! hard it may try (Linux `include/linux/gfp_types.h`, `include/linux/gfp.h`).
//!
//! Where it sits: every call into the buddy allocator ([`super::buddy`]) and
//! later kmalloc takes a [`Gfp`]. Two things are decided from it here: the
//! highest zone the request may use ([`gfp_zone`]) and, in the allocator,
//! whether it may dip below the `min` watermark ([`Gfp::HIGH`]).
//!
//! Bit values are Linux's (v6.x), so a mode prints as Linux prints it:
//! `mode:0xcc0(GFP_KERNEL)`. The reclaim and I/O bits mean nothing here (there
//! is no reclaim); they are kept so that `GFP_KERNEL` and `GFP_ATOMIC` differ
//! the way they do in Linux ("may sleep" vs "may not").
//!
//! # References
//! - Linux: `include/linux/gfp_types.h` (flag bits and combinations),
//!   `include/linux/gfp.h` (`gfp_zone()`), `include/trace/events/mmflags.h`
//!   (`%pGg` names).

#![forbid(unsafe_code)]

use super::zone::ZoneType;
use bitflags::bitflags;
use core::fmt;

bitflags! {
    /// Allocation flags (Linux `gfp_t`). Rust names drop Linux's leading
    /// `__GFP_`; each flag's doc gives the Linux name.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Gfp: u32 {
        /// `__GFP_DMA` (0x01): only ZONE_DMA, pfn below 4096 (16 MiB).
        const DMA = 0x01;
        /// `__GFP_HIGHMEM` (0x02): HighMem is acceptable (the caller maps the
        /// page itself).
        const HIGHMEM = 0x02;
        /// `__GFP_HIGH` (0x20): high priority, may use half of the `min`
        /// reserve (what makes `GFP_ATOMIC` succeed when `GFP_KERNEL` fails).
        const HIGH = 0x20;
        /// `__GFP_IO` (0x40): may start physical I/O (no effect here).
        const IO = 0x40;
        /// `__GFP_FS` (0x80): may call into the filesystem (no effect here).
        const FS = 0x80;
        /// `__GFP_ZERO` (0x100): return zeroed pages.
        const ZERO = 0x100;
        /// `__GFP_DIRECT_RECLAIM` (0x400): may sleep to reclaim (no effect
        /// here).
        const DIRECT_RECLAIM = 0x400;
        /// `__GFP_KSWAPD_RECLAIM` (0x800): may wake kswapd (no effect here).
        const KSWAPD_RECLAIM = 0x800;
        /// `__GFP_NOWARN` (0x2000): do not report a failure.
        const NOWARN = 0x2000;
    }
}

/// `__GFP_RECLAIM` (0xc00): both reclaim bits.
pub const GFP_RECLAIM: Gfp = Gfp::DIRECT_RECLAIM.union(Gfp::KSWAPD_RECLAIM);

/// `GFP_KERNEL` (0xcc0): ordinary kernel allocation, lowmem, may sleep.
pub const GFP_KERNEL: Gfp = GFP_RECLAIM.union(Gfp::IO).union(Gfp::FS);

/// `GFP_ATOMIC` (0x820 = `__GFP_HIGH | __GFP_KSWAPD_RECLAIM`): may not sleep,
/// may dip below the `min` watermark.
pub const GFP_ATOMIC: Gfp = Gfp::HIGH.union(Gfp::KSWAPD_RECLAIM);

/// `GFP_KERNEL | __GFP_DMA` (0xcc1): a kernel allocation from ZONE_DMA. (In
/// Linux `GFP_DMA` is `__GFP_DMA` alone and call sites write `GFP_KERNEL |
/// GFP_DMA`; this constant is that combination.)
pub const GFP_DMA: Gfp = GFP_KERNEL.union(Gfp::DMA);

/// `GFP_KERNEL | __GFP_HIGHMEM` (0xcc2): a page for user space, HighMem
/// preferred. (Linux's `GFP_HIGHUSER` also has `__GFP_HARDWALL`, a cpuset
/// bit with no meaning here.)
pub const GFP_HIGHUSER: Gfp = GFP_KERNEL.union(Gfp::HIGHMEM);

/// The zone modifiers, `__GFP_DMA | __GFP_HIGHMEM` (Linux `GFP_ZONEMASK`,
/// without `__GFP_DMA32` and `__GFP_MOVABLE`): bits 0 and 1, so `gfp &
/// GFP_ZONEMASK` is a table index from 0 to 3, as Linux's
/// `GFP_ZONE_TABLE` uses it.
pub const GFP_ZONEMASK: Gfp = Gfp::DMA.union(Gfp::HIGHMEM);

const _: () = assert!(GFP_ZONEMASK.bits() == 0b11);

/// The highest zone a request may use (Linux `gfp_zone()`); the allocator
/// falls back from it to the lower zones.
///
/// | `__GFP_DMA` | `__GFP_HIGHMEM` | zone      | fallback order           |
/// |:-----------:|:---------------:|-----------|--------------------------|
/// | 0           | 0               | `Normal`  | Normal → DMA             |
/// | 1           | 0               | `Dma`     | DMA only                 |
/// | 0           | 1               | `HighMem` | HighMem → Normal → DMA   |
/// | 1           | 1               | `Dma`     | DMA only (see below)     |
///
/// Linux treats DMA together with HIGHMEM as a bug (`GFP_ZONE_BAD`, a
/// `VM_BUG_ON`); here the stricter constraint wins, since a DMA page satisfies
/// both.
pub const fn gfp_zone(gfp: Gfp) -> ZoneType {
    if gfp.contains(Gfp::DMA) {
        ZoneType::Dma
    } else if gfp.contains(Gfp::HIGHMEM) {
        ZoneType::HighMem
    } else {
        ZoneType::Normal
    }
}

/// Names in Linux `%pGg` order: combinations first, then single flags.
const NAMES: [(Gfp, &str); 12] = [
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (Gfp::DMA, "GFP_DMA"),
    (Gfp::HIGHMEM, "__GFP_HIGHMEM"),
    (Gfp::HIGH, "__GFP_HIGH"),
    (Gfp::IO, "__GFP_IO"),
    (Gfp::FS, "__GFP_FS"),
    (Gfp::ZERO, "__GFP_ZERO"),
    (Gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (Gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (Gfp::NOWARN, "__GFP_NOWARN"),
];

/// The flag names joined by `|`, as Linux `%pGg` prints them:
/// `GFP_KERNEL|__GFP_ZERO`, `GFP_KERNEL|GFP_DMA` (Linux names bit 0x01
/// `GFP_DMA`), empty for no flags.
impl fmt::Display for Gfp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = *self;
        let mut sep = "";
        for (flags, name) in NAMES {
            if rest.contains(flags) {
                write!(f, "{sep}{name}")?;
                sep = "|";
                rest.remove(flags);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_have_linux_values() {
        assert_eq!(GFP_KERNEL.bits(), 0xcc0);
        assert_eq!(GFP_ATOMIC.bits(), 0x820);
        assert_eq!(GFP_DMA.bits(), 0xcc1);
        assert_eq!(GFP_HIGHUSER.bits(), 0xcc2);
        assert_eq!(Gfp::ZERO.bits(), 0x100);
        assert_eq!(Gfp::NOWARN.bits(), 0x2000);
    }

    #[test]
    fn gfp_zone_follows_the_truth_table() {
        let table = [
            (Gfp::empty(), ZoneType::Normal),
            (Gfp::DMA, ZoneType::Dma),
            (Gfp::HIGHMEM, ZoneType::HighMem),
            (Gfp::DMA | Gfp::HIGHMEM, ZoneType::Dma),
        ];
        for (gfp, zone) in table {
            assert_eq!(gfp_zone(gfp), zone, "{gfp:?}");
            // Other bits never change the zone.
            assert_eq!(gfp_zone(gfp | GFP_ATOMIC | Gfp::ZERO), zone);
        }
        assert_eq!(gfp_zone(GFP_KERNEL), ZoneType::Normal);
        assert_eq!(gfp_zone(GFP_DMA), ZoneType::Dma);
        assert_eq!(gfp_zone(GFP_HIGHUSER), ZoneType::HighMem);
        assert_eq!(gfp_zone(GFP_ATOMIC), ZoneType::Normal);
    }

    #[test]
    fn names_print_like_linux() {
        assert_eq!(GFP_KERNEL.to_string(), "GFP_KERNEL");
        assert_eq!(
            (GFP_KERNEL | Gfp::ZERO).to_string(),
            "GFP_KERNEL|__GFP_ZERO"
        );
        assert_eq!(GFP_DMA.to_string(), "GFP_KERNEL|GFP_DMA");
        assert_eq!(GFP_HIGHUSER.to_string(), "GFP_HIGHUSER");
        assert_eq!(
            (GFP_ATOMIC | Gfp::NOWARN).to_string(),
            "GFP_ATOMIC|__GFP_NOWARN"
        );
        assert_eq!(Gfp::HIGH.to_string(), "__GFP_HIGH");
        assert_eq!(Gfp::empty().to_string(), "");
    }
}
