//! kmalloc: byte-sized allocations from slab caches on top of the buddy
//! allocator (Linux `mm/slab_common.c` and `mm/slub.c`, simplified).
//!
//! # Size classes
//!
//! A request of `size` bytes goes to the smallest of Linux's eleven kmalloc
//! caches that holds it ([`KMALLOC_SIZES`]: 8, 16, 32, 64, 96, 128, 192,
//! 256, 512, 1024, 2048; Linux `kmalloc_index()`), named like Linux's:
//! `kmalloc-64`. Above [`KMALLOC_MAX_CACHE_SIZE`] (2048) the request is
//! served as whole pages straight from the buddy allocator ("large
//! kmalloc", Linux `__kmalloc_large_node()`), order `get_order(size)`.
//!
//! # Alignment guarantee
//!
//! An object of class `c` starts at a multiple of the largest power of two
//! dividing `c` ([`KmemCache::align`]): 8 → 8, 96 → 32, 192 → 64, 2048 →
//! 2048 (Linux guarantees natural alignment for power-of-two sizes since
//! v5.4); large allocations are page aligned. [`Kmalloc::kmalloc_aligned`]
//! honours any `align` up to [`PAGE_SIZE`] by moving to a class whose
//! guarantee suffices (`size` rounded up to a multiple of `align` when
//! `align` exceeds the class's guarantee),
//! which is how Rust's `Layout`s are served. The guarantee holds with
//! `slub_debug` too: the debug header and red zones are laid out around the
//! aligned object.
//!
//! # Slabs
//!
//! A slab is a naturally aligned block of `1 << order` lowmem pages from the
//! buddy allocator, reached through the direct map (never HighMem: an
//! object must have a permanent address). It starts with a small header
//! followed by the object slots:
//!
//! ```text
//! slab (1 << order pages)
//! +--------------------------------+--------+--------+-----+--------+-------+
//! | header: magic, next, prev,     | slot 0 | slot 1 | ... | slot n | waste |
//! | inuse, list, hint, free bitmap |        |        |     |        |       |
//! +--------------------------------+--------+--------+-----+--------+-------+
//!   first slot at round_up(header, align); slots are `stride` bytes apart
//! ```
//!
//! Free objects are tracked by a **bitmap in the slab header** (bit set =
//! free), not by pointers inside the free objects as SLUB does: like the
//! buddy allocator's lists in `mem_map`, a stray write into a free object
//! cannot corrupt the allocator, a double free is caught without any debug
//! option (the bit is already set), and poisoning can cover the whole
//! object. The cost is a scan for a set bit, kept short by a hint (the
//! first bitmap word that may have one).
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
//! Each cache keeps its slabs on three lists (Linux `kmem_cache_node`):
//! `partial` (some objects free, allocations come from here), `full` and
//! `empty`. At most [`MIN_PARTIAL`] empty slabs are kept per cache for
//! reuse; beyond that an emptied slab goes back to the buddy allocator
//! (Linux `discard_slab()` once `nr_partial >= min_partial`).
//! [`Kmalloc::shrink`] returns all of them (Linux `kmem_cache_shrink()`).
//!
//! # Debugging (`slub_debug`)
//!
//! With debugging on ([`Kmalloc::new`]`(true)`; the kernel switch is
//! `slub_debug` on the command line, always on in self-tests), each slot
//! carries the seed's allocation header `{ size, magic }` in front of the
//! object and red zones around it:
//!
//! ```text
//! slot (stride bytes)
//! +------------+-------------+-----------------------+---------------------+
//! | left red   | size  magic | object (class bytes)  | right red zone      |
//! | zone (pad) | u32   u32   | [0,size) data         | (>= 8 bytes, pad to |
//! |            |             | [size,class) red zone | the alignment)      |
//! +------------+-------------+-----------------------+---------------------+
//!                              ^ returned pointer, aligned to the class
//! ```
//!
//! - allocated: `magic` = [`KMALLOC_MAGIC`], `size` = the requested size,
//!   red zones (including the unused tail `[size, class)` of the object,
//!   Linux's "kmalloc redzone") hold [`RED_ACTIVE`] (0xcc);
//! - free: `magic` = [`FREE_MAGIC`], the object is poisoned with
//!   [`POISON_FREE`] (0x6b) ending in [`POISON_END`] (0xa5), red zones hold
//!   [`RED_INACTIVE`] (0xbb) — Linux's `SLUB_RED_*` and `POISON_*` values.
//!
//! Checked on free: the header (double free, overwritten magic, impossible
//! size) and every red-zone byte. Checked on reuse: the header and the
//! poison (a write after free). Every finding is returned as a
//! [`KmallocError`] naming the address and the cache, counted, and never
//! corrupts the caches: a refused free changes nothing; an overwritten red
//! zone is reported, restored and the object freed (the allocator's own
//! data is in the header bitmap, which the overflow did not reach); an
//! object modified after free is reported and *quarantined* (kept allocated
//! forever, Linux marks the whole slab used instead) and the next free
//! object is handed out.
//!
//! # Memory access
//!
//! This module is pure Rust (`forbid(unsafe_code)`), tested on the host: it
//! reaches memory only through [`SlabMemory`], which the kernel implements
//! with the direct map and the host tests with a `Vec`.

#![forbid(unsafe_code)]

use super::buddy::{BadPage, BuddyAllocator, get_order};
use super::gfp::Gfp;
use super::layout::{PAGE_SHIFT, PAGE_SIZE};
use super::page::PageUse;
use super::zone::MAX_PAGE_ORDER;
use core::fmt;

/// Linux's kmalloc size classes in bytes (`kmalloc_info[]` from 8 up to
/// `KMALLOC_MAX_CACHE_SIZE`, with the two non-powers of two 96 and 192).
pub const KMALLOC_SIZES: [u32; 11] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048];

/// Number of kmalloc caches (one per entry of [`KMALLOC_SIZES`]).
pub const NR_KMALLOC_CACHES: usize = KMALLOC_SIZES.len();

/// Value: 2048. The largest size served by a cache; larger requests get
/// whole pages (Linux `KMALLOC_MAX_CACHE_SIZE` is two pages with SLUB; a
/// page and a half of waste for a 2049-byte object is the price of the
/// simpler rule here, stated by [`Kmalloc::ksize`]).
pub const KMALLOC_MAX_CACHE_SIZE: u32 = 2048;

/// Value: 8. The smallest class and the least alignment of any object.
pub const KMALLOC_MIN_SIZE: u32 = 8;

/// Value: 16. What `kmalloc(0)` returns (Linux `ZERO_SIZE_PTR`): not null,
/// so callers that check for failure do not see one, but inside the
/// unmapped null page, so any dereference faults (the fault report names
/// the null page). The same value for every zero-size allocation; `kfree`
/// and `ksize` accept it (doing nothing, returning 0).
pub const ZERO_SIZE_PTR: usize = 16;

/// Value: 2. Empty slabs kept per cache before further empty slabs go back
/// to the buddy allocator. (Linux computes `min_partial` between 5 and 10;
/// this kernel boots with as little as 8 MiB, where 10 empty order-3 slabs
/// per cache would be 2.5 MiB.)
pub const MIN_PARTIAL: u32 = 2;

/// Value: 32. Objects a cache's array cache holds (Linux SLAB's
/// `array_cache.limit`; the role of SLUB's per-cpu freelist and of Bonwick's
/// magazines).
pub const ARRAY_CACHE_LIMIT: usize = 32;

/// Value: 3. The largest slab order (8 pages; Linux
/// `slub_max_order` = `PAGE_ALLOC_COSTLY_ORDER`).
pub const SLAB_MAX_ORDER: u8 = 3;

/// Value: 8. Objects a slab should hold at least, when the maximum order
/// allows (Linux `slub_min_objects` for one CPU: `4 * (fls(1) + 1)`).
pub const SLAB_MIN_OBJECTS: u32 = 8;

/// The `magic` of an allocated object's debug header.
pub const KMALLOC_MAGIC: u32 = 0xC0FF_EE42;
/// The `magic` of a free object's debug header.
pub const FREE_MAGIC: u32 = 0xDEAD_F4EE;
/// The `magic` of a quarantined object (found modified after free).
pub const QUARANTINE_MAGIC: u32 = 0xBAD0_0B1E;
/// Red-zone byte of an allocated object (Linux `SLUB_RED_ACTIVE`).
pub const RED_ACTIVE: u8 = 0xcc;
/// Red-zone byte of a free object (Linux `SLUB_RED_INACTIVE`).
pub const RED_INACTIVE: u8 = 0xbb;
/// Poison byte of a free object (Linux `POISON_FREE`).
pub const POISON_FREE: u8 = 0x6b;
/// Last byte of a free object's poison (Linux `POISON_END`).
pub const POISON_END: u8 = 0xa5;

/// Value: 8. Bytes of the debug header `{ size: u32, magic: u32 }`.
pub const DEBUG_HEADER_SIZE: u32 = 8;
/// Value: 8. The least right red zone after an object (debug only).
pub const RED_ZONE_MIN: u32 = 8;

/// Value: 0x51AB_C0DE. Slab header magic, xor-ed with the cache index.
const SLAB_MAGIC: usize = 0x51AB_C0DE;
/// Bytes of one slab-header word (the header holds addresses).
const WORD: u32 = usize::BITS / 8;
/// Header words before the bitmap: magic, next, prev, inuse, list, hint.
const HDR_MAGIC: u32 = 0;
const HDR_NEXT: u32 = 1;
const HDR_PREV: u32 = 2;
const HDR_INUSE: u32 = 3;
const HDR_LIST: u32 = 4;
const HDR_HINT: u32 = 5;
const HDR_BITMAP: u32 = 6;

/// How the allocator reads and writes memory: the direct map in the
/// kernel, a `Vec` in host tests. Addresses are kernel virtual addresses;
/// every address passed in lies in a page the allocator obtained from the
/// buddy allocator (or is checked with [`virt_to_pfn`](Self::virt_to_pfn)
/// first).
pub trait SlabMemory {
    /// The permanent virtual address of lowmem page `pfn` (Linux
    /// `page_address()`); linear in `pfn`.
    fn page_address(&self, pfn: u32) -> usize;
    /// The pfn of a lowmem virtual address, `None` outside the direct map
    /// of low memory (Linux `virt_addr_valid()` + `virt_to_pfn()`).
    fn virt_to_pfn(&self, addr: usize) -> Option<u32>;
    /// Reads the aligned word at `addr`.
    fn read_word(&self, addr: usize) -> usize;
    /// Writes the aligned word at `addr`.
    fn write_word(&mut self, addr: usize, value: usize);
    /// Reads the aligned `u32` at `addr`.
    fn read_u32(&self, addr: usize) -> u32;
    /// Writes the aligned `u32` at `addr`.
    fn write_u32(&mut self, addr: usize, value: u32);
    /// Reads the byte at `addr`.
    fn read_u8(&self, addr: usize) -> u8;
    /// Sets `[addr, addr + len)` to `byte`.
    fn fill(&mut self, addr: usize, len: usize, byte: u8);
    /// The offset of the first byte of `[addr, addr + len)` that is not
    /// `byte`, if any.
    fn find_mismatch(&self, addr: usize, len: usize, byte: u8) -> Option<usize>;
    /// Copies `len` bytes from `src` to `dst` (the ranges do not overlap).
    fn copy(&mut self, dst: usize, src: usize, len: usize);
}

/// What went wrong in a kmalloc call (the text after `BUG <cache>:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocErrorKind {
    /// The object is free already (its free bit is set, or its debug header
    /// says free or quarantined). Nothing changed.
    DoubleFree,
    /// The address is not in the direct map of low memory, or its page does
    /// not belong to kmalloc. Nothing changed.
    NotKmalloc,
    /// The address is inside a slab but not at the start of an object, or
    /// inside the first page of a large allocation but not at its start (an
    /// address in a later page of it is [`NotKmalloc`](Self::NotKmalloc):
    /// only the head page is marked). Nothing changed.
    NotObjectStart,
    /// The slab's header (at the start of its first page) was overwritten.
    /// Nothing changed.
    SlabCorrupt,
    /// The debug header `{ size, magic }` in front of the object was
    /// overwritten (`found` is the magic read). Nothing changed.
    HeaderOverwritten {
        /// The magic found.
        found: u32,
    },
    /// A red-zone byte was overwritten: `offset` is its distance from the
    /// object start (negative: in front of it). The zone was restored and
    /// the free went ahead.
    RedzoneOverwritten {
        /// Offset of the first bad byte from the object start.
        offset: i32,
        /// The byte found there.
        found: u8,
    },
    /// A free object's poison was modified (a write after free), found when
    /// the object was about to be reused: `offset` from the object start.
    /// The object was quarantined.
    UseAfterFree {
        /// Offset of the first bad byte from the object start.
        offset: u32,
        /// The byte found there.
        found: u8,
    },
    /// The buddy allocator refused to free a slab or large allocation.
    BadPage(BadPage),
}

/// A problem found by kmalloc: what, at which address, in which cache.
///
/// Displays as Linux's slab reports do: `BUG kmalloc-64: double free of
/// object 0xc1234040`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmallocError {
    /// What was found.
    pub kind: KmallocErrorKind,
    /// The address passed in (or the object checked).
    pub addr: usize,
    /// The cache's name (`kmalloc-64`), `kmalloc-large` or `kmalloc` when
    /// unknown.
    pub cache: &'static str,
}

impl fmt::Display for KmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BUG {}: ", self.cache)?;
        let a = self.addr;
        match self.kind {
            KmallocErrorKind::DoubleFree => write!(f, "double free of object {a:#x}"),
            KmallocErrorKind::NotKmalloc => write!(
                f,
                "free of {a:#x}, which kmalloc never returned (not a slab or large-kmalloc page)"
            ),
            KmallocErrorKind::NotObjectStart => {
                write!(f, "free of {a:#x}, which is not the start of an object")
            }
            KmallocErrorKind::SlabCorrupt => {
                write!(f, "slab header overwritten (slab of object {a:#x})")
            }
            KmallocErrorKind::HeaderOverwritten { found } => write!(
                f,
                "header of object {a:#x} overwritten (magic {found:#010x}, expected {KMALLOC_MAGIC:#010x})"
            ),
            KmallocErrorKind::RedzoneOverwritten { offset, found } => write!(
                f,
                "red zone overwritten at object {a:#x}{offset:+} (byte {found:#04x}, expected {RED_ACTIVE:#04x}); restored"
            ),
            KmallocErrorKind::UseAfterFree { offset, found } => write!(
                f,
                "object {a:#x} modified after free at offset {offset} (byte {found:#04x}); quarantined"
            ),
            KmallocErrorKind::BadPage(bad) => write!(f, "freeing {a:#x}: {bad}"),
        }
    }
}

/// One of the three slab lists of a cache: slab addresses linked through
/// the slab headers (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlabList {
    head: usize,
    len: u32,
}

/// Which list a slab is on (stored in its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
enum ListId {
    Partial = 1,
    Full = 2,
    Empty = 3,
}

/// One kmalloc cache: its geometry and its slabs (Linux `struct
/// kmem_cache` with one `kmem_cache_node`).
#[derive(Clone, Debug)]
pub struct KmemCache {
    name: &'static str,
    object_size: u32,
    align: u32,
    stride: u32,
    payload: u32,
    first_slot: u32,
    objects: u32,
    order: u8,
    bitmap_words: u32,
    reciprocal: u64,
    lists: [SlabList; 3],
    active_objs: u32,
    allocs: u64,
    frees: u64,
    quarantined: u32,
    /// Objects freed through [`Kmalloc::kfree_sized`] and not yet given
    /// back to their slabs, newest last (Linux SLAB `array_cache.entry[]`).
    array: [usize; ARRAY_CACHE_LIMIT],
    /// Entries used in `array` (Linux `array_cache.avail`).
    avail: u32,
}

impl KmemCache {
    fn new(index: usize, debug: bool) -> KmemCache {
        let size = KMALLOC_SIZES[index];
        let align = 1 << size.trailing_zeros();
        let (payload, stride) = if debug {
            let payload = DEBUG_HEADER_SIZE.next_multiple_of(align);
            (
                payload,
                (payload + size + RED_ZONE_MIN).next_multiple_of(align),
            )
        } else {
            (0, size)
        };
        let (order, objects, bitmap_words, first_slot) = calculate_order(stride, align);
        KmemCache {
            name: CACHE_NAMES[index],
            object_size: size,
            align,
            stride,
            payload,
            first_slot,
            objects,
            order,
            bitmap_words,
            reciprocal: (1u64 << 32).div_ceil(u64::from(stride)),
            lists: [SlabList::default(); 3],
            active_objs: 0,
            allocs: 0,
            frees: 0,
            quarantined: 0,
            array: [0; ARRAY_CACHE_LIMIT],
            avail: 0,
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
        self.lists[ListId::Empty as usize - 1].len
    }
    /// Objects the slabs hold, used or not.
    pub fn num_objs(&self) -> u32 {
        self.nr_slabs() * self.objects
    }
    /// Successful allocations since boot.
    pub fn allocs(&self) -> u64 {
        self.allocs
    }
    /// Successful frees since boot.
    pub fn frees(&self) -> u64 {
        self.frees
    }
    /// Freed objects waiting in the array cache.
    pub fn array_avail(&self) -> u32 {
        self.avail
    }
    /// Objects quarantined after a write-after-free was found.
    pub fn quarantined(&self) -> u32 {
        self.quarantined
    }
    fn list(&mut self, id: ListId) -> &mut SlabList {
        &mut self.lists[id as usize - 1]
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

const CACHE_NAMES: [&str; NR_KMALLOC_CACHES] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1k",
    "kmalloc-2k",
];

/// Bytes of a slab header holding a bitmap of `words` words.
const fn header_bytes(words: u32) -> u32 {
    (HDR_BITMAP + words) * WORD
}

/// Objects a slab of `order` holds with slots of `stride` bytes aligned to
/// `align`, with the header's bitmap words and the first slot's offset.
fn slab_geometry(order: u8, stride: u32, align: u32) -> (u32, u32, u32) {
    let bytes = PAGE_SIZE << order;
    // Start from the most objects possible and shrink until the header
    // (whose bitmap grows with the count) fits in front of them.
    let mut objects = bytes / stride;
    loop {
        let words = objects.div_ceil(usize::BITS);
        let first = header_bytes(words).next_multiple_of(align);
        if first + objects * stride <= bytes {
            return (objects, words, first);
        }
        objects -= 1;
    }
}

/// The slab order for slots of `stride` bytes (Linux `calc_slab_order()`):
/// the smallest order up to [`SLAB_MAX_ORDER`] that wastes at most 1/16
/// of the slab (then 1/8, then 1/4) and holds [`SLAB_MIN_OBJECTS`] when
/// possible. Returns `(order, objects, bitmap words, first slot offset)`.
///
/// Examples (no debug, 32-bit words): kmalloc-8 → order 0, 501 objects;
/// kmalloc-2k → order 3, 15 objects (the header takes the first 2 KiB slot,
/// since objects are 2 KiB aligned).
pub fn calculate_order(stride: u32, align: u32) -> (u8, u32, u32, u32) {
    for fraction in [16, 8, 4] {
        for order in 0..=SLAB_MAX_ORDER {
            let (objects, words, first) = slab_geometry(order, stride, align);
            let bytes = PAGE_SIZE << order;
            let waste = bytes - objects * stride;
            if objects >= SLAB_MIN_OBJECTS && waste * fraction <= bytes {
                return (order, objects, words, first);
            }
        }
    }
    let (objects, words, first) = slab_geometry(SLAB_MAX_ORDER, stride, align);
    (SLAB_MAX_ORDER, objects, words, first)
}

/// `size` → cache index for sizes up to 192 (Linux `size_index[]`, by
/// `(size - 1) / 8`).
const SIZE_INDEX: [u8; 24] = [
    0, // 8
    1, // 16
    2, 2, // 32
    3, 3, 3, 3, // 64
    4, 4, 4, 4, // 96
    5, 5, 5, 5, // 128
    6, 6, 6, 6, 6, 6, 6, 6, // 192
];

/// The cache index for `size` bytes (1 ..= 2048), `None` above (Linux
/// `kmalloc_index()`/`kmalloc_slab()`): the smallest class holding `size`.
///
/// Examples: 1 → 0 (kmalloc-8), 65 → 4 (kmalloc-96), 193 → 7
/// (kmalloc-256), 2048 → 10 (kmalloc-2k), 2049 → `None`.
#[inline]
pub const fn kmalloc_index(size: usize) -> Option<usize> {
    if size == 0 {
        return Some(0);
    }
    if size <= 192 {
        return Some(SIZE_INDEX[(size - 1) / 8] as usize);
    }
    if size > KMALLOC_MAX_CACHE_SIZE as usize {
        return None;
    }
    // 193..=2048: 256 is index 7, each power of two above one more.
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - 1)
}

/// The name of the cache serving `size` bytes (`kmalloc-64`), `None` for
/// sizes served as whole pages.
pub fn kmalloc_cache_name(size: usize) -> Option<&'static str> {
    kmalloc_index(size).map(|i| CACHE_NAMES[i])
}

/// kmalloc's counters and large allocations, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LargeStats {
    /// Large allocations live now.
    pub live: u32,
    /// Pages those hold.
    pub pages: u32,
    /// Large allocations since boot.
    pub allocs: u64,
    /// Large frees since boot.
    pub frees: u64,
}

/// The kmalloc allocator: eleven caches and the large-allocation path.
///
/// Pure bookkeeping: every call takes the buddy allocator the pages come
/// from and the [`SlabMemory`] they are reached through. The kernel keeps
/// one instance behind a lock (`arch::x86::kmalloc`), which also implements
/// Rust's `GlobalAlloc` on top of it.
#[derive(Clone, Debug)]
pub struct Kmalloc {
    caches: [KmemCache; NR_KMALLOC_CACHES],
    debug: bool,
    large: LargeStats,
    reports: u32,
    last_report: Option<KmallocError>,
}

impl Kmalloc {
    /// The eleven caches, empty (no slab is allocated until the first
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
    /// class guarantees (see the module docs). `__GFP_ZERO` zeroes the
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
    ) -> Option<usize> {
        // Fast path, inlined into the caller: the array cache's top.
        if let Some(index) = kmalloc_index(size)
            && size != 0
            && !gfp.contains(Gfp::DMA)
        {
            let c = &mut self.caches[index];
            if c.avail > 0 {
                // The most recently freed object, still warm (only ever
                // filled without slub_debug, so zeroing the whole class is
                // right).
                c.avail -= 1;
                c.allocs += 1;
                let addr = c.array[c.avail as usize];
                if gfp.contains(Gfp::ZERO) {
                    mem.fill(addr, c.object_size as usize, 0);
                }
                return Some(addr);
            }
        }
        self.kmalloc_slow(buddy, mem, size, gfp)
    }

    /// Everything but the array-cache fast path of
    /// [`kmalloc`](Self::kmalloc).
    #[inline(never)]
    fn kmalloc_slow(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<usize> {
        if size == 0 {
            return Some(ZERO_SIZE_PTR);
        }
        if gfp.contains(Gfp::DMA) {
            return None;
        }
        match kmalloc_index(size) {
            Some(index) => self.slab_alloc(buddy, mem, index, size, gfp),
            None => self.large_alloc(buddy, mem, size, gfp),
        }
    }

    /// [`kmalloc`](Self::kmalloc) with `__GFP_ZERO` (Linux `kzalloc()`).
    pub fn kzalloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<usize> {
        self.kmalloc(buddy, mem, size, gfp | Gfp::ZERO)
    }

    /// Allocates `size` bytes aligned to `align` bytes (a power of two up
    /// to [`PAGE_SIZE`]): what `GlobalAlloc` needs for a `Layout`. Uses the
    /// class of `size` when its alignment suffices, else the class of `size`
    /// rounded up to a multiple of `align` (power-of-two classes are
    /// naturally aligned; 4096 is a page). Example: 65 bytes aligned to 64
    /// come from kmalloc-128, not kmalloc-96 (which is 32-aligned).
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
    ) -> Option<usize> {
        if !align.is_power_of_two() || align > PAGE_SIZE as usize {
            return None;
        }
        self.kmalloc(buddy, mem, aligned_size(size, align), gfp)
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
        addr: usize,
    ) -> Result<(), KmallocError> {
        if addr == 0 || addr == ZERO_SIZE_PTR {
            return Ok(());
        }
        let result = match self.lookup(buddy, mem, addr) {
            Ok(Owner::Slab { index, slab, obj }) => self.slab_free(buddy, mem, index, slab, obj),
            Ok(Owner::Large { pfn, order }) => {
                buddy.set_page_use(pfn, 1, PageUse::None);
                match buddy.free_pages_raw(pfn, order) {
                    Ok(()) => {
                        self.large.live -= 1;
                        self.large.pages -= 1 << order;
                        self.large.frees += 1;
                        Ok(())
                    }
                    Err(bad) => {
                        buddy.set_page_use(pfn, 1, PageUse::LargeKmalloc);
                        Err(error(KmallocErrorKind::BadPage(bad), addr, "kmalloc-large"))
                    }
                }
            }
            Err(e) => Err(e),
        };
        result.map_err(|e| self.report(e))
    }

    /// Frees `addr`, allocated with `kmalloc_aligned(size, align)`: the free
    /// of Rust's `GlobalAlloc::dealloc`, which knows the `Layout`.
    ///
    /// Without `slub_debug`, a small object goes onto its cache's *array
    /// cache*, a stack of up to [`ARRAY_CACHE_LIMIT`] recently freed
    /// objects that the next allocation of that size pops (Linux SLAB's
    /// `array_cache`, SLUB's per-cpu freelist, Bonwick's magazines): no
    /// page lookup, no slab header, no bitmap, a few nanoseconds. When the
    /// stack is full, its older half goes back to the slabs through the
    /// checked path of [`kfree`](Self::kfree) (Linux `cache_flusharray()`);
    /// [`shrink`](Self::shrink) empties it. Everything else takes
    /// [`kfree`](Self::kfree).
    ///
    /// The fast path trusts `size` and `align`, as `GlobalAlloc` may: a
    /// wrong pair is caught only when the object is flushed. It catches
    /// the naive double free (the object on top of the stack again), as
    /// SLUB's hardened freelist does; other double frees through this path
    /// go unnoticed until the flush. `slub_debug` turns the fast path off.
    ///
    /// # Errors
    /// As [`kfree`](Self::kfree), for this object or (when the stack was
    /// flushed) an older one.
    #[inline]
    pub fn kfree_sized(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: usize,
        size: usize,
        align: usize,
    ) -> Result<(), KmallocError> {
        if !self.debug
            && addr != 0
            && addr != ZERO_SIZE_PTR
            && let Some(index) = kmalloc_index(aligned_size(size.max(1), align))
        {
            let c = &mut self.caches[index];
            let avail = c.avail as usize;
            if avail > 0 && avail < ARRAY_CACHE_LIMIT && c.array[avail - 1] != addr {
                c.array[avail] = addr;
                c.avail += 1;
                c.frees += 1;
                return Ok(());
            }
        }
        self.kfree_sized_slow(buddy, mem, addr, size, align)
    }

    /// [`kfree_sized`](Self::kfree_sized) when the fast path does not
    /// apply: debug, an empty or full array cache, a double free.
    #[inline(never)]
    fn kfree_sized_slow(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: usize,
        size: usize,
        align: usize,
    ) -> Result<(), KmallocError> {
        if self.debug || addr == 0 || addr == ZERO_SIZE_PTR {
            return self.kfree(buddy, mem, addr);
        }
        let Some(index) = kmalloc_index(aligned_size(size.max(1), align)) else {
            return self.kfree(buddy, mem, addr);
        };
        let c = &mut self.caches[index];
        let avail = c.avail as usize;
        if avail > 0 && c.array[avail - 1] == addr {
            let e = error(KmallocErrorKind::DoubleFree, addr, c.name);
            return Err(self.report(e));
        }
        let mut flushed = Ok(());
        if avail == ARRAY_CACHE_LIMIT {
            flushed = self.flush_array(buddy, mem, index, ARRAY_CACHE_LIMIT / 2);
        }
        let c = &mut self.caches[index];
        c.array[c.avail as usize] = addr;
        c.avail += 1;
        c.frees += 1;
        flushed
    }

    /// Gives the oldest `n` objects of cache `index`'s array cache back to
    /// their slabs, each checked as [`kfree`](Self::kfree) checks it (Linux
    /// `cache_flusharray()`); returns the first problem found, after
    /// flushing all `n`.
    fn flush_array(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        n: usize,
    ) -> Result<(), KmallocError> {
        let mut first_error = Ok(());
        for i in 0..n {
            let addr = self.caches[index].array[i];
            let r = match self.lookup(buddy, mem, addr) {
                Ok(Owner::Slab {
                    index: owner,
                    slab,
                    obj,
                }) if owner == index => {
                    let r = self.slab_free(buddy, mem, index, slab, obj);
                    // Counted when it entered the array cache.
                    self.caches[index].frees -= 1;
                    r
                }
                Ok(_) => Err(error(
                    KmallocErrorKind::NotObjectStart,
                    addr,
                    self.caches[index].name,
                )),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                let e = self.report(e);
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        let c = &mut self.caches[index];
        let avail = c.avail as usize;
        c.array.copy_within(n..avail, 0);
        c.avail = (avail - n) as u32;
        first_error
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
        addr: usize,
    ) -> Result<usize, KmallocError> {
        if addr == 0 || addr == ZERO_SIZE_PTR {
            return Ok(0);
        }
        let usable = self.ksize_quiet(buddy, mem, addr)?;
        if self.debug && usable <= KMALLOC_MAX_CACHE_SIZE as usize {
            mem.write_u32(addr - DEBUG_HEADER_SIZE as usize, usable as u32);
        }
        Ok(usable)
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
        addr: usize,
        new_size: usize,
        gfp: Gfp,
    ) -> Result<Option<usize>, KmallocError> {
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
        addr: usize,
        new_size: usize,
        align: usize,
        gfp: Gfp,
    ) -> Result<Option<usize>, KmallocError> {
        if addr == 0 || addr == ZERO_SIZE_PTR {
            return Ok(self.kmalloc_aligned(buddy, mem, new_size, align, gfp));
        }
        if new_size == 0 {
            self.kfree(buddy, mem, addr)?;
            return Ok(Some(ZERO_SIZE_PTR));
        }
        let usable = self.ksize_quiet(buddy, mem, addr)?;
        let old_size = self.requested_size(mem, addr, usable);
        if aligned_size(new_size, align) <= usable && addr.is_multiple_of(align) {
            if self.debug
                && let Some(index) = kmalloc_index(usable)
                && usable <= KMALLOC_MAX_CACHE_SIZE as usize
            {
                self.set_requested_size(mem, index, addr, new_size);
            }
            if gfp.contains(Gfp::ZERO) {
                if new_size > old_size {
                    mem.fill(addr + old_size, new_size - old_size, 0);
                }
                // Where the requested size is not recorded, keep the bytes
                // past it zero, so that a later growth in place is zeroed
                // (the invariant kzalloc starts; Linux zeroes the tail the
                // same way).
                let recorded = self.debug && usable <= KMALLOC_MAX_CACHE_SIZE as usize;
                if !recorded && old_size == usable && new_size < usable {
                    mem.fill(addr + new_size, usable - new_size, 0);
                }
            }
            return Ok(Some(addr));
        }
        let Some(new) = self.kmalloc_aligned(buddy, mem, new_size, align, gfp) else {
            return Ok(None);
        };
        mem.copy(new, addr, old_size.min(new_size));
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
    /// A description of the first inconsistency.
    pub fn validate(
        &self,
        buddy: &BuddyAllocator<'_>,
        mem: &impl SlabMemory,
    ) -> Result<(), &'static str> {
        for (index, c) in self.caches.iter().enumerate() {
            let mut active = 0;
            for id in [ListId::Partial, ListId::Full, ListId::Empty] {
                let list = c.lists[id as usize - 1];
                let mut slab = list.head;
                let mut prev = 0;
                let mut n = 0;
                while slab != 0 {
                    n += 1;
                    if n > list.len {
                        return Err("slab list longer than its count");
                    }
                    if hdr(mem, slab, HDR_MAGIC) != SLAB_MAGIC ^ index {
                        return Err("slab header magic wrong");
                    }
                    if hdr(mem, slab, HDR_PREV) != prev {
                        return Err("slab prev link wrong");
                    }
                    if hdr(mem, slab, HDR_LIST) != id as usize {
                        return Err("slab on a list other than its header says");
                    }
                    let inuse = hdr(mem, slab, HDR_INUSE) as u32;
                    let mut free = 0;
                    for w in 0..c.bitmap_words {
                        free += hdr(mem, slab, HDR_BITMAP + w).count_ones();
                    }
                    if inuse + free != c.objects {
                        return Err("slab inuse does not match its bitmap");
                    }
                    let ok = match id {
                        ListId::Partial => inuse > 0 && inuse < c.objects,
                        ListId::Full => inuse == c.objects,
                        ListId::Empty => inuse == 0,
                    };
                    if !ok {
                        return Err("slab on the wrong list for its inuse count");
                    }
                    let Some(pfn) = mem.virt_to_pfn(slab) else {
                        return Err("slab outside the direct map");
                    };
                    for p in pfn..pfn + (1 << c.order) {
                        if buddy.page(p).map(|pg| pg.page_use())
                            != Some(PageUse::Slab { cache: index as u8 })
                        {
                            return Err("slab page not marked with its cache");
                        }
                    }
                    active += inuse;
                    prev = slab;
                    slab = hdr(mem, slab, HDR_NEXT);
                }
                if n != list.len {
                    return Err("slab list shorter than its count");
                }
            }
            if active != c.active_objs {
                return Err("cache active_objs does not match its slabs");
            }
        }
        Ok(())
    }

    // ---- internals -----------------------------------------------------

    fn report(&mut self, e: KmallocError) -> KmallocError {
        self.reports += 1;
        self.last_report = Some(e);
        e
    }

    /// Finds what `addr` belongs to (Linux `virt_to_slab()` /
    /// `virt_to_folio()` in `kfree()`), checking it is an object start.
    fn lookup(
        &self,
        buddy: &BuddyAllocator<'_>,
        mem: &impl SlabMemory,
        addr: usize,
    ) -> Result<Owner, KmallocError> {
        let not_kmalloc = error(KmallocErrorKind::NotKmalloc, addr, "kmalloc");
        let pfn = mem.virt_to_pfn(addr).ok_or(not_kmalloc)?;
        let page = buddy.page(pfn).ok_or(not_kmalloc)?;
        match page.page_use() {
            PageUse::None => Err(not_kmalloc),
            PageUse::LargeKmalloc => {
                if addr != mem.page_address(pfn) {
                    return Err(error(
                        KmallocErrorKind::NotObjectStart,
                        addr,
                        "kmalloc-large",
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
                let head = pfn & !((1u32 << c.order) - 1);
                let slab = mem.page_address(head);
                if hdr(mem, slab, HDR_MAGIC) != SLAB_MAGIC ^ index {
                    return Err(error(KmallocErrorKind::SlabCorrupt, addr, c.name));
                }
                let not_start = error(KmallocErrorKind::NotObjectStart, addr, c.name);
                let offset = (addr - slab)
                    .checked_sub((c.first_slot + c.payload) as usize)
                    .ok_or(not_start)? as u64;
                let obj = ((offset * c.reciprocal) >> 32) as u32;
                if obj >= c.objects || u64::from(obj) * u64::from(c.stride) != offset {
                    return Err(not_start);
                }
                Ok(Owner::Slab { index, slab, obj })
            }
        }
    }

    fn object_addr(&self, index: usize, slab: usize, obj: u32) -> usize {
        let c = &self.caches[index];
        slab + (c.first_slot + c.payload) as usize + (obj * c.stride) as usize
    }

    fn slab_alloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        size: usize,
        gfp: Gfp,
    ) -> Option<usize> {
        // (The array cache was tried by `kmalloc`'s fast path.)
        loop {
            let slab = match self.caches[index].lists[ListId::Partial as usize - 1].head {
                0 => match self.pop_empty(mem, index) {
                    Some(slab) => {
                        list_add(mem, &mut self.caches[index], ListId::Partial, slab);
                        slab
                    }
                    None => self.new_slab(buddy, mem, index, gfp)?,
                },
                slab => slab,
            };
            let obj = self.take_free_bit(mem, index, slab);
            let addr = self.object_addr(index, slab, obj);
            if self.debug
                && let Err(e) = self.check_free_object(mem, index, addr)
            {
                // Keep the object allocated for ever: whoever wrote to it
                // after its free may still do so.
                mem.write_u32(addr - DEBUG_HEADER_SIZE as usize + 4, QUARANTINE_MAGIC);
                self.caches[index].quarantined += 1;
                self.report(e);
                continue;
            }
            let c = &mut self.caches[index];
            c.allocs += 1;
            if self.debug {
                self.set_allocated(mem, index, addr, size);
            }
            if gfp.contains(Gfp::ZERO) {
                // The whole object unless slub_debug red-zones its tail.
                let len = if self.debug {
                    size
                } else {
                    self.caches[index].object_size as usize
                };
                mem.fill(addr, len, 0);
            }
            return Some(addr);
        }
    }

    /// Takes the first free object of a slab on the partial list (or a
    /// fresh one): clears its bit, counts it, moves a now-full slab to the
    /// full list.
    #[inline]
    fn take_free_bit(&mut self, mem: &mut impl SlabMemory, index: usize, slab: usize) -> u32 {
        let c = &mut self.caches[index];
        let mut w = hdr(mem, slab, HDR_HINT) as u32;
        let obj = loop {
            let bits = hdr(mem, slab, HDR_BITMAP + w);
            if bits != 0 {
                set_hdr(mem, slab, HDR_BITMAP + w, bits & (bits - 1));
                break w * usize::BITS + bits.trailing_zeros();
            }
            w += 1;
            // A partial slab has a free bit; a header overwritten (by a
            // write just before object 0) might not: stop at the bitmap.
            assert!(
                w < c.bitmap_words,
                "BUG {}: slab at {slab:#x} on the partial list has no free object (slab header overwritten)",
                c.name
            );
        };
        set_hdr(mem, slab, HDR_HINT, w as usize);
        let inuse = hdr(mem, slab, HDR_INUSE) + 1;
        set_hdr(mem, slab, HDR_INUSE, inuse);
        c.active_objs += 1;
        if inuse == c.objects as usize {
            list_del(mem, c, ListId::Partial, slab);
            list_add(mem, c, ListId::Full, slab);
        }
        obj
    }

    fn slab_free(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        slab: usize,
        obj: u32,
    ) -> Result<(), KmallocError> {
        let addr = self.object_addr(index, slab, obj);
        let name = self.caches[index].name;
        if bit_is_free(mem, slab, obj) {
            return Err(error(KmallocErrorKind::DoubleFree, addr, name));
        }
        let mut redzone = Ok(());
        if self.debug {
            self.check_header(mem, index, addr)?;
            redzone = self.check_redzones(mem, index, addr);
            self.set_free(mem, index, addr);
        }
        let c = &mut self.caches[index];
        let w = obj / usize::BITS;
        let bits = hdr(mem, slab, HDR_BITMAP + w);
        set_hdr(mem, slab, HDR_BITMAP + w, bits | 1 << (obj % usize::BITS));
        if (w as usize) < hdr(mem, slab, HDR_HINT) {
            set_hdr(mem, slab, HDR_HINT, w as usize);
        }
        let inuse = hdr(mem, slab, HDR_INUSE) - 1;
        set_hdr(mem, slab, HDR_INUSE, inuse);
        c.active_objs -= 1;
        c.frees += 1;
        if inuse + 1 == c.objects as usize {
            list_del(mem, c, ListId::Full, slab);
            if inuse > 0 {
                list_add(mem, c, ListId::Partial, slab);
            }
        } else if inuse == 0 {
            list_del(mem, c, ListId::Partial, slab);
        }
        if inuse == 0 {
            if c.nr_empty() < MIN_PARTIAL {
                list_add(mem, c, ListId::Empty, slab);
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
    ) -> Option<usize> {
        let order = self.caches[index].order;
        let gfp = gfp.difference(Gfp::HIGHMEM | Gfp::ZERO);
        let (pfn, _) = self.alloc_pages_reclaim(buddy, mem, gfp, order)?;
        buddy.set_page_use(pfn, 1 << order, PageUse::Slab { cache: index as u8 });
        let slab = mem.page_address(pfn);
        let c = &mut self.caches[index];
        set_hdr(mem, slab, HDR_MAGIC, SLAB_MAGIC ^ index);
        set_hdr(mem, slab, HDR_INUSE, 0);
        set_hdr(mem, slab, HDR_HINT, 0);
        for w in 0..c.bitmap_words {
            let left = c.objects - w * usize::BITS;
            let bits = if left >= usize::BITS {
                usize::MAX
            } else {
                (1usize << left) - 1
            };
            set_hdr(mem, slab, HDR_BITMAP + w, bits);
        }
        list_add(mem, c, ListId::Partial, slab);
        if self.debug {
            for obj in 0..self.caches[index].objects {
                let addr = self.object_addr(index, slab, obj);
                self.set_free(mem, index, addr);
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
    ) -> Option<(u32, u8)> {
        // Reclaim cannot help a request larger than any block.
        let has_empty = order <= MAX_PAGE_ORDER && self.caches.iter().any(|c| c.nr_empty() > 0);
        let first = if has_empty { gfp | Gfp::NOWARN } else { gfp };
        if let Some(block) = buddy.alloc_pages(first, order) {
            return Some(block.into_raw());
        }
        if !has_empty || self.shrink(buddy, mem) == 0 {
            return None;
        }
        // Freed order-0 slabs sit on the per-cpu lists, which the
        // watermark check does not count: drain them (Linux drains before
        // retrying a failed allocation too).
        buddy.drain_pages();
        buddy.alloc_pages(gfp, order).map(|b| b.into_raw())
    }

    /// Takes an empty slab off cache `index`'s empty list (it is then on no
    /// list).
    fn pop_empty(&mut self, mem: &mut impl SlabMemory, index: usize) -> Option<usize> {
        let c = &mut self.caches[index];
        let slab = c.list(ListId::Empty).head;
        if slab == 0 {
            return None;
        }
        list_del(mem, c, ListId::Empty, slab);
        Some(slab)
    }

    /// Gives a slab with no object in use and on no list back to the buddy
    /// allocator (Linux `discard_slab()`); returns its pages.
    fn discard_slab(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        slab: usize,
    ) -> u32 {
        let order = self.caches[index].order;
        set_hdr(mem, slab, HDR_MAGIC, 0);
        let pfn = mem.virt_to_pfn(slab).expect("slab in the direct map");
        buddy.set_page_use(pfn, 1 << order, PageUse::None);
        buddy
            .free_pages_raw(pfn, order)
            .expect("discard_slab: the buddy allocator refused a slab");
        1 << order
    }

    fn large_alloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<usize> {
        let size = u32::try_from(size).ok()?;
        let order = get_order(size);
        let page_gfp = gfp.difference(Gfp::HIGHMEM | Gfp::ZERO);
        let (pfn, _) = self.alloc_pages_reclaim(buddy, mem, page_gfp, order)?;
        buddy.set_page_use(pfn, 1, PageUse::LargeKmalloc);
        self.large.live += 1;
        self.large.pages += 1 << order;
        self.large.allocs += 1;
        let addr = mem.page_address(pfn);
        if gfp.contains(Gfp::ZERO) {
            mem.fill(addr, (PAGE_SIZE as usize) << order, 0);
        }
        Some(addr)
    }

    /// The size the caller asked for: from the debug header under
    /// `slub_debug`, else the usable size.
    fn requested_size(&self, mem: &impl SlabMemory, addr: usize, usable: usize) -> usize {
        if self.debug && usable <= KMALLOC_MAX_CACHE_SIZE as usize {
            return mem.read_u32(addr - DEBUG_HEADER_SIZE as usize) as usize;
        }
        usable
    }

    /// [`ksize`](Self::ksize) without widening the debug size.
    fn ksize_quiet(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: usize,
    ) -> Result<usize, KmallocError> {
        match self.lookup(buddy, mem, addr) {
            Ok(Owner::Slab { index, slab, obj }) => {
                let (name, size) = (self.caches[index].name, self.caches[index].object_size);
                if bit_is_free(mem, slab, obj) {
                    return Err(self.report(error(KmallocErrorKind::DoubleFree, addr, name)));
                }
                if self.debug {
                    self.check_header(mem, index, addr)
                        .map_err(|e| self.report(e))?;
                }
                Ok(size as usize)
            }
            Ok(Owner::Large { order, .. }) => Ok((PAGE_SIZE as usize) << order),
            Err(e) => Err(self.report(e)),
        }
    }

    // ---- slub_debug ----------------------------------------------------

    /// The red zone in front of the header: `[slot start, header)`.
    fn left_redzone(&self, index: usize, addr: usize) -> (usize, usize) {
        let c = &self.caches[index];
        let start = addr - c.payload as usize;
        (start, (c.payload - DEBUG_HEADER_SIZE) as usize)
    }

    /// The red zone after the object: `[addr + class, slot end)`.
    fn right_redzone(&self, index: usize, addr: usize) -> (usize, usize) {
        let c = &self.caches[index];
        let start = addr + c.object_size as usize;
        (start, (c.stride - c.payload - c.object_size) as usize)
    }

    /// Writes a free object's state: header `{0, FREE_MAGIC}`, poison, red
    /// zones inactive (Linux `init_object(.., SLUB_RED_INACTIVE)`).
    fn set_free(&self, mem: &mut impl SlabMemory, index: usize, addr: usize) {
        let class = self.caches[index].object_size as usize;
        let h = addr - DEBUG_HEADER_SIZE as usize;
        mem.write_u32(h, 0);
        mem.write_u32(h + 4, FREE_MAGIC);
        mem.fill(addr, class - 1, POISON_FREE);
        mem.fill(addr + class - 1, 1, POISON_END);
        let (l, ll) = self.left_redzone(index, addr);
        mem.fill(l, ll, RED_INACTIVE);
        let (r, rl) = self.right_redzone(index, addr);
        mem.fill(r, rl, RED_INACTIVE);
    }

    /// Writes an allocated object's state: header `{size, KMALLOC_MAGIC}`,
    /// red zones (and the unused tail of the object) active.
    fn set_allocated(&self, mem: &mut impl SlabMemory, index: usize, addr: usize, size: usize) {
        let h = addr - DEBUG_HEADER_SIZE as usize;
        mem.write_u32(h + 4, KMALLOC_MAGIC);
        let (l, ll) = self.left_redzone(index, addr);
        mem.fill(l, ll, RED_ACTIVE);
        let (r, rl) = self.right_redzone(index, addr);
        mem.fill(r, rl, RED_ACTIVE);
        self.set_requested_size(mem, index, addr, size);
    }

    /// Records `size` in the header and red-zones `[size, class)`.
    fn set_requested_size(
        &self,
        mem: &mut impl SlabMemory,
        index: usize,
        addr: usize,
        size: usize,
    ) {
        let class = self.caches[index].object_size as usize;
        mem.write_u32(addr - DEBUG_HEADER_SIZE as usize, size as u32);
        mem.fill(addr + size, class - size, RED_ACTIVE);
    }

    /// Checks an allocated object's header (Linux `check_object()`'s
    /// metadata part).
    fn check_header(
        &self,
        mem: &impl SlabMemory,
        index: usize,
        addr: usize,
    ) -> Result<(), KmallocError> {
        let c = &self.caches[index];
        let h = addr - DEBUG_HEADER_SIZE as usize;
        let magic = mem.read_u32(h + 4);
        let size = mem.read_u32(h);
        match magic {
            KMALLOC_MAGIC if size >= 1 && size <= c.object_size => Ok(()),
            FREE_MAGIC | QUARANTINE_MAGIC => Err(error(KmallocErrorKind::DoubleFree, addr, c.name)),
            found => Err(error(
                KmallocErrorKind::HeaderOverwritten { found },
                addr,
                c.name,
            )),
        }
    }

    /// Checks every red-zone byte of an allocated object; restores them.
    fn check_redzones(
        &self,
        mem: &mut impl SlabMemory,
        index: usize,
        addr: usize,
    ) -> Result<(), KmallocError> {
        let c = &self.caches[index];
        let size = mem.read_u32(addr - DEBUG_HEADER_SIZE as usize) as usize;
        let (l, ll) = self.left_redzone(index, addr);
        let (r, rl) = self.right_redzone(index, addr);
        // In address order, so the first bad byte is the one reported.
        let zones = [
            (l, ll),
            (addr + size, c.object_size as usize - size),
            (r, rl),
        ];
        let mut result = Ok(());
        for (start, len) in zones {
            if let Some(off) = mem.find_mismatch(start, len, RED_ACTIVE) {
                let at = start + off;
                if result.is_ok() {
                    result = Err(error(
                        KmallocErrorKind::RedzoneOverwritten {
                            offset: at.wrapping_sub(addr) as isize as i32,
                            found: mem.read_u8(at),
                        },
                        addr,
                        c.name,
                    ));
                }
                mem.fill(start, len, RED_ACTIVE);
            }
        }
        result
    }

    /// Checks a free object before reuse: header says free, poison intact
    /// (Linux `alloc_debug_processing()`; the red zones of a free object are
    /// not checked).
    fn check_free_object(
        &self,
        mem: &impl SlabMemory,
        index: usize,
        addr: usize,
    ) -> Result<(), KmallocError> {
        let c = &self.caches[index];
        let class = c.object_size as usize;
        let magic = mem.read_u32(addr - DEBUG_HEADER_SIZE as usize + 4);
        if magic != FREE_MAGIC {
            return Err(error(
                KmallocErrorKind::HeaderOverwritten { found: magic },
                addr,
                c.name,
            ));
        }
        let bad = |offset: usize| {
            error(
                KmallocErrorKind::UseAfterFree {
                    offset: offset as u32,
                    found: mem.read_u8(addr + offset),
                },
                addr,
                c.name,
            )
        };
        if let Some(off) = mem.find_mismatch(addr, class - 1, POISON_FREE) {
            return Err(bad(off));
        }
        if mem.read_u8(addr + class - 1) != POISON_END {
            return Err(bad(class - 1));
        }
        Ok(())
    }
}

/// What an address belongs to.
enum Owner {
    Slab { index: usize, slab: usize, obj: u32 },
    Large { pfn: u32, order: u8 },
}

fn error(kind: KmallocErrorKind, addr: usize, cache: &'static str) -> KmallocError {
    KmallocError { kind, addr, cache }
}

/// The size to request so that a class's alignment guarantee covers
/// `align`: `size` if its class is aligned enough, else `size` rounded up
/// to a multiple of `align`.
#[inline]
fn aligned_size(size: usize, align: usize) -> usize {
    if align <= KMALLOC_MIN_SIZE as usize {
        return size;
    }
    match kmalloc_index(size) {
        Some(i) if KMALLOC_SIZES[i] as usize & (align - 1) == 0 => size,
        // The next multiple of `align` is in a class aligned enough: the
        // power-of-two classes are naturally aligned, and a multiple of a
        // power of two above 64 never lands in 96 or 192.
        Some(_) => size.next_multiple_of(align),
        // Large allocations are page aligned already.
        None => size,
    }
}

#[inline]
fn hdr(mem: &impl SlabMemory, slab: usize, word: u32) -> usize {
    mem.read_word(slab + (word * WORD) as usize)
}

#[inline]
fn set_hdr(mem: &mut impl SlabMemory, slab: usize, word: u32, value: usize) {
    mem.write_word(slab + (word * WORD) as usize, value);
}

#[inline]
fn bit_is_free(mem: &impl SlabMemory, slab: usize, obj: u32) -> bool {
    hdr(mem, slab, HDR_BITMAP + obj / usize::BITS) & 1 << (obj % usize::BITS) != 0
}

/// Pushes `slab` on the front of list `id` (Linux `list_add()`).
#[inline]
fn list_add(mem: &mut impl SlabMemory, c: &mut KmemCache, id: ListId, slab: usize) {
    let list = c.list(id);
    let head = list.head;
    set_hdr(mem, slab, HDR_NEXT, head);
    set_hdr(mem, slab, HDR_PREV, 0);
    set_hdr(mem, slab, HDR_LIST, id as usize);
    if head != 0 {
        set_hdr(mem, head, HDR_PREV, slab);
    }
    list.head = slab;
    list.len += 1;
}

/// Unlinks `slab` from list `id` (Linux `list_del()`).
#[inline]
fn list_del(mem: &mut impl SlabMemory, c: &mut KmemCache, id: ListId, slab: usize) {
    let next = hdr(mem, slab, HDR_NEXT);
    let prev = hdr(mem, slab, HDR_PREV);
    if next != 0 {
        set_hdr(mem, next, HDR_PREV, prev);
    }
    let list = c.list(id);
    if prev != 0 {
        set_hdr(mem, prev, HDR_NEXT, next);
    } else {
        list.head = next;
    }
    list.len -= 1;
    set_hdr(mem, slab, HDR_LIST, 0);
}

const _: () = assert!(KMALLOC_MAX_CACHE_SIZE < PAGE_SIZE);
const _: () = assert!(PAGE_SHIFT == 12);

#[cfg(test)]
pub(crate) mod host;
#[cfg(test)]
mod stress_tests;
#[cfg(test)]
mod tests;
