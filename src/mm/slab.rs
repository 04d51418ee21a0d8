//! kmalloc: byte-sized allocations from slab caches on top of the buddy
//! allocator (Linux `mm/slab_common.c` and `mm/slub.c`, simplified).
//!
//! The pieces, one file each under `slab/`:
//!
//! - [`size_class`]: which of the thirteen caches serves `size` bytes (Linux
//!   `kmalloc_index()`, `size_index[]`), the caches' names, and the
//!   alignment guarantee;
//! - [`geometry`]: how many pages a cache's slabs take and how many
//!   objects they hold (Linux `calc_slab_order()`);
//! - [`bitmap`]: the slab itself: its on-slab header with the free bitmap,
//!   the partial/full/empty lists linked through the headers, and the
//!   object index by reciprocal (Linux `obj_to_index()`);
//! - [`debug`]: the `slub_debug` layer (debug header, poison, red zones)
//!   and its reports;
//! - [`large`]: requests above 8192 bytes as whole pages;
//! - [`array_cache`]: the stacks of freed objects behind the sized free of
//!   Rust's `GlobalAlloc`;
//! - [`error`]: [`KmallocError`] (Linux's `BUG <cache>:` reports) and
//!   [`ValidateError`].
//!
//! This file holds a cache ([`KmemCache`]) and the allocator's API
//! ([`Kmalloc`]: `kmalloc`, `kfree`, `ksize`, `krealloc`, `shrink`,
//! `validate`), which put the pieces together.
//!
//! # From a pointer back to its cache
//!
//! Every page of a slab is marked in its `mem_map` descriptor with its cache
//! ([`PageUse::Slab`], Linux `PageSlab` + `slab->slab_cache`), the head of a
//! large allocation with [`PageUse::LargeKmalloc`]. `kfree(ptr)` therefore
//! needs no size and no header: page of `ptr` → mark → cache → slab (the
//! aligned block around the page) → object index (a multiply by the
//! reciprocal of the stride, Linux `obj_to_index()`). A pointer whose page
//! is not marked, or that is not the start of an object, is refused with an
//! error instead of corrupting anything.
//!
//! # Empty slabs
//!
//! At most [`MIN_PARTIAL`] empty slabs are kept per cache for reuse;
//! beyond that an emptied slab goes back to the buddy allocator (Linux
//! `discard_slab()` once `nr_partial >= min_partial`).
//! [`Kmalloc::shrink`] returns all of them (Linux `kmem_cache_shrink()`).
//!
//! # Ownership of the pages
//!
//! The buddy allocator hands pages out as an owned [`PageBlock`]. A slab's
//! block stops being one in `Kmalloc::new_slab`, where it becomes a raw
//! `(pfn, order)`: from then on the cache owns the pages, recorded by the
//! page marks and by the slab being on one of the cache's lists (in its
//! header), until `Kmalloc::discard_slab` unmarks them and gives them
//! back with `BuddyAllocator::free_pages_raw`. Large allocations: see
//! [`large`].
//!
//! # Addresses and widths
//!
//! Addresses are 32-bit [`VirtAddr`]s and frames [`Pfn`]s; the slab header
//! words, bitmap words, offsets and strides are `u32`. So the host tests
//! run the very layout of the i386 kernel (header sizes, objects per slab,
//! first-slot offsets), and check it against the numbers the docs quote.
//! Request sizes are `usize`, as Rust's `Layout` gives them.
//!
//! # Memory access
//!
//! This module is pure Rust (`forbid(unsafe_code)`), tested on the host: it
//! reaches memory only through [`SlabMemory`], which the kernel implements
//! with the direct map and the host tests with a `Vec`.

#![forbid(unsafe_code)]

pub mod array_cache;
pub mod bitmap;
pub mod debug;
pub mod error;
pub mod geometry;
pub mod large;
pub mod size_class;

pub use array_cache::{ARRAY_CACHE_LIMIT, array_cache_limit};
pub use debug::{
    DEBUG_HEADER_SIZE, FREE_MAGIC, KMALLOC_MAGIC, POISON_END, POISON_FREE, QUARANTINE_MAGIC,
    RED_ACTIVE, RED_INACTIVE, RED_ZONE_MIN,
};
pub use error::{KmallocError, KmallocErrorKind, ValidateError};
pub use geometry::{SLAB_MAX_ORDER, SLAB_MIN_OBJECTS, SlabGeometry, calculate_order};
pub use large::LargeStats;
pub use size_class::{
    KMALLOC_MAX_CACHE_SIZE, KMALLOC_MIN_SIZE, KMALLOC_SIZES, NR_KMALLOC_CACHES, kmalloc_cache_name,
    kmalloc_index,
};

use crate::addr::{Pfn, VirtAddr};
use crate::mm::buddy::{BuddyAllocator, PageBlock};
use crate::mm::gfp::Gfp;
use crate::mm::layout::{PAGE_SHIFT, PAGE_SIZE};
use crate::mm::page::PageUse;
use crate::mm::zone::MAX_PAGE_ORDER;
use bitmap::{ListId, SLAB_MAGIC, Slab, SlabList, list_add, list_del, obj_to_index, reciprocal};
use core::fmt;
use size_class::{CACHE_NAMES, aligned_size, class_align, kmalloc_index_aligned};

/// Value: 16. What `kmalloc(0)` returns (Linux `ZERO_SIZE_PTR`): not null,
/// so callers that check for failure do not see one, but inside the
/// unmapped null page, so any dereference faults (the fault report names
/// the null page). The same value for every zero-size allocation; `kfree`
/// and `ksize` accept it (doing nothing, returning 0).
pub const ZERO_SIZE_PTR: VirtAddr = VirtAddr(16);

/// Value: 2. Empty slabs kept per cache before further empty slabs go back
/// to the buddy allocator. (Linux computes `min_partial` between 5 and 10;
/// this kernel boots with as little as 8 MiB, where 10 empty order-3 slabs
/// per cache would be 2.5 MiB.)
pub const MIN_PARTIAL: u32 = 2;

/// How the allocator reads and writes memory: the direct map in the
/// kernel, a `Vec` in host tests. Addresses are kernel virtual addresses;
/// every address passed in lies in a page the allocator obtained from the
/// buddy allocator (or is checked with [`virt_to_pfn`](Self::virt_to_pfn)
/// first). Lengths are in bytes.
pub trait SlabMemory {
    /// The permanent virtual address of lowmem page `pfn` (Linux
    /// `page_address()`); linear in `pfn`.
    fn page_address(&self, pfn: Pfn) -> VirtAddr;
    /// The pfn of a lowmem virtual address, `None` outside the direct map
    /// of low memory (Linux `virt_addr_valid()` + `virt_to_pfn()`).
    fn virt_to_pfn(&self, addr: VirtAddr) -> Option<Pfn>;
    /// Reads the aligned `u32` at `addr` (a slab-header word, a debug
    /// header field).
    fn read_u32(&self, addr: VirtAddr) -> u32;
    /// Writes the aligned `u32` at `addr`.
    fn write_u32(&mut self, addr: VirtAddr, value: u32);
    /// Reads the byte at `addr`.
    fn read_u8(&self, addr: VirtAddr) -> u8;
    /// Sets `[addr, addr + len)` to `byte`.
    fn fill(&mut self, addr: VirtAddr, len: u32, byte: u8);
    /// The offset of the first byte of `[addr, addr + len)` that is not
    /// `byte`, if any.
    fn find_mismatch(&self, addr: VirtAddr, len: u32, byte: u8) -> Option<u32>;
    /// Copies `len` bytes from `src` to `dst` (the ranges do not overlap).
    fn copy(&mut self, dst: VirtAddr, src: VirtAddr, len: u32);
}

/// One kmalloc cache: its geometry and its slabs (Linux `struct
/// kmem_cache` with one `kmem_cache_node`).
#[derive(Clone, Debug)]
pub struct KmemCache {
    name: &'static str,
    object_size: u32,
    align: u32,
    /// Bytes from one slot to the next.
    stride: u32,
    /// Offset of the object in its slot (the debug header and left red
    /// zone; 0 without `slub_debug`).
    payload: u32,
    /// Offset of slot 0 from the slab start.
    first_slot: u32,
    objects: u32,
    order: u8,
    bitmap_words: u32,
    /// `ceil(2^32 / stride)` ([`bitmap::obj_to_index`]).
    reciprocal: u64,
    /// Partial, full and empty slabs ([`ListId::slot`]).
    lists: [SlabList; 3],
    active_objs: u32,
    allocs: u64,
    /// Bytes requested by those `allocs` (for the rounding loss).
    requested: u64,
    frees: u64,
    quarantined: u32,
    /// Objects freed through [`Kmalloc::kfree_sized`] and not yet given
    /// back to their slabs, newest last (Linux SLAB `array_cache.entry[]`;
    /// see [`array_cache`]).
    array: [VirtAddr; ARRAY_CACHE_LIMIT],
    /// Entries used in `array` (Linux `array_cache.avail`).
    avail: u32,
    /// Entries `array` may hold: [`array_cache_limit`] of the object size
    /// (Linux `array_cache.limit`).
    limit: u32,
    /// Allocations the array cache could not serve (Linux SLAB's
    /// `allocmiss`).
    alloc_miss: u64,
    /// Sized frees that did not take the array cache's fast path (Linux
    /// SLAB's `freemiss`).
    free_miss: u64,
}

impl KmemCache {
    /// The empty cache of class `index`, with the `slub_debug` layout if
    /// `debug`.
    ///
    /// # Panics
    /// If not one object fits in a slab of the largest order (a class too
    /// large for `SLAB_MAX_ORDER`, e.g. a 16 KiB class under `slub_debug`).
    fn new(index: usize, debug: bool) -> KmemCache {
        let size = KMALLOC_SIZES[index];
        let align = class_align(index) as u32;
        let (payload, stride) = if debug {
            debug::debug_slot(size, align)
        } else {
            (0, size)
        };
        let g = calculate_order(stride, align);
        assert!(
            g.objects >= 1,
            "{}: no object of stride {stride} fits in a slab of order {}",
            CACHE_NAMES[index],
            g.order
        );
        KmemCache {
            name: CACHE_NAMES[index],
            object_size: size,
            align,
            stride,
            payload,
            first_slot: g.first_slot,
            objects: g.objects,
            order: g.order,
            bitmap_words: g.bitmap_words,
            reciprocal: reciprocal(stride),
            lists: [SlabList::default(); 3],
            active_objs: 0,
            allocs: 0,
            requested: 0,
            frees: 0,
            quarantined: 0,
            array: [VirtAddr(0); ARRAY_CACHE_LIMIT],
            avail: 0,
            limit: array_cache_limit(size),
            alloc_miss: 0,
            free_miss: 0,
        }
    }

    /// The cache's name, `kmalloc-<size>`.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Bytes per object (the size class).
    pub fn object_size(&self) -> u32 {
        self.object_size
    }
    /// The alignment every object has: the largest power of two dividing
    /// the size class.
    pub fn align(&self) -> u32 {
        self.align
    }
    /// Bytes from one object to the next (object, plus header and red
    /// zones under `slub_debug`).
    pub fn stride(&self) -> u32 {
        self.stride
    }
    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects
    }
    /// Slab order: log2 of the slab size in pages.
    pub fn order(&self) -> u8 {
        self.order
    }
    /// The slabs' shape: order, objects, bitmap words, first slot.
    pub fn geometry(&self) -> SlabGeometry {
        SlabGeometry {
            order: self.order,
            objects: self.objects,
            bitmap_words: self.bitmap_words,
            first_slot: self.first_slot,
        }
    }
    /// Objects allocated, including quarantined ones and those waiting in
    /// the array cache (as Linux's slabinfo counts them).
    pub fn active_objs(&self) -> u32 {
        self.active_objs
    }
    /// Slabs on all lists.
    pub fn nr_slabs(&self) -> u32 {
        self.lists.iter().map(|l| l.len).sum()
    }
    /// Empty slabs kept for reuse.
    pub fn nr_empty(&self) -> u32 {
        self.lists[ListId::Empty.slot()].len
    }
    /// Objects the slabs hold, used or not.
    pub fn num_objs(&self) -> u32 {
        self.nr_slabs() * self.objects
    }
    /// Successful allocations since boot.
    pub fn allocs(&self) -> u64 {
        self.allocs
    }
    /// Bytes requested by the successful allocations since boot (the
    /// `size` of each `kmalloc`, before rounding up to the class and to
    /// an alignment).
    pub fn requested_bytes(&self) -> u64 {
        self.requested
    }
    /// Bytes handed out since boot: `allocs * object_size`.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocs * u64::from(self.object_size)
    }
    /// Successful frees since boot.
    pub fn frees(&self) -> u64 {
        self.frees
    }
    /// Freed objects waiting in the array cache.
    pub fn array_avail(&self) -> u32 {
        self.avail
    }

    /// Objects the array cache may hold ([`array_cache_limit`]).
    pub fn array_limit(&self) -> u32 {
        self.limit
    }
    /// Allocations of this class the array cache could not serve (it was
    /// empty, or `slub_debug` is on): they went to the slabs (Linux SLAB's
    /// `allocmiss`).
    pub fn alloc_miss(&self) -> u64 {
        self.alloc_miss
    }
    /// Sized frees ([`Kmalloc::kfree_sized`]) that took the slow path
    /// without `slub_debug`: the array cache was full, or the object was on
    /// its top already (Linux SLAB's `freemiss`).
    pub fn free_miss(&self) -> u64 {
        self.free_miss
    }
    /// Objects quarantined after a write-after-free was found.
    pub fn quarantined(&self) -> u32 {
        self.quarantined
    }
    fn list(&mut self, id: ListId) -> &mut SlabList {
        &mut self.lists[id.slot()]
    }
    /// The address of object `obj` of `slab`.
    fn object_addr(&self, slab: Slab, obj: u32) -> VirtAddr {
        slab.addr() + (self.first_slot + self.payload) + obj * self.stride
    }
    /// Pushes `slab` on list `id`.
    fn list_add(&mut self, mem: &mut impl SlabMemory, id: ListId, slab: Slab) {
        list_add(mem, self.list(id), id, slab);
    }
    /// Unlinks `slab` from list `id`.
    fn list_del(&mut self, mem: &mut impl SlabMemory, id: ListId, slab: Slab) {
        list_del(mem, self.list(id), slab);
    }
}

/// One `/proc/slabinfo` line: `name active_objs num_objs objsize objperslab
/// pagesperslab`.
impl fmt::Display for KmemCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {:>7} {:>7} {:>6} {:>5} {:>4}",
            self.name,
            self.active_objs,
            self.num_objs(),
            self.object_size,
            self.objects,
            1u32 << self.order
        )
    }
}

/// The `/proc/slabinfo` column header matching [`KmemCache`]'s Display.
pub const SLABINFO_HEADER: &str = "# name         <active> <total> <size> <obj/slab> <pages/slab>";

/// Size-class rounding since boot: the bytes kmalloc was asked for
/// against the bytes it handed out (usable sizes: the class, or whole
/// pages for a large allocation). Counted per allocation, so it covers
/// every request, not only the live ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundingLoss {
    /// Bytes requested (each `size`, before any rounding).
    pub requested: u64,
    /// Bytes handed out.
    pub allocated: u64,
}

impl RoundingLoss {
    /// Bytes lost to rounding: `allocated - requested` (0 if the fields
    /// were set the other way round).
    pub fn lost(&self) -> u64 {
        self.allocated.saturating_sub(self.requested)
    }
}

/// `requested B requested, allocated B handed out (x.y% lost)`.
impl fmt::Display for RoundingLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tenths of a percent of the bytes handed out, rounded down.
        let permille = (self.lost() * 1000)
            .checked_div(self.allocated)
            .unwrap_or(0);
        write!(
            f,
            "{} bytes requested, {} handed out ({}.{}% lost)",
            self.requested,
            self.allocated,
            permille / 10,
            permille % 10
        )
    }
}

/// The kmalloc allocator: thirteen caches and the large-allocation path.
///
/// Pure bookkeeping: every call takes the buddy allocator the pages come
/// from and the [`SlabMemory`] they are reached through. The kernel keeps
/// one instance behind a lock (`runtime::kmalloc`), which also implements
/// Rust's `GlobalAlloc` on top of it.
#[derive(Clone, Debug)]
pub struct Kmalloc {
    caches: [KmemCache; NR_KMALLOC_CACHES],
    debug: bool,
    large: LargeStats,
    reports: u32,
    last_report: Option<KmallocError>,
}

/// What an address belongs to.
enum Owner {
    Slab { index: usize, slab: Slab, obj: u32 },
    Large { pfn: Pfn, order: u8 },
}

/// Whether `addr` stands for no object: null or [`ZERO_SIZE_PTR`].
fn is_null_or_zero(addr: VirtAddr) -> bool {
    addr == VirtAddr(0) || addr == ZERO_SIZE_PTR
}

impl Kmalloc {
    /// The thirteen caches, empty (no slab is allocated until the first
    /// object is; Linux `create_kmalloc_caches()`), with the `slub_debug`
    /// layer on or off.
    pub fn new(debug: bool) -> Kmalloc {
        Kmalloc {
            caches: core::array::from_fn(|i| KmemCache::new(i, debug)),
            debug,
            large: LargeStats::default(),
            reports: 0,
            last_report: None,
        }
    }

    /// Whether the `slub_debug` layer (header, poison, red zones) is on.
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// The caches, smallest class first.
    pub fn caches(&self) -> &[KmemCache; NR_KMALLOC_CACHES] {
        &self.caches
    }

    /// Large-allocation counters.
    pub fn large(&self) -> LargeStats {
        self.large
    }

    /// The size-class rounding of the caches' allocations since boot
    /// (requests up to [`KMALLOC_MAX_CACHE_SIZE`]).
    pub fn cache_rounding(&self) -> RoundingLoss {
        self.caches
            .iter()
            .fold(RoundingLoss::default(), |r, c| RoundingLoss {
                requested: r.requested + c.requested_bytes(),
                allocated: r.allocated + c.allocated_bytes(),
            })
    }

    /// The rounding of the large allocations since boot (to whole pages,
    /// a power of two of them).
    pub fn large_rounding(&self) -> RoundingLoss {
        RoundingLoss {
            requested: self.large.requested_bytes,
            allocated: self.large.allocated_bytes,
        }
    }

    /// Problems found since boot (every [`KmallocError`] returned).
    pub fn reports(&self) -> u32 {
        self.reports
    }

    /// The last problem found, if any.
    pub fn last_report(&self) -> Option<KmallocError> {
        self.last_report
    }

    /// Pages held by slabs and large allocations.
    pub fn pages(&self) -> u32 {
        let slab: u32 = self.caches.iter().map(|c| c.nr_slabs() << c.order).sum();
        slab + self.large.pages
    }

    /// Allocates `size` bytes (Linux `kmalloc()`), aligned as the size
    /// class guarantees (see [`size_class`]). `__GFP_ZERO` zeroes the
    /// whole usable size ([`ksize`](Self::ksize); under `slub_debug` the
    /// `size` bytes, the rest being red zone): that is
    /// [`kzalloc`](Self::kzalloc). `__GFP_HIGHMEM`
    /// is ignored (objects need a permanent address).
    ///
    /// `size` 0 returns [`ZERO_SIZE_PTR`]. Returns `None` when the buddy
    /// allocator has no pages for a new slab or a large allocation, or for
    /// `__GFP_DMA` (no DMA caches here; use `alloc_pages(GFP_DMA, ..)`).
    #[inline]
    pub fn kmalloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        match kmalloc_index(size) {
            Some(index) if size != 0 => self.kmalloc_class(buddy, mem, index, size, gfp),
            _ => self.kmalloc_zero_or_large(buddy, mem, size, gfp),
        }
    }

    /// An object of class `index` (computed once by the caller) for a
    /// request of `size` bytes (1 ..= the class): the array cache's top,
    /// inlined into the caller, else the slabs.
    #[inline]
    fn kmalloc_class(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        if !gfp.contains(Gfp::DMA) {
            let c = &mut self.caches[index];
            // The most recently freed object, still warm (only ever filled
            // without slub_debug, so zeroing the whole class is right).
            // At most the class: `size` fits 32 bits.
            if let Some(addr) = c.array_pop(size as u32) {
                if gfp.contains(Gfp::ZERO) {
                    mem.fill(addr, c.object_size, 0);
                }
                return Some(addr);
            }
        }
        self.kmalloc_class_slow(buddy, mem, index, size, gfp)
    }

    /// [`kmalloc_class`](Self::kmalloc_class) when the array cache is
    /// empty (or for `__GFP_DMA`): an object from the slabs.
    #[cold]
    #[inline(never)]
    fn kmalloc_class_slow(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        if gfp.contains(Gfp::DMA) {
            return None;
        }
        self.caches[index].alloc_miss += 1;
        // At most the class: fits 32 bits.
        self.slab_alloc(buddy, mem, index, size as u32, gfp)
    }

    /// [`kmalloc`](Self::kmalloc) of 0 bytes ([`ZERO_SIZE_PTR`]) or of
    /// more than [`KMALLOC_MAX_CACHE_SIZE`] (whole pages).
    #[cold]
    #[inline(never)]
    fn kmalloc_zero_or_large(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        if size == 0 {
            return Some(ZERO_SIZE_PTR);
        }
        if gfp.contains(Gfp::DMA) {
            return None;
        }
        self.large_alloc(buddy, mem, size, gfp)
    }

    /// [`kmalloc`](Self::kmalloc) with `__GFP_ZERO` (Linux `kzalloc()`).
    pub fn kzalloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        self.kmalloc(buddy, mem, size, gfp | Gfp::ZERO)
    }

    /// Allocates `size` bytes aligned to `align` bytes (a power of two up
    /// to [`PAGE_SIZE`]): what `GlobalAlloc` needs for a `Layout`. Uses the
    /// class of `size` when its alignment suffices, else the class of `size`
    /// rounded up to a multiple of `align` (power-of-two classes are
    /// naturally aligned). Example: 65 bytes aligned to 64 come from
    /// kmalloc-128, not kmalloc-96 (which is 32-aligned). The class is
    /// computed once ([`size_class`]'s `kmalloc_index_aligned`); under
    /// `slub_debug` the object records `size`, so its red zone starts
    /// right after the `size` bytes.
    ///
    /// Returns `None` if `align` is not a power of two or exceeds a page,
    /// or as [`kmalloc`](Self::kmalloc) does.
    #[inline]
    pub fn kmalloc_aligned(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        align: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        if !align.is_power_of_two() || align > PAGE_SIZE as usize {
            return None;
        }
        match kmalloc_index_aligned(size, align) {
            Some(index) if size != 0 => self.kmalloc_class(buddy, mem, index, size, gfp),
            _ => self.kmalloc_zero_or_large(buddy, mem, size, gfp),
        }
    }

    /// Frees what [`kmalloc`](Self::kmalloc) returned (Linux `kfree()`).
    /// Null and [`ZERO_SIZE_PTR`] do nothing.
    ///
    /// # Errors
    /// A [`KmallocError`] (also counted in [`reports`](Self::reports)) for a
    /// double free, a pointer kmalloc never returned, a pointer into the
    /// middle of an object, an overwritten slab or object header — in all
    /// of which nothing is changed — and, under `slub_debug`, an
    /// overwritten red zone, which is restored while the object is freed.
    pub fn kfree(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<(), KmallocError> {
        if is_null_or_zero(addr) {
            return Ok(());
        }
        let result = match self.lookup(buddy, mem, addr) {
            Ok(Owner::Slab { index, slab, obj }) => self.slab_free(buddy, mem, index, slab, obj),
            Ok(Owner::Large { pfn, order }) => self.large_free(buddy, addr, pfn, order),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.report(e))
    }

    /// The usable size of the object at `addr` (Linux `ksize()`): its size
    /// class, or `PAGE_SIZE << order` for a large allocation; 0 for null
    /// and [`ZERO_SIZE_PTR`]. Under `slub_debug` the object's red zone
    /// shrinks to match, so that writing all of it is legal.
    ///
    /// # Errors
    /// As [`kfree`](Self::kfree) for an address kmalloc did not return
    /// (nothing is changed), and for a freed object ([`KmallocErrorKind::DoubleFree`]).
    pub fn ksize(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<usize, KmallocError> {
        if is_null_or_zero(addr) {
            return Ok(0);
        }
        let usable = self.ksize_quiet(buddy, mem, addr)?;
        if self.debug
            && let Some(index) = self.debug_cache(usable)
        {
            self.caches[index].set_requested_size(mem, addr, usable);
        }
        Ok(usable as usize)
    }

    /// Resizes the object at `addr` to `new_size` bytes (Linux
    /// `krealloc()`): in place when `new_size` fits its [`ksize`](Self::ksize),
    /// else a new object with the old contents (the requested size under
    /// `slub_debug`, the usable size otherwise, at most `new_size`) and the
    /// old one freed. Null `addr` is [`kmalloc`](Self::kmalloc); `new_size`
    /// 0 frees and returns [`ZERO_SIZE_PTR`]. With `__GFP_ZERO` the grown
    /// part is zeroed, provided the object came from `kzalloc` (or every
    /// earlier `krealloc` had `__GFP_ZERO` too): without `slub_debug` the
    /// requested size is not recorded, so zeroing relies on the bytes past
    /// it being zero, as in Linux.
    ///
    /// # Errors
    /// `Ok(None)` when no memory is left (the old object is untouched);
    /// `Err` as [`kfree`](Self::kfree) for a bad `addr`.
    pub fn krealloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
        new_size: usize,
        gfp: Gfp,
    ) -> Result<Option<VirtAddr>, KmallocError> {
        self.krealloc_aligned(buddy, mem, addr, new_size, KMALLOC_MIN_SIZE as usize, gfp)
    }

    /// [`krealloc`](Self::krealloc) keeping `align` (a power of two up to a
    /// page; what `GlobalAlloc::realloc` needs).
    ///
    /// # Errors
    /// As [`krealloc`](Self::krealloc).
    pub fn krealloc_aligned(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
        new_size: usize,
        align: usize,
        gfp: Gfp,
    ) -> Result<Option<VirtAddr>, KmallocError> {
        if is_null_or_zero(addr) {
            return Ok(self.kmalloc_aligned(buddy, mem, new_size, align, gfp));
        }
        if new_size == 0 {
            self.kfree(buddy, mem, addr)?;
            return Ok(Some(ZERO_SIZE_PTR));
        }
        let usable = self.ksize_quiet(buddy, mem, addr)?;
        let debug_cache = if self.debug {
            self.debug_cache(usable)
        } else {
            None
        };
        // The size the caller asked for: from the debug header under
        // slub_debug, else the usable size.
        let old_size = match debug_cache {
            Some(_) => KmemCache::debug_size(mem, addr),
            None => usable,
        };
        if aligned_size(new_size, align) <= usable as usize && addr.0.is_multiple_of(align as u32) {
            // At most `usable`: fits 32 bits.
            let new_size = new_size as u32;
            if let Some(index) = debug_cache {
                self.caches[index].set_requested_size(mem, addr, new_size);
            }
            if gfp.contains(Gfp::ZERO) {
                if new_size > old_size {
                    mem.fill(addr + old_size, new_size - old_size, 0);
                }
                // Where the requested size is not recorded, keep the bytes
                // past it zero, so that a later growth in place is zeroed
                // (the invariant kzalloc starts; Linux zeroes the tail the
                // same way).
                if debug_cache.is_none() && old_size == usable && new_size < usable {
                    mem.fill(addr + new_size, usable - new_size, 0);
                }
            }
            return Ok(Some(addr));
        }
        let Some(new) = self.kmalloc_aligned(buddy, mem, new_size, align, gfp) else {
            return Ok(None);
        };
        // (A `new_size` beyond 32 bits got no new object above.)
        let len = old_size.min(u32::try_from(new_size).unwrap_or(u32::MAX));
        mem.copy(new, addr, len);
        match self.kfree(buddy, mem, addr) {
            // Reported and counted; the old object is freed and the data
            // already moved, so the caller gets the new object.
            Ok(())
            | Err(KmallocError {
                kind: KmallocErrorKind::RedzoneOverwritten { .. },
                ..
            }) => Ok(Some(new)),
            Err(e) => {
                // The old object was not freed: give the new one back.
                let _ = self.kfree(buddy, mem, new);
                Err(e)
            }
        }
    }

    /// Returns every empty slab to the buddy allocator (Linux
    /// `kmem_cache_shrink()` on each kmalloc cache); returns the pages
    /// freed.
    ///
    /// The array caches are emptied first (their objects go back to the
    /// slabs; a problem found then is reported and counted).
    pub fn shrink(&mut self, buddy: &mut BuddyAllocator<'_>, mem: &mut impl SlabMemory) -> u32 {
        let mut pages = 0;
        for index in 0..NR_KMALLOC_CACHES {
            let avail = self.caches[index].avail as usize;
            let _ = self.flush_array(buddy, mem, index, avail);
            while let Some(slab) = self.pop_empty(mem, index) {
                pages += self.discard_slab(buddy, mem, index, slab);
            }
        }
        pages
    }

    /// Checks every slab of every cache: header magic, list membership and
    /// links, `inuse` equal to the clear bits of the bitmap, page marks, and
    /// the counters. For tests and the self-tests.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn validate(
        &self,
        buddy: &BuddyAllocator<'_>,
        mem: &impl SlabMemory,
    ) -> Result<(), ValidateError> {
        for (index, c) in self.caches.iter().enumerate() {
            let mut active = 0;
            for id in ListId::ALL {
                let list = c.lists[id.slot()];
                let mut slab = list.head;
                let mut prev = None;
                let mut n = 0;
                while let Some(s) = slab {
                    n += 1;
                    if n > list.len {
                        return Err(ValidateError::ListTooLong);
                    }
                    if s.magic(mem) != SLAB_MAGIC ^ index as u32 {
                        return Err(ValidateError::BadMagic);
                    }
                    if s.prev(mem) != prev {
                        return Err(ValidateError::BadPrevLink);
                    }
                    if s.list(mem) != id as u32 {
                        return Err(ValidateError::WrongListTag);
                    }
                    let inuse = s.inuse(mem);
                    if inuse + s.nr_free(mem, c.bitmap_words) != c.objects {
                        return Err(ValidateError::InuseMismatch);
                    }
                    let ok = match id {
                        ListId::Partial => inuse > 0 && inuse < c.objects,
                        ListId::Full => inuse == c.objects,
                        ListId::Empty => inuse == 0,
                    };
                    if !ok {
                        return Err(ValidateError::WrongList);
                    }
                    let Some(pfn) = mem.virt_to_pfn(s.addr()) else {
                        return Err(ValidateError::OutsideDirectMap);
                    };
                    for p in pfn.range_to(pfn + (1 << c.order)) {
                        if buddy.page(p).map(|pg| pg.page_use())
                            != Some(PageUse::Slab { cache: index as u8 })
                        {
                            return Err(ValidateError::PageNotMarked);
                        }
                    }
                    active += inuse;
                    prev = slab;
                    slab = s.next(mem);
                }
                if n != list.len {
                    return Err(ValidateError::ListTooShort);
                }
            }
            if active != c.active_objs {
                return Err(ValidateError::ActiveObjsMismatch);
            }
        }
        Ok(())
    }

    // ---- internals -----------------------------------------------------

    /// Counts `e` and keeps it as the last report; returns it.
    fn report(&mut self, e: KmallocError) -> KmallocError {
        self.reports += 1;
        self.last_report = Some(e);
        e
    }

    /// The cache whose objects carry a debug header for an object of
    /// usable size `usable`: its class, `None` for a large allocation.
    fn debug_cache(&self, usable: u32) -> Option<usize> {
        kmalloc_index(usable as usize).filter(|_| usable <= KMALLOC_MAX_CACHE_SIZE)
    }

    /// Finds what `addr` belongs to (Linux `virt_to_slab()` /
    /// `virt_to_folio()` in `kfree()`), checking it is an object start.
    fn lookup(
        &self,
        buddy: &BuddyAllocator<'_>,
        mem: &impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<Owner, KmallocError> {
        let not_kmalloc = KmallocError::new(KmallocErrorKind::NotKmalloc, addr, "kmalloc");
        let pfn = mem.virt_to_pfn(addr).ok_or(not_kmalloc)?;
        let page = buddy.page(pfn).ok_or(not_kmalloc)?;
        match page.page_use() {
            PageUse::None => Err(not_kmalloc),
            PageUse::LargeKmalloc => {
                if addr != mem.page_address(pfn) {
                    return Err(KmallocError::new(
                        KmallocErrorKind::NotObjectStart,
                        addr,
                        large::LARGE_NAME,
                    ));
                }
                Ok(Owner::Large {
                    pfn,
                    order: page.order(),
                })
            }
            PageUse::Slab { cache } => {
                let index = cache as usize;
                let c = self.caches.get(index).ok_or(not_kmalloc)?;
                let head = Pfn(pfn.0 & !((1u32 << c.order) - 1));
                let slab = Slab(mem.page_address(head));
                if slab.magic(mem) != SLAB_MAGIC ^ index as u32 {
                    return Err(KmallocError::new(
                        KmallocErrorKind::SlabCorrupt,
                        addr,
                        c.name,
                    ));
                }
                let not_start = KmallocError::new(KmallocErrorKind::NotObjectStart, addr, c.name);
                let offset = (addr - slab.addr())
                    .checked_sub(c.first_slot + c.payload)
                    .ok_or(not_start)?;
                let obj = obj_to_index(offset, c.reciprocal);
                if obj >= c.objects || obj * c.stride != offset {
                    return Err(not_start);
                }
                Ok(Owner::Slab { index, slab, obj })
            }
        }
    }

    /// An object of cache `index` for a request of `size` bytes, from a
    /// partial slab, else a kept empty one, else a new one.
    fn slab_alloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        size: u32,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        // (The array cache was tried by `kmalloc`'s fast path.)
        loop {
            let slab = match self.caches[index].lists[ListId::Partial.slot()].head {
                Some(slab) => slab,
                None => match self.pop_empty(mem, index) {
                    Some(slab) => {
                        self.caches[index].list_add(mem, ListId::Partial, slab);
                        slab
                    }
                    None => self.new_slab(buddy, mem, index, gfp)?,
                },
            };
            let obj = self.take_free_object(mem, index, slab);
            let c = &mut self.caches[index];
            let addr = c.object_addr(slab, obj);
            if self.debug
                && let Err(e) = c.check_free_object(mem, addr)
            {
                // Keep the object allocated for ever: whoever wrote to it
                // after its free may still do so.
                c.quarantine(mem, addr);
                self.report(e);
                continue;
            }
            c.allocs += 1;
            c.requested += u64::from(size);
            if self.debug {
                c.set_allocated(mem, addr, size);
            }
            if gfp.contains(Gfp::ZERO) {
                // The whole object unless slub_debug red-zones its tail.
                let len = if self.debug { size } else { c.object_size };
                mem.fill(addr, len, 0);
            }
            return Some(addr);
        }
    }

    /// Takes the first free object of a slab on the partial list (or a
    /// fresh one): clears its bit, counts it, moves a now-full slab to the
    /// full list.
    ///
    /// # Panics
    /// If the slab has no free bit, which a slab on the partial list has
    /// unless its header was overwritten (by a write just before object 0).
    #[inline]
    fn take_free_object(&mut self, mem: &mut impl SlabMemory, index: usize, slab: Slab) -> u32 {
        let c = &mut self.caches[index];
        let Some((obj, inuse)) = slab.take_free(mem, c.bitmap_words) else {
            panic!(
                "BUG {}: slab at {:#x} on the partial list has no free object (slab header overwritten)",
                c.name,
                slab.addr()
            );
        };
        c.active_objs += 1;
        if inuse == c.objects {
            c.list_del(mem, ListId::Partial, slab);
            c.list_add(mem, ListId::Full, slab);
        }
        obj
    }

    /// Frees object `obj` of `slab` in cache `index` (checked under
    /// `slub_debug`); an emptied slab is kept (up to [`MIN_PARTIAL`]) or
    /// discarded.
    ///
    /// # Errors
    /// [`KmallocErrorKind::DoubleFree`] or a debug header problem (nothing
    /// changed), or an overwritten red zone (restored, object freed).
    fn slab_free(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        slab: Slab,
        obj: u32,
    ) -> Result<(), KmallocError> {
        let c = &mut self.caches[index];
        let addr = c.object_addr(slab, obj);
        if slab.is_free(mem, obj) {
            return Err(KmallocError::new(
                KmallocErrorKind::DoubleFree,
                addr,
                c.name,
            ));
        }
        let mut redzone = Ok(());
        if self.debug {
            c.check_header(mem, addr)?;
            redzone = c.check_redzones(mem, addr);
            c.set_free(mem, addr);
        }
        let inuse = slab.release(mem, obj);
        c.active_objs -= 1;
        c.frees += 1;
        if inuse + 1 == c.objects {
            c.list_del(mem, ListId::Full, slab);
            if inuse > 0 {
                c.list_add(mem, ListId::Partial, slab);
            }
        } else if inuse == 0 {
            c.list_del(mem, ListId::Partial, slab);
        }
        if inuse == 0 {
            if c.nr_empty() < MIN_PARTIAL {
                c.list_add(mem, ListId::Empty, slab);
            } else {
                self.discard_slab(buddy, mem, index, slab);
            }
        }
        redzone
    }

    /// A new slab for cache `index` (Linux `allocate_slab()`): pages from
    /// the buddy allocator, marked with the cache, header written, every
    /// object free (poisoned under `slub_debug`); put on the partial list.
    fn new_slab(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        gfp: Gfp,
    ) -> Option<Slab> {
        let order = self.caches[index].order;
        let gfp = gfp.difference(Gfp::HIGHMEM | Gfp::ZERO);
        let block = self.alloc_pages_reclaim(buddy, mem, gfp, order)?;
        // The block's ownership ends here (see the module docs): the page
        // marks and the cache's lists record it until `discard_slab`.
        let (pfn, _) = block.into_raw();
        buddy.set_page_use(pfn, 1 << order, PageUse::Slab { cache: index as u8 });
        let slab = Slab(mem.page_address(pfn));
        let c = &mut self.caches[index];
        slab.init(mem, SLAB_MAGIC ^ index as u32, c.objects, c.bitmap_words);
        c.list_add(mem, ListId::Partial, slab);
        if self.debug {
            for obj in 0..c.objects {
                c.set_free(mem, c.object_addr(slab, obj));
            }
        }
        Some(slab)
    }

    /// Pages from the buddy allocator; if there are none, the empty slabs
    /// of every cache are given back and the allocation is tried once more
    /// (the role of Linux's slab shrinkers under memory pressure). The
    /// first attempt does not warn when a retry may follow.
    fn alloc_pages_reclaim(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        gfp: Gfp,
        order: u8,
    ) -> Option<PageBlock> {
        // Reclaim cannot help a request larger than any block.
        let has_empty = order <= MAX_PAGE_ORDER && self.caches.iter().any(|c| c.nr_empty() > 0);
        let first = if has_empty { gfp | Gfp::NOWARN } else { gfp };
        if let Some(block) = buddy.alloc_pages(first, order) {
            return Some(block);
        }
        if !has_empty || self.shrink(buddy, mem) == 0 {
            return None;
        }
        // Freed order-0 slabs sit on the per-cpu lists, which the
        // watermark check does not count: drain them (Linux drains before
        // retrying a failed allocation too).
        buddy.drain_pages();
        buddy.alloc_pages(gfp, order)
    }

    /// Takes an empty slab off cache `index`'s empty list (it is then on no
    /// list).
    fn pop_empty(&mut self, mem: &mut impl SlabMemory, index: usize) -> Option<Slab> {
        let c = &mut self.caches[index];
        let slab = c.lists[ListId::Empty.slot()].head?;
        c.list_del(mem, ListId::Empty, slab);
        Some(slab)
    }

    /// Gives a slab with no object in use and on no list back to the buddy
    /// allocator (Linux `discard_slab()`); returns its pages.
    ///
    /// # Panics
    /// If the buddy allocator refuses the block (the page marks said it is
    /// this cache's slab, so that is a bug).
    fn discard_slab(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        slab: Slab,
    ) -> u32 {
        let order = self.caches[index].order;
        slab.set_magic(mem, 0);
        let pfn = mem
            .virt_to_pfn(slab.addr())
            .expect("slab in the direct map");
        buddy.set_page_use(pfn, 1 << order, PageUse::None);
        buddy
            .free_pages_raw(pfn, order)
            .expect("discard_slab: the buddy allocator refused a slab");
        1 << order
    }

    /// [`ksize`](Self::ksize) without widening the debug size.
    fn ksize_quiet(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<u32, KmallocError> {
        match self.lookup(buddy, mem, addr) {
            Ok(Owner::Slab { index, slab, obj }) => {
                let c = &self.caches[index];
                if slab.is_free(mem, obj) {
                    let e = KmallocError::new(KmallocErrorKind::DoubleFree, addr, c.name);
                    return Err(self.report(e));
                }
                let checked = if self.debug {
                    c.check_header(mem, addr)
                } else {
                    Ok(())
                };
                let size = c.object_size;
                checked.map_err(|e| self.report(e))?;
                Ok(size)
            }
            Ok(Owner::Large { order, .. }) => Ok(PAGE_SIZE << order),
            Err(e) => Err(self.report(e)),
        }
    }
}

const _: () = assert!(PAGE_SHIFT == 12);

#[cfg(test)]
pub(crate) mod host;
#[cfg(test)]
mod stress_tests;
#[cfg(test)]
mod tests;
