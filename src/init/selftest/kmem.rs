//! Self-tests of kmalloc, Rust's collections, vmalloc and demand paging on
//! real (emulated) memory, run after `kmem_init` with `selftest`. kmalloc's
//! `slub_debug` layer is always on here, and the deliberate double free,
//! red-zone overwrite and write-after-free are detected.

use crate::addr::{PhysAddr, VirtAddr};
use crate::arch::x86::paging;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::layout::{PAGE_SHIFT, PAGE_SIZE};
use crate::mm::slab::{
    KMALLOC_SIZES, KmallocError, KmallocErrorKind, ZERO_SIZE_PTR, kmalloc_cache_name, kmalloc_index,
};
use crate::mm::vmalloc::VmArea;
use crate::runtime::kmalloc::{self, with_mm};
use crate::runtime::vmalloc::{self, VmallocFailure, vmalloc, vmalloc_demand};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use log::info;

type KmemTest = fn() -> Result<(), &'static str>;

/// `kfree` for the self-tests: they free objects they own and never touch
/// again, or (on purpose) pointers kfree must refuse without using them.
fn free(p: *mut u8) -> Result<(), KmallocError> {
    // SAFETY: see above: no freed object is used afterwards.
    unsafe { kmalloc::kfree(p) }
}

/// `krealloc` for the self-tests: the old pointer is dropped for the new.
fn realloc(p: *mut u8, new_size: usize, gfp: crate::mm::gfp::Gfp) -> Result<*mut u8, KmallocError> {
    // SAFETY: the caller replaces `p` with the result and never uses `p`.
    unsafe { kmalloc::krealloc(p, new_size, gfp) }
}

/// `vfree` of an area the test owns and no longer touches.
fn vfree_own(p: *mut u8) -> Result<VmArea, VmallocFailure> {
    // SAFETY: the self-tests free areas after their last access.
    unsafe { vmalloc::vfree(p) }
}

/// Runs the kmalloc and vmalloc self-tests; returns how many passed (all,
/// or it does not return).
pub fn run() -> u32 {
    let tests: [(&str, KmemTest); 9] = [
        ("kmalloc: sample allocations and their caches", samples),
        (
            "kmalloc: every size 1..8193, aligned and disjoint",
            every_size,
        ),
        (
            "kmalloc: 20000 random alloc/realloc/free with patterns",
            stress,
        ),
        ("Box, Vec, String, BTreeMap on the kernel heap", collections),
        ("Layout alignments up to a page", alignments),
        (
            "slub_debug: double free, red zone, foreign pointer, use after free detected",
            detections,
        ),
        (
            "vmalloc: up to 4 MiB virtually contiguous, scattered frames",
            vmalloc_big,
        ),
        (
            "demand paging: scattered first touches fault once each",
            demand_paging,
        ),
        (
            "everything freed: buddy free pages back to the start",
            nothing_leaked,
        ),
    ];
    START.store(pages_accounted(), portable_atomic::Ordering::Relaxed);
    for (name, test) in tests {
        match test() {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => {
                crate::arch::x86::exit::fatal(format_args!("selftest '{name}' failed: {why}"))
            }
        }
    }
    tests.len() as u32
}

static START: portable_atomic::AtomicU32 = portable_atomic::AtomicU32::new(0);

/// Free pages plus the pages kmalloc's slabs hold, after returning empty
/// slabs: constant unless pages leak outside kmalloc (vmalloc frames, page
/// tables, large allocations). Objects that stay allocated on purpose (the
/// quarantined one, the vmalloc tree's nodes) sit in slabs, so they do not
/// count as leaks.
fn pages_accounted() -> u32 {
    let free = free_pages();
    with_mm(|mm| free + mm.kmalloc.pages() - mm.kmalloc.large().pages)
}

/// Free pages with the per-cpu lists drained and kmalloc's empty slabs
/// returned: comparable before and after.
fn free_pages() -> u32 {
    kmalloc::kmem_shrink();
    with_mm(|mm| {
        mm.buddy.drain_pages();
        mm.buddy.nr_free_pages()
    })
}

fn cache_of(size: usize) -> &'static str {
    kmalloc_cache_name(size).unwrap_or("large (whole pages)")
}

fn fill(p: *mut u8, len: usize, seed: u32) {
    for i in 0..len {
        // SAFETY: `p` is a live allocation of at least `len` bytes.
        unsafe {
            p.add(i)
                .write_volatile((seed as usize).wrapping_mul(31).wrapping_add(i) as u8)
        };
    }
}

fn check(p: *const u8, len: usize, seed: u32) -> bool {
    (0..len).all(|i| {
        // SAFETY: as in `fill`.
        let b = unsafe { p.add(i).read_volatile() };
        b == (seed as usize).wrapping_mul(31).wrapping_add(i) as u8
    })
}

fn samples() -> Result<(), &'static str> {
    let mut ptrs = heapless::Vec::<(*mut u8, usize), 8>::new();
    // Up to kmalloc-8k (6000), then a large allocation (20000: order 3).
    for size in [1, 24, 100, 200, 1500, 3000, 6000, 20000] {
        let p = kmalloc::kmalloc(size, GFP_KERNEL);
        if p.is_null() {
            return Err("kmalloc failed");
        }
        let ks = kmalloc::ksize(p).map_err(|_| "ksize refused a live object")?;
        info!(target: "kmalloc", "  kmalloc({size}) = {p:#010x?} from {} (ksize {ks})", cache_of(size));
        fill(p, size, size as u32);
        let _ = ptrs.push((p, size));
    }
    let z = kmalloc::kmalloc(0, GFP_KERNEL);
    if z != ZERO_SIZE_PTR.as_mut_ptr() {
        return Err("kmalloc(0) is not ZERO_SIZE_PTR");
    }
    info!(target: "kmalloc", "  kmalloc(0) = {z:#x?} (ZERO_SIZE_PTR: not null, faults if used); kfree(NULL) is a no-op");
    free(z).map_err(|_| "kfree(ZERO_SIZE_PTR)")?;
    free(core::ptr::null_mut()).map_err(|_| "kfree(NULL)")?;
    for (p, size) in ptrs {
        if !check(p, size, size as u32) {
            return Err("an object's contents changed");
        }
        free(p).map_err(|_| "kfree refused a live object")?;
    }
    Ok(())
}

/// Bytes the tests may keep live at once: an eighth of the free memory
/// (the tests also run with 3 MiB of RAM, and slabs hold more than their
/// objects).
fn budget() -> usize {
    let free = with_mm(|mm| mm.buddy.nr_free_pages()) as usize;
    free * PAGE_SIZE as usize / 8
}

/// Checks that the live objects are pairwise disjoint and their first and
/// last bytes intact, then frees them all.
fn check_and_free(live: &mut Vec<(usize, usize)>) -> Result<(), &'static str> {
    live.sort_unstable();
    for w in live.windows(2) {
        if w[0].0 + w[0].1 > w[1].0 {
            return Err("two live objects overlap");
        }
    }
    for &(p, size) in live.iter() {
        // SAFETY: a live object of `size` bytes.
        let (a, b) = unsafe {
            let p = p as *const u8;
            (p.read_volatile(), p.add(size - 1).read_volatile())
        };
        if (size == 1 && a != 0xa5) || (size > 1 && (a != 0x5a || b != 0xa5)) {
            return Err("an object's first or last byte changed");
        }
        free(p as *mut u8).map_err(|_| "kfree refused a live object")?;
    }
    live.clear();
    Ok(())
}

fn every_size() -> Result<(), &'static str> {
    let budget = budget();
    let mut live: Vec<(usize, usize)> = Vec::with_capacity(8193);
    let mut held = 0;
    for size in 1..=2 * PAGE_SIZE as usize + 1 {
        let p = kmalloc::kmalloc(size, GFP_KERNEL);
        if p.is_null() {
            return Err("kmalloc failed");
        }
        let align = match kmalloc_index(size) {
            Some(i) => 1 << KMALLOC_SIZES[i].trailing_zeros(),
            None => PAGE_SIZE as usize,
        };
        if !(p as usize).is_multiple_of(align) {
            return Err("object not aligned as its class guarantees");
        }
        // Only the first and last byte: the whole-object pattern is the
        // stress test's job, and 8193 sizes would take long under Bochs.
        // SAFETY: a live object of `size` bytes.
        unsafe {
            p.write_volatile(0x5a);
            p.add(size - 1).write_volatile(0xa5);
        }
        live.push((p as usize, size));
        held += kmalloc::ksize(p).map_err(|_| "ksize refused a live object")?;
        // All live at once when memory allows (128 MiB: every size); in
        // batches otherwise.
        if held > budget {
            check_and_free(&mut live)?;
            held = 0;
        }
    }
    check_and_free(&mut live)?;
    kmalloc::kmem_validate()
}

/// xorshift32: deterministic random numbers.
struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn size(&mut self) -> usize {
        // Log-uniform over 1..=16384: small sizes are common, as in a
        // kernel; above 8192 they are large allocations.
        let bits = self.next() % 15;
        1 + (self.next() as usize & ((1 << bits) - 1))
    }
}

fn stress() -> Result<(), &'static str> {
    let mut rng = Rng(0x1234_5678);
    let mut live: Vec<(*mut u8, usize, u32)> = Vec::with_capacity(600);
    // At most 500 objects, and at most half the budget in requested bytes
    // (large objects round up to whole pages).
    let budget = budget() / 2;
    let mut held = 0;
    for op in 0..20_000u32 {
        let r = rng.next() % 8;
        let size = rng.size();
        if live.len() < 500 && held + 2 * size < budget && (r < 4 || live.is_empty()) {
            let p = if r == 0 {
                let p = kmalloc::kzalloc(size, GFP_KERNEL);
                // SAFETY: a live object of `size` bytes.
                if !p.is_null() && (0..size).any(|i| unsafe { p.add(i).read_volatile() } != 0) {
                    return Err("kzalloc memory not zeroed");
                }
                p
            } else {
                kmalloc::kmalloc(size, GFP_KERNEL)
            };
            if p.is_null() {
                return Err("kmalloc failed");
            }
            fill(p, size, op);
            live.push((p, size, op));
            held += size;
        } else if live.is_empty() {
            continue;
        } else if r < 6 || held + 2 * size >= budget {
            let (p, size, seed) = live.swap_remove(rng.next() as usize % live.len());
            held -= size;
            if !check(p, size, seed) {
                return Err("an object's contents changed before its free");
            }
            free(p).map_err(|_| "kfree refused a live object")?;
        } else {
            let i = rng.next() as usize % live.len();
            let (p, size, seed) = live[i];
            let new_size = size;
            let new_size = if rng.next().is_multiple_of(2) {
                new_size / 2 + 1
            } else {
                new_size + new_size / 2 + 1
            };
            let new_size = new_size.min(16384);
            let q = realloc(p, new_size, GFP_KERNEL).map_err(|_| "krealloc refused")?;
            if q.is_null() {
                return Err("krealloc failed");
            }
            if !check(q, size.min(new_size), seed) {
                return Err("krealloc lost the contents");
            }
            fill(q, new_size, op);
            live[i] = (q, new_size, op);
            held = held - size + new_size;
        }
        if op % 5000 == 4999 {
            kmalloc::kmem_validate()?;
        }
    }
    for (p, size, seed) in live {
        if !check(p, size, seed) {
            return Err("an object's contents changed");
        }
        free(p).map_err(|_| "kfree refused a live object")?;
    }
    kmalloc::kmem_validate()
}

fn collections() -> Result<(), &'static str> {
    let v: Vec<u32> = (0..10_000).collect();
    if v.iter().map(|&x| u64::from(x)).sum::<u64>() != 49_995_000 {
        return Err("Vec sum");
    }
    let mut s = String::new();
    for i in 0..100 {
        s.push_str(&format!("{i},"));
    }
    if s.len() != 290 || !s.starts_with("0,1,2,") {
        return Err("String contents");
    }
    let mut m = BTreeMap::new();
    for i in 0..1000u32 {
        m.insert(i.wrapping_mul(2_654_435_761), i);
    }
    if m.len() != 1000 || m.values().map(|&x| u64::from(x)).sum::<u64>() != 499_500 {
        return Err("BTreeMap contents");
    }
    let b = Box::new([7u8; 10_000]);
    if b.iter().any(|&x| x != 7) {
        return Err("Box contents");
    }
    let (objs, pages) = with_mm(|mm| {
        let objs: u32 = mm.kmalloc.caches().iter().map(|c| c.active_objs()).sum();
        (objs, mm.kmalloc.pages())
    });
    info!(target: "kmalloc", "  Vec<u32> of {} ({} KiB), String of {} bytes, BTreeMap of {} entries, Box<[u8; 10000]>: {objs} objects live, {pages} pages held",
        v.len(), v.capacity() * 4 / 1024, s.len(), m.len());
    Ok(())
}

fn alignments() -> Result<(), &'static str> {
    for shift in 0..=PAGE_SHIFT {
        let align = 1usize << shift;
        for size in [1, align / 2 + 1, align, 3 * align / 2, 100] {
            let layout = core::alloc::Layout::from_size_align(size.max(1), align)
                .map_err(|_| "bad layout")?;
            // SAFETY: a non-zero-size layout; freed below with the same one.
            let p = unsafe { alloc::alloc::alloc(layout) };
            if p.is_null() {
                return Err("aligned allocation failed");
            }
            if !(p as usize).is_multiple_of(align) {
                return Err("Layout alignment not honoured");
            }
            fill(p, layout.size(), 3);
            // SAFETY: allocated above with `layout`.
            unsafe { alloc::alloc::dealloc(p, layout) };
        }
    }
    Ok(())
}

fn detections() -> Result<(), &'static str> {
    let reports0 = with_mm(|mm| mm.kmalloc.reports());
    let expect = |kind: fn(KmallocErrorKind) -> bool,
                  r: Result<(), crate::mm::slab::KmallocError>| match r {
        Err(e) if kind(e.kind) => {
            info!(target: "selftest", "  detected as expected: {e}");
            Ok(())
        }
        _ => Err("a deliberate error was not detected"),
    };
    // Double free.
    let p = kmalloc::kmalloc(64, GFP_KERNEL);
    free(p).map_err(|_| "first free refused")?;
    expect(|k| k == KmallocErrorKind::DoubleFree, free(p))?;
    // Red zone: one byte past a 10-byte object (the unused tail of its
    // 16-byte class), then past the class.
    let p = kmalloc::kmalloc(10, GFP_KERNEL);
    // SAFETY: a deliberate overflow into the object's own red zone, which
    // is part of its slot (no other object is touched).
    unsafe { p.add(10).write_volatile(0) };
    expect(
        |k| matches!(k, KmallocErrorKind::RedzoneOverwritten { offset: 10, .. }),
        free(p),
    )?;
    let p = kmalloc::kmalloc(32, GFP_KERNEL);
    // SAFETY: as above: the first byte of the right red zone.
    unsafe { p.add(32).write_volatile(0) };
    expect(
        |k| matches!(k, KmallocErrorKind::RedzoneOverwritten { offset: 32, .. }),
        free(p),
    )?;
    // A pointer kmalloc never returned, and the middle of an object.
    let page = with_mm(|mm| mm.buddy.get_free_pages(GFP_KERNEL, 0)).ok_or("no page")?;
    expect(
        |k| k == KmallocErrorKind::NotKmalloc,
        free(page.as_mut_ptr()),
    )?;
    with_mm(|mm| mm.buddy.free_pages_va(page, 0)).map_err(|_| "page free")?;
    let p = kmalloc::kmalloc(128, GFP_KERNEL);
    // The middle of the object: only an address, never dereferenced.
    let middle = p.wrapping_add(8);
    expect(|k| k == KmallocErrorKind::NotObjectStart, free(middle))?;
    free(p).map_err(|_| "free refused")?;
    // Write after free: found when the object is about to be reused.
    let p = kmalloc::kmalloc(256, GFP_KERNEL);
    free(p).map_err(|_| "free refused")?;
    // SAFETY: a deliberate write after free into a slab object, which stays
    // slab memory (the slab is kept: it is the cache's partial or empty one).
    unsafe { p.add(5).write_volatile(0x42) };
    // Allocate until the poisoned object comes up for reuse (the first, as
    // a rule: it is the lowest free slot of the most recent slab).
    let mut taken: Vec<*mut u8> = Vec::with_capacity(64);
    let before = with_mm(|mm| mm.kmalloc.reports());
    while with_mm(|mm| mm.kmalloc.reports()) == before && taken.len() < 64 {
        let q = kmalloc::kmalloc(256, GFP_KERNEL);
        if q == p {
            return Err("an object written after free was handed out again");
        }
        taken.push(q);
    }
    let last = with_mm(|mm| mm.kmalloc.last_report()).ok_or("no report")?;
    if !matches!(last.kind, KmallocErrorKind::UseAfterFree { offset: 5, .. })
        || last.addr.as_mut_ptr() != p
    {
        return Err("write after free not detected on reuse");
    }
    info!(target: "selftest", "  detected as expected: {last}");
    for q in taken {
        free(q).map_err(|_| "free refused")?;
    }
    let reports = with_mm(|mm| mm.kmalloc.reports()) - reports0;
    if reports != 6 {
        return Err("wrong number of reports");
    }
    kmalloc::kmem_validate()?;
    // The caches still work.
    let p = kmalloc::kmalloc(256, GFP_KERNEL);
    free(p).map_err(|_| "cache broken after the detections")
}

fn vmalloc_big() -> Result<(), &'static str> {
    // 4 MiB, or what the budget allows on a small machine.
    let size = (4usize << 20).min((2 * budget()) & !(PAGE_SIZE as usize - 1));
    let p = vmalloc(size).map_err(|_| "vmalloc failed")?;
    let words = size / 4;
    let w = p as *mut u32;
    for i in (0..words).step_by(256) {
        // SAFETY: inside the 4 MiB area just mapped.
        unsafe { w.add(i).write_volatile(i as u32 ^ 0xa5a5_a5a5) };
    }
    for i in (0..words).step_by(256) {
        // SAFETY: as above.
        if unsafe { w.add(i).read_volatile() } != i as u32 ^ 0xa5a5_a5a5 {
            return Err("vmalloc memory does not read back");
        }
    }
    // Physically scattered: count frames not following their predecessor.
    let mut breaks = 0;
    let mut prev = PhysAddr(0);
    for i in 0..(size as u32 >> PAGE_SHIFT) {
        let (pa, _) = paging::translate(VirtAddr(p as u32 + (i << PAGE_SHIFT)))
            .map_err(|_| "hole in vmalloc area")?;
        if i > 0 && pa != prev + u64::from(PAGE_SIZE) {
            breaks += 1;
        }
        prev = pa;
    }
    let high = vmalloc::highmem_pages();
    let has_highmem = with_mm(|mm| mm.buddy.max_pfn() > mm.buddy.max_low_pfn());
    info!(target: "vmalloc", "  vmalloc({} KiB) = {p:#010x?}: {} pages, {high} from HighMem, {breaks} physical discontinuities",
        size >> 10, size >> PAGE_SHIFT);
    if has_highmem && high == 0 {
        return Err("vmalloc took no HighMem pages although HighMem exists");
    }
    vmalloc::vmallocinfo(|a| info!(target: "vmalloc", "  {a}"));
    vfree_own(p).map_err(|_| "vfree failed")?;
    if vmalloc::highmem_pages() != 0 {
        return Err("HighMem pages still mapped after vfree");
    }
    Ok(())
}

fn demand_paging() -> Result<(), &'static str> {
    const PAGES: u32 = 64;
    let p =
        vmalloc_demand((PAGES * PAGE_SIZE) as usize).map_err(|_| "vmalloc_demand failed")? as u32;
    let faults0 = vmalloc::demand_faults();
    if paging::translate(VirtAddr(p)).is_ok() {
        return Err("a demand page was mapped before its first touch");
    }
    // Touch 16 pages in a scattered order, twice: only the first touch of
    // each faults.
    let order = |k: u32| (k * 37 + 11) % PAGES;
    for round in 0..2 {
        for k in 0..16 {
            let va = p + order(k) * PAGE_SIZE + 4 * k;
            // SAFETY: inside the demand area; the fault handler maps the page.
            unsafe {
                if round == 0 && (va as *const u32).read_volatile() != 0 {
                    return Err("a demand page is not zeroed");
                }
                (va as *mut u32).write_volatile(0xd00d_0000 | k);
            }
        }
    }
    let faults = vmalloc::demand_faults() - faults0;
    let area = vmalloc::find_area(VirtAddr(p)).ok_or("area vanished")?;
    info!(target: "vmalloc", "  {area}");
    info!(target: "vmalloc", "  16 pages touched twice in scattered order ({}, {}, {}, ...): {faults} demand faults",
        order(0), order(1), order(2));
    if faults != 16 || area.demand_faults != 16 {
        return Err("expected exactly one demand fault per touched page");
    }
    for k in 0..16 {
        let va = p + order(k) * PAGE_SIZE + 4 * k;
        // SAFETY: mapped by the touch above.
        if unsafe { (va as *const u32).read_volatile() } != 0xd00d_0000 | k {
            return Err("a demand page lost its contents");
        }
    }
    vfree_own(p as *mut u8).map_err(|_| "vfree failed")?;
    if paging::translate(VirtAddr(p + order(0) * PAGE_SIZE)).is_ok() {
        return Err("demand page still mapped after vfree");
    }
    Ok(())
}

fn nothing_leaked() -> Result<(), &'static str> {
    let start = START.load(portable_atomic::Ordering::Relaxed);
    let now = pages_accounted();
    let (large, quarantined) = with_mm(|mm| {
        (
            mm.kmalloc.large().live,
            mm.kmalloc
                .caches()
                .iter()
                .map(|c| c.quarantined())
                .sum::<u32>(),
        )
    });
    info!(target: "kmalloc", "  buddy free + slab pages: {start} before the kmalloc self-tests, {now} after; {large} large allocations live, {quarantined} object quarantined");
    if now != start || large != 0 {
        return Err("pages leaked (vmalloc frames, page tables or large allocations)");
    }
    kmalloc::kmem_validate()
}
