//! The early map window, hardware half: writes the PTEs that
//! `crate::mm::early_map` plans into `boot_early_map_table`.

use super::tlb;
use crate::mm::early_map::{EarlyMapError, EarlyMapWindow, TEMP_SLOT, TEMP_SLOT_VA, temp_slot_pte};
use crate::mm::layout::ENTRIES_PER_TABLE;
use portable_atomic::{AtomicBool, Ordering};
use spin::Mutex;

unsafe extern "C" {
    /// The page table behind PDE `EARLY_MAP_PDE`, in .bss (`boot/entry.S`).
    static mut boot_early_map_table: [u32; ENTRIES_PER_TABLE as usize];
}

static WINDOW: Mutex<EarlyMapWindow> = Mutex::new(EarlyMapWindow::new());

/// Set by [`retire`]: the window's page table is no longer in the page
/// directory.
static RETIRED: AtomicBool = AtomicBool::new(false);

/// Records that the final page directory no longer maps the window
/// (`paging::retire_early_map`); later use panics instead of faulting.
pub fn retire() {
    RETIRED.store(true, Ordering::SeqCst);
}

/// Maps physical `[pa, pa + len)` read-only and returns it as a byte slice
/// (Linux: `early_memremap_ro()`).
///
/// The mapping lives until `paging::retire_early_map` removes the whole
/// window at the end of boot (an `unsafe` call whose caller promises that no
/// such slice is used afterwards), hence `'static`.
///
/// # Errors
/// See [`EarlyMapWindow::plan`].
///
/// # Panics
/// After the window was retired.
pub fn early_memremap_ro(pa: u64, len: usize) -> Result<&'static [u8], EarlyMapError> {
    assert!(
        !RETIRED.load(Ordering::SeqCst),
        "early_memremap_ro after the early map window was retired"
    );
    let mapping = WINDOW.lock().plan(pa, len as u64)?;
    for i in 0..mapping.nr_pages {
        let slot = (mapping.first_slot + i) as usize;
        // SAFETY: `slot` < 1024 (plan() never exceeds the window) and was just
        // reserved for this call under the lock, so no other code writes this
        // entry; the table is a static mapped by the boot stub.
        unsafe {
            core::ptr::addr_of_mut!(boot_early_map_table[slot]).write_volatile(mapping.pte(i));
        }
        // A slot is used once, so no stale translation can exist; flushing
        // anyway keeps this correct if slots are ever reused.
        tlb::flush_tlb_one(mapping.slot_va(i));
    }
    // SAFETY:
    // - [va, va + len) lies in the slots just mapped, present and readable.
    // - The PTEs are read-only, so no `&mut` can alias this memory through
    //   the window; the loader's data there is not written by the kernel
    //   while the boot page directory is in use.
    Ok(unsafe { core::slice::from_raw_parts(mapping.va() as *const u8, len) })
}

static TEMP_SLOT_LOCK: Mutex<()> = Mutex::new(());

/// Maps frame `pfn` writable at the temporary slot, runs `f` with a pointer
/// to its first byte (4 KiB are mapped), and unmaps it again (Linux:
/// `kmap_local_page()`/`kunmap_local()`).
///
/// Each change of the slot's PTE is followed by `flush_tlb_one`: without it,
/// the next use of the slot could still reach the previous frame through a
/// stale TLB entry.
///
/// The pointer is raw: whether reading or writing the frame is sound depends
/// on who owns it, which only the caller knows. It is valid only inside `f`.
///
/// # Panics
/// When nested (there is one slot), or after the window was retired.
pub fn with_temp_mapping<R>(pfn: u32, f: impl FnOnce(*mut u8) -> R) -> R {
    assert!(
        !RETIRED.load(Ordering::SeqCst),
        "with_temp_mapping after the early map window was retired"
    );
    let Some(_guard) = TEMP_SLOT_LOCK.try_lock() else {
        panic!("with_temp_mapping nested: the boot-time temporary slot is already in use");
    };
    let slot = TEMP_SLOT as usize;
    // SAFETY: the slot's PTE belongs to this function (the planner never hands
    // it out) and the lock serialises its users; the table is a static mapped
    // by the boot stub.
    unsafe {
        core::ptr::addr_of_mut!(boot_early_map_table[slot]).write_volatile(temp_slot_pte(pfn));
    }
    tlb::flush_tlb_one(TEMP_SLOT_VA);
    let result = f(TEMP_SLOT_VA as *mut u8);
    // SAFETY: as above; clearing the PTE unmaps the slot.
    unsafe { core::ptr::addr_of_mut!(boot_early_map_table[slot]).write_volatile(0) };
    tlb::flush_tlb_one(TEMP_SLOT_VA);
    result
}
