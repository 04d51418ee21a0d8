//! kmalloc in the kernel: the buddy allocator and the slab caches behind one
//! lock, the direct map as their memory, and Rust's global allocator on top.
//!
//! After final paging, `kernel_entry` moves the buddy allocator in here
//! ([`kmem_init`], Linux `kmem_cache_init()` + `mm_core_init()`); from then
//! on every page and every object comes through [`with_mm`]'s lock:
//! `kmalloc`, `kfree`, `vmalloc`'s pages, page tables. `Box`, `Vec`,
//! `String` and `BTreeMap` work through [`KernelAllocator`], the
//! `#[global_allocator]`.
//!
//! The lock is a spin lock (one CPU, no interrupt handler allocates), so it
//! can only be found held when code allocates *while holding it*, for
//! example a `Vec` pushed inside a `with_mm` closure, or when a demand
//! fault (vmalloc) is taken inside such a closure. That would deadlock;
//! instead it panics naming the problem.

use crate::addr::{Pfn, VirtAddr};
use crate::arch::x86::highmem::direct_map_end_pfn;
use crate::mm::buddy::BuddyAllocator;
use crate::mm::gfp::{GFP_KERNEL, Gfp};
use crate::mm::layout::{PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE};
use crate::mm::slab::{KMALLOC_MIN_SIZE, Kmalloc, KmallocError, SlabMemory};
use crate::mm::zone::MAX_PAGE_ORDER;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use spin::Mutex;

/// The memory-management state after boot: the page allocator and kmalloc.
pub struct Mm {
    /// The zoned buddy page allocator.
    pub buddy: BuddyAllocator<'static>,
    /// The kmalloc caches.
    pub kmalloc: Kmalloc,
}

static MM: Mutex<Option<Mm>> = Mutex::new(None);

/// Takes over the buddy allocator and creates the kmalloc caches (empty;
/// slabs come on first use), with the `slub_debug` layer if `debug`.
///
/// # Panics
/// If called twice, or before final paging (the caches need the direct map
/// of all low memory).
// Never inlined: the `Mm` is built on this function's frame (about 10 KiB
// on i686: the buddy allocator's zones with their per-cpu stacks, and the
// kmalloc caches) before it moves into `MM`. Inlined into the caller, that
// space would stay reserved on the boot stack for the rest of the boot.
#[inline(never)]
pub fn kmem_init(buddy: BuddyAllocator<'static>, debug: bool) {
    assert!(
        crate::arch::x86::highmem::is_final(),
        "kmem_init before the final page directory"
    );
    let mut mm = MM.lock();
    assert!(mm.is_none(), "kmem_init called twice");
    *mm = Some(Mm {
        buddy,
        kmalloc: Kmalloc::new(debug),
    });
}

/// Runs `f` with the page allocator and kmalloc locked.
///
/// # Panics
/// Before [`kmem_init`]; and if the lock is held already, which on this
/// one-CPU kernel means `f` (or a caller up the stack) allocated while
/// holding it.
#[inline]
pub fn with_mm<R>(f: impl FnOnce(&mut Mm) -> R) -> R {
    with_mm_if_ready(f).expect("memory allocator used before kmem_init")
}

/// Like [`with_mm`] but `None` before [`kmem_init`] (for the global
/// allocator, whose requests may come first): one lock acquisition that
/// both checks kmalloc is up and serves the request.
///
/// # Panics
/// If the lock is held already (see [`with_mm`]).
#[inline]
fn with_mm_if_ready<R>(f: impl FnOnce(&mut Mm) -> R) -> Option<R> {
    let Some(mut guard) = MM.try_lock() else {
        lock_held();
    };
    guard.as_mut().map(f)
}

/// The panic of [`with_mm`] when the lock is held.
#[cold]
#[inline(never)]
fn lock_held() -> ! {
    panic!("mm lock already held: allocation from inside with_mm (would deadlock)")
}

/// Like [`with_mm`] but `None` instead of panicking when the lock is held
/// or kmalloc is not up (for the page-fault handler).
pub fn try_with_mm<R>(f: impl FnOnce(&mut Mm) -> R) -> Option<R> {
    let mut guard = MM.try_lock()?;
    guard.as_mut().map(f)
}

/// kmalloc's view of memory: the direct map of low memory at
/// `PAGE_OFFSET` (Linux `page_address()`/`virt_to_page()` for lowmem).
///
/// Its accessors read and write any address they are given, so only this
/// module makes one, for the `Kmalloc` calls it makes under the mm lock.
pub struct DirectMap(());

/// The direct map for one `Kmalloc` call.
fn dm() -> DirectMap {
    // Only passed as the memory argument of `Kmalloc` methods, which
    // access pages kmalloc owns (its slabs and large allocations).
    DirectMap(())
}

#[allow(
    unsafe_code,
    reason = "slab words and objects read and written through the direct map"
)]
impl SlabMemory for DirectMap {
    #[inline]
    fn page_address(&self, pfn: Pfn) -> VirtAddr {
        VirtAddr(PAGE_OFFSET + (pfn.0 << PAGE_SHIFT))
    }

    #[inline]
    fn virt_to_pfn(&self, addr: VirtAddr) -> Option<Pfn> {
        let pfn = addr.0.checked_sub(PAGE_OFFSET)? >> PAGE_SHIFT;
        (Pfn(pfn) < direct_map_end_pfn()).then_some(Pfn(pfn))
    }

    #[inline]
    fn read_u32(&self, addr: VirtAddr) -> u32 {
        // SAFETY: kmalloc passes addresses inside pages it owns (slab
        // headers and objects), all in the live direct map, aligned.
        unsafe { ptr::read_volatile(addr.as_ptr::<u32>()) }
    }

    #[inline]
    fn write_u32(&mut self, addr: VirtAddr, value: u32) {
        // SAFETY: as in `read_u32`.
        unsafe { ptr::write_volatile(addr.as_mut_ptr::<u32>(), value) }
    }

    #[inline]
    fn read_u8(&self, addr: VirtAddr) -> u8 {
        // SAFETY: as in `read_u32`.
        unsafe { ptr::read_volatile(addr.as_ptr::<u8>()) }
    }

    #[inline]
    fn fill(&mut self, addr: VirtAddr, len: u32, byte: u8) {
        // SAFETY: `[addr, addr + len)` lies in pages kmalloc owns.
        unsafe { ptr::write_bytes(addr.as_mut_ptr::<u8>(), byte, len as usize) }
    }

    fn find_mismatch(&self, addr: VirtAddr, len: u32, byte: u8) -> Option<u32> {
        // SAFETY: `[addr, addr + len)` lies in pages kmalloc owns; nothing
        // else runs during the check (one CPU, interrupts off).
        let bytes = unsafe { core::slice::from_raw_parts(addr.as_ptr::<u8>(), len as usize) };
        bytes.iter().position(|&b| b != byte).map(|i| i as u32)
    }

    #[inline]
    fn copy(&mut self, dst: VirtAddr, src: VirtAddr, len: u32) {
        // SAFETY: two distinct live objects of at least `len` bytes.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr::<u8>(), dst.as_mut_ptr::<u8>(), len as usize)
        }
    }
}

/// The kernel pointer for a kmalloc address (null for none).
fn to_ptr(addr: Option<VirtAddr>) -> *mut u8 {
    addr.map_or(ptr::null_mut(), VirtAddr::as_mut_ptr)
}

/// The kmalloc address of a kernel pointer (its low 32 bits: the kernel's
/// pointers are 32-bit).
fn to_addr(ptr: *mut u8) -> VirtAddr {
    VirtAddr(ptr as usize as u32)
}

fn log_report(e: &KmallocError) {
    log::error!(target: "kmalloc", "{e}");
}

/// Runs a kmalloc operation and logs, after the lock is dropped, every
/// problem it reported (the last one in full, the count of any earlier
/// ones): the one place kmalloc reports reach the log.
///
/// # Panics
/// As [`with_mm`].
#[inline]
fn kmem_call<R>(f: impl FnOnce(&mut Mm) -> R) -> R {
    kmem_call_if_ready(f).expect("memory allocator used before kmem_init")
}

/// [`kmem_call`], `None` before [`kmem_init`].
#[inline]
fn kmem_call_if_ready<R>(f: impl FnOnce(&mut Mm) -> R) -> Option<R> {
    let (r, new) = with_mm_if_ready(|mm| {
        let before = mm.kmalloc.reports();
        let r = f(mm);
        (r, mm.kmalloc.reports() - before)
    })?;
    if new > 0 {
        log_reports(new);
    }
    Some(r)
}

/// Logs the `new` problems the last kmalloc call reported (out of line:
/// the calls that find none, nearly all of them, skip it).
#[cold]
#[inline(never)]
fn log_reports(new: u32) {
    let Some(e) = try_with_mm(|mm| mm.kmalloc.last_report()).flatten() else {
        return;
    };
    if new > 1 {
        log::error!(target: "kmalloc", "{} more problems found in this call; the last:", new - 1);
    }
    log_report(&e);
}

/// Checks every cache (`Kmalloc::validate`), for the self-tests.
///
/// # Errors
/// The first inconsistency found (`ValidateError`'s text).
pub fn kmem_validate() -> Result<(), &'static str> {
    with_mm(|mm| mm.kmalloc.validate(&mm.buddy, &dm())).map_err(|e| e.message())
}

/// `kmalloc(size, gfp)`: null on failure (see `Kmalloc::kmalloc`).
pub fn kmalloc(size: usize, gfp: Gfp) -> *mut u8 {
    to_ptr(kmem_call(|mm| {
        mm.kmalloc.kmalloc(&mut mm.buddy, &mut dm(), size, gfp)
    }))
}

/// `kzalloc(size, gfp)`: zeroed; null on failure.
pub fn kzalloc(size: usize, gfp: Gfp) -> *mut u8 {
    kmalloc(size, gfp | Gfp::ZERO)
}

/// `kfree(ptr)`; a problem is logged as a `BUG kmalloc-..` line and
/// returned.
///
/// # Errors
/// See `Kmalloc::kfree`.
///
/// # Safety
/// Nothing may use the object after this call: kfree detects double frees
/// and foreign pointers, not a use after free through another reference
/// (such as a `Box` that still owns the object).
#[allow(unsafe_code, reason = "callers promise no use after free")]
pub unsafe fn kfree(ptr: *mut u8) -> Result<(), KmallocError> {
    kmem_call(|mm| mm.kmalloc.kfree(&mut mm.buddy, &mut dm(), to_addr(ptr)))
}

/// `ksize(ptr)`: the usable size.
///
/// # Errors
/// See `Kmalloc::ksize` (logged).
pub fn ksize(ptr: *mut u8) -> Result<usize, KmallocError> {
    kmem_call(|mm| mm.kmalloc.ksize(&mut mm.buddy, &mut dm(), to_addr(ptr)))
}

/// `krealloc(ptr, new_size, gfp)`: `Ok(null)` when out of memory (the old
/// object stays).
///
/// # Errors
/// See `Kmalloc::krealloc` (logged).
///
/// # Safety
/// As [`kfree`]: once the object has moved, the old pointer must not be
/// used.
#[allow(unsafe_code, reason = "callers promise no use of the old pointer")]
pub unsafe fn krealloc(ptr: *mut u8, new_size: usize, gfp: Gfp) -> Result<*mut u8, KmallocError> {
    kmem_call(|mm| {
        mm.kmalloc
            .krealloc(&mut mm.buddy, &mut dm(), to_addr(ptr), new_size, gfp)
    })
    .map(to_ptr)
}

/// Returns the empty slabs to the buddy allocator; the pages freed.
pub fn kmem_shrink() -> u32 {
    with_mm(|mm| mm.kmalloc.shrink(&mut mm.buddy, &mut dm()))
}

/// Rust's global allocator on kmalloc (`GFP_KERNEL`).
///
/// A `Layout`'s alignment up to a page is honoured through the size
/// classes' alignment guarantee (`Kmalloc::kmalloc_aligned`); a larger one
/// fails. A failure returns null, and Rust's `alloc` error handler then
/// panics with "memory allocation of N bytes failed", printed as a `PANIC:`
/// line.
pub struct KernelAllocator;

/// `alloc` and `alloc_zeroed`: `layout` from kmalloc with `gfp`, or the
/// alloc error path (before `kmem_init`, or when memory runs out). One
/// lock acquisition checks kmalloc is up and serves the request.
#[inline]
fn global_alloc(layout: Layout, gfp: Gfp) -> *mut u8 {
    kmem_call_if_ready(|mm| {
        mm.kmalloc
            .kmalloc_aligned(&mut mm.buddy, &mut dm(), layout.size(), layout.align(), gfp)
    })
    .flatten()
    .map_or_else(
        || alloc_failed(layout.size(), layout.align()),
        VirtAddr::as_mut_ptr,
    )
}

#[allow(unsafe_code, reason = "Rust's global allocator is an unsafe trait")]
// SAFETY: every block returned is `layout.size()` bytes at least, aligned
// to `layout.align()`, owned by the caller until `dealloc` (the slab and
// page bookkeeping never hands out a live object twice); the lock
// serialises all calls.
unsafe impl GlobalAlloc for KernelAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        global_alloc(layout, GFP_KERNEL)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        global_alloc(layout, GFP_KERNEL | Gfp::ZERO)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The Layout names the cache: the array-cache fast path
        // (`Kmalloc::kfree_sized`). A problem found is a heap corruption
        // bug in the caller; it is logged (BUG line) and the caches stay
        // intact.
        let _ = kmem_call(|mm| {
            mm.kmalloc.kfree_sized(
                &mut mm.buddy,
                &mut dm(),
                to_addr(ptr),
                layout.size(),
                layout.align(),
            )
        });
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align().max(KMALLOC_MIN_SIZE as usize);
        kmem_call(|mm| {
            mm.kmalloc.krealloc_aligned(
                &mut mm.buddy,
                &mut dm(),
                to_addr(ptr),
                new_size,
                align,
                GFP_KERNEL,
            )
        })
        .unwrap_or_else(|e| {
            // A bad pointer, not a lack of memory: say so, instead of
            // letting the alloc error handler blame the size.
            crate::arch::x86::exit::fatal(format_args!("realloc of {:#010x}: {e}", ptr as usize))
        })
        .map_or_else(|| alloc_failed(new_size, align), VirtAddr::as_mut_ptr)
    }
}

/// Logs why a `GlobalAlloc` request failed, before Rust's `alloc` error
/// handler turns it into the `PANIC:` line; returns null.
#[cold]
#[inline(never)]
fn alloc_failed(size: usize, align: usize) -> *mut u8 {
    if let Some(free) = try_with_mm(|mm| mm.buddy.nr_free_pages()) {
        log::error!(target: "kmalloc",
            "global allocator: {size} bytes aligned to {align} not available ({free} pages free; at most {} KiB in one block, order {MAX_PAGE_ORDER})",
            (PAGE_SIZE as usize) << MAX_PAGE_ORDER >> 10);
    } else {
        log::error!(target: "kmalloc", "global allocator: {size} bytes requested before kmem_init");
    }
    ptr::null_mut()
}

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;
