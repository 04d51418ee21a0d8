//! Large kmalloc: requests above [`KMALLOC_MAX_CACHE_SIZE`] served as whole
//! pages from the buddy allocator (Linux `__kmalloc_large_node()` and
//! `free_large_kmalloc()`).
//!
//! A request of `size` bytes gets a block of order `get_order(size)`,
//! page aligned, reached through the direct map. Its head page is marked
//! [`PageUse::LargeKmalloc`] in `mem_map` (the order is in the same
//! descriptor), which is all `kfree(ptr)` needs: it finds the mark, checks
//! `ptr` is the block's first byte and frees the block with the order from
//! the descriptor.
//!
//! # Ownership
//!
//! The buddy allocator hands the block out as an owned
//! [`PageBlock`](crate::mm::buddy::PageBlock). Its ownership ends here, in
//! `Kmalloc::large_alloc`, where it is turned into a raw `(pfn, order)`
//! pair: from then on the caller's pointer owns the pages, and the only
//! record of them is the head page's mark. `kfree` gives them back with
//! `BuddyAllocator::free_pages_raw`, whose checks (head page, order, not
//! free already) stand in for the type's guarantee.

use super::error::{KmallocError, KmallocErrorKind};
use super::size_class::KMALLOC_MAX_CACHE_SIZE;
use super::{Kmalloc, SlabMemory};
use crate::addr::{Pfn, VirtAddr};
use crate::mm::buddy::{BuddyAllocator, get_order};
use crate::mm::gfp::Gfp;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::page::PageUse;

/// kmalloc's counters of large allocations, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LargeStats {
    /// Large allocations live now.
    pub live: u32,
    /// Pages those hold.
    pub pages: u32,
    /// Large allocations since boot.
    pub allocs: u64,
    /// Large frees since boot.
    pub frees: u64,
    /// Bytes requested by the large allocations since boot.
    pub requested_bytes: u64,
    /// Bytes handed out to them since boot (`PAGE_SIZE << order` each).
    pub allocated_bytes: u64,
}

/// The cache name large allocations are reported under.
pub(super) const LARGE_NAME: &str = "kmalloc-large";

// The usable size of every large allocation (at least the block of
// `get_order(KMALLOC_MAX_CACHE_SIZE + 1)`) exceeds every class, so a
// usable size tells a large allocation from a cache's object
// (`Kmalloc::debug_cache`).
const _: () = assert!(PAGE_SIZE << get_order(KMALLOC_MAX_CACHE_SIZE + 1) > KMALLOC_MAX_CACHE_SIZE);

impl Kmalloc {
    /// Allocates `size` bytes (above [`KMALLOC_MAX_CACHE_SIZE`]) as a block
    /// of `get_order(size)` pages, zeroed with `__GFP_ZERO`; `None` if the
    /// buddy allocator has no such block (after reclaim) or `size` does
    /// not fit 32 bits.
    pub(super) fn large_alloc(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        mem: &mut impl SlabMemory,
        size: usize,
        gfp: Gfp,
    ) -> Option<VirtAddr> {
        let size = u32::try_from(size).ok()?;
        let order = get_order(size);
        let page_gfp = gfp.difference(Gfp::HIGHMEM | Gfp::ZERO);
        let block = self.alloc_pages_reclaim(buddy, mem, page_gfp, order)?;
        // The block's ownership ends here (see the module docs): the head
        // page's mark records it until `large_free`.
        let (pfn, order) = block.into_raw();
        buddy.set_page_use(pfn, 1, PageUse::LargeKmalloc);
        self.large.live += 1;
        self.large.pages += 1 << order;
        self.large.allocs += 1;
        self.large.requested_bytes += u64::from(size);
        self.large.allocated_bytes += u64::from(PAGE_SIZE << order);
        let addr = mem.page_address(pfn);
        if gfp.contains(Gfp::ZERO) {
            mem.fill(addr, PAGE_SIZE << order, 0);
        }
        Some(addr)
    }

    /// Frees the large allocation at `addr`, whose head page `pfn` was
    /// found marked with order `order`.
    ///
    /// # Errors
    /// [`KmallocErrorKind::BadPage`] if the buddy allocator refuses the
    /// block (the mark is restored; nothing changed).
    pub(super) fn large_free(
        &mut self,
        buddy: &mut BuddyAllocator<'_>,
        addr: VirtAddr,
        pfn: Pfn,
        order: u8,
    ) -> Result<(), KmallocError> {
        buddy.set_page_use(pfn, 1, PageUse::None);
        match buddy.free_pages_raw(pfn, order) {
            Ok(()) => {
                self.large.live -= 1;
                self.large.pages -= 1 << order;
                self.large.frees += 1;
                Ok(())
            }
            Err(bad) => {
                buddy.set_page_use(pfn, 1, PageUse::LargeKmalloc);
                Err(KmallocError::new(
                    KmallocErrorKind::BadPage(bad),
                    addr,
                    LARGE_NAME,
                ))
            }
        }
    }
}
