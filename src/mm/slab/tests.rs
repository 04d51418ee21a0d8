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
    assert_eq!(kmalloc_index(2049), None);
    for size in 1..=2048 {
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
    let objects = [501, 252, 126, 63, 42, 31, 21, 15, 15, 15, 15];
    let pages = [1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8];
    let first_slot = [88, 64, 64, 64, 32, 128, 64, 256, 512, 1024, 2048];
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
    let objects = [168, 84, 42, 21, 25, 10, 12, 10, 10, 10, 5];
    let pages = [1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8];
    let stride = [24, 48, 96, 192, 160, 384, 320, 768, 1536, 3072, 6144];
    let align = [8, 16, 32, 64, 32, 128, 64, 256, 512, 1024, 2048];
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
    let a = k.kmalloc(&mut buddy, &mut ram, 5000, GFP_KERNEL).unwrap();
    assert!(a.is_page_aligned());
    assert_eq!(k.ksize(&mut buddy, &mut ram, a), Ok(8192));
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
