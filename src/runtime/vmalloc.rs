//! vmalloc: virtually contiguous memory from scattered frames, mapped at
//! once ([`vmalloc`]) or on first touch ([`vmalloc_demand`]), in the
//! vmalloc region `[VMALLOC_START, VMALLOC_END)` (Linux `mm/vmalloc.c`).
//!
//! The address bookkeeping is `crate::mm::vmalloc::VmapAllocator` (pure,
//! host-tested); this module gets the frames from the buddy allocator
//! (`GFP_HIGHUSER`: HighMem first, since vmalloc needs no direct-map
//! address), maps them through the kernel address space, and resolves the
//! page faults of demand areas.
//!
//! # Demand paging (the seed's "demand method")
//!
//! [`vmalloc_demand`] only reserves the range. The first access to each page
//! faults (not present); the handler registered for `Region::Vmalloc` finds
//! the area, maps a zeroed frame and returns, and the CPU retries the
//! instruction. An access outside every demand area's pages (a guard page,
//! a freed area, a protection fault) is not resolved: the fault is fatal
//! and reported with the region and the page-table walk.
//!
//! # Locks
//!
//! `VMAP` (the area tree) → the mm lock (pages, page tables, and the tree's
//! own nodes, which come from kmalloc) → the kernel address space. The
//! fault handler only try-locks, so a fault taken while one of them is held
//! fails loudly instead of spinning for ever; and it does not log (a fault
//! taken while a log line holds the serial port would wait for it).

use super::kmalloc::{try_with_mm, with_mm};
use crate::addr::{Pfn, VirtAddr};
use crate::arch::x86::idt;
use crate::arch::x86::paging;
use crate::arch::x86::tlb::ArchTlb;
use crate::mm::gfp::{GFP_HIGHUSER, Gfp};
use crate::mm::layout::{PAGE_SHIFT, Region, VMALLOC_END, VMALLOC_START};
use crate::mm::paging::{MapError, PAGE_KERNEL};
use crate::mm::vmalloc::{VmArea, VmKind, VmallocError, VmapAllocator, VmapStats};
use crate::trap::PageFaultError;
use core::fmt;
use portable_atomic::{AtomicU32, Ordering};
use spin::Mutex;

static VMAP: Mutex<Option<VmapAllocator>> = Mutex::new(None);
static DEMAND_FAULTS: AtomicU32 = AtomicU32::new(0);
static HIGHMEM_PAGES: AtomicU32 = AtomicU32::new(0);

/// Why a vmalloc call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmallocFailure {
    /// The virtual range could not be reserved (or freed).
    Area(VmallocError),
    /// The buddy allocator ran out of frames after `mapped` pages; those
    /// were given back and the range freed.
    NoMemory {
        /// Pages mapped before the failure.
        mapped: u32,
    },
    /// A page-table update failed (out of page-table frames, usually).
    Map(MapError),
}

impl fmt::Display for VmallocFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmallocFailure::Area(e) => write!(f, "{e}"),
            VmallocFailure::NoMemory { mapped } => write!(
                f,
                "vmalloc: out of page frames after {mapped} pages (given back)"
            ),
            VmallocFailure::Map(e) => write!(f, "vmalloc: mapping failed: {e:?}"),
        }
    }
}

/// Creates the area tree for `[VMALLOC_START, VMALLOC_END)` and registers
/// the demand-paging fault handler (Linux `vmalloc_init()`). Needs kmalloc
/// (the tree's nodes).
pub fn vmalloc_init() {
    *VMAP.lock() = Some(VmapAllocator::new(
        VirtAddr(VMALLOC_START),
        VirtAddr(VMALLOC_END),
    ));
    idt::register_page_fault_handler(Region::Vmalloc, demand_fault);
}

fn with_vmap<R>(f: impl FnOnce(&mut VmapAllocator) -> R) -> R {
    f(VMAP
        .lock()
        .as_mut()
        .expect("vmalloc used before vmalloc_init"))
}

/// Allocates `size` bytes (rounded up to pages) of virtually contiguous
/// memory, each page a separate frame, HighMem preferred, mapped now
/// (Linux `vmalloc()`). Not zeroed.
///
/// # Errors
/// See [`VmallocFailure`]; nothing stays allocated after a failure.
pub fn vmalloc(size: usize) -> Result<*mut u8, VmallocFailure> {
    let size = u32::try_from(size)
        .map_err(|_| VmallocFailure::Area(VmallocError::TooLarge { size: size as u64 }))?;
    let area = with_vmap(|v| v.alloc(size, VmKind::Mapped)).map_err(VmallocFailure::Area)?;
    for i in 0..area.nr_pages {
        let va = area.addr + (i << PAGE_SHIFT);
        if let Err(e) = map_new_page(va, GFP_HIGHUSER) {
            unmap_pages(&area);
            with_vmap(|v| v.free(area.addr)).expect("area just allocated");
            return Err(match e {
                None => VmallocFailure::NoMemory { mapped: i },
                Some(e) => VmallocFailure::Map(e),
            });
        }
    }
    Ok(area.addr.as_mut_ptr())
}

/// Reserves `size` bytes (rounded up to pages) of the vmalloc region and
/// maps nothing: each page gets a zeroed frame the first time it is
/// touched (demand paging).
///
/// # Errors
/// [`VmallocFailure::Area`] when the range cannot be reserved.
pub fn vmalloc_demand(size: usize) -> Result<*mut u8, VmallocFailure> {
    let size = u32::try_from(size)
        .map_err(|_| VmallocFailure::Area(VmallocError::TooLarge { size: size as u64 }))?;
    with_vmap(|v| v.alloc(size, VmKind::Demand))
        .map(|a| a.addr.as_mut_ptr())
        .map_err(VmallocFailure::Area)
}

/// Frees an area from [`vmalloc`] or [`vmalloc_demand`]: unmaps its pages
/// (each with its TLB flush), gives the frames back, then frees the range
/// (Linux `vfree()`); returns the area as it was (with its fault count).
///
/// # Errors
/// [`VmallocError::NotAllocated`] (nothing changed) when `addr` does not
/// start an area.
///
/// # Safety
/// Nothing may use the area's memory after this call.
#[allow(unsafe_code, reason = "callers promise no use of the area after it")]
pub unsafe fn vfree(addr: *mut u8) -> Result<VmArea, VmallocFailure> {
    let addr = VirtAddr(addr as u32);
    let area = with_vmap(|v| v.find(addr).copied())
        .filter(|a| a.addr == addr)
        .ok_or(VmallocFailure::Area(VmallocError::NotAllocated { addr }))?;
    unmap_pages(&area);
    with_vmap(|v| v.free(addr)).map_err(VmallocFailure::Area)
}

/// Maps a new frame at `va`. `Err(None)`: no frame; `Err(Some(e))`: the
/// mapping failed (the frame is given back).
fn map_new_page(va: VirtAddr, gfp: Gfp) -> Result<(), Option<MapError>> {
    with_mm(|mm| {
        let (pfn, _) = mm.buddy.alloc_pages(gfp, 0).ok_or(None)?.into_raw();
        match paging::map_page(&mut mm.buddy, va, pfn.phys(), PAGE_KERNEL) {
            Ok(flush) => {
                count_highmem(&mm.buddy, pfn);
                // Intel SDM Vol. 3A §4.10.4.3 "Optional Invalidation": a
                // not-present entry is never cached, so making it present
                // needs no flush.
                flush.ignore("the PTE was not present");
                Ok(())
            }
            Err(e) => {
                mm.buddy
                    .free_pages_raw(pfn, 0)
                    .expect("frame just allocated");
                Err(Some(e))
            }
        }
    })
}

fn count_highmem(buddy: &crate::mm::buddy::BuddyAllocator<'_>, pfn: Pfn) {
    if pfn >= buddy.max_low_pfn() {
        HIGHMEM_PAGES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Unmaps every mapped page of `area` and frees its frame.
fn unmap_pages(area: &VmArea) {
    for i in 0..area.nr_pages {
        let va = area.addr + (i << PAGE_SHIFT);
        if paging::translate(va).is_err() {
            continue; // a demand page never touched
        }
        with_mm(|mm| {
            let (pa, flush) = paging::unmap_page(&mut mm.buddy, va).expect("page just translated");
            flush.flush(&mut ArchTlb);
            if pa.pfn() >= mm.buddy.max_low_pfn() {
                HIGHMEM_PAGES.fetch_sub(1, Ordering::Relaxed);
            }
            mm.buddy
                .free_pages_raw(pa.pfn(), 0)
                .expect("vmalloc frame refused by the buddy allocator");
        });
    }
}

/// The page-fault handler of the vmalloc region: maps a zeroed frame for a
/// not-present access inside a demand area's pages; anything else is left
/// to the fatal path.
fn demand_fault(cr2: VirtAddr, error: PageFaultError) -> bool {
    if error.present() {
        return false; // a protection fault: nothing to map
    }
    let Some(mut vmap) = VMAP.try_lock() else {
        panic!("demand fault at {cr2:#010x} while the vmalloc lock is held");
    };
    let Some(area) = vmap.as_mut().and_then(|v| v.find_mut(cr2)) else {
        return false;
    };
    if area.kind != VmKind::Demand || !area.contains_usable(cr2) {
        return false;
    }
    let va = cr2.page_align_down();
    // Nothing here logs: the fault may have been taken while a log line
    // held the serial port. A failure panics (the panic path writes to the
    // port without its lock).
    let mapped = try_with_mm(|mm| {
        let Some(block) = mm.buddy.alloc_pages(GFP_HIGHUSER | Gfp::ZERO, 0) else {
            panic!("demand fault at {cr2:#010x}: out of memory for a demand page");
        };
        let (pfn, _) = block.into_raw();
        match paging::try_map_page(&mut mm.buddy, va, pfn.phys(), PAGE_KERNEL) {
            Some(Ok(flush)) => {
                // Not-present entries are never cached (SDM §4.10.4.3).
                flush.ignore("the PTE was not present");
                count_highmem(&mm.buddy, pfn);
            }
            Some(Err(e)) => panic!("demand fault at {cr2:#010x}: mapping failed: {e:?}"),
            None => {
                panic!("demand fault at {cr2:#010x} while the kernel address-space lock is held")
            }
        }
    });
    if mapped.is_none() {
        panic!("demand fault at {cr2:#010x} while the mm lock is held");
    }
    area.demand_faults += 1;
    DEMAND_FAULTS.fetch_add(1, Ordering::Relaxed);
    true
}

/// Demand faults resolved since boot.
pub fn demand_faults() -> u32 {
    DEMAND_FAULTS.load(Ordering::Relaxed)
}

/// HighMem frames mapped in vmalloc areas now.
pub fn highmem_pages() -> u32 {
    HIGHMEM_PAGES.load(Ordering::Relaxed)
}

/// The area containing `va`, if any (a copy).
pub fn find_area(va: VirtAddr) -> Option<VmArea> {
    with_vmap(|v| v.find(va).copied())
}

/// Totals of the area tree.
pub fn stats() -> VmapStats {
    with_vmap(|v| v.stats())
}

/// One line per area in `/proc/vmallocinfo` style.
pub fn vmallocinfo(mut out: impl FnMut(&VmArea)) {
    with_vmap(|v| v.areas().for_each(&mut out));
}
