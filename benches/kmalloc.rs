//! Host benchmarks of kmalloc, the slab allocator (`make bench`).
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
//! Baselines, measured in the same run, each on its own 256 MiB region and
//! served the same `Layout`s (align 8):
//! - `talc`: the `talc` crate's `Talc<ErrOnOom>` (4.x, `malloc`/`free`);
//! - `lla`: the `linked_list_allocator` crate's `Heap` (first fit over an
//!   address-ordered hole list);
//! - `seg`: a segregated free list: power-of-two classes 8..=4096, each an
//!   intrusive singly linked free list, carved from a bump region, never
//!   coalesced or returned: the lower bound.
//!
//! Benchmarks (one group each, one benchmark per allocator):
//! - `pair64`: one 64-byte alloc + free, with [`PAIR_BACKGROUND`] 64-byte
//!   objects live around it (twice as many allocated, every other one freed,
//!   so the lists hold holes);
//! - `mix`: [`MIX_LIVE`] live objects of random sizes 8..=4096 (log-uniform,
//!   so most are small; deterministic xorshift); each iteration frees a
//!   random live object and allocates a new random size in its place;
//! - `fill_free`: [`FILL_OBJECTS`] allocations of the mix's sizes, then all
//!   freed in a pre-shuffled random order; the whole fill + free is one
//!   iteration, shown per operation (an alloc or a free) in the table.
//!
//! Targets (kmalloc against talc, speed-up = talc's time / kmalloc's):
//! `pair64` >= 2x, `mix` >= 1.5x, `fill_free` >= 1.0x (no slower). The
//! table also shows kmalloc against `lla` and `seg` (information, no target)
//! and, for the mix (untimed, after [`MIX_STATS_STEPS`] steps), the bytes of
//! overhead per live object (memory held minus bytes requested, per object:
//! kmalloc's pages, talc's allocated span, `seg`'s bump extent, `lla`'s
//! highest object end) and the share of kmalloc's memory lost to size-class
//! rounding ((sum of `ksize` - sum requested) / sum of `ksize`). talc is
//! built without its `counters` feature, which would add bookkeeping to the
//! timed `malloc`/`free` and whose overhead figure leaves out the holes
//! between allocations; its allocated span is the like of kmalloc's pages.
//!
//! The ratio table is printed from the means criterion wrote this run
//! (`<criterion dir>/<group>/<bench>/new/estimates.json`). A missed target
//! is reported, never an error: benchmarks inform.
//!
//! `lla` is too slow for criterion in the fill (10-20 s per iteration: each
//! free walks its address-ordered hole list, tens of thousands of holes
//! long), so its `fill_free` is one run timed with `Instant` after the
//! criterion groups; in the mix it gets criterion's least: ten flat
//! samples.
//!
//! Run: `make bench` (both benchmarks), or `cargo bench --bench kmalloc`
//! (under a minute, a third of it `lla`'s single fill); `BENCH_QUICK=1`
//! makes a smoke run (very short measurements, no `lla` fill, a few
//! seconds); criterion's usual arguments work (`cargo bench --bench kmalloc
//! -- mix`), and rows whose benchmarks were filtered out show `n/a` (the
//! `lla` fill runs only when `fill_free/kmalloc` was measured).

mod common;

use common::{criterion_dir, mean_ns};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use kernel::addr::{Pfn, VirtAddr};
use kernel::mm::buddy::BuddyAllocator;
use kernel::mm::gfp::GFP_KERNEL;
use kernel::mm::layout::PAGE_OFFSET;
use kernel::mm::page::Page;
use kernel::mm::slab::{Kmalloc, SlabMemory};
use kernel::mm::zone::ZoneType;
use std::alloc::{Layout, handle_alloc_error};
use std::hint::black_box;
use std::path::PathBuf;
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant, SystemTime};
use std::{env, slice};
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
/// Request sizes of the mix and the fill: `MIN_SIZE..=MAX_SIZE`.
const MIN_SIZE: u32 = 8;
const MAX_SIZE: u32 = 4096;

/// The size of the `pair64` objects.
const PAIR_SIZE: usize = 64;
/// `pair64` objects kept live in the background.
const PAIR_BACKGROUND: usize = 100;
/// Live objects in the mix.
const MIX_LIVE: usize = 10_000;
/// Steps of the mix script (a power of two); iterations cycle through it.
const MIX_SCRIPT: usize = 1 << 16;
/// Mix steps before the (untimed) memory statistics are taken.
const MIX_STATS_STEPS: usize = MIX_SCRIPT;
/// Objects allocated, then freed, per `fill_free` iteration.
const FILL_OBJECTS: usize = 100_000;

/// Measurement settings; `BENCH_QUICK` selects the smoke-run set.
struct Settings {
    quick: bool,
    warm_up: Duration,
    measure: Duration,
    samples: usize,
    /// Measurement time of the slow benchmarks (fills, `lla`'s mix).
    slow_measure: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Settings {
                quick,
                warm_up: Duration::from_millis(50),
                measure: Duration::from_millis(100),
                samples: 10,
                slow_measure: Duration::from_millis(100),
            }
        } else {
            Settings {
                quick,
                warm_up: Duration::from_millis(300),
                measure: Duration::from_millis(1000),
                samples: 40,
                slow_measure: Duration::from_millis(1500),
            }
        }
    }

    fn criterion(&self) -> Criterion {
        Criterion::default()
            .warm_up_time(self.warm_up)
            .measurement_time(self.measure)
            .sample_size(self.samples)
            .nresamples(if self.quick { 1_000 } else { 10_000 })
            .without_plots()
            .configure_from_args()
    }

    /// Benchmarks of milliseconds per iteration: ten samples of one or a
    /// few iterations each (criterion's least).
    fn slow(&self, g: &mut BenchmarkGroup<'_, WallTime>) {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(self.slow_measure);
    }

    /// Back to the defaults after [`slow`](Self::slow).
    fn normal(&self, g: &mut BenchmarkGroup<'_, WallTime>) {
        g.sampling_mode(SamplingMode::Auto)
            .sample_size(self.samples)
            .measurement_time(self.measure);
    }
}

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

/// The workloads' generator: xorshift128 from the `rand_xorshift` crate
/// (the host tests' generator too), seeded per workload so that every run
/// replays the same script.
struct XorShift(rand_xorshift::XorShiftRng);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        use rand::SeedableRng;
        XorShift(rand_xorshift::XorShiftRng::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        rand::Rng::next_u64(&mut self.0)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// A request size, log-uniform over `MIN_SIZE..=MAX_SIZE`: each
    /// doubling (8-15, 16-31, ..., 2048-4095) equally likely, so half the
    /// requests are at most about 180 bytes and one in nine above 2048.
    fn size(&mut self) -> u32 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let span = f64::from(MAX_SIZE + 1) / f64::from(MIN_SIZE);
        let size = f64::from(MIN_SIZE) * span.powf(unit);
        (size as u32).clamp(MIN_SIZE, MAX_SIZE)
    }
}

/// The mix, precomputed so that the timed loop only reads it: the sizes of
/// the initial live objects, then steps `(slot, new size)`.
struct MixScript {
    prefill: Vec<u32>,
    steps: Vec<(u32, u32)>,
}

impl MixScript {
    fn new() -> MixScript {
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
        let prefill = (0..MIX_LIVE).map(|_| rng.size()).collect();
        let steps = (0..MIX_SCRIPT)
            .map(|_| (rng.below(MIX_LIVE) as u32, rng.size()))
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
    fn new() -> FillScript {
        let mut rng = XorShift::new(0xD1B5_4A32_D192_ED03);
        let sizes = (0..FILL_OBJECTS).map(|_| rng.size()).collect();
        let mut free_order: Vec<u32> = (0..FILL_OBJECTS as u32).collect();
        for i in (1..free_order.len()).rev() {
            free_order.swap(i, rng.below(i + 1));
        }
        FillScript { sizes, free_order }
    }
}

fn pair<A: Allocator>(a: &mut A) {
    let p = a.alloc(black_box(PAIR_SIZE));
    a.free(black_box(p), PAIR_SIZE);
}

/// `2 * PAIR_BACKGROUND` 64-byte objects, every other one freed: returns
/// the live ones.
fn pair_background<A: Allocator>(a: &mut A) -> Vec<*mut u8> {
    let all: Vec<*mut u8> = (0..2 * PAIR_BACKGROUND)
        .map(|_| a.alloc(PAIR_SIZE))
        .collect();
    let mut live = Vec::with_capacity(PAIR_BACKGROUND);
    for (i, p) in all.into_iter().enumerate() {
        if i % 2 == 0 {
            live.push(p);
        } else {
            a.free(p, PAIR_SIZE);
        }
    }
    live
}

/// The mix's initial live objects: `(pointer, size)`.
fn mix_prefill<A: Allocator>(a: &mut A, script: &MixScript) -> Vec<(*mut u8, u32)> {
    script
        .prefill
        .iter()
        .map(|&size| (a.alloc(size as usize), size))
        .collect()
}

/// One mix step: the object in `slot` freed, a new one of `size` in its
/// place.
#[inline(always)]
fn mix_step<A: Allocator>(a: &mut A, live: &mut [(*mut u8, u32)], (slot, size): (u32, u32)) {
    let (p, old) = live[slot as usize];
    a.free(black_box(p), old as usize);
    live[slot as usize] = (a.alloc(black_box(size as usize)), size);
}

/// Frees every object of the mix.
fn mix_drain<A: Allocator>(a: &mut A, live: Vec<(*mut u8, u32)>) {
    for (p, size) in live {
        a.free(p, size as usize);
    }
}

fn fill_free<A: Allocator>(a: &mut A, script: &FillScript, held: &mut Vec<*mut u8>) {
    held.clear();
    for &size in &script.sizes {
        held.push(a.alloc(black_box(size as usize)));
    }
    for &i in &script.free_order {
        let i = i as usize;
        a.free(black_box(held[i]), script.sizes[i] as usize);
    }
}

// ---- benchmarks -----------------------------------------------------------

fn bench_pair64(c: &mut Criterion, r: &Regions) {
    let mut g = c.benchmark_group("pair64");
    fn run<A: Allocator>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, a: &mut A) {
        let background = pair_background(a);
        g.bench_function(name, |b| b.iter(|| pair(a)));
        for p in background {
            a.free(p, PAIR_SIZE);
        }
    }
    {
        let mut map = new_mem_map();
        let mut k = KmallocHeap::boot(&mut map, r.kmalloc);
        run(&mut g, "kmalloc", &mut k);
        k.verify(true, "pair64");
    }
    run(&mut g, "talc", &mut TalcHeap::new(r.talc));
    run(&mut g, "lla", &mut LlaHeap::new(r.lla));
    run(&mut g, "seg", &mut SegList::new(r.seg));
    g.finish();
}

fn bench_mix(c: &mut Criterion, s: &Settings, r: &Regions, script: &MixScript) {
    let mut g = c.benchmark_group("mix");
    fn run<A: Allocator>(
        g: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        a: &mut A,
        script: &MixScript,
    ) {
        let mut live = mix_prefill(a, script);
        let mut next = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                mix_step(a, &mut live, script.steps[next]);
                next = (next + 1) % MIX_SCRIPT;
            })
        });
        mix_drain(a, live);
    }
    {
        let mut map = new_mem_map();
        let mut k = KmallocHeap::boot(&mut map, r.kmalloc);
        run(&mut g, "kmalloc", &mut k, script);
        k.verify(true, "mix");
    }
    run(&mut g, "talc", &mut TalcHeap::new(r.talc), script);
    // First fit over thousands of holes: microseconds per step.
    s.slow(&mut g);
    run(&mut g, "lla", &mut LlaHeap::new(r.lla), script);
    s.normal(&mut g);
    run(&mut g, "seg", &mut SegList::new(r.seg), script);
    g.finish();
}

fn bench_fill_free(c: &mut Criterion, s: &Settings, r: &Regions, script: &FillScript) {
    let mut g = c.benchmark_group("fill_free");
    s.slow(&mut g);
    fn run<A: Allocator>(
        g: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        a: &mut A,
        script: &FillScript,
    ) {
        let mut held = Vec::with_capacity(FILL_OBJECTS);
        g.bench_function(name, |b| b.iter(|| fill_free(a, script, &mut held)));
    }
    {
        let mut map = new_mem_map();
        let mut k = KmallocHeap::boot(&mut map, r.kmalloc);
        run(&mut g, "kmalloc", &mut k, script);
        k.verify(true, "fill_free");
    }
    run(&mut g, "talc", &mut TalcHeap::new(r.talc), script);
    // Not `lla`: 10-20 s per iteration (each free walks the address-ordered
    // hole list, tens of thousands of holes long), too slow for criterion's
    // ten samples; see `lla_fill_free_once`.
    run(&mut g, "seg", &mut SegList::new(r.seg), script);
    g.finish();
}

/// `linked_list_allocator`'s fill + free, timed once: ns per iteration.
fn lla_fill_free_once(r: &Regions, script: &FillScript) -> f64 {
    let mut a = LlaHeap::new(r.lla);
    let mut held = Vec::with_capacity(FILL_OBJECTS);
    let start = Instant::now();
    fill_free(&mut a, script, &mut held);
    start.elapsed().as_nanos() as f64
}

// ---- memory statistics (untimed) ------------------------------------------

/// One allocator's memory after the mix.
struct MixMemory {
    name: &'static str,
    live: usize,
    requested: usize,
    held: usize,
}

/// The mix's prefill then `MIX_STATS_STEPS` steps on a fresh allocator;
/// returns its memory and the live objects (still allocated).
fn mix_memory<A: Allocator>(
    name: &'static str,
    a: &mut A,
    script: &MixScript,
) -> (MixMemory, Vec<(*mut u8, u32)>) {
    let mut live = mix_prefill(a, script);
    for i in 0..MIX_STATS_STEPS {
        mix_step(a, &mut live, script.steps[i % MIX_SCRIPT]);
    }
    let requested = live.iter().map(|&(_, s)| s as usize).sum();
    let held = a.held_bytes(&live);
    let m = MixMemory {
        name,
        live: live.len(),
        requested,
        held,
    };
    (m, live)
}

/// Kmalloc's breakdown: `(sum of ksize, pages in slabs, pages of large
/// allocations)`.
struct KmallocMemory {
    ksize: usize,
    slab_pages: u32,
    large_pages: u32,
}

fn memory_stats(r: &Regions, script: &MixScript) -> (Vec<MixMemory>, KmallocMemory) {
    let mut rows = Vec::new();
    let mut map = new_mem_map();
    let mut k = KmallocHeap::boot(&mut map, r.kmalloc);
    let (m, live) = mix_memory("kmalloc", &mut k, script);
    rows.push(m);
    let mut ksize = 0;
    for &(p, _) in &live {
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
    mix_drain(&mut k, live);
    k.verify(true, "mix statistics");

    fn other<A: Allocator>(
        rows: &mut Vec<MixMemory>,
        name: &'static str,
        a: &mut A,
        s: &MixScript,
    ) {
        let (m, live) = mix_memory(name, a, s);
        rows.push(m);
        mix_drain(a, live);
    }
    other(&mut rows, "talc", &mut TalcHeap::new(r.talc), script);
    other(&mut rows, "lla", &mut LlaHeap::new(r.lla), script);
    other(&mut rows, "seg", &mut SegList::new(r.seg), script);
    (rows, km)
}

// ---- the table ------------------------------------------------------------

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2}us", ns / 1e3)
    } else {
        format!("{ns:.1}ns")
    }
}

struct Table {
    dir: PathBuf,
    since: SystemTime,
    /// `lla`'s fill + free, timed once outside criterion (ns per iteration).
    lla_fill: Option<f64>,
    met: usize,
    total: usize,
    unmeasured: usize,
}

impl Table {
    /// Mean ns per iteration of `group/bench`, per operation for the fill
    /// (an iteration is `2 * FILL_OBJECTS` operations).
    fn value(&self, group: &str, bench: &str) -> Option<f64> {
        let id = format!("{group}/{bench}");
        let ns = match id.as_str() {
            "fill_free/lla" => self.lla_fill?,
            _ => mean_ns(&self.dir, &id, self.since)?,
        };
        Some(if group == "fill_free" {
            ns / (2 * FILL_OBJECTS) as f64
        } else {
            ns
        })
    }

    /// `other / kmalloc` for `group`: kmalloc's speed-up, against `target`
    /// if any.
    fn row(&mut self, group: &str, what: &str, other: &str, target: Option<f64>) {
        let label = format!("{what}: {other} / kmalloc");
        let target_text = target.map_or_else(|| "-".to_string(), |t| format!(">= {t}x"));
        self.total += usize::from(target.is_some());
        let (Some(o), Some(k)) = (self.value(group, other), self.value(group, "kmalloc")) else {
            self.unmeasured += usize::from(target.is_some());
            println!("{label:<44} {:>21} {:>9} {target_text:>8}  n/a", "-", "-");
            return;
        };
        let ratio = o / k;
        let verdict = match target {
            Some(t) if ratio >= t => {
                self.met += 1;
                "PASS"
            }
            Some(_) => "MISS",
            None => "(info)",
        };
        let measured = format!("{} / {}", fmt_ns(o), fmt_ns(k));
        println!("{label:<44} {measured:>21} {ratio:>8.3}x {target_text:>8}  {verdict}");
    }
}

fn print_table(dir: PathBuf, since: SystemTime, lla_fill: Option<f64>, elapsed: Duration) {
    println!();
    println!("==================== kmalloc: ratio table ====================");
    println!("How to read this:");
    println!("- Each row divides two means measured by criterion in this run,");
    println!("  shown as 'A / B' = other allocator / kmalloc: kmalloc's speed-up");
    println!("  (above 1: kmalloc is faster). pair64 and mix are per iteration");
    println!("  (one alloc + one free); fill_free per operation (an alloc or a");
    println!("  free of the {FILL_OBJECTS}-object fill, then the shuffled frees).");
    println!("- kmalloc: Kmalloc::new(false) on the buddy allocator, 256 MiB lowmem.");
    println!("  talc: Talc<ErrOnOom>; lla: linked_list_allocator::Heap (first fit);");
    println!("  seg: power-of-two segregated free lists + bump, the lower bound.");
    println!("- '>= Nx': kmalloc must be at least N times as fast as talc.");
    println!("- fill_free for lla is one run timed outside criterion (10-20 s;");
    println!("  skipped with BENCH_QUICK or when fill_free/kmalloc was filtered out).");
    println!("- MISS is information, not failure. n/a: not measured in this run");
    println!("  (filtered out). Timings on a shared 2-core machine vary by ~10%.");
    println!();
    println!(
        "{:<44} {:>21} {:>9} {:>8}  result",
        "metric", "measured (A / B)", "ratio", "target"
    );
    let mut t = Table {
        dir,
        since,
        lla_fill,
        met: 0,
        total: 0,
        unmeasured: 0,
    };
    for (group, what, target) in [
        ("pair64", "pair64 (64 B alloc+free)", 2.0),
        ("mix", "mix (10k live, 8..=4096 B)", 1.5),
        ("fill_free", "fill_free per op", 1.0),
    ] {
        t.row(group, what, "talc", Some(target));
        t.row(group, what, "lla", None);
        t.row(group, what, "seg", None);
    }
    println!();
    if t.unmeasured > 0 {
        println!("({} target rows not measured in this run)", t.unmeasured);
    }
    println!(
        "bench: {}/{} targets met (measured in {:.0} s)",
        t.met,
        t.total,
        elapsed.as_secs_f64()
    );
}

fn print_memory(rows: &[MixMemory], km: &KmallocMemory) {
    println!();
    println!("==================== kmalloc: memory after the mix ====================");
    println!("Untimed: {MIX_LIVE} live objects after {MIX_STATS_STEPS} mix steps, each");
    println!("allocator fresh. 'held': kmalloc's pages x 4096 (slabs, partial ones");
    println!("included, and large allocations); talc's allocated span (lowest to");
    println!("highest allocated byte); lla: up to the highest object's end; seg: the");
    println!("bump extent. overhead/object = (held - requested) / live objects.");
    println!();
    println!(
        "{:<10} {:>8} {:>14} {:>14} {:>16}",
        "allocator", "live", "requested", "held", "overhead/object"
    );
    for m in rows {
        let overhead = (m.held as f64 - m.requested as f64) / m.live as f64;
        println!(
            "{:<10} {:>8} {:>14} {:>14} {:>14.1} B",
            m.name, m.live, m.requested, m.held, overhead
        );
    }
    if let Some(k) = rows.iter().find(|m| m.name == "kmalloc") {
        let rounding = (km.ksize - k.requested) as f64 / km.ksize as f64;
        println!();
        println!(
            "kmalloc: {} slab pages + {} large-allocation pages; sum of ksize {} B:",
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

fn main() {
    let since = SystemTime::now();
    let start = Instant::now();
    let settings = Settings::from_env();
    let mut c = settings.criterion();
    let regions = Regions::new();
    let mix = MixScript::new();
    let fill = FillScript::new();
    bench_pair64(&mut c, &regions);
    bench_mix(&mut c, &settings, &regions, &mix);
    bench_fill_free(&mut c, &settings, &regions, &fill);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once (`--test`), `--list`
    // none, `--profile-time` runs without analysis: no table.
    if env::args().any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time")) {
        return;
    }
    let dir = criterion_dir();
    let lla_fill = (!settings.quick && mean_ns(&dir, "fill_free/kmalloc", since).is_some())
        .then(|| lla_fill_free_once(&regions, &fill));
    let elapsed = start.elapsed();
    let (rows, km) = memory_stats(&regions, &mix);
    print_table(dir, since, lla_fill, elapsed);
    print_memory(&rows, &km);
}
