//! Why a memblock operation failed ([`MemblockError`]) and which invariant
//! a corrupted state breaks ([`InvariantError`]).

use crate::addr::PhysAddr;
use core::fmt;

/// Why a memblock operation failed. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// No free range of `size` bytes aligned to `align` within `[min, max)`
    /// (the caller's bounds; the search also stops at the current limit).
    NoSpace {
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment in bytes.
        align: u64,
        /// Requested lower bound.
        min: PhysAddr,
        /// Requested upper bound (exclusive).
        max: PhysAddr,
    },
    /// The alignment is not a power of two (0 included).
    BadAlign(u64),
    /// `base + size` does not fit in 64 bits.
    Overflow {
        /// Start of the range.
        base: PhysAddr,
        /// Length in bytes.
        size: u64,
    },
    /// An allocation of zero bytes. (Adding, removing, reserving or freeing
    /// zero bytes is not an error; it does nothing.)
    ZeroSize,
    /// A region array is full and no free memory could hold a bigger one.
    ArrayFull {
        /// `"memory"` or `"reserved"`.
        name: &'static str,
    },
    /// A `free` would release memory that holds one of memblock's own
    /// (grown) region arrays, which are still in use. (Linux lets this
    /// happen silently; here it would leave a live array in free memory.)
    ArrayInUse {
        /// Start of the array's storage.
        base: PhysAddr,
        /// Its size in bytes.
        size: u64,
    },
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemblockError::NoSpace {
                size,
                align,
                min,
                max,
            } => write!(
                f,
                "memblock: no free range of {size:#x} bytes aligned to {align:#x} in [{min:#x}, {max:#x})"
            ),
            MemblockError::BadAlign(align) => {
                write!(f, "memblock: alignment {align:#x} is not a power of two")
            }
            MemblockError::Overflow { base, size } => write!(
                f,
                "memblock: range at {base:#x} of {size:#x} bytes overflows the address space"
            ),
            MemblockError::ZeroSize => f.write_str("memblock: allocation of zero bytes"),
            MemblockError::ArrayFull { name } => write!(
                f,
                "memblock: {name} array is full and no free memory can hold a bigger one"
            ),
            MemblockError::ArrayInUse { base, size } => write!(
                f,
                "memblock: [{base:#x}, +{size:#x}) holds a memblock region array and cannot be freed"
            ),
        }
    }
}

/// A broken invariant of a [`super::MemblockType`] (see the module
/// documentation), as found by [`super::Memblock::check`]. Each names the
/// type (`"memory"` or `"reserved"`) and, where there is one, the index of
/// the offending region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvariantError {
    /// `cnt` exceeds the array capacity.
    CntOverMax {
        /// The type.
        name: &'static str,
    },
    /// Region `idx` has size 0.
    EmptyRegion {
        /// The type.
        name: &'static str,
        /// Index of the region.
        idx: usize,
    },
    /// Region `idx` ends past `u64::MAX`.
    RegionOverflows {
        /// The type.
        name: &'static str,
        /// Index of the region.
        idx: usize,
    },
    /// Region `idx` starts before region `idx - 1` ends.
    Unsorted {
        /// The type.
        name: &'static str,
        /// Index of the region.
        idx: usize,
    },
    /// Region `idx` touches region `idx - 1` with equal flags.
    NotMerged {
        /// The type.
        name: &'static str,
        /// Index of the region.
        idx: usize,
    },
    /// The region sizes add up to more than `u64::MAX`.
    TotalOverflows {
        /// The type.
        name: &'static str,
    },
    /// `total_size` is not the sum of the region sizes.
    TotalSize {
        /// The type.
        name: &'static str,
        /// The stored `total_size`.
        stored: u64,
        /// The sum of the region sizes.
        sum: u64,
    },
}

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InvariantError::CntOverMax { name } => {
                write!(f, "memblock: {name}: cnt exceeds the array capacity")
            }
            InvariantError::EmptyRegion { name, idx } => {
                write!(f, "memblock: {name}[{idx:#x}] is empty")
            }
            InvariantError::RegionOverflows { name, idx } => {
                write!(f, "memblock: {name}[{idx:#x}] overflows the address space")
            }
            InvariantError::Unsorted { name, idx } => write!(
                f,
                "memblock: {name}[{idx:#x}] is unsorted or overlaps the region before"
            ),
            InvariantError::NotMerged { name, idx } => write!(
                f,
                "memblock: {name}[{idx:#x}] is adjacent to the region before and was not merged"
            ),
            InvariantError::TotalOverflows { name } => {
                write!(f, "memblock: {name}: total size overflows")
            }
            InvariantError::TotalSize { name, stored, sum } => write!(
                f,
                "memblock: {name}: total_size {stored:#x} is not the sum of the region sizes {sum:#x}"
            ),
        }
    }
}
