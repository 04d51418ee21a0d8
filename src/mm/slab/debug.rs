//! The `slub_debug` layer: a header, red zones and poison around every
//! object, checked on free and on reuse.
//!
//! # Debugging (`slub_debug`)
//!
//! With debugging on ([`Kmalloc::new`](super::Kmalloc::new)`(true)`; the
//! kernel switch is `slub_debug` on the command line, always on in
//! self-tests), each slot carries the seed's allocation header
//! `{ size, magic }` in front of the object and red zones around it:
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

use super::error::{KmallocError, KmallocErrorKind};
use super::{KmemCache, SlabMemory};
use crate::addr::VirtAddr;

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

/// A debug slot for objects of `size` bytes aligned to `align`: `(payload,
/// stride)`, where `payload` (the offset of the object in its slot) is the
/// header rounded up to `align`, and `stride` holds payload, object and at
/// least [`RED_ZONE_MIN`] bytes of right red zone, rounded up to `align`.
///
/// Example: kmalloc-16 → payload 16, stride 48.
pub(super) const fn debug_slot(size: u32, align: u32) -> (u32, u32) {
    let payload = DEBUG_HEADER_SIZE.next_multiple_of(align);
    (
        payload,
        (payload + size + RED_ZONE_MIN).next_multiple_of(align),
    )
}

/// The debug header `{ size, magic }` of the object at `addr`.
const fn header(addr: VirtAddr) -> VirtAddr {
    VirtAddr(addr.0 - DEBUG_HEADER_SIZE)
}

impl KmemCache {
    /// The red zone in front of the header: `[slot start, header)`.
    fn left_redzone(&self, addr: VirtAddr) -> (VirtAddr, u32) {
        let start = VirtAddr(addr.0 - self.payload);
        (start, self.payload - DEBUG_HEADER_SIZE)
    }

    /// The red zone after the object: `[addr + class, slot end)`.
    fn right_redzone(&self, addr: VirtAddr) -> (VirtAddr, u32) {
        (
            addr + self.object_size,
            self.stride - self.payload - self.object_size,
        )
    }

    /// The requested size recorded in the header of the object at `addr`.
    pub(super) fn debug_size(mem: &impl SlabMemory, addr: VirtAddr) -> u32 {
        mem.read_u32(header(addr))
    }

    /// Writes a free object's state: header `{0, FREE_MAGIC}`, poison, red
    /// zones inactive (Linux `init_object(.., SLUB_RED_INACTIVE)`).
    pub(super) fn set_free(&self, mem: &mut impl SlabMemory, addr: VirtAddr) {
        let class = self.object_size;
        let h = header(addr);
        mem.write_u32(h, 0);
        mem.write_u32(h + 4, FREE_MAGIC);
        mem.fill(addr, class - 1, POISON_FREE);
        mem.fill(addr + (class - 1), 1, POISON_END);
        let (l, ll) = self.left_redzone(addr);
        mem.fill(l, ll, RED_INACTIVE);
        let (r, rl) = self.right_redzone(addr);
        mem.fill(r, rl, RED_INACTIVE);
    }

    /// Writes an allocated object's state: header `{size, KMALLOC_MAGIC}`,
    /// red zones (and the unused tail of the object) active.
    pub(super) fn set_allocated(&self, mem: &mut impl SlabMemory, addr: VirtAddr, size: u32) {
        mem.write_u32(header(addr) + 4, KMALLOC_MAGIC);
        let (l, ll) = self.left_redzone(addr);
        mem.fill(l, ll, RED_ACTIVE);
        let (r, rl) = self.right_redzone(addr);
        mem.fill(r, rl, RED_ACTIVE);
        self.set_requested_size(mem, addr, size);
    }

    /// Marks the object at `addr` quarantined: allocated for ever, because
    /// whoever wrote to it after its free may still do so.
    pub(super) fn quarantine(&mut self, mem: &mut impl SlabMemory, addr: VirtAddr) {
        mem.write_u32(header(addr) + 4, QUARANTINE_MAGIC);
        self.quarantined += 1;
    }

    /// Records `size` (at most the class) in the header and red-zones
    /// `[size, class)`.
    pub(super) fn set_requested_size(&self, mem: &mut impl SlabMemory, addr: VirtAddr, size: u32) {
        mem.write_u32(header(addr), size);
        mem.fill(addr + size, self.object_size - size, RED_ACTIVE);
    }

    /// Checks an allocated object's header (Linux `check_object()`'s
    /// metadata part).
    ///
    /// # Errors
    /// [`KmallocErrorKind::DoubleFree`] if the header says free or
    /// quarantined, [`KmallocErrorKind::HeaderOverwritten`] if the magic or
    /// the size is impossible.
    pub(super) fn check_header(
        &self,
        mem: &impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<(), KmallocError> {
        let h = header(addr);
        let magic = mem.read_u32(h + 4);
        let size = mem.read_u32(h);
        match magic {
            KMALLOC_MAGIC if size >= 1 && size <= self.object_size => Ok(()),
            FREE_MAGIC | QUARANTINE_MAGIC => Err(KmallocError::new(
                KmallocErrorKind::DoubleFree,
                addr,
                self.name,
            )),
            found => Err(KmallocError::new(
                KmallocErrorKind::HeaderOverwritten { found },
                addr,
                self.name,
            )),
        }
    }

    /// Checks every red-zone byte of an allocated object (whose header was
    /// checked); restores them.
    ///
    /// # Errors
    /// [`KmallocErrorKind::RedzoneOverwritten`] for the first bad byte in
    /// address order (every zone is restored all the same).
    pub(super) fn check_redzones(
        &self,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<(), KmallocError> {
        let size = Self::debug_size(mem, addr);
        let (l, ll) = self.left_redzone(addr);
        let (r, rl) = self.right_redzone(addr);
        // In address order, so the first bad byte is the one reported.
        let zones = [(l, ll), (addr + size, self.object_size - size), (r, rl)];
        let mut result = Ok(());
        for (start, len) in zones {
            if let Some(off) = mem.find_mismatch(start, len, RED_ACTIVE) {
                let at = start + off;
                if result.is_ok() {
                    result = Err(KmallocError::new(
                        KmallocErrorKind::RedzoneOverwritten {
                            offset: at.0.wrapping_sub(addr.0) as i32,
                            found: mem.read_u8(at),
                        },
                        addr,
                        self.name,
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
    ///
    /// # Errors
    /// [`KmallocErrorKind::HeaderOverwritten`] for a header that does not
    /// say free, [`KmallocErrorKind::UseAfterFree`] for the first poison
    /// byte changed.
    pub(super) fn check_free_object(
        &self,
        mem: &impl SlabMemory,
        addr: VirtAddr,
    ) -> Result<(), KmallocError> {
        let class = self.object_size;
        let magic = mem.read_u32(header(addr) + 4);
        if magic != FREE_MAGIC {
            return Err(KmallocError::new(
                KmallocErrorKind::HeaderOverwritten { found: magic },
                addr,
                self.name,
            ));
        }
        let bad = |offset: u32| {
            KmallocError::new(
                KmallocErrorKind::UseAfterFree {
                    offset,
                    found: mem.read_u8(addr + offset),
                },
                addr,
                self.name,
            )
        };
        if let Some(off) = mem.find_mismatch(addr, class - 1, POISON_FREE) {
            return Err(bad(off));
        }
        if mem.read_u8(addr + (class - 1)) != POISON_END {
            return Err(bad(class - 1));
        }
        Ok(())
    }
}
