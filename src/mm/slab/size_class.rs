//! Size classes: which cache serves a request of `size` bytes.
//!
//! # Size classes
//!
//! A request of `size` bytes goes to the smallest of Linux's thirteen
//! kmalloc caches that holds it ([`KMALLOC_SIZES`]: 8, 16, 32, 64, 96, 128,
//! 192, 256, 512, 1024, 2048, 4096, 8192; Linux `kmalloc_index()`), named
//! like Linux's: `kmalloc-64`, `kmalloc-8k`. Above
//! [`KMALLOC_MAX_CACHE_SIZE`] (8192, two pages: Linux SLUB's
//! `KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1`) the request is served as whole
//! pages straight from the buddy allocator ("large kmalloc", Linux
//! `__kmalloc_large_node()`, see [`super::large`]), order `get_order(size)`.
//!
//! # Alignment guarantee
//!
//! An object of class `c` starts at a multiple of the largest power of two
//! dividing `c` ([`KmemCache::align`](super::KmemCache::align)): 8 → 8,
//! 96 → 32, 192 → 64, 8192 → 8192 (Linux guarantees natural alignment for
//! power-of-two sizes since v5.4); large allocations are page aligned.
//! [`Kmalloc::kmalloc_aligned`](super::Kmalloc::kmalloc_aligned) honours
//! any `align` up to a page by moving to a class whose guarantee suffices
//! (`size` rounded up to a multiple of `align` when `align` exceeds the
//! class's guarantee, `aligned_size`), which is how Rust's `Layout`s are
//! served. The guarantee holds with `slub_debug` too: the debug header and
//! red zones are laid out around the aligned object ([`super::debug`]).

/// Linux's kmalloc size classes in bytes (`kmalloc_info[]` from 8 up to
/// `KMALLOC_MAX_CACHE_SIZE`, with the two non-powers of two 96 and 192).
pub const KMALLOC_SIZES: [u32; 13] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];

/// Number of kmalloc caches (one per entry of [`KMALLOC_SIZES`]).
pub const NR_KMALLOC_CACHES: usize = KMALLOC_SIZES.len();

/// Value: 8192. The largest size served by a cache; larger requests get
/// whole pages (Linux SLUB's `KMALLOC_MAX_CACHE_SIZE`, `1 <<
/// KMALLOC_SHIFT_HIGH` with `KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1`).
pub const KMALLOC_MAX_CACHE_SIZE: u32 = 8192;

/// Value: 8. The smallest class and the least alignment of any object.
pub const KMALLOC_MIN_SIZE: u32 = 8;

/// The caches' names, index for index with [`KMALLOC_SIZES`] (Linux
/// `kmalloc_info[].name`).
pub(super) const CACHE_NAMES: [&str; NR_KMALLOC_CACHES] = [
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
    "kmalloc-4k",
    "kmalloc-8k",
];

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

/// The cache index for `size` bytes (1 ..= 8192; 0 gives 0), `None` above
/// (Linux `kmalloc_index()`/`kmalloc_slab()`): the smallest class holding
/// `size`.
///
/// Examples: 1 → 0 (kmalloc-8), 65 → 4 (kmalloc-96), 193 → 7
/// (kmalloc-256), 2049 → 11 (kmalloc-4k), 8192 → 12 (kmalloc-8k), 8193 →
/// `None`.
#[inline]
pub const fn kmalloc_index(size: usize) -> Option<usize> {
    // 1..=192 by the table: one compare (0 wraps to the largest value and
    // takes the other branch), one load.
    let s = size.wrapping_sub(1);
    if s < 192 {
        return Some(SIZE_INDEX[s / 8] as usize);
    }
    kmalloc_index_above_192(size)
}

/// [`kmalloc_index`] for 0 and sizes above 192.
#[inline]
const fn kmalloc_index_above_192(size: usize) -> Option<usize> {
    if size == 0 {
        return Some(0);
    }
    if size > KMALLOC_MAX_CACHE_SIZE as usize {
        return None;
    }
    // 193..=8192: 256 is index 7, each power of two above one more.
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - 1)
}

/// The name of the cache serving `size` bytes (`kmalloc-64`), `None` for
/// sizes served as whole pages.
pub fn kmalloc_cache_name(size: usize) -> Option<&'static str> {
    kmalloc_index(size).map(|i| CACHE_NAMES[i])
}

/// The cache index for `size` bytes aligned to `align` (a power of two;
/// the caller checks it is at most a page), `None` for a large
/// allocation (page aligned): the class of `size` if its alignment
/// guarantee covers `align`, else the class of `size` rounded up to a
/// multiple of `align`. One class lookup in the common case (`align` at
/// most the class's guarantee), two otherwise.
///
/// Examples: (65, 64) would land in kmalloc-96, which is only 32-aligned,
/// so it is served as 128 bytes: index 5 (kmalloc-128); (100, 4096) → 11
/// (kmalloc-4k); (8193, 8) → `None`.
#[inline]
pub(super) fn kmalloc_index_aligned(size: usize, align: usize) -> Option<usize> {
    let index = kmalloc_index(size)?;
    if align <= class_align(index) {
        return Some(index);
    }
    // The next multiple of `align` is in a class aligned enough: the
    // power-of-two classes are naturally aligned, and a multiple of a
    // power of two above 64 never lands in 96 or 192. It is at most 8192
    // (a multiple of any `align` up to a page), so still a class.
    kmalloc_index(size.next_multiple_of(align))
}

/// The alignment every object of class `index` has: the largest power of
/// two dividing its size.
#[inline]
pub(super) const fn class_align(index: usize) -> usize {
    1 << KMALLOC_SIZES[index].trailing_zeros()
}

/// The size to request so that a class's alignment guarantee covers
/// `align` (a power of two): `size` if its class is aligned enough, else
/// `size` rounded up to a multiple of `align`.
///
/// Example: 65 bytes aligned to 64 would land in kmalloc-96, which is only
/// 32-aligned, so they become 128 bytes (kmalloc-128).
#[inline]
pub(super) fn aligned_size(size: usize, align: usize) -> usize {
    match kmalloc_index(size) {
        Some(i) if align > class_align(i) => size.next_multiple_of(align),
        // Aligned enough; or large, which is page aligned already.
        _ => size,
    }
}
