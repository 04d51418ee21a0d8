//! The boot direct map as memblock's window on physical memory.
//!
//! Until the final page tables exist, the only linear mapping is the boot
//! stub's: physical `[0x1000, BOOT_MAP_LIMIT)` at `PAGE_OFFSET`, extended by
//! `arch::x86::boot_map::extend` when `mem_map` needs more (RAM above 4 GiB
//! under PAE). memblock's `current_limit` follows the map's end, so every
//! address it allocates (and asks to zero, or to hold a grown region array)
//! lies in that map (Linux: `memblock_set_current_limit(max_pfn_mapped)` for
//! the same reason).

use crate::addr::{Pfn, PhysAddr};
use crate::mm::layout::{PAGE_SIZE, phys_to_virt};
use crate::mm::memblock::{INIT_MEMBLOCK_REGIONS, MemblockRegion, PhysMem};
use crate::mm::page::Page;
use portable_atomic::{AtomicBool, Ordering};

/// [`PhysMem`] over the boot direct map.
///
/// `PhysMem` is a safe trait (memblock is pure and forbids `unsafe`), but this
/// implementation writes wherever it is told: so only [`BootDirectMap::new`],
/// which is `unsafe`, can make one, and its caller promises to hand it to
/// memblock alone.
pub struct BootDirectMap {
    _private: (),
}

impl BootDirectMap {
    /// The kernel's one window for memblock.
    ///
    /// # Safety
    /// - Create one, and pass it only to the kernel's one `Memblock`, which
    ///   zeroes, or turns into region arrays, only ranges it has just
    ///   reserved for that purpose (so nothing else refers to them).
    /// - The boot page tables must still map `[0x1000, BOOT_MAP_LIMIT)` at
    ///   `PAGE_OFFSET` while it is used.
    pub unsafe fn new() -> Self {
        BootDirectMap { _private: () }
    }
}

/// Checks that physical `[pa, pa + len)` lies in the boot direct map
/// (`BOOT_MAP_LIMIT`, or further once `boot_map::extend` mapped more).
fn check(pa: PhysAddr, len: u64) -> u32 {
    let end = pa.0.checked_add(len);
    let limit = crate::arch::x86::highmem::direct_map_end_pfn().phys();
    assert!(
        pa.0 >= u64::from(PAGE_SIZE) && end.is_some_and(|e| e <= limit.0),
        "boot direct map: [{pa:#x}, +{len:#x}) lies outside [0x1000, {limit:#x})"
    );
    phys_to_virt(pa).0
}

impl PhysMem for BootDirectMap {
    fn zero(&mut self, pa: PhysAddr, len: u64) {
        let va = check(pa, len);
        // SAFETY: [va, va + len) is the boot direct map of [pa, pa + len)
        // (checked above), mapped writable; memblock just reserved it for the
        // caller, so no Rust reference to it exists.
        unsafe { core::ptr::write_bytes(va as *mut u8, 0, len as usize) };
    }

    fn region_array(&mut self, pa: PhysAddr, cap: usize) -> &'static mut [MemblockRegion] {
        let bytes = (cap * core::mem::size_of::<MemblockRegion>()) as u64;
        self.zero(pa, bytes);
        let va = check(pa, bytes);
        assert!(
            (va as usize).is_multiple_of(core::mem::align_of::<MemblockRegion>()),
            "memblock array at {pa:#x} is misaligned"
        );
        // SAFETY:
        // - [va, va + bytes) is mapped and writable (checked), aligned, and
        //   zero bytes are a valid MemblockRegion (all integer fields).
        // - memblock reserved this range for the array and keeps it reserved
        //   while the array is in use, so nothing else aliases it: 'static
        //   is as long as the boot direct map lives (until final paging).
        unsafe { core::slice::from_raw_parts_mut(va as *mut MemblockRegion, cap) }
    }
}

/// The initial region arrays, `INIT_MEMBLOCK_REGIONS` each (Linux:
/// `memblock_memory_init_regions`, `memblock_reserved_init_regions`).
///
/// # Panics
/// On a second call.
pub fn initial_region_arrays() -> (&'static mut [MemblockRegion], &'static mut [MemblockRegion]) {
    const EMPTY: MemblockRegion = MemblockRegion::EMPTY;
    static mut MEMORY: [MemblockRegion; INIT_MEMBLOCK_REGIONS] = [EMPTY; INIT_MEMBLOCK_REGIONS];
    static mut RESERVED: [MemblockRegion; INIT_MEMBLOCK_REGIONS] = [EMPTY; INIT_MEMBLOCK_REGIONS];
    static TAKEN: AtomicBool = AtomicBool::new(false);
    assert!(
        !TAKEN.swap(true, Ordering::SeqCst),
        "initial_region_arrays called twice"
    );
    // SAFETY: the TAKEN flag makes this the only place that ever forms a
    // reference to these statics, once.
    unsafe {
        (
            &mut *core::ptr::addr_of_mut!(MEMORY),
            &mut *core::ptr::addr_of_mut!(RESERVED),
        )
    }
}

/// The buddy allocator's zeroing hook (`__GFP_ZERO`): zeroes `nr_pages`
/// frames from `pfn`, through the direct map where it reaches and through a
/// temporary mapping elsewhere (Linux: `clear_highpage()` maps a HighMem
/// page with `kmap_local_page()` the same way).
///
/// Only the buddy allocator calls it, for frames it has just allocated and
/// not yet handed out, so nothing else refers to them.
pub fn zero_pages(pfn: Pfn, nr_pages: u32) {
    for p in pfn.range_to(pfn + nr_pages) {
        crate::arch::x86::highmem::kmap_local(p, |ptr| {
            // SAFETY: `ptr` maps frame `p` writable for this closure; the
            // allocator owns the frame exclusively (see above).
            unsafe { core::ptr::write_bytes(ptr, 0, PAGE_SIZE as usize) }
        });
    }
}

/// `mem_map`, the array of `nr_pages` page descriptors memblock allocated (and
/// zeroed) at physical `pa`, as a slice through the boot direct map.
///
/// # Safety
/// `[pa, pa + nr_pages * 8)` must have been allocated from memblock for this
/// purpose (reserved, lying below its current limit, so inside the boot
/// direct map) and must not be used for anything else, ever: the slice is
/// `'static`.
pub unsafe fn mem_map_slice(pa: PhysAddr, nr_pages: usize) -> &'static mut [Page] {
    let bytes = (nr_pages * core::mem::size_of::<Page>()) as u64;
    let va = check(pa, bytes);
    // SAFETY: the caller guarantees exclusive, permanent ownership of the
    // range; it is mapped writable (checked), page-aligned, and any bit
    // pattern is a valid Page (a u64).
    unsafe { core::slice::from_raw_parts_mut(va as *mut Page, nr_pages) }
}
