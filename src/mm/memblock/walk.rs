//! Walking the free ranges, memory minus reserved (Linux
//! `__next_mem_range()`, `for_each_free_mem_range()`), and the region
//! queries (Linux `memblock_is_region_reserved()`,
//! `memblock_is_region_memory()`).
//!
//! ```text
//!  memory   : [0x1000 ............ 0x9f000)   [0x100000 ............ 0x800000)
//!  reserved :        [0x2000,0x3000)          [0x100000, 0x200000)
//!  free     : [0x1000,0x2000) [0x3000,0x9f000)          [0x200000, 0x800000)
//! ```
//!
//! The allocation search (`allocate.rs`) walks the same ranges, with up to
//! two more ranges cut out ([`Exclude`]): growth must not place a new region
//! array inside the range being edited.

use super::Memblock;
use crate::addr::PhysAddr;
use core::ops::ControlFlow;

/// Up to two half-open ranges `(start, end)` a search must avoid; an empty
/// pair (`start >= end`) is an unused entry.
pub(super) type Exclude = [(PhysAddr, PhysAddr); 2];

/// No range excluded.
pub(super) const NO_EXCLUDE: Exclude = [(PhysAddr(0), PhysAddr(0)); 2];

impl Memblock {
    /// Calls `f(start, end)` for each free range `[start, end)`, ascending,
    /// with the `exclude` ranges cut out as well; `f` can stop the walk
    /// (Linux: `__next_mem_range()`).
    ///
    /// Basic algorithm: both arrays are sorted, so one pass suffices. For
    /// each memory region, step through the reserved regions that overlap
    /// it: the gap before each is free, and the cursor jumps to its end.
    /// Whatever is left of the memory region after the last one is free. A
    /// reserved region can span several memory regions, so the reserved
    /// index only skips regions that end before the current memory region.
    pub(super) fn walk_free(
        &self,
        exclude: Exclude,
        mut f: impl FnMut(PhysAddr, PhysAddr) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let reserved = self.reserved.regions();
        let mut first = 0;
        for m in self.memory.regions() {
            let (mut cur, mend) = (m.base, m.end());
            while first < reserved.len() && reserved[first].end() <= cur {
                first += 1;
            }
            for r in reserved[first..].iter().take_while(|r| r.base < mend) {
                if r.base > cur {
                    subtract_excluded(cur, r.base, &exclude, &mut f)?;
                }
                cur = cur.max(r.end());
            }
            if cur < mend {
                subtract_excluded(cur, mend, &exclude, &mut f)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Calls `f(start, end)` for each free range `[start, end)` (in memory,
    /// not reserved), in ascending order. Ranges are maximal: two never
    /// touch (Linux: `for_each_free_mem_range()`).
    pub fn for_each_free_range(&self, mut f: impl FnMut(PhysAddr, PhysAddr)) {
        let _ = self.walk_free(NO_EXCLUDE, |start, end| {
            f(start, end);
            ControlFlow::Continue(())
        });
    }

    /// Whether any byte of `[base, base + size)` is reserved; `false` for
    /// `size == 0` (Linux: `memblock_is_region_reserved()`). A range running
    /// past `u64::MAX` is cut there, as Linux's `memblock_cap_size()` does.
    pub fn is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        if size == 0 {
            return false;
        }
        let end = PhysAddr(base.0.saturating_add(size));
        let r = self.reserved.regions();
        let i = r.partition_point(|x| x.end() <= base);
        i < r.len() && r[i].base < end
    }

    /// Whether all of `[base, base + size)` is memory (Linux:
    /// `memblock_is_region_memory()`). Memory regions are merged, so the
    /// range must lie inside the single region containing `base`; for
    /// `size == 0` this asks whether `base` is memory.
    pub fn is_region_memory(&self, base: PhysAddr, size: u64) -> bool {
        let end = PhysAddr(base.0.saturating_add(size));
        let m = self.memory.regions();
        let i = m.partition_point(|x| x.end() <= base);
        i < m.len() && m[i].base <= base && m[i].end() >= end
    }
}

/// Calls `f` for the parts of `[start, end)` outside the `exclude` ranges,
/// in ascending order.
fn subtract_excluded(
    start: PhysAddr,
    end: PhysAddr,
    exclude: &Exclude,
    f: &mut impl FnMut(PhysAddr, PhysAddr) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut ex = *exclude;
    if ex[1].0 < ex[0].0 {
        ex.swap(0, 1);
    }
    let mut cur = start;
    for (xs, xe) in ex {
        if xs >= xe || xe <= cur || xs >= end {
            continue;
        }
        if xs > cur {
            f(cur, xs)?;
        }
        cur = xe;
        if cur >= end {
            return ControlFlow::Continue(());
        }
    }
    if cur < end {
        f(cur, end)?;
    }
    ControlFlow::Continue(())
}
