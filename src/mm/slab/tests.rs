//! Unit tests of kmalloc: geometry, the worked examples of the docs, each
//! error case. The randomized stress tests are in `stress_tests.rs`.

use super::bitmap::{header_bytes, obj_to_index};
use super::host::{HostRam, machine};
use super::*;
use crate::mm::gfp::GFP_KERNEL;

#[test]
fn kmalloc_index_examples() {
    assert_eq!(kmalloc_index(1), Some(0));
    assert_eq!(kmalloc_index(8), Some(0));
    assert_eq!(kmalloc_index(9), Some(1));
    assert_eq!(kmalloc_index(65), Some(4));
    assert_eq!(kmalloc_index(96), Some(4));
    assert_eq!(kmalloc_index(97), Some(5));
    assert_eq!(kmalloc_index(192), Some(6));
    assert_eq!(kmalloc_index(193), Some(7));
    assert_eq!(kmalloc_index(256), Some(7));
    assert_eq!(kmalloc_index(257), Some(8));
    assert_eq!(kmalloc_index(2048), Some(10));
    assert_eq!(kmalloc_index(2049), Some(11));
    assert_eq!(kmalloc_index(4096), Some(11));
    assert_eq!(kmalloc_index(4097), Some(12));
    assert_eq!(kmalloc_index(8192), Some(12));
    assert_eq!(kmalloc_index(8193), None);
    assert_eq!(kmalloc_cache_name(3000), Some("kmalloc-4k"));
    assert_eq!(kmalloc_cache_name(5000), Some("kmalloc-8k"));
    assert_eq!(kmalloc_cache_name(8193), None);
    for size in 1..=8192 {
        let i = kmalloc_index(size).unwrap();
        assert!(KMALLOC_SIZES[i] as usize >= size);
        assert!(
            i == 0 || (KMALLOC_SIZES[i - 1] as usize) < size,
            "size {size}"
        );
    }
}

#[test]
fn geometry_fits_and_reciprocal_is_exact() {
    for debug in [false, true] {
        let k = Kmalloc::new(debug);
        for c in k.caches() {
            let bytes = PAGE_SIZE << c.order;
            assert!(c.first_slot >= header_bytes(c.bitmap_words), "{}", c.name);
            assert!(c.first_slot + c.objects * c.stride <= bytes, "{}", c.name);
            assert!(c.objects >= SLAB_MIN_OBJECTS || c.order == SLAB_MAX_ORDER);
            // A slab of the largest order holds at least one object, in
            // both modes (a debug kmalloc-8k slot is 24 KiB after the 8 KiB
            // header slot: one fits).
            assert!(c.objects >= 1, "{}", c.name);
            assert_eq!((c.first_slot + c.payload) % c.align, 0, "{}", c.name);
            assert_eq!(c.stride % c.align, 0, "{}", c.name);
            // The bitmap has a bit for every object and no whole word
            // more.
            assert_eq!(c.bitmap_words, c.objects.div_ceil(32), "{}", c.name);
            for off in 0..bytes {
                assert_eq!(
                    obj_to_index(off, c.reciprocal),
                    off / c.stride,
                    "{} off {off}",
                    c.name
                );
            }
        }
    }
}

/// The geometry docs/06-kmalloc.md quotes (the GDB dump of the running
/// kernel, and the slabinfo lines of a `slub_debug` boot): with 32-bit
/// header words on every target, the host has the i386 layout exactly.
#[test]
fn documented_geometry() {
    // Without slub_debug: objects per slab, pages per slab, first slot.
    let objects = [501, 252, 126, 63, 42, 31, 21, 15, 15, 15, 15, 7, 3];
    let pages = [1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8];
    let first_slot = [
        88, 64, 64, 64, 32, 128, 64, 256, 512, 1024, 2048, 4096, 8192,
    ];
    let k = Kmalloc::new(false);
    for (i, c) in k.caches().iter().enumerate() {
        let g = c.geometry();
        assert_eq!(
            (g.objects, 1u32 << g.order, g.first_slot),
            (objects[i], pages[i], first_slot[i]),
            "{}",
            c.name()
        );
        assert_eq!(c.stride(), KMALLOC_SIZES[i], "{}", c.name());
        // The header: six words and the bitmap, 32 bits each.
        assert_eq!(g.header_bytes(), (6 + g.objects.div_ceil(32)) * 4);
    }
    // The worked examples: kmalloc-8's 88-byte header (16 bitmap words)
    // fills the page exactly; kmalloc-2k's 28-byte one takes a whole slot.
    let c8 = k.caches()[0].geometry();
    assert_eq!((c8.bitmap_words, c8.header_bytes()), (16, 88));
    assert_eq!(c8.first_slot + 501 * 8, PAGE_SIZE);
    assert_eq!(k.caches()[10].geometry().header_bytes(), 28);
    assert_eq!(
        calculate_order(8, 8),
        SlabGeometry {
            order: 0,
            objects: 501,
            bitmap_words: 16,
            first_slot: 88
        }
    );

    // With slub_debug: objects per slab, pages per slab, stride, align.
    let objects = [168, 84, 42, 21, 25, 10, 12, 10, 10, 10, 5, 2, 1];
    let pages = [1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8];
    let stride = [
        24, 48, 96, 192, 160, 384, 320, 768, 1536, 3072, 6144, 12288, 24576,
    ];
    let align = [8, 16, 32, 64, 32, 128, 64, 256, 512, 1024, 2048, 4096, 8192];
    let k = Kmalloc::new(true);
    for (i, c) in k.caches().iter().enumerate() {
        assert_eq!(
            (
                c.objects_per_slab(),
                1u32 << c.order(),
                c.stride(),
                c.align()
            ),
            (objects[i], pages[i], stride[i], align[i]),
            "{}",
            c.name()
        );
    }
    // kmalloc-16 under slub_debug: payload 16 (header and 8 bytes of left
    // red zone), 84 objects tracked by three bitmap words.
    let c16 = &k.caches()[1];
    assert_eq!((c16.payload, c16.bitmap_words), (16, 3));
}

#[test]
fn alloc_free_returns_pages() {
    let (mut buddy, mut ram) = machine(1024);
    let free0 = buddy.nr_free_pages();
    let mut k = Kmalloc::new(true);
    let a = k.kmalloc(&mut buddy, &mut ram, 10, GFP_KERNEL).unwrap();
    assert_eq!(a.0 % 16, 0);
    ram.fill(a, 10, 0x11);
    assert_eq!(k.ksize(&mut buddy, &mut ram, a), Ok(16));
    k.kfree(&mut buddy, &mut ram, a).unwrap();
    k.validate(&buddy, &ram).unwrap();
    k.shrink(&mut buddy, &mut ram);
    buddy.drain_pages();
    assert_eq!(buddy.nr_free_pages(), free0);
}

#[test]
fn zero_size_and_null() {
    let (mut buddy, mut ram) = machine(256);
    let mut k = Kmalloc::new(false);
    assert_eq!(
        k.kmalloc(&mut buddy, &mut ram, 0, GFP_KERNEL),
        Some(ZERO_SIZE_PTR)
    );
    assert_eq!(k.kfree(&mut buddy, &mut ram, VirtAddr(0)), Ok(()));
    assert_eq!(k.kfree(&mut buddy, &mut ram, ZERO_SIZE_PTR), Ok(()));
    assert_eq!(k.ksize(&mut buddy, &mut ram, ZERO_SIZE_PTR), Ok(0));
    assert_eq!(k.reports(), 0);
}

#[test]
fn double_free_detected_without_debug() {
    let (mut buddy, mut ram) = machine(256);
    let mut k = Kmalloc::new(false);
    let a = k.kmalloc(&mut buddy, &mut ram, 64, GFP_KERNEL).unwrap();
    let b = k.kmalloc(&mut buddy, &mut ram, 64, GFP_KERNEL).unwrap();
    k.kfree(&mut buddy, &mut ram, a).unwrap();
    let e = k.kfree(&mut buddy, &mut ram, a).unwrap_err();
    assert_eq!(e.kind, KmallocErrorKind::DoubleFree);
    assert_eq!(e.cache, "kmalloc-64");
    assert_eq!(
        e.to_string(),
        std::format!("BUG kmalloc-64: double free of object {a:#x}")
    );
    k.validate(&buddy, &ram).unwrap();
    k.kfree(&mut buddy, &mut ram, b).unwrap();
    assert_eq!(k.reports(), 1);
}

#[test]
fn large_alloc_roundtrip() {
    let (mut buddy, mut ram) = machine(256);
    let free0 = buddy.nr_free_pages();
    let mut k = Kmalloc::new(true);
    // The smallest large allocation: 8193 bytes, order 2.
    let a = k.kmalloc(&mut buddy, &mut ram, 8193, GFP_KERNEL).unwrap();
    assert!(a.is_page_aligned());
    assert_eq!(k.ksize(&mut buddy, &mut ram, a), Ok(16384));
    assert_eq!(k.large().live, 1);
    assert_eq!(k.large().pages, 4);
    assert_eq!(
        k.kfree(&mut buddy, &mut ram, a + 8).unwrap_err().kind,
        KmallocErrorKind::NotObjectStart
    );
    k.kfree(&mut buddy, &mut ram, a).unwrap();
    buddy.drain_pages();
    assert_eq!(buddy.nr_free_pages(), free0);
    let _ = HostRam::new(1);
}

#[test]
fn array_cache_lifo_and_flush() {
    let (mut buddy, mut ram) = machine(1024);
    let free0 = buddy.nr_free_pages();
    let mut k = Kmalloc::new(false);
    let objs: std::vec::Vec<VirtAddr> = (0..40)
        .map(|_| {
            k.kmalloc_aligned(&mut buddy, &mut ram, 64, 8, GFP_KERNEL)
                .unwrap()
        })
        .collect();
    // Sized frees go to the array cache; the next allocation pops the last.
    k.kfree_sized(&mut buddy, &mut ram, objs[0], 64, 8).unwrap();
    k.kfree_sized(&mut buddy, &mut ram, objs[1], 64, 8).unwrap();
    assert_eq!(k.caches()[3].array_avail(), 2);
    assert_eq!(
        k.caches()[3].active_objs(),
        40,
        "cached objects still count"
    );
    let again = k.kmalloc(&mut buddy, &mut ram, 60, GFP_KERNEL).unwrap();
    assert_eq!(again, objs[1]);
    // The naive double free is caught and changes nothing.
    let e = k
        .kfree_sized(&mut buddy, &mut ram, objs[0], 64, 8)
        .unwrap_err();
    assert_eq!(e.kind, KmallocErrorKind::DoubleFree);
    assert_eq!(k.caches()[3].array_avail(), 1);
    // Filling the array flushes its older half to the slabs.
    k.kfree_sized(&mut buddy, &mut ram, again, 64, 8).unwrap();
    for &o in &objs[2..40] {
        k.kfree_sized(&mut buddy, &mut ram, o, 64, 8).unwrap();
    }
    let c = &k.caches()[3];
    assert!(c.array_avail() as usize <= ARRAY_CACHE_LIMIT);
    assert_eq!(c.active_objs(), c.array_avail(), "only cached objects left");
    assert_eq!(c.frees(), 41);
    k.validate(&buddy, &ram).unwrap();
    // shrink empties the array caches and gives every page back.
    k.shrink(&mut buddy, &mut ram);
    assert_eq!(k.caches()[3].array_avail(), 0);
    assert_eq!(k.caches()[3].active_objs(), 0);
    buddy.drain_pages();
    assert_eq!(buddy.nr_free_pages(), free0);
    assert_eq!(k.reports(), 1);
}

#[test]
fn array_cache_flush_reports_a_wrong_layout() {
    let (mut buddy, mut ram) = machine(1024);
    let mut k = Kmalloc::new(false);
    let small = k.kmalloc(&mut buddy, &mut ram, 16, GFP_KERNEL).unwrap();
    // Freed with a 64-byte layout: trusted now, caught at the flush.
    k.kfree_sized(&mut buddy, &mut ram, small, 64, 8).unwrap();
    let e = k.flush_array(&mut buddy, &mut ram, 3, 1).unwrap_err();
    assert_eq!(e.kind, KmallocErrorKind::NotObjectStart);
    assert_eq!(e.addr, small);
    k.kfree(&mut buddy, &mut ram, small).unwrap();
    k.validate(&buddy, &ram).unwrap();
}

#[test]
fn debug_bypasses_the_array_cache() {
    let (mut buddy, mut ram) = machine(1024);
    let mut k = Kmalloc::new(true);
    let a = k.kmalloc(&mut buddy, &mut ram, 64, GFP_KERNEL).unwrap();
    k.kfree_sized(&mut buddy, &mut ram, a, 64, 8).unwrap();
    assert_eq!(k.caches()[3].array_avail(), 0);
    let e = k.kfree_sized(&mut buddy, &mut ram, a, 64, 8).unwrap_err();
    assert_eq!(e.kind, KmallocErrorKind::DoubleFree);
}

/// On a fresh heap (every array cache empty) a sized free takes the fast
/// path: no `free_miss`, and the next allocation of the class pops the
/// object without going to the slabs.
#[test]
fn fresh_heap_sized_free_takes_the_fast_path() {
    let (mut buddy, mut ram) = machine(1024);
    let mut k = Kmalloc::new(false);
    for (size, align, index) in [(64, 8, 3), (24, 8, 2), (3000, 8, 11), (5000, 8, 12)] {
        let a = k
            .kmalloc_aligned(&mut buddy, &mut ram, size, align, GFP_KERNEL)
            .unwrap();
        let c = &k.caches()[index];
        assert_eq!((c.array_avail(), c.alloc_miss()), (0, 1), "{}", c.name());
        k.kfree_sized(&mut buddy, &mut ram, a, size, align).unwrap();
        let c = &k.caches()[index];
        assert_eq!((c.array_avail(), c.free_miss()), (1, 0), "{}", c.name());
        assert_eq!(c.frees(), 1);
        let b = k
            .kmalloc_aligned(&mut buddy, &mut ram, size, align, GFP_KERNEL)
            .unwrap();
        assert_eq!(b, a, "{}", k.caches()[index].name());
        let c = &k.caches()[index];
        assert_eq!((c.array_avail(), c.alloc_miss()), (0, 1), "{}", c.name());
        // Freed twice in a row: the second free finds it on top (slow
        // path, refused), the array cache keeps one copy.
        k.kfree_sized(&mut buddy, &mut ram, b, size, align).unwrap();
        let e = k
            .kfree_sized(&mut buddy, &mut ram, b, size, align)
            .unwrap_err();
        assert_eq!(e.kind, KmallocErrorKind::DoubleFree);
        let c = &k.caches()[index];
        assert_eq!((c.array_avail(), c.free_miss()), (1, 1), "{}", c.name());
    }
    // Only a full array cache takes the slow path otherwise.
    let objs: std::vec::Vec<VirtAddr> = (0..=ARRAY_CACHE_LIMIT)
        .map(|_| k.kmalloc(&mut buddy, &mut ram, 128, GFP_KERNEL).unwrap())
        .collect();
    for &o in &objs {
        k.kfree_sized(&mut buddy, &mut ram, o, 128, 8).unwrap();
    }
    assert_eq!(k.caches()[5].free_miss(), 1);
    assert_eq!(
        k.caches()[5].array_avail() as usize,
        ARRAY_CACHE_LIMIT / 2 + 1
    );
    assert_eq!(k.reports(), 4);
    k.validate(&buddy, &ram).unwrap();
}

/// 2049..=4096 bytes come from kmalloc-4k and 4097..=8192 from kmalloc-8k
/// (slab pages marked with the cache, objects aligned to their class);
/// 8193 is the smallest large allocation.
#[test]
fn kmalloc_4k_and_8k_caches() {
    for debug in [false, true] {
        let (mut buddy, mut ram) = machine(1024);
        let free0 = buddy.nr_free_pages();
        let mut k = Kmalloc::new(debug);
        assert_eq!(k.caches()[11].name(), "kmalloc-4k");
        assert_eq!(k.caches()[12].name(), "kmalloc-8k");
        let mut live = std::vec::Vec::new();
        for (size, index, ksize) in [
            (2049, Some(11u8), 4096),
            (3000, Some(11), 4096),
            (4096, Some(11), 4096),
            (4097, Some(12), 8192),
            (8192, Some(12), 8192),
            (8193, None, 16384),
        ] {
            let a = k.kmalloc(&mut buddy, &mut ram, size, GFP_KERNEL).unwrap();
            assert_eq!(k.ksize(&mut buddy, &mut ram, a), Ok(ksize), "{size}");
            let pfn = ram.virt_to_pfn(a).unwrap();
            let last = ram.virt_to_pfn(a + (ksize as u32 - 1)).unwrap();
            match index {
                Some(cache) => {
                    assert!(a.0.is_multiple_of(ksize as u32), "{size}: {a:#x}");
                    for p in [pfn, last] {
                        assert_eq!(
                            buddy.page(p).unwrap().page_use(),
                            PageUse::Slab { cache },
                            "{size}"
                        );
                    }
                    assert_eq!(k.caches()[cache as usize].order(), 3);
                }
                None => {
                    assert!(a.is_page_aligned());
                    assert_eq!(buddy.page(pfn).unwrap().page_use(), PageUse::LargeKmalloc);
                    assert_eq!(k.large().live, 1);
                }
            }
            ram.fill(a, size as u32, 0x5a);
            live.push(a);
        }
        assert_eq!(k.caches()[11].active_objs(), 3);
        assert_eq!(k.caches()[12].active_objs(), 2);
        k.validate(&buddy, &ram).unwrap();
        for a in live {
            k.kfree(&mut buddy, &mut ram, a).unwrap();
        }
        assert_eq!(k.reports(), 0);
        k.shrink(&mut buddy, &mut ram);
        buddy.drain_pages();
        assert_eq!(buddy.nr_free_pages(), free0);
    }
}

/// `Layout` alignments served by the new caches: a small size aligned to a
/// page comes from kmalloc-4k (not from the buddy allocator), and the sized
/// free puts it back on kmalloc-4k's array cache.
#[test]
fn aligned_requests_on_the_4k_and_8k_caches() {
    let (mut buddy, mut ram) = machine(1024);
    let mut k = Kmalloc::new(false);
    for (size, align, index) in [
        (100, 4096, Some(11)),
        (2048, 4096, Some(11)),
        (4096, 4096, Some(11)),
        (4097, 4096, Some(12)),
        (3000, 2048, Some(11)),
        (6000, 1024, Some(12)),
        (8192, 4096, Some(12)),
        (8193, 4096, None),
    ] {
        let a = k
            .kmalloc_aligned(&mut buddy, &mut ram, size, align, GFP_KERNEL)
            .unwrap();
        assert!(
            a.0.is_multiple_of(align as u32),
            "({size}, {align}): {a:#x}"
        );
        let pfn = ram.virt_to_pfn(a).unwrap();
        let page_use = buddy.page(pfn).unwrap().page_use();
        match index {
            Some(i) => {
                assert_eq!(
                    page_use,
                    PageUse::Slab { cache: i as u8 },
                    "({size}, {align})"
                );
                let avail = k.caches()[i].array_avail();
                k.kfree_sized(&mut buddy, &mut ram, a, size, align).unwrap();
                assert_eq!(k.caches()[i].array_avail(), avail + 1, "({size}, {align})");
            }
            None => {
                assert_eq!(page_use, PageUse::LargeKmalloc);
                k.kfree_sized(&mut buddy, &mut ram, a, size, align).unwrap();
                assert_eq!(k.large().live, 0);
            }
        }
    }
    assert_eq!(k.reports(), 0);
    k.shrink(&mut buddy, &mut ram);
    k.validate(&buddy, &ram).unwrap();
}

/// The rounding-loss counters: bytes requested against usable bytes handed
/// out, on the slab path, the array-cache path and the large path.
#[test]
fn rounding_loss_is_counted() {
    let (mut buddy, mut ram) = machine(1024);
    let mut k = Kmalloc::new(false);
    let a = k.kmalloc(&mut buddy, &mut ram, 100, GFP_KERNEL).unwrap();
    let b = k.kmalloc(&mut buddy, &mut ram, 5000, GFP_KERNEL).unwrap();
    let big = k.kmalloc(&mut buddy, &mut ram, 9000, GFP_KERNEL).unwrap();
    // 65 bytes aligned to 64: from kmalloc-128, all 128 counted as handed
    // out (63 lost to the class and the alignment).
    k.kfree_sized(&mut buddy, &mut ram, a, 100, 8).unwrap();
    let c = k
        .kmalloc_aligned(&mut buddy, &mut ram, 65, 64, GFP_KERNEL)
        .unwrap();
    assert_eq!(c, a, "popped from the array cache");
    let r = k.cache_rounding();
    assert_eq!(r.requested, 100 + 5000 + 65);
    assert_eq!(r.allocated, 128 + 8192 + 128);
    assert_eq!(r.lost(), 3283);
    assert_eq!(
        r.to_string(),
        "5165 bytes requested, 8448 handed out (38.8% lost)"
    );
    assert_eq!(k.caches()[5].requested_bytes(), 165);
    assert_eq!(k.caches()[5].allocated_bytes(), 256);
    let l = k.large_rounding();
    assert_eq!((l.requested, l.allocated), (9000, 16384));
    assert_eq!(
        RoundingLoss::default().to_string(),
        "0 bytes requested, 0 handed out (0.0% lost)"
    );
    for x in [b, big, c] {
        k.kfree(&mut buddy, &mut ram, x).unwrap();
    }
    // Frees do not change the counters: they cover every allocation.
    assert_eq!(k.cache_rounding(), r);
}

/// The array caches of the large classes hold fewer objects (Linux SLAB
/// `enable_cpucache()`): kmalloc-8k parks at most 8 freed objects, the
/// ninth free flushes the older half (4) back to the slabs.
#[test]
fn large_classes_have_smaller_array_caches() {
    let limits: std::vec::Vec<u32> = Kmalloc::new(false)
        .caches()
        .iter()
        .map(|c| c.array_limit())
        .collect();
    assert_eq!(limits, [32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 24, 24, 8]);
    assert_eq!(array_cache_limit(8192), 8);
    assert_eq!(array_cache_limit(4096), 24);

    let (mut buddy, mut ram) = machine(4096);
    let mut k = Kmalloc::new(false);
    let objs: std::vec::Vec<VirtAddr> = (0..9)
        .map(|_| k.kmalloc(&mut buddy, &mut ram, 8192, GFP_KERNEL).unwrap())
        .collect();
    for &o in &objs[..8] {
        k.kfree_sized(&mut buddy, &mut ram, o, 8192, 8).unwrap();
    }
    assert_eq!(
        (k.caches()[12].array_avail(), k.caches()[12].free_miss()),
        (8, 0)
    );
    k.kfree_sized(&mut buddy, &mut ram, objs[8], 8192, 8)
        .unwrap();
    assert_eq!(
        (k.caches()[12].array_avail(), k.caches()[12].free_miss()),
        (5, 1)
    );
    k.validate(&buddy, &ram).unwrap();
}
