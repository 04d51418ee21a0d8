//! memblock: the boot-time physical memory allocator (Linux `mm/memblock.c`).
//!
//! # Overview
//! memblock describes physical memory as two sets of address ranges, each a
//! [`MemblockType`] holding an array of [`MemblockRegion`]s:
//!
//! - `memory`: all RAM the firmware reported (Multiboot memory map entries
//!   of type "available");
//! - `reserved`: the parts of it already in use (the kernel image, the boot
//!   information, modules, and everything memblock itself has handed out).
//!
//! Free memory is `memory` minus `reserved`. An allocation searches the free
//! ranges for a fit and then simply *reserves* it; freeing removes a range
//! from `reserved`. There are no per-allocation headers and no free lists, so
//! the allocator is usable before anything else exists.
//!
//! ```text
//!  memory   : [0x1000 ......... 0x9f000)     [0x100000 .................... 0x8000000)
//!  reserved :     [mbi)                      [kernel image)  [page tables)
//!  free     : [..)     [.........)                         [.)            [..........)
//! ```
//!
//! # Where in boot
//! The boot code adds every available memory-map entry with [`Memblock::add`],
//! reserves what the loader left in memory ([`Memblock::reserve`]), and then
//! early code allocates with [`Memblock::alloc_range`] and
//! [`Memblock::phys_alloc_range`]. Once `mem_map` and the zones exist, the free
//! ranges ([`Memblock::for_each_free_range`]) are handed to the buddy
//! allocator (Linux: `memblock_free_all()`), and memblock is no longer used.
//!
//! Linux has two allocation families: `memblock_phys_alloc*()` returns a
//! physical address and `memblock_alloc*()` returns a zeroed *virtual*
//! pointer. This module is pure (no pointers, no `unsafe`), so both return
//! physical addresses here; [`Memblock::alloc_range`] zeroes the memory
//! through the [`PhysMem`] trait the kernel implements over its direct map.
//! For that to work the kernel keeps [`Memblock::set_current_limit`] at the
//! end of the physical memory it has mapped, as Linux's `setup_arch()` does.
//!
//! # Invariants
//! For both types, at every return from a public method
//! ([`Memblock::check`] verifies them, and every test calls it):
//! - regions are sorted by base, disjoint, never empty, and no two are
//!   adjacent with equal flags (they would have been merged);
//! - `total_size` is the sum of the region sizes;
//! - `cnt <= max`.
//!
//! A failed operation changes nothing.
//!
//! # Region arrays
//! Both types start in arrays the caller provides (the kernel: two static
//! arrays of [`INIT_MEMBLOCK_REGIONS`]). When an operation needs more slots,
//! the array is doubled into memory that memblock allocates *from itself*;
//! the new array is reserved and the previous one, unless it was the initial
//! static array, is freed (Linux: `memblock_double_array()`).
//!
//! # Files
//! One concept per file, in the order a reader meets them:
//!
//! | file | concept | Linux |
//! |------|---------|-------|
//! | `memblock.rs` | [`Memblock`], [`MemblockRegion`], the [`PhysMem`] window, the invariants check | `struct memblock`, `struct memblock_region` |
//! | `memblock/region.rs` | [`MemblockType`]: one sorted region array, insert/remove/merge of single regions | `struct memblock_type`, `memblock_insert_region()`, `memblock_merge_regions()` |
//! | `memblock/range.rs` | adding, removing and isolating ranges: `add`, `remove`, `reserve`, `free` | `memblock_add_range()`, `memblock_isolate_range()`, `memblock_remove_range()` |
//! | `memblock/grow.rs` | growing a full region array into memory memblock allocates from itself | `memblock_double_array()` |
//! | `memblock/walk.rs` | walking the free ranges (memory minus reserved), region queries | `__next_mem_range()`, `memblock_is_region_*()` |
//! | `memblock/allocate.rs` | finding and reserving free memory: limits, top-down/bottom-up | `memblock_find_in_range_node()`, `memblock_alloc_range_nid()` |
//! | `memblock/dump.rs` | the `memblock=debug` dump and the one-line summary | `__memblock_dump_all()` |
//! | `memblock/error.rs` | [`MemblockError`] and [`InvariantError`] | |
//!
//! The host tests are in `memblock/tests.rs` (worked examples, errors,
//! growth, output) and `memblock/proptests.rs` (random operations against
//! a page-bitmap model, and arbitrary inputs).
//!
//! # Addresses
//! Physical addresses are [`PhysAddr`] (64-bit: memblock's ranges may end
//! exactly at 4 GiB); sizes and alignments are `u64` byte counts.
//!
//! # References
//! - Linux: `mm/memblock.c` (v6.x): `memblock_add_range()`,
//!   `memblock_isolate_range()`, `memblock_double_array()`,
//!   `memblock_find_in_range_node()`, `memblock_alloc_range_nid()`,
//!   `__memblock_dump_all()`; `include/linux/memblock.h`.
//! - Linux: `Documentation/core-api/boot-time-mm.rst`.

#![forbid(unsafe_code)]

mod allocate;
mod dump;
mod error;
mod grow;
mod range;
mod region;
mod walk;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use error::{InvariantError, MemblockError};
pub use region::MemblockType;

use crate::addr::PhysAddr;
use crate::mm::layout::PAGE_SIZE;

/// Value: 128. Initial capacity of each region array (Linux
/// `INIT_MEMBLOCK_REGIONS`).
pub const INIT_MEMBLOCK_REGIONS: usize = 128;

/// Value: 0. Region flags of ordinary memory (Linux `MEMBLOCK_NONE`), the
/// only flags this kernel uses.
pub const MEMBLOCK_NONE: u32 = 0;

/// Value: `PhysAddr(u64::MAX)`. A [`Memblock::set_current_limit`] value
/// (and an allocation `max`) meaning "no limit" (Linux
/// `MEMBLOCK_ALLOC_ANYWHERE`).
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = PhysAddr(u64::MAX);

/// Value: 4096. [`PAGE_SIZE`] as a physical-address quantity.
const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// One physical range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemblockRegion {
    /// First byte of the range.
    pub base: PhysAddr,
    /// Length in bytes; never 0 for a region stored in a [`MemblockType`].
    pub size: u64,
    /// Region flags; always [`MEMBLOCK_NONE`] here.
    pub flags: u32,
}

impl MemblockRegion {
    /// An unused slot: base 0, size 0, no flags. For static initial arrays.
    pub const EMPTY: MemblockRegion = MemblockRegion {
        base: PhysAddr(0),
        size: 0,
        flags: MEMBLOCK_NONE,
    };

    /// One past the last byte, `base + size` (saturating, so it cannot
    /// overflow; stored regions never reach `u64::MAX` anyway).
    pub const fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0.saturating_add(self.size))
    }
}

/// What memblock needs from physical memory. The kernel implements it over
/// the direct map; host tests use `crate::test_support::phys::FakePhys`.
pub trait PhysMem {
    /// Fills physical `[pa, pa + len)` with zeros.
    fn zero(&mut self, pa: PhysAddr, len: u64);

    /// Storage for `cap` regions at physical `pa`: `cap *
    /// size_of::<MemblockRegion>()` bytes that memblock has found free and is
    /// about to reserve. The slice becomes a region array; its old contents
    /// do not matter (memblock overwrites every entry). A slice shorter than
    /// `cap` refuses the array: the operation that needed it fails with
    /// [`MemblockError::ArrayFull`] and changes nothing.
    fn region_array(&mut self, pa: PhysAddr, cap: usize) -> &'static mut [MemblockRegion];
}

/// Which of the two types an internal operation works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Memory,
    Reserved,
}

/// The boot-time allocator: RAM (`memory`) and the parts of it in use
/// (`reserved`). Linux `struct memblock`.
#[derive(Debug)]
pub struct Memblock {
    /// All physical memory.
    pub memory: MemblockType,
    /// Ranges in use; allocations never overlap them.
    pub reserved: MemblockType,
    bottom_up: bool,
    current_limit: PhysAddr,
}

impl Memblock {
    /// An empty memblock over two initial region arrays: allocations go top
    /// down and the current limit is [`MEMBLOCK_ALLOC_ANYWHERE`].
    ///
    /// The kernel passes static arrays of [`INIT_MEMBLOCK_REGIONS`]; tests
    /// pass small ones to exercise growth. The arrays are cleared and are
    /// never freed into `reserved` when outgrown, since memblock did not
    /// allocate them (Linux: the static `memblock` initialiser over
    /// `memblock_memory_init_regions` and `memblock_reserved_init_regions`).
    pub fn new(
        memory: &'static mut [MemblockRegion],
        reserved: &'static mut [MemblockRegion],
    ) -> Memblock {
        Memblock {
            memory: MemblockType::new("memory", memory),
            reserved: MemblockType::new("reserved", reserved),
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
        }
    }

    fn ty(&self, kind: Kind) -> &MemblockType {
        match kind {
            Kind::Memory => &self.memory,
            Kind::Reserved => &self.reserved,
        }
    }

    fn ty_mut(&mut self, kind: Kind) -> &mut MemblockType {
        match kind {
            Kind::Memory => &mut self.memory,
            Kind::Reserved => &mut self.reserved,
        }
    }

    /// Checks the invariants of both types (see the module docs).
    ///
    /// # Errors
    /// The first broken invariant, as an [`InvariantError`].
    pub fn check(&self) -> Result<(), InvariantError> {
        self.memory.check()?;
        self.reserved.check()
    }
}
