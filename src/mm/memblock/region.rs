//! One region array: [`MemblockType`], the sorted, merged set of ranges
//! behind `memory` and `reserved` (Linux `struct memblock_type`), and the
//! single-region edits every range operation is built from: insert one
//! region, remove one, merge neighbours that touch.
//!
//! ```text
//!  regions: [ r0 | r1 | r2 | .. | r(cnt-1) | unused ... ]   len = max
//!             sorted by base, disjoint, never empty, never touching
//! ```
//!
//! The array itself is a `&'static mut` slice: first the caller's initial
//! array, later one that `grow.rs` allocated; `storage` remembers where a
//! grown one lives so that it stays reserved.

use super::{InvariantError, MemblockRegion};
use crate::addr::PhysAddr;

/// One set of ranges, `memory` or `reserved` (Linux `struct memblock_type`).
///
/// `regions()` is sorted by base, disjoint, and merged: see the module
/// invariants of [`super`].
#[derive(Debug)]
pub struct MemblockType {
    pub(super) name: &'static str,
    /// The whole array; `regions[..cnt]` are in use. Its length is `max`.
    pub(super) regions: &'static mut [MemblockRegion],
    pub(super) cnt: usize,
    pub(super) total_size: u64,
    /// `(pa, bytes)` of the array if memblock allocated it, `None` for the
    /// initial array the caller passed to [`super::Memblock::new`].
    pub(super) storage: Option<(PhysAddr, u64)>,
}

impl MemblockType {
    pub(super) fn new(name: &'static str, regions: &'static mut [MemblockRegion]) -> Self {
        regions.fill(MemblockRegion::EMPTY);
        MemblockType {
            name,
            regions,
            cnt: 0,
            total_size: 0,
            storage: None,
        }
    }

    /// `"memory"` or `"reserved"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The `cnt` regions in use, sorted by base.
    pub fn regions(&self) -> &[MemblockRegion] {
        &self.regions[..self.cnt]
    }

    /// Number of regions in use.
    pub fn cnt(&self) -> usize {
        self.cnt
    }

    /// Capacity of the current array, in regions.
    pub fn max(&self) -> usize {
        self.regions.len()
    }

    /// Sum of the region sizes, in bytes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Physical address of the current array if memblock allocated it
    /// (after growth), `None` while the initial array is in use.
    pub fn storage_pa(&self) -> Option<PhysAddr> {
        self.storage.map(|(pa, _)| pa)
    }

    /// Bytes reserved for the current array: `max * size_of::<MemblockRegion>()`
    /// rounded up to a page, or 0 for the initial array.
    pub fn storage_bytes(&self) -> u64 {
        self.storage.map_or(0, |(_, bytes)| bytes)
    }

    /// Checks the invariants of this type.
    ///
    /// # Errors
    /// The first broken invariant.
    pub fn check(&self) -> Result<(), InvariantError> {
        let name = self.name;
        if self.cnt > self.regions.len() {
            return Err(InvariantError::CntOverMax { name });
        }
        let mut sum: u64 = 0;
        let mut prev: Option<&MemblockRegion> = None;
        for (idx, r) in self.regions().iter().enumerate() {
            if r.size == 0 {
                return Err(InvariantError::EmptyRegion { name, idx });
            }
            if r.base.0.checked_add(r.size).is_none() {
                return Err(InvariantError::RegionOverflows { name, idx });
            }
            if let Some(p) = prev {
                if p.end() > r.base {
                    return Err(InvariantError::Unsorted { name, idx });
                }
                if p.end() == r.base && p.flags == r.flags {
                    return Err(InvariantError::NotMerged { name, idx });
                }
            }
            sum = sum
                .checked_add(r.size)
                .ok_or(InvariantError::TotalOverflows { name })?;
            prev = Some(r);
        }
        if sum != self.total_size {
            return Err(InvariantError::TotalSize {
                name,
                stored: self.total_size,
                sum,
            });
        }
        Ok(())
    }

    /// Inserts `[base, base + size)` as a new region at index `idx`, shifting
    /// the later regions up. The caller guarantees a free slot and the
    /// ordering (Linux: `memblock_insert_region()`).
    pub(super) fn insert_region(&mut self, idx: usize, base: PhysAddr, size: u64, flags: u32) {
        debug_assert!(
            self.cnt < self.regions.len(),
            "memblock: insert into full array"
        );
        self.regions.copy_within(idx..self.cnt, idx + 1);
        self.regions[idx] = MemblockRegion { base, size, flags };
        self.cnt += 1;
        self.total_size += size;
    }

    /// Drops region `idx`, shifting the later regions down (Linux:
    /// `memblock_remove_region()`).
    pub(super) fn remove_region(&mut self, idx: usize) {
        self.total_size -= self.regions[idx].size;
        self.regions.copy_within(idx + 1..self.cnt, idx);
        self.cnt -= 1;
        self.regions[self.cnt] = MemblockRegion::EMPTY;
    }

    /// Merges neighbouring regions that touch, looking only at
    /// `[start_rgn - 1, end_rgn]`, the window an insertion can have affected
    /// (Linux: `memblock_merge_regions()`).
    pub(super) fn merge_regions(&mut self, start_rgn: usize, end_rgn: usize) {
        let mut i = start_rgn.saturating_sub(1);
        let mut end_rgn = end_rgn.min(self.cnt.saturating_sub(1));
        while i < end_rgn {
            let this = self.regions[i];
            let next = self.regions[i + 1];
            if this.end() != next.base || this.flags != next.flags {
                debug_assert!(this.end() <= next.base, "memblock: overlapping regions");
                i += 1;
                continue;
            }
            self.regions[i].size += next.size;
            self.regions.copy_within(i + 2..self.cnt, i + 1);
            self.cnt -= 1;
            self.regions[self.cnt] = MemblockRegion::EMPTY;
            end_rgn -= 1;
        }
    }
}
