//! Slab geometry: how many pages a cache's slabs take and how many objects
//! they hold (Linux `calc_slab_order()`).
//!
//! A slab of order `o` is `PAGE_SIZE << o` bytes: the header (whose bitmap
//! grows with the number of objects, [`super::bitmap`]) then the slots,
//! the first at `round_up(header, align)`, `stride` bytes apart. The order
//! is the smallest up to [`SLAB_MAX_ORDER`] that wastes little and holds
//! [`SLAB_MIN_OBJECTS`] when possible ([`calculate_order`]).
//!
//! Three worked examples (no `slub_debug`):
//! - kmalloc-8, order 0: 512 objects need 16 bitmap words, a header of
//!   `(6 + 16) * 4 = 88` bytes, and `88 + 512 * 8 > 4096`; 501 objects fit
//!   exactly (`88 + 501 * 8 = 4096`). Order 0, 501 objects.
//! - kmalloc-2k, objects 2048-aligned, so the 28-byte header takes the
//!   whole first slot: orders 0, 1, 2 hold 1, 3, 7 objects (below 8);
//!   order 3 holds 15, wasting 2048 = 1/16. Order 3, 15 objects.
//! - kmalloc-4k and kmalloc-8k: no order up to 3 holds 8 objects, so both
//!   fall back to order 3, as in SLUB (Linux `slub_max_order` =
//!   `PAGE_ALLOC_COSTLY_ORDER` = 3; SLUB gets 8 and 4 objects there). The
//!   header takes the first 4 KiB or 8 KiB slot: 7 and 3 objects.

use super::bitmap::{BITS_PER_WORD, header_bytes};
use crate::mm::layout::PAGE_SIZE;

/// Value: 3. The largest slab order (8 pages; Linux
/// `slub_max_order` = `PAGE_ALLOC_COSTLY_ORDER`).
pub const SLAB_MAX_ORDER: u8 = 3;

/// Value: 8. Objects a slab should hold at least, when the maximum order
/// allows (Linux `slub_min_objects` for one CPU: `4 * (fls(1) + 1)`).
pub const SLAB_MIN_OBJECTS: u32 = 8;

/// The shape of a cache's slabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabGeometry {
    /// log2 of the slab size in pages.
    pub order: u8,
    /// Objects per slab.
    pub objects: u32,
    /// `u32` words of the header's free bitmap: `ceil(objects / 32)`.
    pub bitmap_words: u32,
    /// Offset of slot 0 from the slab start: the header rounded up to the
    /// alignment.
    pub first_slot: u32,
}

impl SlabGeometry {
    /// Bytes of the slab header: `(6 + bitmap_words) * 4`.
    pub const fn header_bytes(&self) -> u32 {
        header_bytes(self.bitmap_words)
    }

    /// Bytes of the slab: `PAGE_SIZE << order`.
    pub const fn slab_bytes(&self) -> u32 {
        PAGE_SIZE << self.order
    }
}

/// The most objects a slab of `order` holds with slots of `stride` bytes
/// aligned to `align`.
fn slab_geometry(order: u8, stride: u32, align: u32) -> SlabGeometry {
    let bytes = PAGE_SIZE << order;
    // Start from the most objects possible and shrink until the header
    // (whose bitmap grows with the count) fits in front of them.
    let mut objects = bytes / stride;
    loop {
        let bitmap_words = objects.div_ceil(BITS_PER_WORD);
        let first_slot = header_bytes(bitmap_words).next_multiple_of(align);
        // (No object at all fits when the header's slot alone fills the
        // slab: an 8 KiB-aligned object in one page. Such an order is
        // never chosen, having fewer than SLAB_MIN_OBJECTS.)
        if objects == 0 || first_slot + objects * stride <= bytes {
            return SlabGeometry {
                order,
                objects,
                bitmap_words,
                first_slot,
            };
        }
        objects -= 1;
    }
}

/// The slab geometry for slots of `stride` bytes aligned to `align` (Linux
/// `calc_slab_order()`): the smallest order up to [`SLAB_MAX_ORDER`] that
/// wastes at most 1/16 of the slab (then 1/8, then 1/4) and holds
/// [`SLAB_MIN_OBJECTS`] when possible; else [`SLAB_MAX_ORDER`].
///
/// Examples (no debug): kmalloc-8 → order 0, 501 objects; kmalloc-2k →
/// order 3, 15 objects (the header takes the first 2 KiB slot, since
/// objects are 2 KiB aligned).
pub fn calculate_order(stride: u32, align: u32) -> SlabGeometry {
    for fraction in [16, 8, 4] {
        for order in 0..=SLAB_MAX_ORDER {
            let g = slab_geometry(order, stride, align);
            let waste = g.slab_bytes() - g.objects * stride;
            if g.objects >= SLAB_MIN_OBJECTS && waste * fraction <= g.slab_bytes() {
                return g;
            }
        }
    }
    slab_geometry(SLAB_MAX_ORDER, stride, align)
}
