//! The early map window, hardware half: writes the PTEs that
//! `crate::mm::early_map` plans into `boot_early_map_table`.

use super::tlb;
use crate::mm::early_map::{EarlyMapError, EarlyMapWindow};
use crate::mm::layout::ENTRIES_PER_TABLE;
use spin::Mutex;

unsafe extern "C" {
    /// The page table behind PDE `EARLY_MAP_PDE`, in .bss (`boot/entry.S`).
    static mut boot_early_map_table: [u32; ENTRIES_PER_TABLE as usize];
}

static WINDOW: Mutex<EarlyMapWindow> = Mutex::new(EarlyMapWindow::new());

/// Maps physical `[pa, pa + len)` read-only and returns it as a byte slice
/// (Linux: `early_memremap_ro()`).
///
/// The mapping is never removed while the boot page directory is in use,
/// hence `'static`.
///
/// # Errors
/// See [`EarlyMapWindow::plan`].
pub fn early_memremap_ro(pa: u64, len: usize) -> Result<&'static [u8], EarlyMapError> {
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
