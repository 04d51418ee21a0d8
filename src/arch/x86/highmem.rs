//! kmap for HighMem frames, hardware half: the pkmap window (`kmap`,
//! `kunmap`) and the fixmap's stacked temporary slots (`kmap_local`).
//!
//! A frame in the live direct map (all of lowmem once the final page
//! directory is loaded; the first 16 MiB before) is reachable there, so both
//! return its direct-map address and change nothing. Any other frame (HighMem,
//! above `max_low_pfn`) gets a slot:
//! - `kmap(pfn)`: a pkmap slot, shared and counted, held until the matching
//!   `kunmap(pfn)` (bookkeeping in `crate::mm::highmem::Pkmap`). May be held
//!   across other work; a leak is reported by [`report_leaks`].
//! - `kmap_local(pfn, f)`: the next fixmap slot for the duration of `f`
//!   (Linux `kmap_local_page`, whose mappings are strictly nested like
//!   these). No bookkeeping beyond the nesting depth.
//!
//! Every PTE change goes through `crate::mm::paging::set_pte`, whose flush
//! token is executed right away.
//!
//! This module also owns the live direct map's extent ([`in_direct_map`],
//! [`is_final`]) and [`KernelPtMem`], the page-table memory every live page
//! table is written through: both decide between the direct map and a
//! temporary slot, so they sit below `paging`, which uses them.

use super::early_map::with_temp_mapping;
use super::tlb::ArchTlb;
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::mm::highmem::{KmapError, KmapHeld, Kmapped, Pkmap};
use crate::mm::layout::{
    BOOT_MAP_LIMIT, FIX_KMAP_BEGIN, KM_SLOTS, PAGE_SHIFT, fix_to_virt, phys_to_virt,
};
use crate::mm::paging::{
    PAGE_KERNEL, PTEntry, PageTableMemory, PagingMode, Table, pfn_pte, set_pte, walk,
};
use portable_atomic::{AtomicBool, AtomicU32, Ordering};
use spin::Mutex;

/// End of the live direct map, as a pfn: the boot map's 16 MiB until
/// [`init`], `max_low_pfn` after.
static DIRECT_MAP_END_PFN: AtomicU32 = AtomicU32::new(BOOT_MAP_LIMIT >> PAGE_SHIFT);
/// Set by [`init`], once the final page directory is loaded.
static FINAL: AtomicBool = AtomicBool::new(false);

static PKMAP: Mutex<Pkmap> = Mutex::new(Pkmap::new());
/// The final page directory (PAE: the PDPT), and its format (0 32-bit, 1
/// PAE), from [`init`]: the pkmap and fixmap tables are found by walking it.
static KERNEL_DIR: Mutex<Option<(PhysAddr, PagingMode)>> = Mutex::new(None);
/// `kmap_local` slots in use (they nest like a stack).
static KM_DEPTH: AtomicU32 = AtomicU32::new(0);
static KUNMAP_ERRORS: AtomicU32 = AtomicU32::new(0);

/// Records the final page directory's direct map end (a pfn), the
/// directory itself (under PAE, the PDPT) and its mode; from here on
/// HighMem frames get pkmap and fixmap slots, in the pinned page tables
/// `paging::paging_init` made (found by walking the directory).
///
/// # Panics
/// On a second call.
pub fn init(direct_map_end_pfn: Pfn, pgd: PhysAddr, mode: PagingMode) {
    assert!(!is_final(), "highmem::init called twice");
    DIRECT_MAP_END_PFN.store(direct_map_end_pfn.0, Ordering::Relaxed);
    *KERNEL_DIR.lock() = Some((pgd, mode));
    FINAL.store(true, Ordering::Relaxed);
}

/// Records that the live direct map now ends at `end` (a pfn): after the
/// boot map was extended (`boot_map::extend`), or after the CR3 load of
/// `paging::paging_init` ([`init`] follows with the kmap state).
pub fn set_direct_map_end(end: Pfn) {
    DIRECT_MAP_END_PFN.store(end.0, Ordering::Relaxed);
}

/// First pfn past the live direct map.
pub fn direct_map_end_pfn() -> Pfn {
    Pfn(DIRECT_MAP_END_PFN.load(Ordering::Relaxed))
}

/// Whether the final page directory is in use ([`init`] was called).
pub fn is_final() -> bool {
    FINAL.load(Ordering::Relaxed)
}

/// Whether frame `pfn` lies in the live direct map's range (the stack guard
/// page's frame too, although it is the one hole besides page 0).
pub fn in_direct_map(pfn: Pfn) -> bool {
    (Pfn(1)..direct_map_end_pfn()).contains(&pfn)
}

/// Page-table memory as the kernel reaches it.
///
/// `PageTableMemory` is a safe trait (the paging logic is pure), but this
/// implementation writes wherever it is told, so only `unsafe`
/// [`KernelPtMem::new`] makes one.
pub struct KernelPtMem {
    _private: (),
}

impl KernelPtMem {
    /// # Safety
    /// Pass it only page-table frames: the current page directory, frames
    /// the page-table code allocated as tables, and the boot stub's tables.
    /// Nothing else may hold a Rust reference into them.
    pub unsafe fn new() -> Self {
        KernelPtMem { _private: () }
    }
}

impl PageTableMemory for KernelPtMem {
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        let pfn = table.pfn();
        assert!(
            table.is_page_aligned(),
            "page table at {table:#x} is not page-aligned"
        );
        if in_direct_map(pfn) {
            let va = phys_to_virt(table);
            // SAFETY: the frame is in the live direct map (checked), mapped
            // writable; it is a page-table frame (KernelPtMem::new's
            // contract), so no other reference to it exists during `f`.
            f(unsafe { &mut *va.as_mut_ptr::<Table>() })
        } else {
            kmap_local(pfn, |ptr| {
                // SAFETY: `ptr` maps the page-table frame writable for this
                // closure; exclusive as above.
                f(unsafe { &mut *(ptr as *mut Table) })
            })
        }
    }
}

/// A slot's entry for `pfn`: kernel data, writable, global and NX where
/// the mode has them (Linux `kmap_prot`), masked like every kernel mapping.
fn pte(pfn: Pfn) -> PTEntry {
    let (_, mode) = kernel_dir();
    pfn_pte(pfn, PAGE_KERNEL & mode.supported())
}

/// The final directory and its mode ([`init`]).
fn kernel_dir() -> (PhysAddr, PagingMode) {
    KERNEL_DIR
        .lock()
        .expect("kmap slot used before highmem::init")
}

fn write_slot(va: VirtAddr, entry: PTEntry) {
    let (pgd, mode) = kernel_dir();
    let format = mode.format;
    // SAFETY: the walk reaches only the final directory and the pkmap or
    // fixmap page table, page-table frames; the table's slots are written
    // only here (the kernel address space's map API ends at PKMAP_BASE,
    // below both).
    let mut mem = unsafe { KernelPtMem::new() };
    let pde = walk(&mut mem, format, pgd, va).pde;
    assert!(
        pde.is_present() && !pde.is_page(),
        "no pinned page table for kmap slot {va:#010x}"
    );
    set_pte(&mut mem, format, pde.address(), va, entry).flush(&mut ArchTlb);
}

/// A kernel address for frame `pfn`, valid until the matching [`kunmap`]
/// (Linux `kmap`): the direct-map address for lowmem, a pkmap slot for
/// HighMem.
///
/// # Errors
/// [`KmapError::Full`] when every pkmap slot is held,
/// [`KmapError::TooManyUsers`] when the frame's user count would overflow.
///
/// # Panics
/// For a frame outside the live direct map before the final page directory
/// is loaded (there is no pkmap window yet).
pub fn kmap(pfn: Pfn) -> Result<*mut u8, KmapError> {
    if in_direct_map(pfn) {
        return Ok(phys_to_virt(pfn.phys()).as_mut_ptr());
    }
    assert!(is_final(), "kmap of pfn {pfn:#x} before paging_init");
    let mut pkmap = PKMAP.lock();
    let kmapped = pkmap.kmap(pfn)?;
    if let Kmapped::New { va } = kmapped {
        write_slot(va, pte(pfn));
    }
    Ok(kmapped.va().as_mut_ptr())
}

/// Drops a [`kmap`] of `pfn` (Linux `kunmap`). The last one clears the
/// slot's PTE and flushes it. Lowmem frames: nothing to do.
///
/// # Errors
/// [`KmapError::NotMapped`] for a frame that is not kmapped (a double
/// `kunmap`); it is counted and changes nothing.
pub fn kunmap(pfn: Pfn) -> Result<(), KmapError> {
    if in_direct_map(pfn) {
        return Ok(());
    }
    let mut pkmap = PKMAP.lock();
    match pkmap.kunmap(pfn) {
        Ok(Some(va)) => {
            write_slot(va, PTEntry(0));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            KUNMAP_ERRORS.fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// Runs `f` with frame `pfn` mapped writable at a temporary address (Linux
/// `kmap_local_page` ... `kunmap_local`): the direct-map address for lowmem;
/// else the next fixmap slot, or the early map's temporary slot before the
/// final page directory exists. Nested calls take the next slot (before the
/// final page directory, there is only the one slot: nesting panics).
///
/// The pointer is raw and valid only inside `f`: whether reading or writing
/// the frame is sound depends on who owns it, which only the caller knows.
///
/// # Panics
/// When more than `KM_SLOTS` (16) calls are nested.
pub fn kmap_local<R>(pfn: Pfn, f: impl FnOnce(*mut u8) -> R) -> R {
    if in_direct_map(pfn) {
        return f(phys_to_virt(pfn.phys()).as_mut_ptr());
    }
    if !is_final() {
        return with_temp_mapping(pfn, f);
    }
    let depth = KM_DEPTH.load(Ordering::Relaxed);
    assert!(
        depth < KM_SLOTS,
        "kmap_local: more than {KM_SLOTS} nested temporary mappings"
    );
    KM_DEPTH.store(depth + 1, Ordering::Relaxed);
    let va = fix_to_virt(FIX_KMAP_BEGIN + depth);
    write_slot(va, pte(pfn));
    let result = f(va.as_mut_ptr());
    write_slot(va, PTEntry(0));
    KM_DEPTH.store(depth, Ordering::Relaxed);
    result
}

/// kmap statistics: `(kmaps, kunmaps, refused kunmaps, slots held)`.
pub fn stats() -> (u32, u32, u32, u32) {
    let pkmap = PKMAP.lock();
    let (kmaps, kunmaps) = pkmap.counts();
    (
        kmaps,
        kunmaps,
        KUNMAP_ERRORS.load(Ordering::Relaxed),
        pkmap.held().count() as u32,
    )
}

/// Calls `out` for every pkmap slot still held (a leak, if nothing is
/// supposed to hold one); returns how many.
pub fn report_leaks(mut out: impl FnMut(KmapHeld)) -> u32 {
    let pkmap = PKMAP.lock();
    let mut n = 0;
    for held in pkmap.held() {
        out(held);
        n += 1;
    }
    n
}
