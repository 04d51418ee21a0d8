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

use super::early_map::with_temp_mapping;
use super::paging::{ArchTlb, KernelPtMem, in_direct_map, is_final};
use crate::mm::highmem::{KmapError, KmapHeld, Kmapped, Pkmap};
use crate::mm::layout::{FIX_KMAP_BEGIN, KM_SLOTS, PAGE_SHIFT, fix_to_virt, phys_to_virt};
use crate::mm::paging::{PAddr, PTEntry, PTFlags, VAddr, set_pte};
use portable_atomic::{AtomicU32, Ordering};
use spin::Mutex;

static PKMAP: Mutex<Pkmap> = Mutex::new(Pkmap::new());
/// Physical addresses of the pkmap and fixmap page tables (0 before
/// `paging::paging_init`).
static PKMAP_PT: AtomicU32 = AtomicU32::new(0);
static FIXMAP_PT: AtomicU32 = AtomicU32::new(0);
/// `kmap_local` slots in use (they nest like a stack).
static KM_DEPTH: AtomicU32 = AtomicU32::new(0);
static KUNMAP_ERRORS: AtomicU32 = AtomicU32::new(0);

/// Records the page tables `paging_init` made for the pkmap window and the
/// fixmap (physical addresses).
pub(super) fn init(pkmap_pt: u32, fixmap_pt: u32) {
    PKMAP_PT.store(pkmap_pt, Ordering::Relaxed);
    FIXMAP_PT.store(fixmap_pt, Ordering::Relaxed);
}

fn pte(pfn: u32) -> PTEntry {
    PTEntry::new(PAddr(pfn << PAGE_SHIFT), PTFlags::P | PTFlags::RW)
}

fn write_slot(table: &AtomicU32, va: u32, entry: PTEntry) {
    let table = PAddr(table.load(Ordering::Relaxed));
    // SAFETY: `table` is the pkmap or fixmap page table, a page-table frame
    // only this module writes (the kernel address space's map API ends at
    // PKMAP_BASE, below both).
    let mut mem = unsafe { KernelPtMem::new() };
    set_pte(&mut mem, table, VAddr(va), entry).flush(&mut ArchTlb);
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
pub fn kmap(pfn: u32) -> Result<*mut u8, KmapError> {
    if in_direct_map(pfn) {
        return Ok(phys_to_virt(pfn << PAGE_SHIFT) as *mut u8);
    }
    assert!(is_final(), "kmap of pfn {pfn:#x} before paging_init");
    let mut pkmap = PKMAP.lock();
    let kmapped = pkmap.kmap(pfn)?;
    if let Kmapped::New { va } = kmapped {
        write_slot(&PKMAP_PT, va, pte(pfn));
    }
    Ok(kmapped.va() as *mut u8)
}

/// Drops a [`kmap`] of `pfn` (Linux `kunmap`). The last one clears the
/// slot's PTE and flushes it. Lowmem frames: nothing to do.
///
/// # Errors
/// [`KmapError::NotMapped`] for a frame that is not kmapped (a double
/// `kunmap`); it is counted and changes nothing.
pub fn kunmap(pfn: u32) -> Result<(), KmapError> {
    if in_direct_map(pfn) {
        return Ok(());
    }
    let mut pkmap = PKMAP.lock();
    match pkmap.kunmap(pfn) {
        Ok(Some(va)) => {
            write_slot(&PKMAP_PT, va, PTEntry(0));
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
pub fn kmap_local<R>(pfn: u32, f: impl FnOnce(*mut u8) -> R) -> R {
    if in_direct_map(pfn) {
        return f(phys_to_virt(pfn << PAGE_SHIFT) as *mut u8);
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
    write_slot(&FIXMAP_PT, va, pte(pfn));
    let result = f(va as *mut u8);
    write_slot(&FIXMAP_PT, va, PTEntry(0));
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
