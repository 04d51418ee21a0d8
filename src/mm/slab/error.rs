//! kmalloc's errors: [`KmallocError`], what a call found wrong (printed as
//! Linux's `BUG <cache>: ...` reports), and [`ValidateError`], the first
//! inconsistency [`Kmalloc::validate`](super::Kmalloc::validate) finds.

use super::debug::{KMALLOC_MAGIC, RED_ACTIVE};
use crate::addr::VirtAddr;
use crate::mm::buddy::BadPage;
use core::fmt;

/// What went wrong in a kmalloc call (the text after `BUG <cache>:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocErrorKind {
    /// The object is free already (its free bit is set, or its debug header
    /// says free or quarantined). Nothing changed.
    DoubleFree,
    /// The address is not in the direct map of low memory, or its page does
    /// not belong to kmalloc. Nothing changed.
    NotKmalloc,
    /// The address is inside a slab but not at the start of an object, or
    /// inside the first page of a large allocation but not at its start (an
    /// address in a later page of it is [`NotKmalloc`](Self::NotKmalloc):
    /// only the head page is marked). Nothing changed.
    NotObjectStart,
    /// The slab's header (at the start of its first page) was overwritten.
    /// Nothing changed.
    SlabCorrupt,
    /// The debug header `{ size, magic }` in front of the object was
    /// overwritten (`found` is the magic read). Nothing changed.
    HeaderOverwritten {
        /// The magic found.
        found: u32,
    },
    /// A red-zone byte was overwritten: `offset` is its distance from the
    /// object start (negative: in front of it). The zone was restored and
    /// the free went ahead.
    RedzoneOverwritten {
        /// Offset of the first bad byte from the object start.
        offset: i32,
        /// The byte found there.
        found: u8,
    },
    /// A free object's poison was modified (a write after free), found when
    /// the object was about to be reused: `offset` from the object start.
    /// The object was quarantined.
    UseAfterFree {
        /// Offset of the first bad byte from the object start.
        offset: u32,
        /// The byte found there.
        found: u8,
    },
    /// The buddy allocator refused to free a slab or large allocation.
    BadPage(BadPage),
}

/// A problem found by kmalloc: what, at which address, in which cache.
///
/// Displays as Linux's slab reports do: `BUG kmalloc-64: double free of
/// object 0xc1234040`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmallocError {
    /// What was found.
    pub kind: KmallocErrorKind,
    /// The address passed in (or the object checked).
    pub addr: VirtAddr,
    /// The cache's name (`kmalloc-64`), `kmalloc-large` or `kmalloc` when
    /// unknown.
    pub cache: &'static str,
}

impl KmallocError {
    /// The error `kind` at `addr` in `cache`.
    pub(super) const fn new(
        kind: KmallocErrorKind,
        addr: VirtAddr,
        cache: &'static str,
    ) -> KmallocError {
        KmallocError { kind, addr, cache }
    }
}

impl fmt::Display for KmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BUG {}: ", self.cache)?;
        let a = self.addr;
        match self.kind {
            KmallocErrorKind::DoubleFree => write!(f, "double free of object {a:#x}"),
            KmallocErrorKind::NotKmalloc => write!(
                f,
                "free of {a:#x}, which kmalloc never returned (not a slab or large-kmalloc page)"
            ),
            KmallocErrorKind::NotObjectStart => {
                write!(f, "free of {a:#x}, which is not the start of an object")
            }
            KmallocErrorKind::SlabCorrupt => {
                write!(f, "slab header overwritten (slab of object {a:#x})")
            }
            KmallocErrorKind::HeaderOverwritten { found } => write!(
                f,
                "header of object {a:#x} overwritten (magic {found:#010x}, expected {KMALLOC_MAGIC:#010x})"
            ),
            KmallocErrorKind::RedzoneOverwritten { offset, found } => write!(
                f,
                "red zone overwritten at object {a:#x}{offset:+} (byte {found:#04x}, expected {RED_ACTIVE:#04x}); restored"
            ),
            KmallocErrorKind::UseAfterFree { offset, found } => write!(
                f,
                "object {a:#x} modified after free at offset {offset} (byte {found:#04x}); quarantined"
            ),
            KmallocErrorKind::BadPage(bad) => write!(f, "freeing {a:#x}: {bad}"),
        }
    }
}

/// The first inconsistency [`Kmalloc::validate`](super::Kmalloc::validate)
/// finds in the caches' bookkeeping (never expected: each one means a bug
/// in kmalloc or memory overwritten behind its back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidateError {
    /// A slab list holds more slabs than its count says.
    ListTooLong,
    /// A slab list holds fewer slabs than its count says.
    ListTooShort,
    /// A slab header's magic is not `SLAB_MAGIC ^ cache index`.
    BadMagic,
    /// A slab header's `prev` link does not name the slab before it.
    BadPrevLink,
    /// A slab header's `list` word names another list than the one the
    /// slab is on.
    WrongListTag,
    /// A slab's `inuse` count plus the set bits of its bitmap is not its
    /// number of objects.
    InuseMismatch,
    /// A slab is on a list its `inuse` count does not belong on (partial:
    /// some used, some free; full: all used; empty: none used).
    WrongList,
    /// A slab's address is outside the direct map.
    OutsideDirectMap,
    /// A page of a slab is not marked with the slab's cache in `mem_map`.
    PageNotMarked,
    /// A cache's `active_objs` is not the sum of its slabs' `inuse`.
    ActiveObjsMismatch,
}

impl ValidateError {
    /// The description, as [`Display`](fmt::Display) prints it.
    pub const fn message(self) -> &'static str {
        match self {
            ValidateError::ListTooLong => "slab list longer than its count",
            ValidateError::ListTooShort => "slab list shorter than its count",
            ValidateError::BadMagic => "slab header magic wrong",
            ValidateError::BadPrevLink => "slab prev link wrong",
            ValidateError::WrongListTag => "slab on a list other than its header says",
            ValidateError::InuseMismatch => "slab inuse does not match its bitmap",
            ValidateError::WrongList => "slab on the wrong list for its inuse count",
            ValidateError::OutsideDirectMap => "slab outside the direct map",
            ValidateError::PageNotMarked => "slab page not marked with its cache",
            ValidateError::ActiveObjsMismatch => "cache active_objs does not match its slabs",
        }
    }
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
