//! Host benchmarks of kmalloc, the slab allocator (`make bench`,
//! `make bench-ir`), the workloads of issue 15.
//!
//! The system under test is `Kmalloc::new(false)` (no `slub_debug`), called
//! as the kernel's `GlobalAlloc` calls it: `kmalloc_aligned(size, 8,
//! GFP_KERNEL)` and `kfree_sized(addr, size, 8)` (the array-cache fast
//! path of `GlobalAlloc::dealloc`). Its pages come from a `BuddyAllocator`
//! booted the way the kernel boots it (`new` → `mark_present` →
//! `free_memory_range` from pfn 16 → `setup_watermarks`) over 256 MiB of
//! lowmem (DMA + Normal, `max_low_pfn` = all of it): real host memory from
//! `std::alloc` (4 MiB aligned like the direct map, leaked), reached
//! through [`RawRam`], a `SlabMemory` doing raw reads and writes at `base +
//! (pfn << PAGE_SHIFT)`.
//!
//! Baselines, each on its own region of the same 256 MiB and served the
//! same `Layout`s (align 8):
//! - `talc`: the `talc` crate's `Talc<ErrOnOom>` (4.x, `malloc`/`free`);
//! - `lla` (information): the `linked_list_allocator` crate's `Heap`
//!   (first fit over an address-ordered hole list);
//! - `seg` (information): a segregated free list: power-of-two classes
//!   8..=4096, each an intrusive singly linked free list, carved from a
//!   bump region, never coalesced or returned: the floor.
//!
//! Workloads (request sizes of the mixes uniform in 8..=4096 bytes,
//! precomputed from a seeded xorshift so that every run and every allocator
//! replays the same script; every object's first byte is written right
//! after its allocation, `alloc_touched`):
//! - `pair64`: one 64-byte alloc + free on a fresh heap (nothing else live:
//!   every allocator gets a new heap for the comparison);
//! - `pair4k`: the same with 4096 bytes;
//! - `mix`: [`MIX_LIVE`] live objects; each step frees a random live object
//!   and allocates a new random size in its place (steady state);
//! - `fill`: [`FILL_OBJECTS`] allocations of random sizes, then all freed
//!   in a pre-shuffled random order; one fill + free per batch;
//! - memory (untimed): after the mix's prefill and [`MIX_STATS_STEPS`]
//!   steps on a fresh heap, the bytes of overhead per live object (memory
//!   held minus bytes requested, per object: kmalloc's pages, talc's
//!   allocated span, `seg`'s bump extent, `lla`'s highest object end) and
//!   the share of kmalloc's memory lost to size-class rounding ((sum of
//!   `ksize` - sum requested) / sum of `ksize`). talc is built without its
//!   `counters` feature, which would add bookkeeping to the timed
//!   `malloc`/`free` and whose overhead figure leaves out the holes between
//!   allocations; its allocated span is the like of kmalloc's pages.
//!
//! Measurement (see `common`): wall-clock ratios (other allocator /
//! kmalloc: kmalloc's speed-up) from paired repetitions in one run
//! (median, min-max), and instructions per operation (an alloc or a free)
//! from callgrind, counting only the measured operations. `lla` is too slow
//! for the fill (seconds per fill: each free walks its address-ordered hole
//! list, tens of thousands of holes long) and gets its own, shorter mix
//! comparison. The table lists issue 15's targets with PASS/MISS (a miss is
//! information, not an error), then information rows, the instruction
//! counts and the memory after the mix.
//!
//! `BENCH_QUICK=1`: a smoke run. `-- --ir-only`: instruction counts only
//! (`make bench-ir`). `cargo test --benches`: every workload once, checked
//! (caches consistent, nothing leaked), no table.

mod common;

use common::Plan;
use common::ir::{self, IrCount};
use common::paired::{self, Outcome, timed};
use common::report::{self, Goal, Table, fmt_ns};
use kernel::addr::{Pfn, VirtAddr};
use kernel::mm::buddy::BuddyAllocator;
use kernel::mm::gfp::GFP_KERNEL;
use kernel::mm::layout::PAGE_OFFSET;
use kernel::mm::page::Page;
use kernel::mm::slab::{Kmalloc, SlabMemory};
use kernel::mm::zone::ZoneType;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::alloc::{Layout, handle_alloc_error};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr::{self, NonNull};
use std::slice;
use std::time::{Duration, Instant};
use talc::{ErrOnOom, Span, Talc};

/// Bytes of each allocator's region (65536 pages for kmalloc).
const REGION_BYTES: usize = 256 << 20;
const PAGE_SHIFT: u32 = 12;
const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// Regions start at a multiple of 4 MiB (an order-10 block), so that, as in
/// the kernel's direct map (`PAGE_OFFSET` 0xC0000000), a naturally aligned
/// block of pages is naturally aligned in virtual addresses too.
const REGION_ALIGN: usize = PAGE_SIZE << 10;
/// Pages of kmalloc's lowmem.
const NR_PAGES: u32 = (REGION_BYTES >> PAGE_SHIFT) as u32;
/// Pages below stand for the reserved low memory (as in the host tests).
const FIRST_FREE_PFN: u32 = 16;
/// Every `Layout`'s alignment: what `Box`, `Vec` and friends of 8-byte
/// types ask for.
const ALIGN: usize = 8;
/// Request sizes of the mix and the fill: `MIN_SIZE..=MAX_SIZE`, uniform.
const MIN_SIZE: u32 = 8;
const MAX_SIZE: u32 = 4096;

/// Live objects in the mix.
const MIX_LIVE: usize = 10_000;
/// Steps of the mix script (a power of two); batches cycle through it.
const MIX_SCRIPT: usize = 1 << 16;
/// Mix steps before the (untimed) memory statistics are taken.
const MIX_STATS_STEPS: usize = MIX_SCRIPT;
/// Objects allocated, then freed, per fill: about 100 MiB of requests
/// (kmalloc holds about 150 MiB of its 256 MiB for them).
const FILL_OBJECTS: usize = 50_000;
/// The mix's live objects and the fill's objects under `cargo test
/// --benches`: talc's debug build checks its whole heap on every call.
const TEST_MIX_LIVE: usize = 200;
const TEST_FILL_OBJECTS: usize = 500;

/// Operations (pairs, mix steps) counted per instruction-count workload
/// (full run, smoke run).
const IR_STEPS: u64 = 20_000;
const IR_STEPS_QUICK: u64 = 2_000;

/// Issue 15's targets: kmalloc's speed-up over talc, and its overhead per
/// live object against talc's.
const PAIR64_SPEEDUP: f64 = 2.0;
const PAIR4K_SPEEDUP: f64 = 1.0;
const MIX_SPEEDUP: f64 = 1.5;
const OVERHEAD_VS_TALC: f64 = 1.5;

// ---- memory ---------------------------------------------------------------

/// A region of host memory, never freed (so every address in it stays valid
/// for the whole run), aligned to [`REGION_ALIGN`].
#[derive(Clone, Copy)]
struct Region {
    base: *mut u8,
    len: usize,
}

impl Region {
    fn new() -> Region {
        let layout = Layout::from_size_align(REGION_BYTES, REGION_ALIGN).expect("region layout");
        // SAFETY: the layout's size is not zero.
        let base = unsafe { std::alloc::alloc(layout) };
        if base.is_null() {
            handle_alloc_error(layout);
        }
        Region {
            base,
            len: REGION_BYTES,
        }
    }
}

/// kmalloc's view of lowmem: page `pfn` at the 32-bit kernel address
/// `PAGE_OFFSET + (pfn << PAGE_SHIFT)`, which is host address `base + (pfn << PAGE_SHIFT)`,
/// read and written through raw pointers (the kernel's direct map in
/// miniature). `base` is an exposed address of a [`Region`].
struct RawRam {
    base: usize,
    nr_pages: u32,
}

impl RawRam {
    fn new(region: Region) -> RawRam {
        let nr_pages = (region.len >> PAGE_SHIFT) as u32;
        assert!(
            u64::from(PAGE_OFFSET) + (u64::from(nr_pages) << PAGE_SHIFT) <= 1 << 32,
            "region larger than the kernel half"
        );
        RawRam {
            base: region.base.expose_provenance(),
            nr_pages,
        }
    }

    /// The host pointer for kernel address `addr`.
    #[inline(always)]
    fn ptr<T>(&self, addr: VirtAddr) -> *mut T {
        ptr::with_exposed_provenance_mut(self.base + (addr.0 - PAGE_OFFSET) as usize)
    }

    /// The kernel address of host pointer `p` (in the region).
    #[inline(always)]
    fn addr(&self, p: *mut u8) -> VirtAddr {
        VirtAddr(PAGE_OFFSET + (p.addr() - self.base) as u32)
    }
}

// Every address kmalloc passes lies in a page of the region that it got
// from the buddy allocator over `[0, nr_pages)` (`SlabMemory`'s contract),
// `u32`s aligned as the trait says; the region is leaked, so valid for the
// whole run, and only kmalloc touches it (the benchmarks never write into
// objects), so no reference aliases these accesses.
impl SlabMemory for RawRam {
    #[inline(always)]
    fn page_address(&self, pfn: Pfn) -> VirtAddr {
        VirtAddr(PAGE_OFFSET + (pfn.0 << PAGE_SHIFT))
    }
    #[inline(always)]
    fn virt_to_pfn(&self, addr: VirtAddr) -> Option<Pfn> {
        let off = addr.0.wrapping_sub(PAGE_OFFSET);
        (off < self.nr_pages << PAGE_SHIFT).then_some(Pfn(off >> PAGE_SHIFT))
    }
    #[inline(always)]
    fn read_u32(&self, addr: VirtAddr) -> u32 {
        // SAFETY: an aligned `u32` in the region (see the impl's comment).
        unsafe { self.ptr::<u32>(addr).read() }
    }
    #[inline(always)]
    fn write_u32(&mut self, addr: VirtAddr, value: u32) {
        // SAFETY: an aligned `u32` in the region (see the impl's comment).
        unsafe { self.ptr::<u32>(addr).write(value) }
    }
    #[inline(always)]
    fn read_u8(&self, addr: VirtAddr) -> u8 {
        // SAFETY: a byte in the region (see the impl's comment).
        unsafe { self.ptr::<u8>(addr).read() }
    }
    #[inline(always)]
    fn fill(&mut self, addr: VirtAddr, len: u32, byte: u8) {
        // SAFETY: `[addr, addr + len)` lies in the region (see the impl's
        // comment).
        unsafe { self.ptr::<u8>(addr).write_bytes(byte, len as usize) }
    }
    #[inline(always)]
    fn find_mismatch(&self, addr: VirtAddr, len: u32, byte: u8) -> Option<u32> {
        // SAFETY: `[addr, addr + len)` lies in the region (see the impl's
        // comment) and nothing writes to it while the slice lives.
        let bytes = unsafe { slice::from_raw_parts(self.ptr::<u8>(addr), len as usize) };
        bytes.iter().position(|&b| b != byte).map(|i| i as u32)
    }
    #[inline(always)]
    fn copy(&mut self, dst: VirtAddr, src: VirtAddr, len: u32) {
        // SAFETY: both ranges lie in the region (see the impl's comment)
        // and do not overlap (the trait's contract).
        unsafe { ptr::copy_nonoverlapping(self.ptr::<u8>(src), self.ptr::<u8>(dst), len as usize) }
    }
}

// ---- the allocators -------------------------------------------------------

/// What the benchmarks call: `GlobalAlloc`'s `alloc`/`dealloc` for a
/// `Layout` of `size` bytes aligned to [`ALIGN`]. Running out of memory
/// panics (it never happens here).
trait Allocator {
    fn alloc(&mut self, size: usize) -> *mut u8;
    /// Frees `ptr`, allocated with `size`.
    fn free(&mut self, ptr: *mut u8, size: usize);
    /// Bytes the allocator holds for the `live` objects (untimed, for the
    /// memory statistics).
    fn held_bytes(&mut self, live: &[(*mut u8, u32)]) -> usize;
}

#[inline(always)]
fn layout(size: usize) -> Layout {
    // SAFETY: `ALIGN` is a power of two and `size` at most `MAX_SIZE`, so
    // rounding it up to `ALIGN` cannot overflow `isize`.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// The system under test: kmalloc (debug off), its buddy allocator and
/// its lowmem.
struct KmallocHeap<'m> {
    km: Kmalloc,
    buddy: BuddyAllocator<'m>,
    ram: RawRam,
    free_at_boot: u32,
}

fn no_zero(_pfn: Pfn, _nr_pages: u32) {}

fn new_mem_map() -> Vec<Page> {
    vec![Page::reserved(ZoneType::Dma); NR_PAGES as usize]
}

impl KmallocHeap<'_> {
    /// The kernel's bring-up over `mem_map` and `region`: all of it lowmem,
    /// everything from pfn 16 up free.
    fn boot(mem_map: &mut [Page], region: Region) -> KmallocHeap<'_> {
        let nr_pages = u32::try_from(mem_map.len()).expect("mem_map too large");
        let mut buddy = BuddyAllocator::new(mem_map, Pfn(nr_pages), no_zero);
        buddy.mark_present(Pfn(0), Pfn(nr_pages));
        buddy.free_memory_range(Pfn(FIRST_FREE_PFN), Pfn(nr_pages));
        buddy.setup_watermarks();
        let free_at_boot = buddy.nr_free_pages();
        KmallocHeap {
            km: Kmalloc::new(false),
            buddy,
            ram: RawRam::new(region),
            free_at_boot,
        }
    }

    /// Caches consistent; with `empty`, nothing allocated and, once the
    /// empty slabs and per-cpu pages are back, every page free again.
    fn verify(&mut self, empty: bool, what: &str) {
        if let Err(e) = self.km.validate(&self.buddy, &self.ram) {
            panic!("{what}: kmalloc caches inconsistent: {e}");
        }
        if !empty {
            return;
        }
        // Objects waiting in the array caches count as active until shrink.
        let live: u32 = self
            .km
            .caches()
            .iter()
            .map(|c| c.active_objs() - c.array_avail())
            .sum();
        assert_eq!(live, 0, "{what}: objects leaked");
        assert_eq!(self.km.large().live, 0, "{what}: large allocations leaked");
        self.km.shrink(&mut self.buddy, &mut self.ram);
        assert_eq!(self.km.pages(), 0, "{what}: slabs left after shrink");
        self.buddy.drain_pages();
        assert_eq!(
            self.buddy.nr_free_pages(),
            self.free_at_boot,
            "{what}: pages leaked"
        );
    }
}

impl Allocator for KmallocHeap<'_> {
    #[inline(always)]
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let addr = self
            .km
            .kmalloc_aligned(&mut self.buddy, &mut self.ram, size, ALIGN, GFP_KERNEL)
            .expect("kmalloc: out of memory");
        self.ram.ptr(addr)
    }
    #[inline(always)]
    fn free(&mut self, ptr: *mut u8, size: usize) {
        // As GlobalAlloc::dealloc does: the Layout picks the cache, and the
        // object goes to its array cache.
        let addr = self.ram.addr(ptr);
        self.km
            .kfree_sized(&mut self.buddy, &mut self.ram, addr, size, ALIGN)
            .expect("kfree refused an object");
    }
    fn held_bytes(&mut self, _live: &[(*mut u8, u32)]) -> usize {
        self.km.pages() as usize * PAGE_SIZE
    }
}

/// `talc` over its region.
struct TalcHeap {
    talc: Talc<ErrOnOom>,
    heap: Span,
}

impl TalcHeap {
    fn new(region: Region) -> TalcHeap {
        let mut talc = Talc::new(ErrOnOom);
        // SAFETY: the region is valid for reads and writes for the whole
        // run, used by nothing else while this heap lives, and not null.
        let heap = unsafe { talc.claim(Span::from_base_size(region.base, region.len)) }
            .expect("talc: claim failed");
        TalcHeap { talc, heap }
    }
}

impl Allocator for TalcHeap {
    #[inline(always)]
    fn alloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: `size` is not zero (at least `MIN_SIZE`).
        unsafe { self.talc.malloc(layout(size)) }
            .expect("talc: out of memory")
            .as_ptr()
    }
    #[inline(always)]
    fn free(&mut self, ptr: *mut u8, size: usize) {
        // SAFETY: `ptr` came from `malloc` of this `Talc` with the same
        // layout and is freed once.
        unsafe { self.talc.free(NonNull::new_unchecked(ptr), layout(size)) }
    }
    fn held_bytes(&mut self, _live: &[(*mut u8, u32)]) -> usize {
        // SAFETY: `heap` is what `claim` returned.
        unsafe { self.talc.get_allocated_span(self.heap) }.size()
    }
}

/// `linked_list_allocator` over its region.
struct LlaHeap {
    heap: linked_list_allocator::Heap,
}

impl LlaHeap {
    fn new(region: Region) -> LlaHeap {
        let mut heap = linked_list_allocator::Heap::empty();
        // SAFETY: the region is valid for reads and writes for the whole
        // run and used by nothing else while this heap lives.
        unsafe { heap.init(region.base, region.len) };
        LlaHeap { heap }
    }
}

impl Allocator for LlaHeap {
    #[inline(always)]
    fn alloc(&mut self, size: usize) -> *mut u8 {
        self.heap
            .allocate_first_fit(layout(size))
            .expect("lla: out of memory")
            .as_ptr()
    }
    #[inline(always)]
    fn free(&mut self, ptr: *mut u8, size: usize) {
        // SAFETY: `ptr` came from `allocate_first_fit` of this heap with the
        // same layout and is freed once.
        unsafe {
            self.heap
                .deallocate(NonNull::new_unchecked(ptr), layout(size))
        }
    }
    fn held_bytes(&mut self, live: &[(*mut u8, u32)]) -> usize {
        let top = live.iter().map(|&(p, s)| p.addr() + s as usize).max();
        top.map_or(0, |t| t - self.heap.bottom().addr())
    }
}

/// Power-of-two classes 8 (2^3) ..= 4096 (2^12).
const SEG_MIN_SHIFT: u32 = MIN_SIZE.trailing_zeros();
const SEG_CLASSES: usize = (MAX_SIZE.trailing_zeros() - SEG_MIN_SHIFT + 1) as usize;

/// The lower bound: one intrusive singly linked free list per power-of-two
/// class (a free block's first word points to the next), refilled from a
/// bump pointer; nothing coalesces or goes back.
struct SegList {
    heads: [*mut u8; SEG_CLASSES],
    base: *mut u8,
    bump: usize,
    end: usize,
}

impl SegList {
    fn new(region: Region) -> SegList {
        SegList {
            heads: [ptr::null_mut(); SEG_CLASSES],
            base: region.base,
            bump: 0,
            end: region.len,
        }
    }

    #[inline(always)]
    fn class(size: usize) -> usize {
        (size
            .max(MIN_SIZE as usize)
            .next_power_of_two()
            .trailing_zeros()
            - SEG_MIN_SHIFT) as usize
    }
}

impl Allocator for SegList {
    #[inline(always)]
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let c = Self::class(size);
        let head = self.heads[c];
        if !head.is_null() {
            // SAFETY: `head` is a free block of class `c` in the region;
            // `free` wrote the next free block into its first (aligned)
            // word.
            self.heads[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let bytes = 1usize << (c as u32 + SEG_MIN_SHIFT);
        assert!(self.end - self.bump >= bytes, "seg: out of memory");
        // Blocks are multiples of 8 bytes from a page-aligned base: aligned.
        let block = self.base.wrapping_add(self.bump);
        self.bump += bytes;
        block
    }
    #[inline(always)]
    fn free(&mut self, ptr: *mut u8, size: usize) {
        let c = Self::class(size);
        // SAFETY: `ptr` is a block of class `c` this list handed out, 8-byte
        // aligned and at least 8 bytes long, no longer used by its owner.
        unsafe { ptr.cast::<*mut u8>().write(self.heads[c]) };
        self.heads[c] = ptr;
    }
    fn held_bytes(&mut self, _live: &[(*mut u8, u32)]) -> usize {
        self.bump
    }
}

/// One region per allocator, reused by each group's fresh instance.
struct Regions {
    kmalloc: Region,
    talc: Region,
    lla: Region,
    seg: Region,
}

impl Regions {
    fn new() -> Regions {
        Regions {
            kmalloc: Region::new(),
            talc: Region::new(),
            lla: Region::new(),
            seg: Region::new(),
        }
    }
}

// ---- workloads ------------------------------------------------------------

fn rng(seed: u64) -> XorShiftRng {
    XorShiftRng::seed_from_u64(seed)
}

/// A request size, uniform in `MIN_SIZE..=MAX_SIZE` (mean 2052 bytes; half
/// the requests above 2048).
fn size(rng: &mut XorShiftRng) -> u32 {
    rng.random_range(MIN_SIZE..=MAX_SIZE)
}

/// The mix, precomputed so that the timed loop only reads it: the sizes of
/// the initial live objects, then steps `(slot, new size)`.
struct MixScript {
    prefill: Vec<u32>,
    steps: Vec<(u32, u32)>,
}

impl MixScript {
    /// `live` objects ([`MIX_LIVE`] but in test mode).
    fn new(live: usize) -> MixScript {
        let mut rng = rng(0x9E37_79B9_7F4A_7C15);
        let prefill = (0..live).map(|_| size(&mut rng)).collect();
        let steps = (0..MIX_SCRIPT)
            .map(|_| (rng.random_range(0..live as u32), size(&mut rng)))
            .collect();
        MixScript { prefill, steps }
    }
}

/// The fill's sizes and the (shuffled) order of the frees.
struct FillScript {
    sizes: Vec<u32>,
    free_order: Vec<u32>,
}

impl FillScript {
    /// `objects` allocations ([`FILL_OBJECTS`] but in test mode).
    fn new(objects: usize) -> FillScript {
        let mut rng = rng(0xD1B5_4A32_D192_ED03);
        let sizes = (0..objects).map(|_| size(&mut rng)).collect();
        let mut free_order: Vec<u32> = (0..objects as u32).collect();
        free_order.shuffle(&mut rng);
        FillScript { sizes, free_order }
    }
}

/// Allocates `size` bytes and writes the object's first byte, as its
/// user would: an allocator that keeps its metadata in or next to the
/// object (talc's tags) has that cache line loaded already, one that keeps
/// it elsewhere (kmalloc's bitmaps and descriptors) pays for it here, so
/// neither side is favoured by objects nobody touches.
#[inline(always)]
fn alloc_touched<A: Allocator>(a: &mut A, size: usize) -> *mut u8 {
    let p = a.alloc(size);
    // SAFETY: `p` is a live allocation of `size >= 1` bytes (every size
    // here is at least 8).
    unsafe { p.write_volatile(1) };
    p
}

/// `n` pairs of `size`: allocate (touching the object), free.
fn pairs<A: Allocator>(a: &mut A, size: usize, n: u64) {
    for _ in 0..n {
        let p = alloc_touched(a, black_box(size));
        a.free(black_box(p), size);
    }
}

/// A running mix: the live objects and the next step of the script.
struct Mix {
    live: Vec<(*mut u8, u32)>,
    next: usize,
}

impl Mix {
    /// The prefill (untimed).
    fn new<A: Allocator>(a: &mut A, script: &MixScript) -> Mix {
        let live = script
            .prefill
            .iter()
            .map(|&size| (alloc_touched(a, size as usize), size))
            .collect();
        Mix { live, next: 0 }
    }

    /// `n` steps: the object in the step's slot freed, a new one of the
    /// step's size in its place.
    fn steps<A: Allocator>(&mut self, a: &mut A, script: &MixScript, n: u64) {
        for _ in 0..n {
            let (slot, size) = script.steps[self.next];
            let (p, old) = self.live[slot as usize];
            a.free(black_box(p), old as usize);
            self.live[slot as usize] = (alloc_touched(a, black_box(size as usize)), size);
            self.next = (self.next + 1) % MIX_SCRIPT;
        }
    }

    /// Frees every live object.
    fn drain<A: Allocator>(self, a: &mut A) {
        for (p, size) in self.live {
            a.free(p, size as usize);
        }
    }
}

fn fill<A: Allocator>(a: &mut A, script: &FillScript, held: &mut Vec<*mut u8>) {
    held.clear();
    for &size in &script.sizes {
        held.push(alloc_touched(a, black_box(size as usize)));
    }
}

fn free_random<A: Allocator>(a: &mut A, script: &FillScript, held: &[*mut u8]) {
    for &i in &script.free_order {
        let i = i as usize;
        a.free(black_box(held[i]), script.sizes[i] as usize);
    }
}

/// `iters` fills, each freed in the script's random order.
fn fill_free<A: Allocator>(
    a: &mut A,
    script: &FillScript,
    held: &mut Vec<*mut u8>,
    iters: u64,
) -> (Duration, u64) {
    let d = timed(|| {
        for _ in 0..iters {
            fill(a, script, held);
            free_random(a, script, held);
        }
    });
    (d, iters * 2 * script.sizes.len() as u64)
}

// ---- wall-clock comparisons ----------------------------------------------

/// The contestants of a comparison: kmalloc (on a fresh heap) and the
/// baselines named in `others` ("talc", "lla", "seg"), each on a fresh
/// heap on its own region.
struct Heaps<'m> {
    kmalloc: KmallocHeap<'m>,
    talc: TalcHeap,
    lla: LlaHeap,
    seg: SegList,
}

impl<'m> Heaps<'m> {
    fn new(map: &'m mut [Page], r: &Regions) -> Heaps<'m> {
        Heaps {
            kmalloc: KmallocHeap::boot(map, r.kmalloc),
            talc: TalcHeap::new(r.talc),
            lla: LlaHeap::new(r.lla),
            seg: SegList::new(r.seg),
        }
    }

    /// Runs `f` on the heap called `name`.
    fn with<R>(&mut self, name: &str, f: impl FnOnce(&mut dyn AllocatorDyn) -> R) -> R {
        match name {
            "kmalloc" => f(&mut self.kmalloc),
            "talc" => f(&mut self.talc),
            "lla" => f(&mut self.lla),
            "seg" => f(&mut self.seg),
            _ => panic!("no allocator {name}"),
        }
    }
}

/// [`Allocator`] through `dyn`, for picking a contestant by name: one
/// dynamic call per batch, while the loops inside are generic over the
/// concrete allocator (inlined, as for a direct call).
trait AllocatorDyn {
    fn pairs(&mut self, size: usize, n: u64) -> Duration;
    fn mix(&mut self, mix: &mut Mix, script: &MixScript, n: u64) -> Duration;
    fn mix_new(&mut self, script: &MixScript) -> Mix;
    fn mix_drain(&mut self, mix: Mix);
    fn fill_free(
        &mut self,
        script: &FillScript,
        held: &mut Vec<*mut u8>,
        n: u64,
    ) -> (Duration, u64);
}

impl<A: Allocator> AllocatorDyn for A {
    fn pairs(&mut self, size: usize, n: u64) -> Duration {
        timed(|| pairs(self, size, n))
    }
    fn mix(&mut self, mix: &mut Mix, script: &MixScript, n: u64) -> Duration {
        timed(|| mix.steps(self, script, n))
    }
    fn mix_new(&mut self, script: &MixScript) -> Mix {
        Mix::new(self, script)
    }
    fn mix_drain(&mut self, mix: Mix) {
        mix.drain(self)
    }
    fn fill_free(
        &mut self,
        script: &FillScript,
        held: &mut Vec<*mut u8>,
        n: u64,
    ) -> (Duration, u64) {
        fill_free(self, script, held, n)
    }
}

/// Pairs of `size` on fresh heaps.
fn compare_pairs(plan: &Plan, r: &Regions, size: usize, names: &[&str]) -> Outcome {
    let mut map = new_mem_map();
    let mut h = Heaps::new(&mut map, r);
    let out = paired::compare(&plan.pairs(), names, |side, n| {
        (h.with(names[side], |a| a.pairs(size, n)), 2 * n)
    });
    h.kmalloc.verify(true, &format!("pairs of {size} B"));
    out
}

/// The mix in steady state, every contestant on the same script segment
/// per repetition.
fn compare_mix(cfg: &paired::Config, r: &Regions, script: &MixScript, names: &[&str]) -> Outcome {
    let mut map = new_mem_map();
    let mut h = Heaps::new(&mut map, r);
    let mut mixes: Vec<Mix> = names
        .iter()
        .map(|n| h.with(n, |a| a.mix_new(script)))
        .collect();
    let out = paired::compare(cfg, names, |side, n| {
        (
            h.with(names[side], |a| a.mix(&mut mixes[side], script, n)),
            2 * n,
        )
    });
    for (name, mix) in names.iter().zip(mixes) {
        h.with(name, |a| a.mix_drain(mix));
    }
    h.kmalloc.verify(true, "mix");
    out
}

/// Fill and free in random order.
fn compare_fill(plan: &Plan, r: &Regions, script: &FillScript, names: &[&str]) -> Outcome {
    let mut map = new_mem_map();
    let mut h = Heaps::new(&mut map, r);
    let mut held = Vec::with_capacity(FILL_OBJECTS);
    let out = paired::compare(&plan.fills(), names, |side, n| {
        h.with(names[side], |a| a.fill_free(script, &mut held, n))
    });
    h.kmalloc.verify(true, "fill");
    out
}

struct Wall {
    pair64: Outcome,
    pair4k: Outcome,
    mix: Outcome,
    mix_lla: Outcome,
    fill: Outcome,
}

fn run_wall(plan: &Plan, r: &Regions, mix: &MixScript, fill: &FillScript) -> Wall {
    let all = ["kmalloc", "talc", "lla", "seg"];
    eprintln!("bench kmalloc: pairs of 64 B and 4 KiB on fresh heaps");
    let pair64 = compare_pairs(plan, r, 64, &all);
    let pair4k = compare_pairs(plan, r, 4096, &all);
    eprintln!("bench kmalloc: mix");
    let mix_out = compare_mix(&plan.pairs(), r, mix, &["kmalloc", "talc", "seg"]);
    // lla's first fit takes microseconds per step: fewer, shorter batches.
    let mut lla_cfg = plan.pairs();
    lla_cfg.reps = lla_cfg.reps.min(7);
    lla_cfg.batch /= 10;
    let mix_lla = compare_mix(&lla_cfg, r, mix, &["kmalloc", "lla"]);
    eprintln!("bench kmalloc: fill and free in random order");
    let fill_out = compare_fill(plan, r, fill, &["kmalloc", "talc", "seg"]);
    Wall {
        pair64,
        pair4k,
        mix: mix_out,
        mix_lla,
        fill: fill_out,
    }
}

// ---- instruction counts --------------------------------------------------

/// The instruction-count workloads: `<workload>/<allocator>`.
fn ir_workloads() -> Vec<String> {
    let mut w = Vec::new();
    for what in ["pair64", "pair4k"] {
        for who in ["kmalloc", "talc", "seg"] {
            w.push(format!("{what}/{who}"));
        }
    }
    for what in ["mix", "fill"] {
        for who in ["kmalloc", "talc"] {
            w.push(format!("{what}/{who}"));
        }
    }
    w
}

/// Sets up workload `name` on a fresh heap, warms it up, runs `steps`
/// pairs or mix steps (or one fill and free) inside
/// [`ir::bench_ir_measured`]; returns the operations measured (allocs +
/// frees).
fn ir_workload(name: &str, steps: u64, test: bool) -> u64 {
    let (what, who) = name
        .split_once('/')
        .unwrap_or_else(|| panic!("bad workload name {name}"));
    let region = Region::new();
    let mut map = new_mem_map();
    let (live, objects) = if test {
        (TEST_MIX_LIVE, TEST_FILL_OBJECTS)
    } else {
        (MIX_LIVE, FILL_OBJECTS)
    };
    let run = |a: &mut dyn AllocatorIr| a.run_ir(what, steps, live, objects);
    match who {
        "kmalloc" => {
            let mut k = KmallocHeap::boot(&mut map, region);
            let ops = run(&mut k);
            k.verify(true, name);
            ops
        }
        "talc" => run(&mut TalcHeap::new(region)),
        "seg" => run(&mut SegList::new(region)),
        _ => panic!("bad workload name {name}"),
    }
}

/// The instruction-count workloads of one allocator, generic inside.
trait AllocatorIr {
    /// Runs workload `what` (see [`ir_workload`]); returns the operations
    /// measured.
    fn run_ir(&mut self, what: &str, steps: u64, live: usize, objects: usize) -> u64;
}

impl<A: Allocator> AllocatorIr for A {
    fn run_ir(&mut self, what: &str, steps: u64, live: usize, objects: usize) -> u64 {
        let a = self;
        let warm = steps.min(1000);
        match what {
            "pair64" | "pair4k" => {
                let size = if what == "pair64" { 64 } else { 4096 };
                pairs(a, size, warm);
                ir::bench_ir_measured(|| pairs(a, size, steps));
                2 * steps
            }
            "mix" => {
                let script = MixScript::new(live);
                let mut mix = Mix::new(a, &script);
                mix.steps(a, &script, warm);
                ir::bench_ir_measured(|| mix.steps(a, &script, steps));
                mix.drain(a);
                2 * steps
            }
            "fill" => {
                let script = FillScript::new(objects);
                let mut held = Vec::with_capacity(objects);
                fill_free(a, &script, &mut held, 1);
                ir::bench_ir_measured(|| {
                    fill(a, &script, &mut held);
                    free_random(a, &script, &held);
                });
                2 * objects as u64
            }
            _ => panic!("bad workload {what}"),
        }
    }
}

type IrCounts = BTreeMap<String, IrCount>;

// ---- memory statistics (untimed) ------------------------------------------

/// One allocator's memory after the mix.
struct MixMemory {
    name: &'static str,
    live: usize,
    requested: usize,
    held: usize,
}

impl MixMemory {
    fn overhead_per_object(&self) -> f64 {
        (self.held as f64 - self.requested as f64) / self.live as f64
    }
}

/// The mix's prefill then `steps` steps on a fresh allocator; returns its
/// memory and the mix (still allocated).
fn mix_memory<A: Allocator>(
    name: &'static str,
    a: &mut A,
    script: &MixScript,
    steps: usize,
) -> (MixMemory, Mix) {
    let mut mix = Mix::new(a, script);
    mix.steps(a, script, steps as u64);
    let requested = mix.live.iter().map(|&(_, s)| s as usize).sum();
    let held = a.held_bytes(&mix.live);
    let m = MixMemory {
        name,
        live: mix.live.len(),
        requested,
        held,
    };
    (m, mix)
}

/// Kmalloc's breakdown: sum of `ksize`, pages in slabs, pages of large
/// allocations.
struct KmallocMemory {
    ksize: usize,
    slab_pages: u32,
    large_pages: u32,
}

fn memory_stats(r: &Regions, script: &MixScript, steps: usize) -> (Vec<MixMemory>, KmallocMemory) {
    let mut rows = Vec::new();
    let mut map = new_mem_map();
    let mut k = KmallocHeap::boot(&mut map, r.kmalloc);
    let (m, mix) = mix_memory("kmalloc", &mut k, script, steps);
    rows.push(m);
    let mut ksize = 0;
    for &(p, _) in &mix.live {
        let addr = k.ram.addr(p);
        ksize +=
            k.km.ksize(&mut k.buddy, &mut k.ram, addr)
                .expect("ksize of a live object");
    }
    k.verify(false, "mix statistics");
    let large_pages = k.km.large().pages;
    let km = KmallocMemory {
        ksize,
        slab_pages: k.km.pages() - large_pages,
        large_pages,
    };
    mix.drain(&mut k);
    k.verify(true, "mix statistics");

    fn other<A: Allocator>(
        rows: &mut Vec<MixMemory>,
        name: &'static str,
        a: &mut A,
        s: &MixScript,
        steps: usize,
    ) {
        let (m, mix) = mix_memory(name, a, s, steps);
        rows.push(m);
        mix.drain(a);
    }
    other(&mut rows, "talc", &mut TalcHeap::new(r.talc), script, steps);
    other(&mut rows, "lla", &mut LlaHeap::new(r.lla), script, steps);
    other(&mut rows, "seg", &mut SegList::new(r.seg), script, steps);
    (rows, km)
}

fn print_memory(rows: &[MixMemory], km: &KmallocMemory) {
    println!();
    println!("kmalloc: memory after the mix (untimed): {MIX_LIVE} live objects after");
    println!("{MIX_STATS_STEPS} mix steps, each allocator fresh. 'held': kmalloc's pages x 4096");
    println!("(slabs, partial ones included, and large allocations); talc's allocated span");
    println!("(lowest to highest allocated byte); lla: up to the highest object's end; seg:");
    println!("the bump extent. overhead/object = (held - requested) / live objects.");
    println!();
    println!(
        "  {:<10} {:>8} {:>14} {:>14} {:>16}",
        "allocator", "live", "requested", "held", "overhead/object"
    );
    for m in rows {
        println!(
            "  {:<10} {:>8} {:>14} {:>14} {:>14.1} B",
            m.name,
            m.live,
            m.requested,
            m.held,
            m.overhead_per_object()
        );
    }
    if let Some(k) = rows.iter().find(|m| m.name == "kmalloc") {
        let rounding = (km.ksize - k.requested) as f64 / km.ksize as f64;
        println!(
            "  kmalloc: {} slab pages + {} large-allocation pages; sum of ksize {} B:",
            km.slab_pages, km.large_pages, km.ksize
        );
        println!(
            "  {:.1}% of ksize lost to size-class rounding ((ksize - requested) / ksize),",
            100.0 * rounding
        );
        println!(
            "  {:.1}% of the slab and large pages unused by objects ((held - ksize) / held).",
            100.0 * (k.held - km.ksize) as f64 / k.held as f64
        );
    }
}

// ---- the table ------------------------------------------------------------

fn ns_pair(out: &Outcome, a: &str, b: &str) -> String {
    format!(
        "{} / {}",
        fmt_ns(out.ns(a).median),
        fmt_ns(out.ns(b).median)
    )
}

fn speedup_row(t: &mut Table, label: &str, out: Option<&Outcome>, other: &str, goal: Goal) {
    match out {
        Some(o) => t.stats(
            label,
            &ns_pair(o, other, "kmalloc"),
            o.ratio(other, "kmalloc"),
            "x",
            goal,
        ),
        None => t.value(label, "-", None, "x", goal),
    }
}

fn ir_speedup_row(t: &mut Table, label: &str, ir: Option<&IrCounts>, what: &str, other: &str) {
    let get = |who: &str| ir.and_then(|c| c.get(&format!("{what}/{who}")).copied());
    match (get(other), get("kmalloc")) {
        (Some(o), Some(k)) => t.value(
            label,
            &format!("{:.1} / {:.1} Ir", o.per_op(), k.per_op()),
            Some(o.per_op() / k.per_op()),
            "x",
            Goal::Info,
        ),
        _ => t.value(label, "-", None, "x", Goal::Info),
    }
}

fn print_table(
    plan: &Plan,
    wall: Option<&Wall>,
    ir: Option<&IrCounts>,
    memory: Option<&[MixMemory]>,
    seconds: f64,
) {
    let wall_how = paired::how(wall.map(|w| (w.pair64.reps(), w.fill.reps())));
    let ir_how = ir::how(ir.is_some());
    report::header(
        "kmalloc: issue 15 targets",
        &format!(
            "{wall_how}; {ir_how}{}\n\
             A / B = other allocator / kmalloc, medians of time (or instructions) per\n\
             operation (an alloc or a free): kmalloc's speed-up, above 1 when kmalloc\n\
             is faster; value: the ratio's median over repetitions (per repetition\n\
             for wall-clock), min-max its range. Every allocator on 256 MiB of its\n\
             own; sizes of mix and fill uniform in 8..=4096 B. A MISS is information.",
            if plan.quick {
                " (BENCH_QUICK smoke run)"
            } else {
                ""
            }
        ),
    );
    let mut t = Table::start(wall.is_none());
    let w = |f: fn(&Wall) -> &Outcome| wall.map(f);
    speedup_row(
        &mut t,
        "pair64 on a fresh heap, talc / kmalloc (wall)",
        w(|w| &w.pair64),
        "talc",
        Goal::AtLeast(PAIR64_SPEEDUP),
    );
    speedup_row(
        &mut t,
        "pair4k on a fresh heap, talc / kmalloc (wall)",
        w(|w| &w.pair4k),
        "talc",
        Goal::AtLeast(PAIR4K_SPEEDUP),
    );
    speedup_row(
        &mut t,
        "mix, 10k live, steady state, talc / kmalloc (wall)",
        w(|w| &w.mix),
        "talc",
        Goal::AtLeast(MIX_SPEEDUP),
    );
    speedup_row(
        &mut t,
        "mix, fill 50k then free random, talc / kmalloc (wall)",
        w(|w| &w.fill),
        "talc",
        Goal::AtLeast(MIX_SPEEDUP),
    );
    let per_object = |name: &str| {
        memory
            .and_then(|rows| rows.iter().find(|m| m.name == name))
            .map(MixMemory::overhead_per_object)
    };
    let (k, tl) = (per_object("kmalloc"), per_object("talc"));
    t.value(
        "mix, overhead per live object, kmalloc / talc",
        &match (k, tl) {
            (Some(k), Some(tl)) => format!("{k:.1} B / {tl:.1} B"),
            _ => "-".into(),
        },
        k.zip(tl).map(|(k, tl)| k / tl),
        "x",
        Goal::AtMost(OVERHEAD_VS_TALC),
    );
    t.section("information (no target)");
    for (what, label) in [
        ("pair64", "pair64 fresh"),
        ("pair4k", "pair4k fresh"),
        ("mix", "mix steady"),
        ("fill", "mix fill/free"),
    ] {
        ir_speedup_row(
            &mut t,
            &format!("{label}, talc / kmalloc (Ir)"),
            ir,
            what,
            "talc",
        );
    }
    for (label, out) in [
        ("pair64 fresh", w(|w| &w.pair64)),
        ("pair4k fresh", w(|w| &w.pair4k)),
        ("mix steady", w(|w| &w.mix_lla)),
    ] {
        speedup_row(
            &mut t,
            &format!("{label}, lla / kmalloc (wall)"),
            out,
            "lla",
            Goal::Info,
        );
    }
    for (label, out) in [
        ("pair64 fresh", w(|w| &w.pair64)),
        ("pair4k fresh", w(|w| &w.pair4k)),
        ("mix steady", w(|w| &w.mix)),
        ("mix fill/free", w(|w| &w.fill)),
    ] {
        speedup_row(
            &mut t,
            &format!("{label}, seg / kmalloc (wall)"),
            out,
            "seg",
            Goal::Info,
        );
    }
    for (what, label) in [("pair64", "pair64 fresh"), ("pair4k", "pair4k fresh")] {
        ir_speedup_row(
            &mut t,
            &format!("{label}, seg / kmalloc (Ir)"),
            ir,
            what,
            "seg",
        );
    }
    t.finish("kmalloc", seconds);
    if let Some(ir) = ir {
        println!();
        println!(
            "kmalloc: instructions per operation (callgrind Ir; an operation is an alloc or a free)"
        );
        for (name, c) in ir {
            println!(
                "  {name:<24} {:>10.1}   ({} Ir / {} ops)",
                c.per_op(),
                c.ir,
                c.ops
            );
        }
    }
}

fn main() {
    if let Some(w) = ir::child_workload() {
        let steps = if common::quick_env() {
            IR_STEPS_QUICK
        } else {
            IR_STEPS
        };
        ir::report_ops(ir_workload(&w, steps, false));
        return;
    }
    let start = Instant::now();
    let plan = Plan::from_env();
    let regions = Regions::new();
    let (live, objects) = if plan.test {
        (TEST_MIX_LIVE, TEST_FILL_OBJECTS)
    } else {
        (MIX_LIVE, FILL_OBJECTS)
    };
    let mix = MixScript::new(live);
    let fill = FillScript::new(objects);
    let wall = plan.wall.then(|| run_wall(&plan, &regions, &mix, &fill));
    let stats_steps = if plan.test { 100 } else { MIX_STATS_STEPS };
    let memory = plan.wall.then(|| memory_stats(&regions, &mix, stats_steps));
    if plan.test {
        for w in ir_workloads() {
            assert!(ir_workload(&w, 10, true) > 0, "{w}: no operations");
        }
        println!("bench kmalloc: test mode, every workload ran once and was checked");
        return;
    }
    let ir = plan.ir.then(|| {
        eprintln!("bench kmalloc: instruction counts under callgrind");
        ir::count_all(&ir_workloads())
            .inspect_err(|e| eprintln!("bench kmalloc: no instruction counts: {e}"))
            .ok()
    });
    let seconds = start.elapsed().as_secs_f64();
    let rows = memory.as_ref().map(|(rows, _)| rows.as_slice());
    print_table(&plan, wall.as_ref(), ir.flatten().as_ref(), rows, seconds);
    if let Some((rows, km)) = &memory {
        print_memory(rows, km);
    }
}
