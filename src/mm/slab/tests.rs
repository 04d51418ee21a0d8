//! Unit tests of kmalloc: geometry, the worked examples of the docs, each
//! error case. The randomized stress tests are in `stress_tests.rs`.

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
            for off in 0..bytes as u64 {
                let q = ((off * c.reciprocal) >> 32) as u32;
                assert_eq!(
                    u64::from(q),
                    off / u64::from(c.stride),
                    "{} off {off}",
                    c.name
                );
            }
        }
    }
}

#[test]
fn documented_geometry() {
    let k = Kmalloc::new(false);
    let c8 = &k.caches()[0];
    let c2k = &k.caches()[10];
    assert_eq!((c2k.order, c2k.objects), (3, 15));
    if usize::BITS == 32 {
        assert_eq!((c8.order, c8.objects), (0, 501));
    }
}

#[test]
fn alloc_free_returns_pages() {
    let (mut buddy, mut ram) = machine(1024);
    let free0 = buddy.nr_free_pages();
    let mut k = Kmalloc::new(true);
    let a = k.kmalloc(&mut buddy, &mut ram, 10, GFP_KERNEL).unwrap();
    assert_eq!(a % 16, 0);
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
    assert_eq!(k.kfree(&mut buddy, &mut ram, 0), Ok(()));
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
    assert_eq!(a % PAGE_SIZE as usize, 0);
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
