//! vmalloc address bookkeeping: which parts of the vmalloc area are in use
//! (Linux `mm/vmalloc.c`, the `vmap_area` trees).
//!
//! # Overview
//! `vmalloc(size)` returns memory that is contiguous in *virtual* addresses
//! but built from pages that can sit anywhere in physical memory (and can be
//! HighMem). The kernel does it in two steps:
//!
//! 1. reserve a free range of virtual addresses in
//!    `[VMALLOC_START, VMALLOC_END)` ([`crate::mm::layout`]) — this module;
//! 2. allocate pages one by one and map them into that range through the page
//!    tables — the kernel's job, not this module's. A [`VmKind::Demand`] area
//!    skips step 2 at allocation time: the page-fault handler maps a page the
//!    first time it is touched.
//!
//! This module only does step 1, the address bookkeeping: it never touches a
//! page table, so it is pure Rust and is tested on the host.
//!
//! ```text
//!  VMALLOC_START                                                VMALLOC_END
//!  | area A (2 pages) |g| area B (1 page) |g|   free     | area C |g| free |
//!  [--- A.size, incl. the guard page ----)
//!  [-- A usable --)
//! ```
//!
//! # Guard pages
//! Every area is one page larger than asked for: its last page, the *guard
//! page*, is never mapped. Running off the end of a vmalloc buffer therefore
//! faults at once instead of silently corrupting the next area. Linux does
//! the same in `__get_vm_area_node()` (`size += PAGE_SIZE` unless the caller
//! passes `VM_NO_GUARD`), and `/proc/vmallocinfo` prints sizes that include
//! the guard page. [`VmArea::size`] includes it; [`VmArea::nr_pages`] and
//! [`VmArea::usable_end`] do not. Because the guard page belongs to the area
//! that precedes it, it can never be handed out as part of another area.
//!
//! # Data structures, and why a balanced tree
//! The allocator keeps three ordered maps (`alloc::collections::BTreeMap`, a
//! balanced B-tree whose nodes come from the kernel heap, kmalloc):
//!
//! - free ranges by start address, `start -> size`: on [`free`], the free
//!   neighbours of the released area are found in O(log n) and merged with
//!   it, so free ranges never touch (that is an invariant);
//! - the same free ranges by `(size, start)`: an allocation takes the
//!   *smallest* free range that fits (best fit), the lowest address among
//!   ranges of equal size, with one O(log n) range query;
//! - busy areas by start address, `start -> VmArea`: [`find`] looks up the
//!   area containing any address in O(log n) with
//!   `range(..=addr).next_back()` (the area with the greatest start `<=
//!   addr`, then a bounds check), which the page-fault handler needs for
//!   every fault in the vmalloc area.
//!
//! So allocation, freeing and lookup are all O(log n) in the number of
//! areas. The simple alternative described on OSDev (a linked list of
//! regions sorted by address) needs an O(n) walk for each of the three
//! operations; that is fine for ten areas but not for the thousands a real
//! kernel has (every module, every kernel stack with `VMAP_STACK`, every
//! `ioremap()`).
//!
//! Linux (since 5.2) keeps the free ranges in an *augmented* red-black tree,
//! `free_vmap_area_root`: each node also stores the largest free size in its
//! subtree (`subtree_max_size`), so `find_vmap_lowest_match()` finds, in
//! O(log n), the *lowest-address* free range that fits (first fit, which
//! keeps allocations packed at the bottom of the area). Rust's `BTreeMap`
//! cannot be augmented, and first fit on a plain tree would be an O(n) scan;
//! indexing the free ranges a second time by `(size, start)` gives best fit,
//! also O(log n), and best fit leaves the large holes whole for large
//! requests. Busy areas live in Linux in a second rbtree keyed by address
//! (`vmap_area_root`, searched by `find_vmap_area()`).
//!
//! # Freeing
//! [`free`] returns the range to the free trees at once. The caller must
//! therefore unmap the area's pages and flush the TLB *before* calling it,
//! or the next owner of the range could see stale translations. (Linux frees
//! lazily instead: `free_vmap_area_noflush()` queues areas and
//! `__purge_vmap_area_lazy()` flushes the TLB once for a whole batch.)
//!
//! # Invariants
//! At every return from a public method ([`VmapAllocator::check`] verifies
//! them, and the tests call it after every operation):
//! - busy areas and free ranges together tile `[start, end)` exactly: every
//!   address is in exactly one of them;
//! - every range is page aligned and non-empty; every busy area has at least
//!   one usable page plus its guard page;
//! - no two free ranges are adjacent (they would have been merged);
//! - the two free indexes hold the same ranges.
//!
//! A failed operation changes nothing.
//!
//! # Addresses
//! Area and range addresses are [`VirtAddr`]; sizes are `u32` byte counts.
//!
//! # Example
//! ```
//! use kernel::addr::VirtAddr;
//! use kernel::mm::vmalloc::{VmapAllocator, VmKind};
//!
//! let mut vm = VmapAllocator::new(VirtAddr(0xF880_0000), VirtAddr(0xF881_0000));
//! let a = vm.alloc(5000, VmKind::Mapped).unwrap(); // 2 pages + guard
//! assert_eq!((a.addr, a.size, a.nr_pages), (VirtAddr(0xF880_0000), 0x3000, 2));
//! assert_eq!(vm.find(VirtAddr(0xF880_1FFF)).unwrap().addr, a.addr);
//! let guard = VirtAddr(0xF880_2000);
//! assert!(vm.find(guard).unwrap().in_guard(guard));
//! assert_eq!(a.to_string(), "0xf8800000-0xf8803000   12288 vmalloc pages=2");
//! vm.free(a.addr).unwrap();
//! assert_eq!(vm.stats().nr_free_ranges, 1);
//! ```
//!
//! # References
//! - Linux: `mm/vmalloc.c` (v6.x): `alloc_vmap_area()`,
//!   `find_vmap_lowest_match()`, `find_vmap_area()`, `free_vmap_area()`,
//!   `merge_or_add_vmap_area()`, `__get_vm_area_node()` (the guard page),
//!   `s_show()` (`/proc/vmallocinfo`); `include/linux/vmalloc.h`
//!   (`VM_NO_GUARD`, `get_vm_area_size()`).
//! - Linux: `Documentation/core-api/memory-allocation.rst`.
//! - OSDev wiki, "Writing a memory manager" (the linked-list approach).
//!
//! [`free`]: VmapAllocator::free
//! [`find`]: VmapAllocator::find

#![forbid(unsafe_code)]

use super::layout::{PAGE_SIZE, align_up};
use crate::addr::VirtAddr;
use alloc::collections::{BTreeMap, BTreeSet};
use core::fmt;

/// Value: 4096 (one page). Bytes of unmapped guard page at the end of every
/// area (Linux adds one page unless `VM_NO_GUARD`).
pub const GUARD_SIZE: u32 = PAGE_SIZE;

/// How the pages of an area are provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmKind {
    /// Ordinary `vmalloc()`: the kernel maps every page when it allocates the
    /// area.
    Mapped,
    /// Demand paging: nothing is mapped at allocation; the page-fault handler
    /// maps a fresh page the first time each page is touched and counts the
    /// fault in [`VmArea::demand_faults`].
    Demand,
}

impl VmKind {
    /// The word used for this kind in a `/proc/vmallocinfo`-style line:
    /// `"vmalloc"` or `"demand"`.
    pub fn name(self) -> &'static str {
        match self {
            VmKind::Mapped => "vmalloc",
            VmKind::Demand => "demand",
        }
    }
}

/// One busy area of the vmalloc space (Linux `struct vmap_area` with the
/// parts of `struct vm_struct` this kernel needs).
///
/// The area covers virtual `[addr, addr + size)` in bytes: `nr_pages`
/// usable pages `[addr, usable_end())`, then one guard page
/// `[usable_end(), end())` that is never mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmArea {
    /// First virtual address of the area, page aligned.
    pub addr: VirtAddr,
    /// Bytes reserved, a multiple of `PAGE_SIZE`, *including* the guard page
    /// (as Linux's `vm_struct::size` and `/proc/vmallocinfo`).
    pub size: u32,
    /// Whether pages are mapped at allocation or on first touch.
    pub kind: VmKind,
    /// Usable pages: `size / PAGE_SIZE - 1` (the guard page excluded).
    pub nr_pages: u32,
    /// Page faults the fault handler has resolved in this area (always 0
    /// for [`VmKind::Mapped`]). Starts at 0; the kernel increments it through
    /// [`VmapAllocator::find_mut`].
    pub demand_faults: u32,
}

impl VmArea {
    /// One past the last byte of the area, guard page included:
    /// `addr + size`.
    ///
    /// # Panics
    /// On overflow, which cannot happen for an area returned by
    /// [`VmapAllocator`] (its areas lie below its `end`, a `u32`).
    pub fn end(&self) -> VirtAddr {
        self.addr + self.size
    }

    /// One past the last usable byte: `end() - GUARD_SIZE`, the address of
    /// the guard page.
    ///
    /// # Panics
    /// As [`VmArea::end`], or if `size` is smaller than the guard page.
    pub fn usable_end(&self) -> VirtAddr {
        VirtAddr(self.end().0 - GUARD_SIZE)
    }

    /// Usable bytes, `size - GUARD_SIZE` (Linux `get_vm_area_size()`).
    ///
    /// # Panics
    /// If `size` is smaller than the guard page (never for an area returned
    /// by [`VmapAllocator`]).
    pub fn usable_size(&self) -> u32 {
        self.size - GUARD_SIZE
    }

    /// Whether `va` is in `[addr, end())`, guard page included.
    pub fn contains(&self, va: VirtAddr) -> bool {
        va >= self.addr && va - self.addr < self.size
    }

    /// Whether `va` is in the usable part `[addr, usable_end())`, where the
    /// kernel may map pages.
    pub fn contains_usable(&self, va: VirtAddr) -> bool {
        va >= self.addr && va - self.addr < self.size.saturating_sub(GUARD_SIZE)
    }

    /// Whether `va` is in the guard page `[usable_end(), end())`: an access
    /// there is an overrun of the area and must be reported, not mapped.
    pub fn in_guard(&self, va: VirtAddr) -> bool {
        self.contains(va) && !self.contains_usable(va)
    }
}

/// A line in the style of Linux's `/proc/vmallocinfo`: the range (guard page
/// included), its size in bytes, the kind and the usable pages, plus the
/// fault count for a demand area:
///
/// ```text
/// 0xf8800000-0xf8803000   12288 vmalloc pages=2
/// 0xf8803000-0xf8808000   20480 demand pages=4 faults=1
/// ```
impl fmt::Display for VmArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#010x}-{:#010x} {:7} {} pages={}",
            self.addr,
            u64::from(self.addr.0) + u64::from(self.size),
            self.size,
            self.kind.name(),
            self.nr_pages
        )?;
        if self.kind == VmKind::Demand {
            write!(f, " faults={}", self.demand_faults)?;
        }
        Ok(())
    }
}

/// Why a [`VmapAllocator`] operation failed. A failed operation changes
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmallocError {
    /// [`VmapAllocator::alloc`] of 0 bytes (Linux's `vmalloc(0)` returns
    /// NULL).
    ZeroSize,
    /// The request, rounded up to whole pages plus the guard page, is larger
    /// than the whole managed range, so it could never succeed.
    TooLarge {
        /// Bytes the request would need: `round_up(size, PAGE_SIZE) +
        /// GUARD_SIZE` (a `u64`: it can exceed 4 GiB).
        size: u64,
    },
    /// No free range is large enough: the area is full or too fragmented.
    NoSpace {
        /// Bytes needed, guard page included.
        size: u32,
        /// Bytes in the largest free range (0 if nothing is free).
        largest_free: u32,
    },
    /// [`VmapAllocator::free`] of an address that is not the start of a busy
    /// area: never allocated, already freed, or inside an area (Linux warns
    /// "Trying to vfree() nonexistent vm area").
    NotAllocated {
        /// The address passed to `free`.
        addr: VirtAddr,
    },
}

impl fmt::Display for VmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmallocError::ZeroSize => write!(f, "vmalloc: zero-size request"),
            VmallocError::TooLarge { size } => write!(
                f,
                "vmalloc: {size} bytes (rounded up to pages, plus the guard page) \
                 is more than the whole vmalloc area: it can never fit"
            ),
            VmallocError::NoSpace { size, largest_free } => write!(
                f,
                "vmalloc: no free range of {size} bytes (guard page included); \
                 the largest free range is {largest_free} bytes \
                 (the vmalloc area is full or fragmented)"
            ),
            VmallocError::NotAllocated { addr } => write!(
                f,
                "vfree: {addr:#010x} is not the start of an allocated area \
                 (never allocated, already freed, or inside an area)"
            ),
        }
    }
}

/// A violated invariant of a [`VmapAllocator`] (see the module
/// documentation), as found by [`VmapAllocator::check`]. `at` is the start
/// of the range where the walk from `start` found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmapCheckError {
    /// The two free indexes have different lengths.
    IndexLengths,
    /// A free range is missing from the by-size index.
    NotInSizeIndex {
        /// Start of the free range.
        at: VirtAddr,
    },
    /// A range is both free and busy.
    FreeAndBusy {
        /// Start of the range.
        at: VirtAddr,
    },
    /// An address is neither in a free range nor in a busy area.
    Uncovered {
        /// The first such address.
        at: VirtAddr,
    },
    /// A free range follows another free range without a gap.
    NotMerged {
        /// Start of the second range.
        at: VirtAddr,
    },
    /// A busy area is filed under an address other than its own.
    MisfiledArea {
        /// The key it is filed under.
        at: VirtAddr,
    },
    /// A busy area is smaller than one page plus its guard page.
    NoUsablePage {
        /// Start of the area.
        at: VirtAddr,
    },
    /// A busy area's `nr_pages` disagrees with its size.
    NrPages {
        /// Start of the area.
        at: VirtAddr,
    },
    /// A range is empty or not a whole number of pages.
    NotWholePages {
        /// Start of the range.
        at: VirtAddr,
    },
    /// A range runs past the end of the managed space.
    PastEnd {
        /// Start of the range.
        at: VirtAddr,
    },
    /// A range overlaps another or lies outside `[start, end)`.
    Overlap,
    /// The free byte count disagrees with the free ranges.
    FreeBytes,
}

impl fmt::Display for VmapCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, at) = match *self {
            VmapCheckError::IndexLengths => ("the two free indexes have different lengths", None),
            VmapCheckError::NotInSizeIndex { at } => {
                ("a free range is missing from the by-size index", Some(at))
            }
            VmapCheckError::FreeAndBusy { at } => ("a range is both free and busy", Some(at)),
            VmapCheckError::Uncovered { at } => {
                ("an address range is neither free nor busy", Some(at))
            }
            VmapCheckError::NotMerged { at } => {
                ("two adjacent free ranges were not merged", Some(at))
            }
            VmapCheckError::MisfiledArea { at } => {
                ("a busy area is filed under a wrong address", Some(at))
            }
            VmapCheckError::NoUsablePage { at } => ("a busy area has no usable page", Some(at)),
            VmapCheckError::NrPages { at } => {
                ("a busy area's nr_pages disagrees with its size", Some(at))
            }
            VmapCheckError::NotWholePages { at } => {
                ("a range is empty or not a whole number of pages", Some(at))
            }
            VmapCheckError::PastEnd { at } => {
                ("a range runs past the end of the managed space", Some(at))
            }
            VmapCheckError::Overlap => (
                "a range overlaps another or lies outside [start, end)",
                None,
            ),
            VmapCheckError::FreeBytes => {
                ("the free byte count disagrees with the free ranges", None)
            }
        };
        write!(f, "vmalloc: {what}")?;
        if let Some(at) = at {
            write!(f, " (at {at:#010x})")?;
        }
        Ok(())
    }
}

/// Totals of a [`VmapAllocator`], for reports. Bytes include guard pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmapStats {
    /// Busy areas.
    pub nr_areas: usize,
    /// Bytes in busy areas, guard pages included.
    pub used_bytes: u32,
    /// Bytes in free ranges.
    pub free_bytes: u32,
    /// Bytes in the largest free range (0 if none): the largest reservation
    /// (guard page included) that can succeed now.
    pub largest_free: u32,
    /// Free ranges (a measure of fragmentation: 1 when nothing is allocated).
    pub nr_free_ranges: usize,
}

/// One line: `vmalloc: 3 areas, 45056 bytes used, 1000 bytes free in 2
/// ranges (largest 4096)`.
impl fmt::Display for VmapStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vmalloc: {} areas, {} bytes used, {} bytes free in {} ranges (largest {})",
            self.nr_areas, self.used_bytes, self.free_bytes, self.nr_free_ranges, self.largest_free
        )
    }
}

/// The allocator of virtual address ranges in `[start, end)` (the kernel uses
/// `[VMALLOC_START, VMALLOC_END)`): Linux's `vmap_area` trees. See the
/// module documentation for the data structures and invariants.
#[derive(Clone, Debug)]
pub struct VmapAllocator {
    /// First managed address, page aligned.
    start: VirtAddr,
    /// One past the last managed address, page aligned.
    end: VirtAddr,
    /// Free ranges, `start -> size` in bytes: finds neighbours to merge.
    free_by_start: BTreeMap<VirtAddr, u32>,
    /// The same free ranges as `(size, start)`: best-fit search.
    free_by_size: BTreeSet<(u32, VirtAddr)>,
    /// Busy areas by start address.
    busy: BTreeMap<VirtAddr, VmArea>,
    /// Sum of the free range sizes, in bytes.
    free_bytes: u32,
}

impl VmapAllocator {
    /// An allocator managing virtual `[start, end)` (bytes), all of it free:
    /// one free range.
    ///
    /// # Panics
    /// If `start` or `end` is not page aligned, or `start >= end`.
    pub fn new(start: VirtAddr, end: VirtAddr) -> Self {
        assert!(
            start.is_page_aligned() && end.is_page_aligned(),
            "VmapAllocator::new: [{start:#x}, {end:#x}) is not page aligned"
        );
        assert!(
            start < end,
            "VmapAllocator::new: empty range [{start:#x}, {end:#x})"
        );
        let mut vm = VmapAllocator {
            start,
            end,
            free_by_start: BTreeMap::new(),
            free_by_size: BTreeSet::new(),
            busy: BTreeMap::new(),
            free_bytes: 0,
        };
        vm.insert_free(start, end - start);
        vm
    }

    /// First managed address (bytes, page aligned).
    pub fn start(&self) -> VirtAddr {
        self.start
    }

    /// One past the last managed address (bytes, page aligned).
    pub fn end(&self) -> VirtAddr {
        self.end
    }

    /// Reserves an area for `size` bytes (Linux `alloc_vmap_area()`, called
    /// from `__get_vm_area_node()`).
    ///
    /// The reservation is `round_up(size, PAGE_SIZE)` plus one guard page,
    /// taken from the bottom of the smallest free range that fits (the
    /// lowest-address one among equal sizes). Returns a copy of the new area,
    /// with `demand_faults = 0`; the kernel then maps its pages (for
    /// [`VmKind::Mapped`]). O(log n).
    ///
    /// Example: on an empty allocator at `0xF880_0000`, `alloc(5000, _)`
    /// returns `[0xF880_0000, 0xF880_3000)`: 2 usable pages and the guard
    /// page at `0xF880_2000`.
    ///
    /// # Errors
    /// - [`VmallocError::ZeroSize`] if `size == 0`;
    /// - [`VmallocError::TooLarge`] if the reservation is larger than the
    ///   whole range `[start, end)`;
    /// - [`VmallocError::NoSpace`] if no free range is large enough.
    pub fn alloc(&mut self, size: u32, kind: VmKind) -> Result<VmArea, VmallocError> {
        let total = self.reservation_size(size)?;
        // Best fit: the first (size, start) key not below (total, 0) is the
        // smallest free range of at least `total` bytes, lowest address first.
        let Some(&(hole_size, hole_start)) = self.free_by_size.range((total, VirtAddr(0))..).next()
        else {
            return Err(VmallocError::NoSpace {
                size: total,
                largest_free: self.largest_free(),
            });
        };
        self.remove_free(hole_start, hole_size);
        if hole_size > total {
            // The rest of the hole stays free.
            self.insert_free(hole_start + total, hole_size - total);
        }
        let area = VmArea {
            addr: hole_start,
            size: total,
            kind,
            nr_pages: total / PAGE_SIZE - 1,
            demand_faults: 0,
        };
        self.busy.insert(hole_start, area);
        Ok(area)
    }

    /// The busy area whose `[addr, addr + size)` contains `va`, guard page
    /// included (Linux `find_vmap_area()`), or `None` if `va` is free or
    /// outside `[start, end)`. O(log n).
    ///
    /// The page-fault handler uses it to tell a demand fault
    /// ([`VmArea::contains_usable`]) from an overrun into a guard page
    /// ([`VmArea::in_guard`]) or a stray access to free space (`None`).
    pub fn find(&self, va: VirtAddr) -> Option<&VmArea> {
        // The area with the greatest start <= va is the only candidate.
        let (_, area) = self.busy.range(..=va).next_back()?;
        area.contains(va).then_some(area)
    }

    /// As [`VmapAllocator::find`], but mutable, so that the fault handler can
    /// count [`VmArea::demand_faults`]. The caller must not change `addr`,
    /// `size` or `nr_pages` ([`VmapAllocator::check`] would report it).
    pub fn find_mut(&mut self, va: VirtAddr) -> Option<&mut VmArea> {
        let (_, area) = self.busy.range_mut(..=va).next_back()?;
        if area.contains(va) { Some(area) } else { None }
    }

    /// Releases the area starting at `addr` (Linux `free_vmap_area()`, called
    /// from `vfree()`), merging its range with the free ranges on either
    /// side (Linux `merge_or_add_vmap_area()`), and returns the area as it
    /// was (with its fault count). O(log n).
    ///
    /// The range can be handed out again by the next [`alloc`], so the
    /// kernel must unmap the pages and flush the TLB before calling this.
    ///
    /// Example: with areas `A | B | C` and `A` and `C` already freed,
    /// freeing `B` leaves one free range covering all three.
    ///
    /// # Errors
    /// [`VmallocError::NotAllocated`] if no busy area starts at `addr`
    /// (double free, never allocated, or an address inside an area).
    ///
    /// [`alloc`]: VmapAllocator::alloc
    pub fn free(&mut self, addr: VirtAddr) -> Result<VmArea, VmallocError> {
        let area = self
            .busy
            .remove(&addr)
            .ok_or(VmallocError::NotAllocated { addr })?;
        let mut start = area.addr;
        let mut size = area.size;
        // Left neighbour: a free range ending exactly where the area starts.
        if let Some((&left, &left_size)) = self.free_by_start.range(..start).next_back()
            && left + left_size == start
        {
            self.remove_free(left, left_size);
            start = left;
            size += left_size;
        }
        // Right neighbour: a free range starting exactly where the area ends.
        let right = start + size;
        if let Some(&right_size) = self.free_by_start.get(&right) {
            self.remove_free(right, right_size);
            size += right_size;
        }
        self.insert_free(start, size);
        Ok(area)
    }

    /// The busy areas in address order (for a `/proc/vmallocinfo`-style
    /// report: print each with `{}`).
    pub fn areas(&self) -> impl Iterator<Item = &VmArea> {
        self.busy.values()
    }

    /// The free ranges in address order, each as `(start, end)`, i.e.
    /// `[start, end)` in bytes.
    pub fn free_ranges(&self) -> impl Iterator<Item = (VirtAddr, VirtAddr)> + '_ {
        self.free_by_start.iter().map(|(&s, &size)| (s, s + size))
    }

    /// Totals: busy areas, used and free bytes, the largest free range and
    /// the number of free ranges. O(log n).
    pub fn stats(&self) -> VmapStats {
        VmapStats {
            nr_areas: self.busy.len(),
            used_bytes: (self.end - self.start) - self.free_bytes,
            free_bytes: self.free_bytes,
            largest_free: self.largest_free(),
            nr_free_ranges: self.free_by_start.len(),
        }
    }

    /// Verifies the invariants of the module documentation. O(n log n);
    /// for tests and debugging.
    ///
    /// # Errors
    /// The first violated invariant, as a [`VmapCheckError`].
    pub fn check(&self) -> Result<(), VmapCheckError> {
        // The two free indexes hold the same ranges: same length, and every
        // by-start entry is in the by-size set (a set has no duplicates).
        if self.free_by_start.len() != self.free_by_size.len() {
            return Err(VmapCheckError::IndexLengths);
        }
        for (&start, &size) in &self.free_by_start {
            if !self.free_by_size.contains(&(size, start)) {
                return Err(VmapCheckError::NotInSizeIndex { at: start });
            }
        }

        // Walk [start, end) from the bottom: each step must begin exactly
        // where the previous one ended, with either a free range or a busy
        // area. Reaching `end` having visited every entry proves the ranges
        // are sorted, disjoint and tile [start, end) exactly.
        let mut cursor = self.start;
        let mut prev_was_free = false;
        let (mut nr_free, mut nr_busy) = (0usize, 0usize);
        let mut free_bytes: u64 = 0;
        while cursor < self.end {
            let at = cursor;
            let free = self.free_by_start.get(&cursor);
            let busy = self.busy.get(&cursor);
            let size = match (free, busy) {
                (Some(_), Some(_)) => return Err(VmapCheckError::FreeAndBusy { at }),
                (None, None) => return Err(VmapCheckError::Uncovered { at }),
                (Some(&size), None) => {
                    if prev_was_free {
                        return Err(VmapCheckError::NotMerged { at });
                    }
                    prev_was_free = true;
                    nr_free += 1;
                    free_bytes += u64::from(size);
                    size
                }
                (None, Some(area)) => {
                    if area.addr != cursor {
                        return Err(VmapCheckError::MisfiledArea { at });
                    }
                    if area.size < PAGE_SIZE + GUARD_SIZE {
                        return Err(VmapCheckError::NoUsablePage { at });
                    }
                    if area.nr_pages != area.size / PAGE_SIZE - 1 {
                        return Err(VmapCheckError::NrPages { at });
                    }
                    prev_was_free = false;
                    nr_busy += 1;
                    area.size
                }
            };
            if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
                return Err(VmapCheckError::NotWholePages { at });
            }
            if size > self.end - cursor {
                return Err(VmapCheckError::PastEnd { at });
            }
            cursor = cursor + size;
        }
        if nr_free != self.free_by_start.len() || nr_busy != self.busy.len() {
            return Err(VmapCheckError::Overlap);
        }
        if free_bytes != u64::from(self.free_bytes) {
            return Err(VmapCheckError::FreeBytes);
        }
        Ok(())
    }

    /// `round_up(size, PAGE_SIZE) + GUARD_SIZE`, computed without overflow.
    fn reservation_size(&self, size: u32) -> Result<u32, VmallocError> {
        if size == 0 {
            return Err(VmallocError::ZeroSize);
        }
        let total = align_up(u64::from(size), u64::from(PAGE_SIZE)) + u64::from(GUARD_SIZE);
        match u32::try_from(total) {
            Ok(total) if total <= self.end - self.start => Ok(total),
            _ => Err(VmallocError::TooLarge { size: total }),
        }
    }

    /// Bytes in the largest free range, 0 if none: the last `(size, start)`
    /// key. O(log n).
    fn largest_free(&self) -> u32 {
        self.free_by_size.last().map_or(0, |&(size, _)| size)
    }

    /// Adds `[start, start + size)` to both free indexes. The caller has
    /// already merged it with its neighbours.
    fn insert_free(&mut self, start: VirtAddr, size: u32) {
        self.free_by_start.insert(start, size);
        self.free_by_size.insert((size, start));
        self.free_bytes += size;
    }

    /// Removes `[start, start + size)` from both free indexes.
    fn remove_free(&mut self, start: VirtAddr, size: u32) {
        self.free_by_start.remove(&start);
        self.free_by_size.remove(&(size, start));
        self.free_bytes -= size;
    }
}

#[cfg(test)]
mod tests;
