//! Array caches: per-cache stacks of recently freed objects, for the sized
//! free of Rust's `GlobalAlloc::dealloc` (Linux SLAB's `array_cache`, the
//! role of SLUB's per-cpu freelist and of Bonwick's magazines).
//!
//! Without `slub_debug`, [`Kmalloc::kfree_sized`] pushes a small object on
//! its cache's array cache, a stack of up to [`array_cache_limit`]
//! objects (32 for the small caches), and the next [`Kmalloc::kmalloc`] of that class pops it: no
//! page lookup, no slab header, no bitmap, a few nanoseconds. When the
//! stack is full its older half goes back to the slabs through the checked
//! path of [`Kmalloc::kfree`] (Linux `cache_flusharray()`);
//! [`Kmalloc::shrink`] empties it. Objects waiting here count as active
//! (as Linux's slabinfo counts them).
//!
//! The stack lives in the cache's `array` and `avail` fields (Linux
//! `array_cache.entry[]` and `.avail`), newest last.

use super::error::{KmallocError, KmallocErrorKind};
use super::size_class::kmalloc_index_aligned;
use super::{Kmalloc, KmemCache, Owner, SlabMemory, ZERO_SIZE_PTR};
use crate::addr::VirtAddr;
use crate::mm::buddy::BuddyAllocator;

/// Value: 32. The most objects a cache's array cache holds (the array's
/// length; Linux SLAB's `array_cache.limit` is at most this here, see
/// [`array_cache_limit`]; the role of SLUB's per-cpu freelist and of
/// Bonwick's magazines).
pub const ARRAY_CACHE_LIMIT: usize = 32;

/// The array cache limit of a cache of `size`-byte objects (Linux SLAB
/// `enable_cpucache()`: 8 above a page, 24 above 1 KiB, more below), capped
/// at [`ARRAY_CACHE_LIMIT`]: kmalloc-8k parks at most 8 freed objects (64
/// KiB), kmalloc-2k and kmalloc-4k 24, the smaller caches 32.
pub const fn array_cache_limit(size: u32) -> u32 {
    let linux = if size > 4096 {
        8
    } else if size > 1024 {
        24
    } else {
        54
    };
    if linux < ARRAY_CACHE_LIMIT as u32 {
        linux
    } else {
        ARRAY_CACHE_LIMIT as u32
    }
}

impl KmemCache {
    /// Pops the most recently freed object, counting the allocation of
    /// `size` bytes.
    #[inline]
    pub(super) fn array_pop(&mut self, size: u32) -> Option<VirtAddr> {
        if self.avail == 0 {
            return None;
        }
        self.avail -= 1;
        self.allocs += 1;
        self.requested += u64::from(size);
        Some(self.array[self.avail as usize])
    }

    /// The most recently freed object, if any.
    #[inline]
    fn array_top(&self) -> Option<VirtAddr> {
        self.avail
            .checked_sub(1)
            .map(|top| self.array[top as usize])
    }

    /// Pushes `addr` (the stack is not full), counting the free.
    #[inline]
    fn array_push(&mut self, addr: VirtAddr) {
        self.array[self.avail as usize] = addr;
        self.avail += 1;
        self.frees += 1;
    }
}

impl Kmalloc {
    /// Frees `addr`, allocated with `kmalloc_aligned(size, align)`: the free
    /// of Rust's `GlobalAlloc::dealloc`, which knows the `Layout`.
    ///
    /// Without `slub_debug`, a small object goes onto its cache's *array
    /// cache*, a stack of up to [`ARRAY_CACHE_LIMIT`] recently freed
    /// objects that the next allocation of that size pops (Linux SLAB's
    /// `array_cache`, SLUB's per-cpu freelist, Bonwick's magazines): no
    /// page lookup, no slab header, no bitmap, a few nanoseconds. When the
    /// stack is full, its older half goes back to the slabs through the
    /// checked path of [`kfree`](Self::kfree) (Linux `cache_flusharray()`);
    /// [`shrink`](Self::shrink) empties it. Everything else takes
    /// [`kfree`](Self::kfree).
    ///
    /// The fast path trusts `size` and `align`, as `GlobalAlloc` may: a
    /// wrong pair is caught only when the object is flushed. It catches
    /// the naive double free (the object on top of the stack again), as
    /// SLUB's hardened freelist does; other double frees through this path
    /// go unnoticed until the flush. An empty stack takes the fast path
    /// too (a fresh heap's first free): it has no top to compare with.
    /// `slub_debug` turns the fast path off. The class is computed once,
    /// here, and handed to the slow path.
    ///
    /// # Errors
    /// As [`kfree`](Self::kfree), for this object or (when the stack was
    /// flushed) an older one.
    #[inline]
    pub fn kfree_sized(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
        size: usize,
        align: usize,
    ) -> Result<(), KmallocError> {
        // Null, ZERO_SIZE_PTR and the addresses between (never an object:
        // kfree refuses them) in one compare.
        if self.debug || addr.0 <= ZERO_SIZE_PTR.0 {
            return self.kfree(buddy, mem, addr);
        }
        // (`size` 0 never reaches here with a real object: kmalloc of 0
        // bytes returns ZERO_SIZE_PTR.)
        let Some(index) = kmalloc_index_aligned(size, align) else {
            // A large allocation (or an impossible `align`).
            return self.kfree(buddy, mem, addr);
        };
        let c = &mut self.caches[index];
        let avail = c.avail as usize;
        // Room left, and `addr` not on top (an empty stack has no top).
        if avail < c.limit as usize && (avail == 0 || c.array[avail - 1] != addr) {
            c.array_push(addr);
            return Ok(());
        }
        self.kfree_sized_slow(buddy, mem, addr, index)
    }

    /// [`kfree_sized`](Self::kfree_sized) of an object of class `index`
    /// when the fast path does not apply: the array cache is full (its
    /// older half is flushed first), or `addr` is on its top already (a
    /// double free).
    #[cold]
    #[inline(never)]
    fn kfree_sized_slow(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        addr: VirtAddr,
        index: usize,
    ) -> Result<(), KmallocError> {
        self.caches[index].free_miss += 1;
        let c = &self.caches[index];
        if c.array_top() == Some(addr) {
            let e = KmallocError::new(KmallocErrorKind::DoubleFree, addr, c.name);
            return Err(self.report(e));
        }
        let mut flushed = Ok(());
        if c.avail >= c.limit {
            let half = c.limit.div_ceil(2) as usize;
            flushed = self.flush_array(buddy, mem, index, half);
        }
        self.caches[index].array_push(addr);
        flushed
    }

    /// Gives the oldest `n` objects of cache `index`'s array cache back to
    /// their slabs, each checked as [`kfree`](Self::kfree) checks it (Linux
    /// `cache_flusharray()`); returns the first problem found, after
    /// flushing all `n`.
    pub(super) fn flush_array(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        index: usize,
        n: usize,
    ) -> Result<(), KmallocError> {
        let mut first_error = Ok(());
        for i in 0..n {
            let addr = self.caches[index].array[i];
            let r = match self.lookup(buddy, mem, addr) {
                Ok(Owner::Slab {
                    index: owner,
                    slab,
                    obj,
                }) if owner == index => {
                    let r = self.slab_free(buddy, mem, index, slab, obj);
                    // Counted when it entered the array cache.
                    self.caches[index].frees -= 1;
                    r
                }
                Ok(_) => Err(KmallocError::new(
                    KmallocErrorKind::NotObjectStart,
                    addr,
                    self.caches[index].name,
                )),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                let e = self.report(e);
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        let c = &mut self.caches[index];
        let avail = c.avail as usize;
        c.array.copy_within(n..avail, 0);
        c.avail = (avail - n) as u32;
        first_error
    }
}
