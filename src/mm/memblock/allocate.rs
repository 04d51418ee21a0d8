//! Allocation: find free memory that fits, then reserve it (Linux
//! `memblock_find_in_range_node()`, `memblock_phys_alloc_range()`,
//! `memblock_alloc_try_nid()`), and the two settings that steer the search:
//! the direction (top-down, the default, or bottom-up) and the current
//! limit.
//!
//! ```text
//!   window = [max(min, PAGE_SIZE), min(max, current_limit))
//!   free ranges clipped to the window:   [s0, e0)      [s1, e1)      [s2, e2)
//!   bottom-up: first range with align_up(s, align) + size <= e   -> lowest fit
//!   top-down : last range with align_down(e - size, align) >= s  -> highest fit
//! ```
//!
//! An allocation is only a reservation: there is no header and no free
//! list, and freeing it is [`Memblock::free`].

use super::walk::{Exclude, NO_EXCLUDE};
use super::{Memblock, MemblockError, PAGE_BYTES, PhysMem};
use crate::addr::PhysAddr;
use crate::mm::layout::align_down;
use core::ops::ControlFlow;

impl Memblock {
    /// Makes allocations search upwards from the low end (`true`) or
    /// downwards from the top (`false`, the default) (Linux:
    /// `memblock_set_bottom_up()`).
    pub fn set_bottom_up(&mut self, enable: bool) {
        self.bottom_up = enable;
    }

    /// Whether allocations search bottom-up (Linux: `memblock_bottom_up()`).
    pub fn bottom_up(&self) -> bool {
        self.bottom_up
    }

    /// Allocations (including bigger region arrays) never return memory at
    /// or above `limit` (Linux: `memblock_set_current_limit()`). The kernel
    /// sets it to the end of the physical memory it has mapped.
    pub fn set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit;
    }

    /// The allocation limit (Linux: `memblock_get_current_limit()`).
    pub fn current_limit(&self) -> PhysAddr {
        self.current_limit
    }

    /// The allocation search behind [`find_in_range`](Self::find_in_range),
    /// also avoiding `exclude`.
    pub(super) fn find(
        &self,
        size: u64,
        align: u64,
        min: PhysAddr,
        max: PhysAddr,
        exclude: Exclude,
    ) -> Option<PhysAddr> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        // Linux: "avoid allocating the first page".
        let start = min.0.max(PAGE_BYTES);
        let end = max.0.min(self.current_limit.0);
        if start >= end {
            return None;
        }
        let mut found = None;
        let _ = self.walk_free(exclude, |s, e| {
            let (s, e) = (s.0.clamp(start, end), e.0.clamp(start, end));
            if self.bottom_up {
                if let Some(cand) = align_up_checked(s, align)
                    && cand < e
                    && e - cand >= size
                {
                    found = Some(PhysAddr(cand));
                    return ControlFlow::Break(());
                }
            } else if let Some(last_start) = e.checked_sub(size) {
                let cand = align_down(last_start, align);
                if cand >= s {
                    // Ranges come in ascending order, so the last fit wins.
                    found = Some(PhysAddr(cand));
                }
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// Finds a free `[start, start + size)` with `start` aligned to `align`,
    /// inside `[min, min(max, current_limit))` and in the free memory, but
    /// does not reserve it (Linux: `memblock_find_in_range_node()`).
    ///
    /// Top-down (the default) returns the highest such `start`, bottom-up
    /// the lowest. In each free range, clipped to the window, the top-down
    /// candidate is `align_down(end - size, align)` and the bottom-up one
    /// `align_up(start, align)`; a candidate that falls outside its range
    /// means the range is too small. Like Linux, the search never returns
    /// the first page: the window starts at `PAGE_SIZE` at the earliest.
    ///
    /// Example: memory `[0x0, 0x9f000)` and `[0x100000, 0x800000)`, reserved
    /// `[0x700000, 0x800000)`. Top-down, 0x3000 bytes aligned to 0x2000:
    /// the last free range ends at 0x700000, `align_down(0x6fd000, 0x2000)
    /// = 0x6fc000`. Bottom-up: the first free range is clipped to `[0x1000,
    /// 0x9f000)`, `align_up(0x1000, 0x2000) = 0x2000`.
    ///
    /// Returns `None` when nothing fits, when `size` is 0, or when `align` is
    /// not a power of two.
    pub fn find_in_range(
        &self,
        size: u64,
        align: u64,
        min: PhysAddr,
        max: PhysAddr,
    ) -> Option<PhysAddr> {
        self.find(size, align, min, max, NO_EXCLUDE)
    }

    /// Finds a free range as [`find_in_range`](Self::find_in_range) does and
    /// reserves it; the memory is not zeroed (Linux:
    /// `memblock_phys_alloc_range()`).
    ///
    /// # Errors
    /// [`MemblockError::ZeroSize`] for `size == 0`,
    /// [`MemblockError::BadAlign`] if `align` is not a power of two (Linux
    /// warns and uses `SMP_CACHE_BYTES` for 0), [`MemblockError::NoSpace`]
    /// if nothing fits, [`MemblockError::ArrayFull`] if the reservation
    /// needs a bigger reserved array and none fits. Nothing changes on error.
    pub fn phys_alloc_range(
        &mut self,
        size: u64,
        align: u64,
        min: PhysAddr,
        max: PhysAddr,
        mem: &mut impl PhysMem,
    ) -> Result<PhysAddr, MemblockError> {
        if size == 0 {
            return Err(MemblockError::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(MemblockError::BadAlign(align));
        }
        let found = self
            .find(size, align, min, max, NO_EXCLUDE)
            .ok_or(MemblockError::NoSpace {
                size,
                align,
                min,
                max,
            })?;
        self.reserve(found, size, mem)?;
        Ok(found)
    }

    /// [`phys_alloc_range`](Self::phys_alloc_range), then zeroes the memory
    /// through `mem` (Linux: `memblock_alloc_try_nid()`, which returns a
    /// virtual address; this one returns the physical address). Unlike
    /// Linux, which retries without `min` when the first search fails, the
    /// result always lies in `[min, max)`.
    ///
    /// # Errors
    /// As for [`phys_alloc_range`](Self::phys_alloc_range).
    pub fn alloc_range(
        &mut self,
        size: u64,
        align: u64,
        min: PhysAddr,
        max: PhysAddr,
        mem: &mut impl PhysMem,
    ) -> Result<PhysAddr, MemblockError> {
        let pa = self.phys_alloc_range(size, align, min, max, mem)?;
        mem.zero(pa, size);
        Ok(pa)
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two), or `None` on
/// overflow. `layout::align_up` panics instead; memblock must not.
pub(super) fn align_up_checked(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}
