//! Adding, removing and isolating ranges: the four public edits
//! ([`Memblock::add`], [`Memblock::remove`], [`Memblock::reserve`],
//! [`Memblock::free`]) and the two algorithms under them, Linux's
//! `memblock_add_range()` and `memblock_isolate_range()`.
//!
//! Every edit first asks how many slots it will need (`count_new`,
//! `splits_needed`), lets `grow.rs` make room, and only then edits: so an
//! edit that cannot get room fails before it has changed anything.
//!
//! ```text
//!  add [0x0, 0x5000) to  [0x1000,0x2000) [0x3000,0x4000)
//!    gaps inserted:  [0x0,0x1000)  [0x2000,0x3000)  [0x4000,0x5000)
//!    merged:         [0x0 ................................ 0x5000)
//!
//!  isolate [0x3000, 0x5000) in  [0x1000 ........................ 0x8000)
//!    split:                     [0x1000,0x3000)[0x3000,0x5000)[0x5000,0x8000)
//!    returns 1..2 (remove drops those, leaving a hole)
//! ```

use super::{Kind, MEMBLOCK_NONE, Memblock, MemblockError, MemblockType, PhysMem};
use crate::addr::PhysAddr;

impl MemblockType {
    /// New regions that adding `[base, end)` would insert: the parts of the
    /// range not covered by existing regions. This is the first pass of
    /// Linux's `memblock_add_range()`, which runs its insertion loop once
    /// without inserting to count, grows the array if needed, and then runs
    /// it again for real ([`add_range`](Self::add_range) below).
    pub(super) fn count_new(&self, base: PhysAddr, end: PhysAddr) -> usize {
        let mut base = base;
        let mut nr_new = 0;
        for r in self.regions().iter().take_while(|r| r.base < end) {
            if r.end() > base {
                if r.base > base {
                    nr_new += 1;
                }
                base = r.end().min(end);
            }
        }
        nr_new + usize::from(base < end)
    }

    /// Adds `[base, end)`; the caller guarantees room for
    /// [`count_new`](Self::count_new) more regions (Linux:
    /// `memblock_add_range()`, second pass).
    ///
    /// Basic algorithm: walk the regions in order, keeping `base` as the
    /// start of the part of the new range not yet accounted for. A region
    /// entirely below `base` is skipped; the first region at or above `end`
    /// stops the walk. A region that overlaps the rest of the range and
    /// starts above `base` leaves a gap `[base, region.base)`, which is
    /// inserted before it; then `base` jumps to the region's end. What is
    /// left of the range after the last region is inserted at the end. The
    /// result covers the union; `merge_regions()` then joins the inserted
    /// pieces with the regions they touch.
    ///
    /// Example: regions `[0x1000, 0x2000)`, `[0x3000, 0x4000)`; adding
    /// `[0x0, 0x5000)` inserts `[0x0, 0x1000)`, `[0x2000, 0x3000)` and
    /// `[0x4000, 0x5000)` (3 new regions), and merging leaves one region
    /// `[0x0, 0x5000)`.
    pub(super) fn add_range(&mut self, base: PhysAddr, end: PhysAddr, flags: u32) {
        let mut base = base;
        let mut start_rgn = None;
        let mut end_rgn = 0;
        let mut idx = 0;
        while idx < self.cnt {
            let r = self.regions[idx];
            if r.base >= end {
                break;
            }
            if r.end() > base {
                if r.base > base {
                    start_rgn.get_or_insert(idx);
                    self.insert_region(idx, base, r.base - base, flags);
                    idx += 1;
                    end_rgn = idx;
                }
                base = r.end().min(end);
            }
            idx += 1;
        }
        if base < end {
            start_rgn.get_or_insert(idx);
            self.insert_region(idx, base, end - base, flags);
            end_rgn = idx + 1;
        }
        if let Some(start_rgn) = start_rgn {
            self.merge_regions(start_rgn, end_rgn);
        }
    }

    /// Regions `isolate_range(base, end)` would have to split: those that
    /// contain `base` or `end` strictly inside. At most 2.
    pub(super) fn splits_needed(&self, base: PhysAddr, end: PhysAddr) -> usize {
        let strictly_inside = |addr: PhysAddr| {
            self.regions()
                .iter()
                .any(|r| r.base < addr && addr < r.end())
        };
        usize::from(strictly_inside(base)) + usize::from(strictly_inside(end))
    }

    /// Splits regions at `base` and `end` so that `[base, end)` is covered by
    /// whole regions, and returns their index range `start_rgn..end_rgn`
    /// (Linux: `memblock_isolate_range()`). The caller guarantees room for
    /// [`splits_needed`](Self::splits_needed) more regions.
    ///
    /// A region sticking out below `base` is cut at `base`: the lower part is
    /// inserted as a new region and the walk continues with the upper part.
    /// A region sticking out above `end` is cut at `end` and the walk redoes
    /// the lower part, which is now inside the range.
    ///
    /// Example: isolating `[0x3000, 0x5000)` from the region `[0x1000,
    /// 0x8000)` gives `[0x1000, 0x3000)`, `[0x3000, 0x5000)`, `[0x5000,
    /// 0x8000)` and returns `1..2`.
    pub(super) fn isolate_range(&mut self, base: PhysAddr, end: PhysAddr) -> (usize, usize) {
        let (mut start_rgn, mut end_rgn) = (0, 0);
        let mut idx = 0;
        while idx < self.cnt {
            let r = self.regions[idx];
            let (rbase, rend) = (r.base, r.end());
            if rbase >= end {
                break;
            }
            if rend <= base {
                idx += 1;
                continue;
            }
            if rbase < base {
                // Intersects from below: split off the bottom and go on with
                // the top half, which moves to idx + 1.
                self.regions[idx].base = base;
                self.regions[idx].size -= base - rbase;
                self.total_size -= base - rbase;
                self.insert_region(idx, rbase, base - rbase, r.flags);
                idx += 1;
            } else if rend > end {
                // Intersects from above: split off the top and redo idx,
                // which now holds the bottom half.
                self.regions[idx].base = end;
                self.regions[idx].size -= end - rbase;
                self.total_size -= end - rbase;
                self.insert_region(idx, rbase, end - rbase, r.flags);
            } else {
                // Fully inside: record it.
                if end_rgn == 0 {
                    start_rgn = idx;
                }
                end_rgn = idx + 1;
                idx += 1;
            }
        }
        (start_rgn, end_rgn)
    }

    /// Removes `[base, end)`: isolates it, then drops the regions inside
    /// (Linux: `memblock_remove_range()`).
    pub(super) fn remove_range(&mut self, base: PhysAddr, end: PhysAddr) {
        let (start_rgn, end_rgn) = self.isolate_range(base, end);
        for idx in (start_rgn..end_rgn).rev() {
            self.remove_region(idx);
        }
    }
}

impl Memblock {
    /// Adds physical `[base, base + size)` to `memory` (Linux:
    /// `memblock_add()`). Parts already present are left alone; the new
    /// parts merge with the regions they touch. Zero bytes: does nothing.
    ///
    /// # Errors
    /// [`MemblockError::Overflow`] if `base + size` overflows,
    /// [`MemblockError::ArrayFull`] if the `memory` array (or the `reserved`
    /// array, to record a bigger one) cannot grow.
    pub fn add(
        &mut self,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        self.add_range(Kind::Memory, base, size, mem)
    }

    /// Removes physical `[base, base + size)` from `memory`, splitting a
    /// region that sticks out at either end (Linux: `memblock_remove()`).
    /// Reservations are not touched. Zero bytes: does nothing.
    ///
    /// # Errors
    /// [`MemblockError::Overflow`] if `base + size` overflows,
    /// [`MemblockError::ArrayFull`] if a split needs a slot and the array
    /// cannot grow.
    pub fn remove(
        &mut self,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        self.remove_range(Kind::Memory, base, size, mem)
    }

    /// Marks physical `[base, base + size)` as in use (Linux:
    /// `memblock_reserve()`). The range need not be in `memory`, and may
    /// overlap earlier reservations. Zero bytes: does nothing.
    ///
    /// # Errors
    /// [`MemblockError::Overflow`] if `base + size` overflows,
    /// [`MemblockError::ArrayFull`] if the `reserved` array cannot grow.
    pub fn reserve(
        &mut self,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        self.add_range(Kind::Reserved, base, size, mem)
    }

    /// Returns physical `[base, base + size)` to the free memory by removing
    /// it from `reserved`, splitting a reservation that sticks out (Linux:
    /// `memblock_phys_free()`, formerly `memblock_free()`). Zero bytes: does
    /// nothing.
    ///
    /// # Errors
    /// As for [`remove`](Self::remove), and [`MemblockError::ArrayInUse`] if
    /// the range overlaps the storage of a grown region array.
    pub fn free(
        &mut self,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let end = base
            .0
            .checked_add(size)
            .map(PhysAddr)
            .ok_or(MemblockError::Overflow { base, size })?;
        for t in [&self.memory, &self.reserved] {
            if let Some((pa, bytes)) = t.storage
                && size > 0
                && base < pa + bytes
                && pa < end
            {
                return Err(MemblockError::ArrayInUse {
                    base: pa,
                    size: bytes,
                });
            }
        }
        self.remove_range(Kind::Reserved, base, size, mem)
    }

    /// `base + size`, or `None` for an empty range.
    fn range_end(base: PhysAddr, size: u64) -> Result<Option<PhysAddr>, MemblockError> {
        if size == 0 {
            return Ok(None);
        }
        base.0
            .checked_add(size)
            .map(|end| Some(PhysAddr(end)))
            .ok_or(MemblockError::Overflow { base, size })
    }

    /// Adds a range to `kind`, first growing its array if the new regions
    /// do not fit (Linux: `memblock_add_range()`: count, double, insert).
    fn add_range(
        &mut self,
        kind: Kind,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let Some(end) = Self::range_end(base, size)? else {
            return Ok(());
        };
        self.make_room(kind, (base, end), mem, |t| t.cnt + t.count_new(base, end))?;
        self.ty_mut(kind).add_range(base, end, MEMBLOCK_NONE);
        Ok(())
    }

    /// Removes a range from `kind`, first growing its array if the splits do
    /// not fit. Linux's `memblock_isolate_range()` always asks for room for
    /// two splits; counting the splits actually needed means a remove that
    /// splits nothing never fails.
    fn remove_range(
        &mut self,
        kind: Kind,
        base: PhysAddr,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let Some(end) = Self::range_end(base, size)? else {
            return Ok(());
        };
        self.make_room(kind, (base, end), mem, |t| {
            t.cnt + t.splits_needed(base, end)
        })?;
        self.ty_mut(kind).remove_range(base, end);
        Ok(())
    }
}
