//! memblock: the boot-time physical memory allocator (Linux `mm/memblock.c`).
//!
//! # Overview
//! memblock describes physical memory as two sets of address ranges, each a
//! [`MemblockType`] holding an array of [`MemblockRegion`]s:
//!
//! - `memory`: all RAM the firmware reported (Multiboot memory map entries
//!   of type "available");
//! - `reserved`: the parts of it already in use (the kernel image, the boot
//!   information, modules, and everything memblock itself has handed out).
//!
//! Free memory is `memory` minus `reserved`. An allocation searches the free
//! ranges for a fit and then simply *reserves* it; freeing removes a range
//! from `reserved`. There are no per-allocation headers and no free lists, so
//! the allocator is usable before anything else exists.
//!
//! ```text
//!  memory   : [0x1000 ......... 0x9f000)     [0x100000 .................... 0x8000000)
//!  reserved :     [mbi)                      [kernel image)  [page tables)
//!  free     : [..)     [.........)                         [.)            [..........)
//! ```
//!
//! # Where in boot
//! The boot code adds every available memory-map entry with [`Memblock::add`],
//! reserves what the loader left in memory ([`Memblock::reserve`]), and then
//! early code allocates with [`Memblock::alloc_range`] and
//! [`Memblock::phys_alloc_range`]. Once `mem_map` and the zones exist, the free
//! ranges ([`Memblock::for_each_free_range`]) are handed to the buddy
//! allocator (Linux: `memblock_free_all()`), and memblock is no longer used.
//!
//! Linux has two allocation families: `memblock_phys_alloc*()` returns a
//! physical address and `memblock_alloc*()` returns a zeroed *virtual*
//! pointer. This module is pure (no pointers, no `unsafe`), so both return
//! physical addresses here; [`Memblock::alloc_range`] zeroes the memory
//! through the [`PhysMem`] trait the kernel implements over its direct map.
//! For that to work the kernel keeps [`Memblock::set_current_limit`] at the
//! end of the physical memory it has mapped, as Linux's `setup_arch()` does.
//!
//! # Invariants
//! For both types, at every return from a public method
//! ([`Memblock::check`] verifies them, and every test calls it):
//! - regions are sorted by base, disjoint, never empty, and no two are
//!   adjacent with equal flags (they would have been merged);
//! - `total_size` is the sum of the region sizes;
//! - `cnt <= max`.
//!
//! A failed operation changes nothing.
//!
//! # Region arrays
//! Both types start in arrays the caller provides (the kernel: two static
//! arrays of [`INIT_MEMBLOCK_REGIONS`]). When an operation needs more slots,
//! the array is doubled into memory that memblock allocates *from itself*;
//! the new array is reserved and the previous one, unless it was the initial
//! static array, is freed (Linux: `memblock_double_array()`).
//!
//! # References
//! - Linux: `mm/memblock.c` (v6.x): `memblock_add_range()`,
//!   `memblock_isolate_range()`, `memblock_double_array()`,
//!   `memblock_find_in_range_node()`, `memblock_alloc_range_nid()`,
//!   `__memblock_dump_all()`; `include/linux/memblock.h`.
//! - Linux: `Documentation/core-api/boot-time-mm.rst`.

#![forbid(unsafe_code)]

use super::layout::{PAGE_SIZE, align_down};
use core::fmt;
use core::mem::size_of;
use core::ops::ControlFlow;

/// Value: 128. Initial capacity of each region array (Linux
/// `INIT_MEMBLOCK_REGIONS`).
pub const INIT_MEMBLOCK_REGIONS: usize = 128;

/// Value: 0. Region flags of ordinary memory (Linux `MEMBLOCK_NONE`), the
/// only flags this kernel uses.
pub const MEMBLOCK_NONE: u32 = 0;

/// Value: `u64::MAX`. A [`Memblock::set_current_limit`] value meaning "no
/// limit" (Linux `MEMBLOCK_ALLOC_ANYWHERE`).
pub const MEMBLOCK_ALLOC_ANYWHERE: u64 = u64::MAX;

/// Value: 4096. [`PAGE_SIZE`] as a physical-address quantity.
const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// Value: 2. Regions the reserved array may gain while an array is replaced:
/// freeing the old array can split one reserved region (+1) and reserving the
/// new one can add one (+1).
const BOOKKEEPING_REGIONS: usize = 2;

/// Value: 3. Extra slots a new *reserved* array gets beyond what the
/// operation asked for: its own bookkeeping ([`BOOKKEEPING_REGIONS`]), plus
/// one because freeing the old array can open one more gap inside the range
/// the caller is reserving.
const RESERVED_SLACK: usize = BOOKKEEPING_REGIONS + 1;

/// One physical range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemblockRegion {
    /// First byte of the range.
    pub base: u64,
    /// Length in bytes; never 0 for a region stored in a [`MemblockType`].
    pub size: u64,
    /// Region flags; always [`MEMBLOCK_NONE`] here.
    pub flags: u32,
}

impl MemblockRegion {
    /// One past the last byte, `base + size` (saturating, so it cannot
    /// overflow; stored regions never reach `u64::MAX` anyway).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// Why a memblock operation failed. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// No free range of `size` bytes aligned to `align` within `[min, max)`
    /// (the caller's bounds; the search also stops at the current limit).
    NoSpace {
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment in bytes.
        align: u64,
        /// Requested lower bound.
        min: u64,
        /// Requested upper bound (exclusive).
        max: u64,
    },
    /// The alignment is not a power of two (0 included).
    BadAlign(u64),
    /// `base + size` does not fit in 64 bits.
    Overflow {
        /// Start of the range.
        base: u64,
        /// Length in bytes.
        size: u64,
    },
    /// An allocation of zero bytes. (Adding, removing, reserving or freeing
    /// zero bytes is not an error; it does nothing.)
    ZeroSize,
    /// A region array is full and no free memory could hold a bigger one.
    ArrayFull {
        /// `"memory"` or `"reserved"`.
        name: &'static str,
    },
    /// A `free` would release memory that holds one of memblock's own
    /// (grown) region arrays, which are still in use. (Linux lets this
    /// happen silently; here it would leave a live array in free memory.)
    ArrayInUse {
        /// Start of the array's storage.
        base: u64,
        /// Its size in bytes.
        size: u64,
    },
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemblockError::NoSpace {
                size,
                align,
                min,
                max,
            } => write!(
                f,
                "memblock: no free range of {size:#x} bytes aligned to {align:#x} in [{min:#x}, {max:#x})"
            ),
            MemblockError::BadAlign(align) => {
                write!(f, "memblock: alignment {align:#x} is not a power of two")
            }
            MemblockError::Overflow { base, size } => write!(
                f,
                "memblock: range at {base:#x} of {size:#x} bytes overflows the address space"
            ),
            MemblockError::ZeroSize => f.write_str("memblock: allocation of zero bytes"),
            MemblockError::ArrayFull { name } => write!(
                f,
                "memblock: {name} array is full and no free memory can hold a bigger one"
            ),
            MemblockError::ArrayInUse { base, size } => write!(
                f,
                "memblock: [{base:#x}, +{size:#x}) holds a memblock region array and cannot be freed"
            ),
        }
    }
}

/// What memblock needs from physical memory. The kernel implements it over
/// the direct map; tests implement it over a `Vec<u8>`.
pub trait PhysMem {
    /// Fills physical `[pa, pa + len)` with zeros.
    fn zero(&mut self, pa: u64, len: u64);

    /// Storage for `cap` regions at physical `pa`: `cap *
    /// size_of::<MemblockRegion>()` bytes that memblock has found free and is
    /// about to reserve. The slice becomes a region array; its old contents
    /// do not matter (memblock overwrites every entry).
    fn region_array(&mut self, pa: u64, cap: usize) -> &'static mut [MemblockRegion];
}

/// One set of ranges, `memory` or `reserved` (Linux `struct memblock_type`).
///
/// `regions()` is sorted by base, disjoint, and merged: see the module
/// invariants.
#[derive(Debug)]
pub struct MemblockType {
    name: &'static str,
    /// The whole array; `regions[..cnt]` are in use. Its length is `max`.
    regions: &'static mut [MemblockRegion],
    cnt: usize,
    total_size: u64,
    /// `[pa, pa + bytes)` of the array if memblock allocated it, `None` for
    /// the initial array the caller passed to [`Memblock::new`].
    storage: Option<(u64, u64)>,
}

impl MemblockType {
    fn new(name: &'static str, regions: &'static mut [MemblockRegion]) -> Self {
        regions.fill(MemblockRegion::default());
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
    pub fn storage_pa(&self) -> Option<u64> {
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
    /// A short description of the first broken invariant.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.cnt > self.regions.len() {
            return Err("memblock: cnt exceeds the array capacity");
        }
        let mut sum: u64 = 0;
        let mut prev: Option<&MemblockRegion> = None;
        for r in self.regions() {
            if r.size == 0 {
                return Err("memblock: a region is empty");
            }
            if r.base.checked_add(r.size).is_none() {
                return Err("memblock: a region overflows the address space");
            }
            if let Some(p) = prev {
                if p.end() > r.base {
                    return Err("memblock: regions are unsorted or overlap");
                }
                if p.end() == r.base && p.flags == r.flags {
                    return Err("memblock: adjacent regions were not merged");
                }
            }
            sum = sum
                .checked_add(r.size)
                .ok_or("memblock: total size overflows")?;
            prev = Some(r);
        }
        if sum != self.total_size {
            return Err("memblock: total_size is not the sum of the region sizes");
        }
        Ok(())
    }

    /// Inserts `[base, base + size)` as a new region at index `idx`, shifting
    /// the later regions up. The caller guarantees a free slot and the
    /// ordering (Linux: `memblock_insert_region()`).
    fn insert_region(&mut self, idx: usize, base: u64, size: u64, flags: u32) {
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
    fn remove_region(&mut self, idx: usize) {
        self.total_size -= self.regions[idx].size;
        self.regions.copy_within(idx + 1..self.cnt, idx);
        self.cnt -= 1;
        self.regions[self.cnt] = MemblockRegion::default();
    }

    /// Merges neighbouring regions that touch, looking only at
    /// `[start_rgn - 1, end_rgn]`, the window an insertion can have affected
    /// (Linux: `memblock_merge_regions()`).
    fn merge_regions(&mut self, start_rgn: usize, end_rgn: usize) {
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
            self.regions[self.cnt] = MemblockRegion::default();
            end_rgn -= 1;
        }
    }

    /// New regions that adding `[base, end)` would insert: the parts of the
    /// range not covered by existing regions. This is the first pass of
    /// Linux's `memblock_add_range()`, which runs its insertion loop once
    /// without inserting to count, grows the array if needed, and then runs
    /// it again for real ([`add_range`](Self::add_range) below).
    fn count_new(&self, base: u64, end: u64) -> usize {
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
    fn add_range(&mut self, base: u64, end: u64, flags: u32) {
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
    fn splits_needed(&self, base: u64, end: u64) -> usize {
        let strictly_inside = |addr: u64| {
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
    fn isolate_range(&mut self, base: u64, end: u64) -> (usize, usize) {
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
    fn remove_range(&mut self, base: u64, end: u64) {
        let (start_rgn, end_rgn) = self.isolate_range(base, end);
        for idx in (start_rgn..end_rgn).rev() {
            self.remove_region(idx);
        }
    }
}

/// Which of the two types an internal operation works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Memory,
    Reserved,
}

/// Up to two half-open ranges `(start, end)` a search must avoid; `(0, 0)`
/// is an unused entry.
type Exclude = [(u64, u64); 2];

/// No range excluded.
const NO_EXCLUDE: Exclude = [(0, 0); 2];

/// Where a bigger region array will go.
#[derive(Clone, Copy, Debug)]
struct ArrayPlan {
    pa: u64,
    bytes: u64,
    cap: usize,
}

/// The boot-time allocator: RAM (`memory`) and the parts of it in use
/// (`reserved`). Linux `struct memblock`.
#[derive(Debug)]
pub struct Memblock {
    /// All physical memory.
    pub memory: MemblockType,
    /// Ranges in use; allocations never overlap them.
    pub reserved: MemblockType,
    bottom_up: bool,
    current_limit: u64,
}

impl Memblock {
    /// An empty memblock over two initial region arrays: allocations go top
    /// down and the current limit is [`MEMBLOCK_ALLOC_ANYWHERE`].
    ///
    /// The kernel passes static arrays of [`INIT_MEMBLOCK_REGIONS`]; tests
    /// pass small ones to exercise growth. The arrays are cleared and are
    /// never freed into `reserved` when outgrown, since memblock did not
    /// allocate them (Linux: the static `memblock` initialiser over
    /// `memblock_memory_init_regions` and `memblock_reserved_init_regions`).
    pub fn new(
        memory: &'static mut [MemblockRegion],
        reserved: &'static mut [MemblockRegion],
    ) -> Memblock {
        Memblock {
            memory: MemblockType::new("memory", memory),
            reserved: MemblockType::new("reserved", reserved),
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
        }
    }

    fn ty(&self, kind: Kind) -> &MemblockType {
        match kind {
            Kind::Memory => &self.memory,
            Kind::Reserved => &self.reserved,
        }
    }

    fn ty_mut(&mut self, kind: Kind) -> &mut MemblockType {
        match kind {
            Kind::Memory => &mut self.memory,
            Kind::Reserved => &mut self.reserved,
        }
    }

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
        base: u64,
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
        base: u64,
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
        base: u64,
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
        base: u64,
        size: u64,
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let end = base
            .checked_add(size)
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
    pub fn set_current_limit(&mut self, limit: u64) {
        self.current_limit = limit;
    }

    /// The allocation limit (Linux: `memblock_get_current_limit()`).
    pub fn current_limit(&self) -> u64 {
        self.current_limit
    }

    /// Checks the invariants of both types (see the module docs).
    ///
    /// # Errors
    /// A short description of the first broken invariant.
    pub fn check(&self) -> Result<(), &'static str> {
        self.memory.check()?;
        self.reserved.check()
    }

    /// `base + size`, or `None` for an empty range.
    fn range_end(base: u64, size: u64) -> Result<Option<u64>, MemblockError> {
        if size == 0 {
            return Ok(None);
        }
        base.checked_add(size)
            .map(Some)
            .ok_or(MemblockError::Overflow { base, size })
    }

    /// Adds a range to `kind`, first growing its array if the new regions
    /// do not fit (Linux: `memblock_add_range()`: count, double, insert).
    fn add_range(
        &mut self,
        kind: Kind,
        base: u64,
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
        base: u64,
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

    /// Grows `kind`'s array until `need(type)` slots fit. `range` is the
    /// range being added or removed, which a new array must not occupy.
    ///
    /// The loop runs once in practice: a new reserved array has
    /// [`RESERVED_SLACK`] spare slots for everything growing can change. It
    /// is bounded all the same, so a mistake in that reasoning shows up as an
    /// error rather than a hang.
    fn make_room(
        &mut self,
        kind: Kind,
        range: (u64, u64),
        mem: &mut impl PhysMem,
        need: impl Fn(&MemblockType) -> usize,
    ) -> Result<(), MemblockError> {
        for _ in 0..4 {
            let t = self.ty(kind);
            let need = need(t);
            if need <= t.max() {
                return Ok(());
            }
            self.double_array(kind, need, range, mem)?;
        }
        debug_assert!(false, "memblock: growth did not make room");
        Err(MemblockError::ArrayFull {
            name: self.ty(kind).name,
        })
    }

    /// Replaces `kind`'s array with one of at least `need` slots (Linux:
    /// `memblock_double_array()`).
    ///
    /// Basic algorithm: double the capacity until it is enough, round the
    /// byte size up to whole pages, and find that much free memory below the
    /// current limit, honouring the allocation direction and avoiding
    /// `range` (whatever is being added or reserved must not end up under
    /// the array). Copy the regions over, switch to the new array, free the
    /// old one if memblock had allocated it, and reserve the new one.
    ///
    /// The reservations are edits of the `reserved` array, which needs
    /// [`BOOKKEEPING_REGIONS`] spare slots for them. If `memory` is growing
    /// and `reserved` lacks those, a bigger reserved array is planned too,
    /// away from both `range` and the new memory array. Every address is
    /// found and every array obtained before anything is switched, so a
    /// failure leaves memblock untouched.
    ///
    /// Differences from Linux: Linux excludes `range` only when growing the
    /// reserved array, so a memory array grown during `memblock_remove()`
    /// can land in the memory being removed; here `range` is always
    /// excluded. Linux `BUG()`s if recording the new array fails; here that
    /// case is planned for up front.
    fn double_array(
        &mut self,
        kind: Kind,
        need: usize,
        range: (u64, u64),
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let target = match kind {
            Kind::Memory => need,
            Kind::Reserved => need.saturating_add(RESERVED_SLACK),
        };
        let plan = self.plan_array(kind, target, [range, (0, 0)])?;
        let reserved_plan = if kind == Kind::Memory
            && self.reserved.cnt + BOOKKEEPING_REGIONS > self.reserved.max()
        {
            let target = self.reserved.cnt + BOOKKEEPING_REGIONS + RESERVED_SLACK;
            let new_array = (plan.pa, plan.pa + plan.bytes);
            Some(self.plan_array(Kind::Reserved, target, [range, new_array])?)
        } else {
            None
        };

        let array = Self::take_array(mem, plan, self.ty(kind).name)?;
        let reserved_array = match reserved_plan {
            Some(p) => Some((p, Self::take_array(mem, p, self.reserved.name)?)),
            None => None,
        };

        if let Some((p, a)) = reserved_array {
            self.install_array(Kind::Reserved, p, a);
        }
        self.install_array(kind, plan, array);
        Ok(())
    }

    /// Chooses capacity and place of a new array for `kind` of at least
    /// `target` slots, avoiding `exclude`.
    fn plan_array(
        &self,
        kind: Kind,
        target: usize,
        exclude: Exclude,
    ) -> Result<ArrayPlan, MemblockError> {
        let t = self.ty(kind);
        let full = MemblockError::ArrayFull { name: t.name };
        let mut cap = t.max().max(1);
        while cap < target {
            cap = cap.checked_mul(2).ok_or(full)?;
        }
        let bytes = u64::try_from(cap)
            .ok()
            .and_then(|c| c.checked_mul(size_of::<MemblockRegion>() as u64))
            .and_then(|b| align_up_checked(b, PAGE_BYTES))
            .ok_or(full)?;
        let pa = self
            .find(bytes, PAGE_BYTES, 0, self.current_limit, exclude)
            .ok_or(full)?;
        Ok(ArrayPlan { pa, bytes, cap })
    }

    /// Asks `mem` for the storage of `plan`, trimmed to `plan.cap` slots.
    fn take_array(
        mem: &mut impl PhysMem,
        plan: ArrayPlan,
        name: &'static str,
    ) -> Result<&'static mut [MemblockRegion], MemblockError> {
        let array = mem.region_array(plan.pa, plan.cap);
        match array.get_mut(..plan.cap) {
            Some(array) => Ok(array),
            None => Err(MemblockError::ArrayFull { name }),
        }
    }

    /// Switches `kind` to `array` (planned as `plan`), then frees the old
    /// array if memblock allocated it and reserves the new one. Linux frees
    /// first too; the two ranges are disjoint, since the new one was free.
    fn install_array(&mut self, kind: Kind, plan: ArrayPlan, array: &'static mut [MemblockRegion]) {
        let t = self.ty_mut(kind);
        let cnt = t.cnt;
        array[..cnt].copy_from_slice(&t.regions[..cnt]);
        array[cnt..].fill(MemblockRegion::default());
        t.regions = array;
        let old = t.storage.replace((plan.pa, plan.bytes));
        if let Some((pa, bytes)) = old {
            self.reserved.remove_range(pa, pa + bytes);
        }
        self.reserved
            .add_range(plan.pa, plan.pa + plan.bytes, MEMBLOCK_NONE);
    }

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
    fn walk_free(
        &self,
        exclude: Exclude,
        mut f: impl FnMut(u64, u64) -> ControlFlow<()>,
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
    pub fn for_each_free_range(&self, mut f: impl FnMut(u64, u64)) {
        let _ = self.walk_free(NO_EXCLUDE, |start, end| {
            f(start, end);
            ControlFlow::Continue(())
        });
    }

    /// The allocation search behind [`find_in_range`](Self::find_in_range),
    /// also avoiding `exclude`.
    fn find(&self, size: u64, align: u64, min: u64, max: u64, exclude: Exclude) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        // Linux: "avoid allocating the first page".
        let start = min.max(PAGE_BYTES);
        let end = max.min(self.current_limit);
        if start >= end {
            return None;
        }
        let mut found = None;
        let _ = self.walk_free(exclude, |s, e| {
            let (s, e) = (s.clamp(start, end), e.clamp(start, end));
            if self.bottom_up {
                if let Some(cand) = align_up_checked(s, align)
                    && cand < e
                    && e - cand >= size
                {
                    found = Some(cand);
                    return ControlFlow::Break(());
                }
            } else if let Some(last_start) = e.checked_sub(size) {
                let cand = align_down(last_start, align);
                if cand >= s {
                    // Ranges come in ascending order, so the last fit wins.
                    found = Some(cand);
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
    pub fn find_in_range(&self, size: u64, align: u64, min: u64, max: u64) -> Option<u64> {
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
        min: u64,
        max: u64,
        mem: &mut impl PhysMem,
    ) -> Result<u64, MemblockError> {
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
        min: u64,
        max: u64,
        mem: &mut impl PhysMem,
    ) -> Result<u64, MemblockError> {
        let pa = self.phys_alloc_range(size, align, min, max, mem)?;
        mem.zero(pa, size);
        Ok(pa)
    }

    /// Whether any byte of `[base, base + size)` is reserved; `false` for
    /// `size == 0` (Linux: `memblock_is_region_reserved()`). A range running
    /// past `u64::MAX` is cut there, as Linux's `memblock_cap_size()` does.
    pub fn is_region_reserved(&self, base: u64, size: u64) -> bool {
        if size == 0 {
            return false;
        }
        let end = base.saturating_add(size);
        let r = self.reserved.regions();
        let i = r.partition_point(|x| x.end() <= base);
        i < r.len() && r[i].base < end
    }

    /// Whether all of `[base, base + size)` is memory (Linux:
    /// `memblock_is_region_memory()`). Memory regions are merged, so the
    /// range must lie inside the single region containing `base`; for
    /// `size == 0` this asks whether `base` is memory.
    pub fn is_region_memory(&self, base: u64, size: u64) -> bool {
        let end = base.saturating_add(size);
        let m = self.memory.regions();
        let i = m.partition_point(|x| x.end() <= base);
        i < m.len() && m[i].base <= base && m[i].end() >= end
    }

    /// Prints both types the way Linux's `__memblock_dump_all()` does, one
    /// call of `line` per line, without newlines:
    ///
    /// ```text
    /// MEMBLOCK configuration:
    ///  memory size = 0x07f9e000 reserved size = 0x00134000
    ///  memory.cnt  = 0x2
    ///  memory[0x0]<TAB>[0x00001000-0x0009efff], 0x0009e000 bytes flags: 0x0
    ///  memory[0x1]<TAB>[0x00100000-0x07ffffff], 0x07f00000 bytes flags: 0x0
    ///  reserved.cnt  = 0x2
    ///  ...
    /// ```
    ///
    /// Addresses and sizes look like `%pa` on i386 without PAE (`0x` and at
    /// least 8 digits); the range's second number is its last byte, as Linux
    /// prints it; counts, indices and flags look like the kernel's `%#x`
    /// ("0x0" for zero). `<TAB>` above stands for the tab Linux prints. Unlike Linux, an
    /// empty type prints `cnt = 0x0` and no lines (Linux keeps one dummy
    /// region).
    pub fn dump(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        line(format_args!("MEMBLOCK configuration:"));
        line(format_args!(
            " memory size = {:#010x} reserved size = {:#010x}",
            self.memory.total_size, self.reserved.total_size
        ));
        for t in [&self.memory, &self.reserved] {
            line(format_args!(" {}.cnt  = {:#x}", t.name, t.cnt));
            for (idx, r) in t.regions().iter().enumerate() {
                let last = r.base.wrapping_add(r.size).wrapping_sub(1);
                line(format_args!(
                    " {}[{:#x}]\t[{:#010x}-{:#010x}], {:#010x} bytes flags: {:#x}",
                    t.name, idx, r.base, last, r.size, r.flags
                ));
            }
        }
    }
}

/// One line: `memory 3 regions 133685248 bytes, reserved 5 regions 1310720
/// bytes` (decimal).
impl fmt::Display for Memblock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory {} regions {} bytes, reserved {} regions {} bytes",
            self.memory.cnt, self.memory.total_size, self.reserved.cnt, self.reserved.total_size
        )
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two), or `None` on
/// overflow. `layout::align_up` panics instead; memblock must not.
fn align_up_checked(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// Calls `f` for the parts of `[start, end)` outside the `exclude` ranges,
/// in ascending order.
fn subtract_excluded(
    start: u64,
    end: u64,
    exclude: &Exclude,
    f: &mut impl FnMut(u64, u64) -> ControlFlow<()>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;
    const P: u64 = PAGE_BYTES;

    /// Physical memory for tests: RAM as a byte vector (bytes past its end
    /// are ignored), region arrays leaked from the heap. Records every array
    /// handed out as `(pa, cap)`.
    struct FakeRam {
        bytes: Vec<u8>,
        arrays: Vec<(u64, usize)>,
    }

    impl FakeRam {
        fn new(len: usize) -> Self {
            FakeRam {
                bytes: vec![0xAA; len],
                arrays: Vec::new(),
            }
        }

        fn fill(&mut self, pa: u64, len: u64, byte: u8) {
            let n = self.bytes.len() as u64;
            let (start, end) = (pa.min(n), pa.saturating_add(len).min(n));
            self.bytes[start as usize..end as usize].fill(byte);
        }

        fn all(&self, pa: u64, len: u64, byte: u8) -> bool {
            self.bytes[pa as usize..(pa + len) as usize]
                .iter()
                .all(|&b| b == byte)
        }
    }

    impl PhysMem for FakeRam {
        fn zero(&mut self, pa: u64, len: u64) {
            self.fill(pa, len, 0);
        }

        fn region_array(&mut self, pa: u64, cap: usize) -> &'static mut [MemblockRegion] {
            self.arrays.push((pa, cap));
            leak(cap)
        }
    }

    fn leak(cap: usize) -> &'static mut [MemblockRegion] {
        Box::leak(vec![MemblockRegion::default(); cap].into_boxed_slice())
    }

    /// A memblock with `cap`-slot arrays over 8 MiB of fake RAM; every
    /// helper checks the invariants after the operation.
    struct Fixture {
        mb: Memblock,
        ram: FakeRam,
    }

    impl Fixture {
        fn new(cap: usize) -> Self {
            Fixture {
                mb: Memblock::new(leak(cap), leak(cap)),
                ram: FakeRam::new(8 * MIB as usize),
            }
        }

        fn add(&mut self, base: u64, size: u64) -> &mut Self {
            self.mb.add(base, size, &mut self.ram).unwrap();
            self.mb.check().unwrap();
            self
        }

        fn remove(&mut self, base: u64, size: u64) -> &mut Self {
            self.mb.remove(base, size, &mut self.ram).unwrap();
            self.mb.check().unwrap();
            self
        }

        fn reserve(&mut self, base: u64, size: u64) -> &mut Self {
            self.mb.reserve(base, size, &mut self.ram).unwrap();
            self.mb.check().unwrap();
            self
        }

        fn free(&mut self, base: u64, size: u64) -> &mut Self {
            self.mb.free(base, size, &mut self.ram).unwrap();
            self.mb.check().unwrap();
            self
        }

        fn alloc(
            &mut self,
            size: u64,
            align: u64,
            min: u64,
            max: u64,
        ) -> Result<u64, MemblockError> {
            let r = self
                .mb
                .phys_alloc_range(size, align, min, max, &mut self.ram);
            self.mb.check().unwrap();
            r
        }
    }

    /// `(base, size)` of each region.
    fn ranges(t: &MemblockType) -> Vec<(u64, u64)> {
        t.regions().iter().map(|r| (r.base, r.size)).collect()
    }

    fn free_ranges(mb: &Memblock) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        mb.for_each_free_range(|start, end| v.push((start, end)));
        v
    }

    /// Everything observable, to show that a failed call changed nothing.
    type Snapshot = (
        Vec<MemblockRegion>,
        Vec<MemblockRegion>,
        [usize; 2],
        [Option<u64>; 2],
        [u64; 2],
        bool,
        u64,
    );

    fn snapshot(mb: &Memblock) -> Snapshot {
        (
            mb.memory.regions().to_vec(),
            mb.reserved.regions().to_vec(),
            [mb.memory.max(), mb.reserved.max()],
            [mb.memory.storage_pa(), mb.reserved.storage_pa()],
            [mb.memory.total_size(), mb.reserved.total_size()],
            mb.bottom_up(),
            mb.current_limit(),
        )
    }

    // ---- add --------------------------------------------------------------

    #[test]
    fn add_overlapping_range_inserts_only_the_gaps_and_merges() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x1000).add(0x3000, 0x1000);
        assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x1000), (0x3000, 0x1000)]);
        // The example in MemblockType::add_range: three gaps, one region.
        f.add(0x0, 0x5000);
        assert_eq!(ranges(&f.mb.memory), [(0x0, 0x5000)]);
        assert_eq!(f.mb.memory.total_size(), 0x5000);
        // Partial overlap at the top.
        f.add(0x4000, 0x3000);
        assert_eq!(ranges(&f.mb.memory), [(0x0, 0x7000)]);
    }

    #[test]
    fn add_adjacent_ranges_merge() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x1000).add(0x2000, 0x1000).add(0x0, 0x1000);
        assert_eq!(ranges(&f.mb.memory), [(0x0, 0x3000)]);
        assert_eq!(f.mb.memory.cnt(), 1);
    }

    #[test]
    fn add_range_bridging_two_regions_merges_all_three() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x1000)
            .add(0x5000, 0x1000)
            .add(0x2000, 0x3000);
        assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x5000)]);
    }

    #[test]
    fn add_contained_range_changes_nothing() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x10000);
        let before = snapshot(&f.mb);
        f.add(0x2000, 0x1000).add(0x1000, 0x10000);
        assert_eq!(snapshot(&f.mb), before);
    }

    #[test]
    fn add_duplicate_range_is_idempotent() {
        let mut f = Fixture::new(8);
        f.add(0x10_0000, 0x20_0000).add(0x10_0000, 0x20_0000);
        assert_eq!(ranges(&f.mb.memory), [(0x10_0000, 0x20_0000)]);
        assert_eq!(f.mb.memory.total_size(), 0x20_0000);
    }

    #[test]
    fn add_out_of_order_keeps_regions_sorted() {
        let mut f = Fixture::new(8);
        for base in [0x5_0000, 0x1_0000, 0x3_0000, 0x7_0000, 0x2_0000] {
            f.add(base, 0x1000);
        }
        assert_eq!(
            ranges(&f.mb.memory),
            [
                (0x1_0000, 0x1000),
                (0x2_0000, 0x1000),
                (0x3_0000, 0x1000),
                (0x5_0000, 0x1000),
                (0x7_0000, 0x1000)
            ]
        );
        assert_eq!(f.mb.memory.total_size(), 0x5000);
    }

    #[test]
    fn add_of_zero_bytes_does_nothing_and_overflow_is_refused() {
        let mut f = Fixture::new(8);
        f.add(0x1234, 0);
        assert_eq!(f.mb.memory.cnt(), 0);
        assert_eq!(
            f.mb.add(u64::MAX - 0xfff, 0x1000, &mut f.ram),
            Err(MemblockError::Overflow {
                base: u64::MAX - 0xfff,
                size: 0x1000
            })
        );
        assert_eq!(
            f.mb.reserve(2, u64::MAX, &mut f.ram),
            Err(MemblockError::Overflow {
                base: 2,
                size: u64::MAX
            })
        );
        assert_eq!(f.mb.memory.cnt(), 0);
        // A range may end exactly at 4 GiB.
        f.add(0xFFFF_F000, 0x1000);
        assert_eq!(f.mb.memory.regions()[0].end(), 1 << 32);
    }

    // ---- remove -----------------------------------------------------------

    #[test]
    fn remove_from_the_middle_splits_a_region() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9000).remove(0x4000, 0x2000);
        assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x3000), (0x6000, 0x4000)]);
        assert_eq!(f.mb.memory.total_size(), 0x7000);
    }

    #[test]
    fn remove_across_several_regions() {
        let mut f = Fixture::new(8);
        for base in [0x1000, 0x3000, 0x5000, 0x7000] {
            f.add(base, 0x1000);
        }
        f.remove(0x1800, 0x6000);
        assert_eq!(ranges(&f.mb.memory), [(0x1000, 0x800), (0x7800, 0x800)]);
        assert_eq!(f.mb.memory.total_size(), 0x1000);
    }

    #[test]
    fn remove_of_exact_regions_and_edges() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x1000).add(0x3000, 0x4000);
        f.remove(0x1000, 0x1000);
        assert_eq!(ranges(&f.mb.memory), [(0x3000, 0x4000)]);
        f.remove(0x2000, 0x2000).remove(0x6000, 0x3000);
        assert_eq!(ranges(&f.mb.memory), [(0x4000, 0x2000)]);
    }

    #[test]
    fn remove_of_nothing_changes_nothing() {
        let mut f = Fixture::new(4);
        for base in [0x1000, 0x3000, 0x5000, 0x7000] {
            f.add(base, 0x1000).reserve(base, 0x1000);
        }
        // Both arrays are full and no memory is free: removing ranges that
        // split nothing must still work.
        let before = snapshot(&f.mb);
        f.remove(0x2000, 0x1000)
            .remove(0x0, 0x1000)
            .remove(0x9000, 0x10_0000)
            .remove(0x1234, 0);
        f.free(0x2000, 0x1000).free(0x8000, 0x1000);
        assert_eq!(snapshot(&f.mb), before);
    }

    // ---- reserve / free ---------------------------------------------------

    #[test]
    fn reserve_overlapping_and_adjacent_ranges_merge() {
        let mut f = Fixture::new(8);
        f.reserve(0x10_0000, 0x1000)
            .reserve(0x10_2000, 0x1000)
            .reserve(0x10_0800, 0x2000)
            .reserve(0x10_3000, 0x1000);
        assert_eq!(ranges(&f.mb.reserved), [(0x10_0000, 0x4000)]);
        assert_eq!(f.mb.reserved.total_size(), 0x4000);
        // Reserving outside memory is allowed (Linux reserves firmware areas
        // that need not be RAM).
        assert_eq!(f.mb.memory.cnt(), 0);
    }

    #[test]
    fn free_from_the_middle_splits_a_reservation() {
        let mut f = Fixture::new(8);
        f.reserve(0x10_0000, 0x10_0000).free(0x14_0000, 0x1000);
        assert_eq!(
            ranges(&f.mb.reserved),
            [(0x10_0000, 0x4_0000), (0x14_1000, 0xb_f000)]
        );
        assert_eq!(f.mb.reserved.total_size(), 0xf_f000);
    }

    #[test]
    fn free_across_several_reservations() {
        let mut f = Fixture::new(8);
        f.reserve(0x1000, 0x2000)
            .reserve(0x4000, 0x1000)
            .reserve(0x6000, 0x2000)
            .free(0x2000, 0x5000);
        assert_eq!(ranges(&f.mb.reserved), [(0x1000, 0x1000), (0x7000, 0x1000)]);
    }

    #[test]
    fn free_of_an_unreserved_range_does_nothing() {
        let mut f = Fixture::new(8);
        f.reserve(0x1000, 0x1000);
        let before = snapshot(&f.mb);
        f.free(0x3000, 0x1000).free(0x0, 0x1000).free(0x1000, 0);
        assert_eq!(snapshot(&f.mb), before);
    }

    // ---- allocation -------------------------------------------------------

    #[test]
    fn find_in_range_worked_example() {
        // The numbers in the doc comment of find_in_range().
        let mut f = Fixture::new(8);
        f.add(0x0, 0x9_f000)
            .add(0x10_0000, 0x70_0000)
            .reserve(0x70_0000, 0x10_0000);
        assert_eq!(
            f.mb.find_in_range(0x3000, 0x2000, 0, u64::MAX),
            Some(0x6f_c000)
        );
        f.mb.set_bottom_up(true);
        assert_eq!(
            f.mb.find_in_range(0x3000, 0x2000, 0, u64::MAX),
            Some(0x2000)
        );
        // Only a search: nothing was reserved.
        assert_eq!(f.mb.reserved.cnt(), 1);
    }

    #[test]
    fn alloc_result_is_aligned() {
        let mut f = Fixture::new(8);
        f.add(0, 8 * MIB).reserve(8 * MIB - 0x1000, 0x1000);
        // Highest start is 0x7fe000; aligned down to 64 KiB: 0x7f0000.
        assert_eq!(f.alloc(0x1000, 0x1_0000, 0, u64::MAX), Ok(0x7f_0000));
        assert_eq!(f.alloc(0x1000, 4 * MIB, 0, u64::MAX), Ok(0x40_0000));
        assert_eq!(f.alloc(0x10, 0x10, 0, u64::MAX), Ok(0x7f_eff0));
        assert_eq!(f.alloc(0x10, 1, 0, u64::MAX), Ok(0x7f_efe0));
    }

    #[test]
    fn alloc_stays_within_min_and_max() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 64 * MIB);
        // Below 16 MiB, e.g. for ISA DMA.
        assert_eq!(f.alloc(0x2000, 0x1000, 0, 16 * MIB), Ok(16 * MIB - 0x2000));
        f.mb.set_bottom_up(true);
        assert_eq!(f.alloc(0x2000, 0x1000, 3 * MIB, 4 * MIB), Ok(3 * MIB));
        assert_eq!(
            f.alloc(0x2000, 0x1000, 3 * MIB, 4 * MIB),
            Ok(3 * MIB + 0x2000)
        );
        // A window smaller than the request.
        assert_eq!(
            f.alloc(0x2000, 0x1000, 5 * MIB, 5 * MIB + 0x1000),
            Err(MemblockError::NoSpace {
                size: 0x2000,
                align: 0x1000,
                min: 5 * MIB,
                max: 5 * MIB + 0x1000
            })
        );
        // An empty or inverted window.
        assert!(f.alloc(0x1000, 0x1000, 6 * MIB, 6 * MIB).is_err());
        assert!(f.alloc(0x1000, 0x1000, 7 * MIB, 6 * MIB).is_err());
    }

    #[test]
    fn alloc_respects_current_limit() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 64 * MIB);
        f.mb.set_current_limit(4 * MIB);
        assert_eq!(f.mb.current_limit(), 4 * MIB);
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(4 * MIB - 0x1000));
        assert_eq!(f.alloc(0x1000, 0x1000, 0, 32 * MIB), Ok(4 * MIB - 0x2000));
        assert!(f.alloc(0x1000, 0x1000, 4 * MIB, u64::MAX).is_err());
        f.mb.set_current_limit(0);
        assert!(f.alloc(0x1000, 0x1000, 0, u64::MAX).is_err());
        f.mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(64 * MIB));
    }

    #[test]
    fn alloc_top_down_picks_the_highest_fit() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0x70_0000)
            .reserve(0x10_0000, 0x6f_f000);
        assert!(!f.mb.bottom_up());
        // One page is free at the top of high memory: a page fits there, two
        // pages only at the top of low memory.
        assert_eq!(f.alloc(0x2000, 0x1000, 0, u64::MAX), Ok(0x9_d000));
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(0x7f_f000));
    }

    #[test]
    fn alloc_bottom_up_picks_the_lowest_fit() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0x70_0000)
            .reserve(0x1000, 0x9_d000);
        f.mb.set_bottom_up(true);
        assert!(f.mb.bottom_up());
        // One page is free at the top of low memory.
        assert_eq!(f.alloc(0x2000, 0x1000, 0, u64::MAX), Ok(0x10_0000));
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(0x9_e000));
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(0x10_2000));
    }

    #[test]
    fn alloc_never_returns_the_first_page() {
        let mut f = Fixture::new(8);
        f.add(0, 0x4000);
        f.mb.set_bottom_up(true);
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(0x1000));
        assert_eq!(f.mb.find_in_range(0x1000, 1, 0, 0x1000), None);
    }

    #[test]
    fn alloc_exhaustion_gives_no_space_and_changes_nothing() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x4000);
        let mut got: Vec<u64> = (0..4)
            .map(|_| f.alloc(0x1000, 0x1000, 0, u64::MAX).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, [0x1000, 0x2000, 0x3000, 0x4000]);
        let before = snapshot(&f.mb);
        assert_eq!(
            f.alloc(0x1000, 0x1000, 0, u64::MAX),
            Err(MemblockError::NoSpace {
                size: 0x1000,
                align: 0x1000,
                min: 0,
                max: u64::MAX
            })
        );
        assert_eq!(
            f.mb.alloc_range(0x1000, 0x1000, 0, u64::MAX, &mut f.ram),
            Err(MemblockError::NoSpace {
                size: 0x1000,
                align: 0x1000,
                min: 0,
                max: u64::MAX
            })
        );
        assert_eq!(snapshot(&f.mb), before);
        // Freeing one page makes exactly that page allocatable again.
        f.free(0x3000, 0x1000);
        assert_eq!(f.alloc(0x1000, 0x1000, 0, u64::MAX), Ok(0x3000));
    }

    #[test]
    fn alloc_rejects_zero_size_and_bad_alignment() {
        let mut f = Fixture::new(8);
        f.add(0x1000, MIB);
        let before = snapshot(&f.mb);
        assert_eq!(
            f.alloc(0, 0x1000, 0, u64::MAX),
            Err(MemblockError::ZeroSize)
        );
        assert_eq!(
            f.alloc(0x1000, 0, 0, u64::MAX),
            Err(MemblockError::BadAlign(0))
        );
        assert_eq!(
            f.alloc(0x1000, 3, 0, u64::MAX),
            Err(MemblockError::BadAlign(3))
        );
        assert_eq!(f.mb.find_in_range(0, 0x1000, 0, u64::MAX), None);
        assert_eq!(f.mb.find_in_range(0x1000, 0x3000, 0, u64::MAX), None);
        // Requests too big for the address space fail cleanly.
        assert!(f.alloc(u64::MAX, 0x1000, 0, u64::MAX).is_err());
        f.mb.set_bottom_up(true);
        assert!(f.alloc(0x1000, 1 << 63, 0, u64::MAX).is_err());
        assert_eq!(snapshot(&f.mb), before.clone().with_bottom_up(true));
    }

    trait WithBottomUp {
        fn with_bottom_up(self, b: bool) -> Self;
    }

    impl WithBottomUp for Snapshot {
        fn with_bottom_up(mut self, b: bool) -> Self {
            self.5 = b;
            self
        }
    }

    #[test]
    fn alloc_range_zeroes_the_memory_and_phys_alloc_range_does_not() {
        let mut f = Fixture::new(8);
        f.add(0, 8 * MIB);
        let pa =
            f.mb.alloc_range(0x1800, 0x1000, 0, u64::MAX, &mut f.ram)
                .unwrap();
        // 8 MiB - 0x1800 = 0x7fe800, aligned down: 0x7fe000.
        assert_eq!(pa, 0x7f_e000);
        assert!(f.ram.all(pa, 0x1800, 0));
        assert!(f.ram.all(pa + 0x1800, 0x800, 0xAA));
        let pa =
            f.mb.phys_alloc_range(0x1000, 0x1000, 0, u64::MAX, &mut f.ram)
                .unwrap();
        assert_eq!(pa, 0x7f_d000);
        assert!(f.ram.all(pa, 0x1000, 0xAA));
        f.mb.check().unwrap();
    }

    // ---- queries ----------------------------------------------------------

    #[test]
    fn free_ranges_are_memory_minus_reserved() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0x70_0000)
            .reserve(0x0, 0x2000)
            .reserve(0x9_e000, 0x7_2000)
            .reserve(0x20_0000, 0x1000);
        assert_eq!(
            free_ranges(&f.mb),
            [
                (0x2000, 0x9_e000),
                (0x11_0000, 0x20_0000),
                (0x20_1000, 0x80_0000)
            ]
        );
        // Nothing reserved: the free ranges are the memory regions.
        let mut g = Fixture::new(8);
        g.add(0x1000, 0x1000).add(0x3000, 0x1000);
        assert_eq!(free_ranges(&g.mb), [(0x1000, 0x2000), (0x3000, 0x4000)]);
    }

    #[test]
    fn region_queries_answer_for_whole_ranges() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0x70_0000)
            .reserve(0x10_0000, 0x1000);
        assert!(f.mb.is_region_memory(0x1000, 0x9_e000));
        assert!(f.mb.is_region_memory(0x5000, 0x1000));
        assert!(!f.mb.is_region_memory(0x9_e000, 0x2000)); // runs into the hole
        assert!(!f.mb.is_region_memory(0x0, 0x2000));
        assert!(!f.mb.is_region_memory(0x8_0000, 0x10_0000)); // spans the hole
        assert!(f.mb.is_region_memory(0x7f_f000, 0));
        assert!(!f.mb.is_region_memory(0x80_0000, 0));
        assert!(!f.mb.is_region_memory(0x7f_f000, u64::MAX));

        assert!(f.mb.is_region_reserved(0x10_0fff, 1));
        assert!(f.mb.is_region_reserved(0xf_f000, 0x2000));
        assert!(!f.mb.is_region_reserved(0xf_f000, 0x1000)); // ends where it starts
        assert!(!f.mb.is_region_reserved(0x10_1000, 0x1000));
        assert!(!f.mb.is_region_reserved(0x10_0000, 0));
        assert!(f.mb.is_region_reserved(0x0, u64::MAX));
    }

    // ---- growth -----------------------------------------------------------

    /// Half-open array ranges `(pa, pa + bytes)` memblock currently owns.
    fn storages(mb: &Memblock) -> Vec<(u64, u64)> {
        [&mb.memory, &mb.reserved]
            .iter()
            .filter_map(|t| t.storage_pa().map(|pa| (pa, pa + t.storage_bytes())))
            .collect()
    }

    /// `(max, storage range)` of memory, then of reserved.
    fn arrays(mb: &Memblock) -> [(usize, Option<(u64, u64)>); 2] {
        [&mb.memory, &mb.reserved].map(|t| {
            (
                t.max(),
                t.storage_pa().map(|pa| (pa, pa + t.storage_bytes())),
            )
        })
    }

    fn array_bytes(cap: usize) -> u64 {
        (cap as u64 * size_of::<MemblockRegion>() as u64).next_multiple_of(P)
    }

    #[test]
    fn growth_keeps_all_regions_and_reserves_the_arrays() {
        let mut f = Fixture::new(4);
        // 50 disjoint 64 KiB regions, 128 KiB apart, added out of order.
        let order: Vec<u64> = (0..50).map(|i| (i * 7) % 50).collect();
        for &i in &order {
            f.add(i * 0x2_0000, 0x1_0000);
        }
        for &i in &order {
            f.reserve(i * 0x2_0000 + 0x4000, 0x1000);
        }
        let expected_memory: Vec<(u64, u64)> = (0..50).map(|i| (i * 0x2_0000, 0x1_0000)).collect();
        assert_eq!(ranges(&f.mb.memory), expected_memory);
        assert!(f.mb.memory.max() >= 50 && f.mb.reserved.max() >= 52);

        // reserved = the 50 user reservations + the two current arrays,
        // computed with a memblock whose arrays never grow.
        let mut model = Memblock::new(leak(256), leak(256));
        for i in 0..50 {
            model
                .reserve(i * 0x2_0000 + 0x4000, 0x1000, &mut f.ram)
                .unwrap();
        }
        let current = storages(&f.mb);
        assert_eq!(current.len(), 2);
        for &(start, end) in &current {
            assert!(start.is_multiple_of(P) && end.is_multiple_of(P));
            model.reserve(start, end - start, &mut f.ram).unwrap();
        }
        assert_eq!(ranges(&f.mb.reserved), ranges(&model.reserved));

        // Every outgrown array was freed: what is left of it is reserved only
        // where a current array reuses the space.
        assert!(f.ram.arrays.len() >= 8);
        for &(pa, cap) in &f.ram.arrays {
            let (start, end) = (pa, pa + array_bytes(cap));
            if current.contains(&(start, end)) {
                continue;
            }
            for page in (start..end).step_by(P as usize) {
                let in_current = current.iter().any(|&(s, e)| s <= page && page < e);
                assert_eq!(
                    f.mb.is_region_reserved(page, P),
                    in_current,
                    "page {page:#x}"
                );
            }
        }
    }

    #[test]
    fn growth_of_memory_grows_a_full_reserved_array_too() {
        let mut f = Fixture::new(4);
        f.add(0x10_0000, MIB);
        for i in 0..4 {
            f.reserve(0x1000 + i * 0x2000, 0x1000);
        }
        for i in 1..4 {
            f.add(0x1000 * i * 2, 0x1000);
        }
        assert_eq!((f.mb.memory.cnt(), f.mb.reserved.cnt()), (4, 4));
        f.add(0x30_0000, 0x1000);
        assert_eq!(f.mb.memory.cnt(), 5);
        let current = storages(&f.mb);
        assert_eq!(current.len(), 2);
        for (start, end) in current {
            assert!(f.mb.is_region_memory(start, end - start));
            let covered = |r: &MemblockRegion| r.base <= start && end <= r.end();
            assert!(f.mb.reserved.regions().iter().any(covered));
        }
        // Top-down: the reserved array was planned after the memory array,
        // just below it.
        assert_eq!(f.mb.memory.storage_pa(), Some(0x1f_f000));
        assert_eq!(f.mb.reserved.storage_pa(), Some(0x1f_e000));
    }

    #[test]
    fn growth_never_places_an_array_in_the_range_being_changed() {
        // Reserving the top page while the reserved array is full: without
        // the exclusion, the new array would be put in that very page.
        let mut f = Fixture::new(4);
        f.add(0, MIB);
        for i in 1..5 {
            f.reserve(i * 0x1_0000, 0x1000);
        }
        f.reserve(MIB - 0x1000, 0x1000);
        assert_eq!(f.mb.reserved.storage_pa(), Some(MIB - 0x2000));
        assert_eq!(
            f.mb.reserved.regions().last(),
            Some(&MemblockRegion {
                base: MIB - 0x2000,
                size: 0x2000,
                flags: 0
            })
        );

        // Removing memory at the top while the memory array is full.
        let mut g = Fixture::new(4);
        g.add(0x1000, 0x1000)
            .add(0x3000, 0x1000)
            .add(0x5000, 0x1000)
            .add(0x1_0000, 0x1_0000);
        g.remove(0x1_f000, 0x800);
        assert_eq!(g.mb.memory.storage_pa(), Some(0x1_e000));
        assert!(g.mb.is_region_memory(0x1_e000, 0x1000));
    }

    #[test]
    fn growth_failure_gives_array_full_and_changes_nothing() {
        let mut f = Fixture::new(4);
        // Four one-page memory regions, all reserved: no free memory at all.
        for base in [0x1000, 0x3000, 0x5000, 0x7000] {
            f.add(base, 0x1000).reserve(base, 0x1000);
        }
        let before = snapshot(&f.mb);
        assert_eq!(
            f.mb.reserve(0x9000, 0x1000, &mut f.ram),
            Err(MemblockError::ArrayFull { name: "reserved" })
        );
        assert_eq!(
            f.mb.add(0x9000, 0x1000, &mut f.ram),
            Err(MemblockError::ArrayFull { name: "memory" })
        );
        // Splits need a slot too.
        assert_eq!(
            f.mb.free(0x1000, 0x800, &mut f.ram),
            Err(MemblockError::ArrayFull { name: "reserved" })
        );
        assert_eq!(
            f.mb.remove(0x3800, 0x100, &mut f.ram),
            Err(MemblockError::ArrayFull { name: "memory" })
        );
        assert!(matches!(
            f.mb.phys_alloc_range(0x1000, 0x1000, 0, u64::MAX, &mut f.ram),
            Err(MemblockError::NoSpace { .. })
        ));
        f.mb.check().unwrap();
        assert_eq!(snapshot(&f.mb), before);
        assert!(f.ram.arrays.is_empty());

        // Free memory exists, but the new memory array needs the reserved
        // array to grow as well, and there is room for only one of them.
        let mut g = Fixture::new(4);
        for base in [0x1000, 0x3000, 0x5000] {
            g.add(base, 0x1000).reserve(base, 0x1000);
        }
        g.add(0x7000, 0x1000).reserve(0x20_0000, 0x1000);
        let before = snapshot(&g.mb);
        assert_eq!(
            g.mb.add(0x9000, 0x800, &mut g.ram),
            Err(MemblockError::ArrayFull { name: "reserved" })
        );
        g.mb.check().unwrap();
        assert_eq!(snapshot(&g.mb), before);
    }

    #[test]
    fn initial_arrays_hold_init_memblock_regions() {
        let mut f = Fixture {
            mb: Memblock::new(leak(INIT_MEMBLOCK_REGIONS), leak(INIT_MEMBLOCK_REGIONS)),
            ram: FakeRam::new(0),
        };
        for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
            f.add(i * 0x2000, 0x1000);
        }
        assert_eq!(f.mb.memory.cnt(), INIT_MEMBLOCK_REGIONS);
        assert_eq!(f.mb.memory.max(), INIT_MEMBLOCK_REGIONS);
        assert!(f.ram.arrays.is_empty());
        assert_eq!(f.mb.memory.name(), "memory");
        assert_eq!(f.mb.reserved.name(), "reserved");
    }

    // ---- output -----------------------------------------------------------

    #[test]
    fn dump_matches_linux_format() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0x7f0_0000)
            .reserve(0x1000, 0x1000)
            .reserve(0x10_0000, 0x13_3000);
        let mut lines = Vec::new();
        f.mb.dump(|args| lines.push(args.to_string()));
        assert_eq!(
            lines,
            [
                "MEMBLOCK configuration:",
                " memory size = 0x07f9e000 reserved size = 0x00134000",
                " memory.cnt  = 0x2",
                " memory[0x0]\t[0x00001000-0x0009efff], 0x0009e000 bytes flags: 0x0",
                " memory[0x1]\t[0x00100000-0x07ffffff], 0x07f00000 bytes flags: 0x0",
                " reserved.cnt  = 0x2",
                " reserved[0x0]\t[0x00001000-0x00001fff], 0x00001000 bytes flags: 0x0",
                " reserved[0x1]\t[0x00100000-0x00232fff], 0x00133000 bytes flags: 0x0",
            ]
        );
    }

    #[test]
    fn dump_of_an_empty_memblock() {
        let f = Fixture::new(4);
        let mut lines = Vec::new();
        f.mb.dump(|args| lines.push(args.to_string()));
        assert_eq!(
            lines,
            [
                "MEMBLOCK configuration:",
                " memory size = 0x00000000 reserved size = 0x00000000",
                " memory.cnt  = 0x0",
                " reserved.cnt  = 0x0",
            ]
        );
    }

    #[test]
    fn display_summarises_both_types() {
        let mut f = Fixture::new(8);
        f.add(0x1000, 0x9_e000)
            .add(0x10_0000, 0xf0_0000)
            .add(0x110_0000, 0x6fe_0000);
        for i in 1..6 {
            f.reserve(i * MIB, 0x4_0000);
        }
        assert_eq!(
            f.mb.to_string(),
            "memory 3 regions 133685248 bytes, reserved 5 regions 1310720 bytes"
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            MemblockError::NoSpace {
                size: 0x2000,
                align: 0x1000,
                min: 0,
                max: 0x100_0000
            }
            .to_string(),
            "memblock: no free range of 0x2000 bytes aligned to 0x1000 in [0x0, 0x1000000)"
        );
        assert_eq!(
            MemblockError::BadAlign(3).to_string(),
            "memblock: alignment 0x3 is not a power of two"
        );
        assert_eq!(
            MemblockError::Overflow {
                base: 0xffff_ffff_ffff_f000,
                size: 0x2000
            }
            .to_string(),
            "memblock: range at 0xfffffffffffff000 of 0x2000 bytes overflows the address space"
        );
        assert_eq!(
            MemblockError::ZeroSize.to_string(),
            "memblock: allocation of zero bytes"
        );
        assert_eq!(
            MemblockError::ArrayFull { name: "reserved" }.to_string(),
            "memblock: reserved array is full and no free memory can hold a bigger one"
        );
    }

    #[test]
    fn check_reports_broken_invariants() {
        let regions = leak(4);
        regions[0] = MemblockRegion {
            base: 0x2000,
            size: 0x1000,
            flags: 0,
        };
        regions[1] = MemblockRegion {
            base: 0x3000,
            size: 0x1000,
            flags: 0,
        };
        let mut t = MemblockType::new("memory", leak(4));
        t.regions = regions;
        t.cnt = 2;
        t.total_size = 0x2000;
        assert_eq!(t.check(), Err("memblock: adjacent regions were not merged"));
        t.regions[1].base = 0x2800;
        assert_eq!(t.check(), Err("memblock: regions are unsorted or overlap"));
        t.regions[1].base = 0x5000;
        assert_eq!(t.check(), Ok(()));
        t.total_size = 0x1000;
        assert!(t.check().is_err());
        t.total_size = 0x2000;
        t.regions[1].size = 0;
        assert!(t.check().is_err());
    }

    // ---- randomized, against a page-bitmap model --------------------------

    /// Pages in the model: 4 MiB of physical address space.
    const MODEL_PAGES: u64 = 1024;

    #[derive(Clone, Debug)]
    enum Op {
        /// `(first page, pages)` for the four range operations.
        Add(u64, u64),
        Remove(u64, u64),
        Reserve(u64, u64),
        Free(u64, u64),
        Alloc {
            size: u64,
            align: u64,
            min: u64,
            max: u64,
            zero: bool,
        },
        BottomUp(bool),
        Limit(u64),
    }

    fn page_range() -> impl Strategy<Value = (u64, u64)> {
        (0..MODEL_PAGES, 0u64..80).prop_map(|(p, n)| (p, n.min(MODEL_PAGES - p)))
    }

    fn op() -> impl Strategy<Value = Op> {
        let bound = || {
            prop_oneof![
                3 => (0u64..MODEL_PAGES + 64).prop_map(|p| p * P),
                1 => Just(u64::MAX),
            ]
        };
        prop_oneof![
            4 => page_range().prop_map(|(p, n)| Op::Add(p, n)),
            1 => page_range().prop_map(|(p, n)| Op::Remove(p, n)),
            3 => page_range().prop_map(|(p, n)| Op::Reserve(p, n)),
            2 => page_range().prop_map(|(p, n)| Op::Free(p, n)),
            4 => (1u64..24, 0u32..17, 0u64..MODEL_PAGES + 64, bound(), any::<bool>()).prop_map(
                |(pages, align_log2, min_page, max, zero)| Op::Alloc {
                    size: pages * P,
                    align: 1 << align_log2,
                    min: min_page * P,
                    max,
                    zero,
                }
            ),
            1 => any::<bool>().prop_map(Op::BottomUp),
            1 => prop_oneof![Just(u64::MAX), bound()].prop_map(Op::Limit),
        ]
    }

    /// One bit per page for `memory` and `reserved`, plus the pages of
    /// allocations not freed since.
    struct Model {
        memory: Vec<bool>,
        reserved: Vec<bool>,
        allocated: Vec<bool>,
        bottom_up: bool,
        limit: u64,
    }

    fn set(bits: &mut [bool], start: u64, end: u64, value: bool) {
        bits[(start / P) as usize..(end / P) as usize].fill(value);
    }

    fn bitmap(t: &MemblockType) -> Vec<bool> {
        let mut bits = vec![false; MODEL_PAGES as usize];
        for r in t.regions() {
            assert!(
                r.base.is_multiple_of(P) && r.size.is_multiple_of(P),
                "{r:?}"
            );
            assert!(r.end() <= MODEL_PAGES * P, "{r:?}");
            set(&mut bits, r.base, r.end(), true);
        }
        bits
    }

    /// The set bits as half-open address ranges, for readable failures.
    fn runs(bits: &[bool]) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        for (page, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
            let pa = page as u64 * P;
            match v.last_mut() {
                Some(last) if last.1 == pa => last.1 = pa + P,
                _ => v.push((pa, pa + P)),
            }
        }
        v
    }

    impl Model {
        fn free(&self, page: u64) -> bool {
            self.memory[page as usize] && !self.reserved[page as usize]
        }

        /// The answer by brute force: every aligned, page-aligned start in
        /// the window, highest or lowest first.
        fn find(&self, size: u64, align: u64, min: u64, max: u64) -> Option<u64> {
            let step = align.max(P);
            let start = min.max(P);
            let end = max.min(self.limit).min(MODEL_PAGES * P);
            if start >= end || end - start < size {
                return None;
            }
            let first = start.next_multiple_of(step);
            let last = (end - size) / step * step;
            if first > last {
                return None;
            }
            let fits = |s: &u64| (s / P..(s + size) / P).all(|p| self.free(p));
            let candidates = (0..=(last - first) / step).map(|k| first + k * step);
            if self.bottom_up {
                candidates.clone().find(fits)
            } else {
                candidates.rev().find(fits)
            }
        }
    }

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut ram = FakeRam::new((MODEL_PAGES * P) as usize);
        let mut mb = Memblock::new(leak(4), leak(4));
        let mut m = Model {
            memory: vec![false; MODEL_PAGES as usize],
            reserved: vec![false; MODEL_PAGES as usize],
            allocated: vec![false; MODEL_PAGES as usize],
            bottom_up: false,
            limit: u64::MAX,
        };
        for op in ops {
            let before = snapshot(&mb);
            let arrays_before = arrays(&mb);
            let expected = match op {
                Op::Alloc {
                    size,
                    align,
                    min,
                    max,
                    ..
                } => m.find(size, align, min, max),
                _ => None,
            };
            let outcome = match op {
                Op::Add(p, n) => mb.add(p * P, n * P, &mut ram).map(|()| None),
                Op::Remove(p, n) => mb.remove(p * P, n * P, &mut ram).map(|()| None),
                Op::Reserve(p, n) => mb.reserve(p * P, n * P, &mut ram).map(|()| None),
                Op::Free(p, n) => mb.free(p * P, n * P, &mut ram).map(|()| None),
                Op::Alloc {
                    size,
                    align,
                    min,
                    max,
                    zero: true,
                } => {
                    if let Some(pa) = expected {
                        ram.fill(pa, size, 0xAA);
                    }
                    mb.alloc_range(size, align, min, max, &mut ram).map(Some)
                }
                Op::Alloc {
                    size,
                    align,
                    min,
                    max,
                    zero: false,
                } => mb
                    .phys_alloc_range(size, align, min, max, &mut ram)
                    .map(Some),
                Op::BottomUp(b) => {
                    mb.set_bottom_up(b);
                    m.bottom_up = b;
                    Ok(None)
                }
                Op::Limit(l) => {
                    mb.set_current_limit(l);
                    m.limit = l;
                    Ok(None)
                }
            };
            prop_assert_eq!(mb.check(), Ok(()));

            match outcome {
                Err(MemblockError::NoSpace { .. }) => {
                    prop_assert_eq!(expected, None);
                    prop_assert_eq!(snapshot(&mb), before);
                }
                Err(MemblockError::ArrayFull { .. }) => {
                    prop_assert_eq!(snapshot(&mb), before);
                }
                Err(MemblockError::ArrayInUse { base, size }) => {
                    let Op::Free(p, n) = op else {
                        return Err(TestCaseError::fail(
                            "ArrayInUse from an operation other than free",
                        ));
                    };
                    prop_assert!(p * P < base + size && base < (p + n) * P);
                    prop_assert_eq!(snapshot(&mb), before);
                }
                Err(e) => prop_assert!(false, "unexpected error: {}", e),
                Ok(got) => {
                    if let Op::Alloc { size, zero, .. } = op {
                        let pa = got.unwrap();
                        prop_assert_eq!(Some(pa), expected, "{:?}", op);
                        for page in pa / P..(pa + size) / P {
                            prop_assert!(m.free(page), "page {:#x} was not free", page * P);
                            prop_assert!(!m.allocated[page as usize]);
                        }
                        if zero {
                            prop_assert!(ram.all(pa, size, 0));
                        }
                    }
                    // Growth first, reserved before memory (as double_array()
                    // installs them): the outgrown array is freed, the new one
                    // reserved. A grown array is recognised by its capacity,
                    // not its address: if a random free() released an array,
                    // its successor can land at the same place.
                    for (old, new) in arrays_before.into_iter().zip(arrays(&mb)).rev() {
                        if old.0 != new.0 {
                            if let Some((s, e)) = old.1 {
                                set(&mut m.reserved, s, e, false);
                            }
                            let (s, e) = new.1.unwrap();
                            set(&mut m.reserved, s, e, true);
                        }
                    }
                    match op {
                        Op::Add(p, n) => set(&mut m.memory, p * P, (p + n) * P, true),
                        Op::Remove(p, n) => set(&mut m.memory, p * P, (p + n) * P, false),
                        Op::Reserve(p, n) => set(&mut m.reserved, p * P, (p + n) * P, true),
                        Op::Free(p, n) => {
                            set(&mut m.reserved, p * P, (p + n) * P, false);
                            set(&mut m.allocated, p * P, (p + n) * P, false);
                        }
                        Op::Alloc { size, .. } => {
                            let pa = got.unwrap();
                            set(&mut m.reserved, pa, pa + size, true);
                            set(&mut m.allocated, pa, pa + size, true);
                        }
                        Op::BottomUp(_) | Op::Limit(_) => {}
                    }
                }
            }

            prop_assert_eq!(
                runs(&bitmap(&mb.memory)),
                runs(&m.memory),
                "memory after {:?}",
                op
            );
            prop_assert_eq!(
                runs(&bitmap(&mb.reserved)),
                runs(&m.reserved),
                "reserved after {:?}",
                op
            );
            let mut free = vec![false; MODEL_PAGES as usize];
            mb.for_each_free_range(|s, e| set(&mut free, s, e, true));
            let model_free: Vec<bool> = (0..MODEL_PAGES).map(|p| m.free(p)).collect();
            prop_assert_eq!(runs(&free), runs(&model_free), "free ranges after {:?}", op);
        }
        Ok(())
    }

    /// Any `u64`, biased towards the edges and small values.
    fn any_addr() -> impl Strategy<Value = u64> {
        prop_oneof![
            2 => 0u64..0x10_0000,
            1 => any::<u64>(),
            1 => prop_oneof![Just(0), Just(1), Just(1 << 32), Just(u64::MAX), Just(u64::MAX - 0xfff)],
            1 => (0u64..0x1000).prop_map(|d| u64::MAX - d),
        ]
    }

    /// Runs arbitrary inputs: no panic, invariants hold, failures change
    /// nothing.
    fn run_arbitrary(ops: Vec<(u8, u64, u64, u64)>) -> Result<(), TestCaseError> {
        let mut ram = FakeRam::new(MIB as usize);
        let mut mb = Memblock::new(leak(2), leak(2));
        for (kind, a, b, c) in ops {
            let before = snapshot(&mb);
            let result = match kind % 8 {
                0 => mb.add(a, b, &mut ram),
                1 => mb.remove(a, b, &mut ram),
                2 => mb.reserve(a, b, &mut ram),
                3 => mb.free(a, b, &mut ram),
                4 => mb
                    .alloc_range(a, b, c, c.wrapping_add(a), &mut ram)
                    .map(drop),
                5 => mb
                    .phys_alloc_range(a % 0x10_0000, 1 << (b % 64), c, u64::MAX, &mut ram)
                    .map(drop),
                6 => {
                    mb.set_bottom_up(a % 2 == 0);
                    mb.set_current_limit(b);
                    Ok(())
                }
                _ => {
                    let _ = mb.find_in_range(a, b, c, u64::MAX);
                    let _ = (mb.is_region_memory(a, b), mb.is_region_reserved(a, b));
                    mb.for_each_free_range(|s, e| assert!(s < e));
                    mb.dump(|args| drop(args.to_string()));
                    Ok(())
                }
            };
            prop_assert_eq!(mb.check(), Ok(()));
            if result.is_err() {
                prop_assert_eq!(snapshot(&mb), before);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_inputs_never_panic_or_break_invariants(
            ops in prop::collection::vec((any::<u8>(), any_addr(), any_addr(), any_addr()), 1..60)
        ) {
            run_arbitrary(ops)?;
        }

        #[test]
        fn random_operations_match_a_page_bitmap_model(
            ops in prop::collection::vec(op(), 1..100)
        ) {
            run(ops)?;
        }
    }
}
