//! The early map window, hardware half: writes the PTEs that
//! `crate::mm::early_map` plans into `boot_early_map_table`, through
//! `PageTableMemory` and `paging::set_pte` like every other PTE writer, and
//! runs the TLB flush each write returns.

use super::tlb::ArchTlb;
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::mm::early_map::{EarlyMapError, EarlyMapWindow, TEMP_SLOT_VA, temp_slot_pte};
use crate::mm::layout::virt_to_phys;
use crate::mm::paging::{Format, PTEntry, PageTableMemory, Table, set_pte};
use portable_atomic::{AtomicBool, Ordering};
use spin::Mutex;

unsafe extern "C" {
    /// The page table behind PDE `EARLY_MAP_PDE`, in .bss (`boot/entry.S`).
    static mut boot_early_map_table: Table;
}

/// Physical address of the window's page table, which the final page
/// directory borrows until the window is retired.
pub fn table_phys() -> PhysAddr {
    // Taking the address of an extern static never reads it.
    virt_to_phys(VirtAddr(core::ptr::addr_of!(boot_early_map_table) as u32))
}

/// Serialises writers of the window's page table (the planner's slots and
/// the temporary slot share it), so that [`EarlyTableMem`]'s `&mut` is the
/// only reference to it.
static TABLE_LOCK: Mutex<()> = Mutex::new(());

/// The window's page table as [`PageTableMemory`]: the one table it reaches.
struct EarlyTableMem;

impl PageTableMemory for EarlyTableMem {
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        assert_eq!(
            table,
            table_phys(),
            "the early map reaches only its own page table"
        );
        let _guard = TABLE_LOCK.lock();
        // SAFETY: `boot_early_map_table` is a 4 KiB static the boot stub and
        // the final page directory map at its linked address; the lock makes
        // this the only reference to it for the closure's duration (the
        // MMU's reads are not Rust references).
        f(unsafe { &mut *core::ptr::addr_of_mut!(boot_early_map_table) })
    }
}

/// Writes `pte` into the window's slot for `va` and flushes it.
///
/// # Panics
/// Once a PAE directory runs: it holds a copy of the window, and a write
/// to the boot table would not reach it.
fn set_slot(va: VirtAddr, pte: PTEntry) {
    assert!(
        !COPIED.load(Ordering::SeqCst),
        "early map slot {va:#010x} written after the switch to PAE (the window is a copy now)"
    );
    set_pte(&mut EarlyTableMem, Format::TwoLevel, table_phys(), va, pte).flush(&mut ArchTlb);
}

/// Set by [`copied_to_pae`].
static COPIED: AtomicBool = AtomicBool::new(false);

/// Records that a PAE directory was loaded with a copy of the window
/// (`paging::paging_init`): no new early mappings from here on.
pub fn copied_to_pae() {
    COPIED.store(true, Ordering::SeqCst);
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
pub fn early_memremap_ro(pa: PhysAddr, len: usize) -> Result<&'static [u8], EarlyMapError> {
    assert!(
        !RETIRED.load(Ordering::SeqCst),
        "early_memremap_ro after the early map window was retired"
    );
    let mapping = WINDOW.lock().plan(pa, len as u64)?;
    for i in 0..mapping.nr_pages {
        // The slot was just reserved for this call under the lock, so no
        // other code writes its entry. A slot is used once, so no stale
        // translation can exist; flushing anyway keeps this correct if slots
        // are ever reused.
        set_slot(mapping.slot_va(i), mapping.pte(i));
    }
    // SAFETY:
    // - [va, va + len) lies in the slots just mapped, present and readable.
    // - The PTEs are read-only, so no `&mut` can alias this memory through
    //   the window; the loader's data there is not written by the kernel
    //   while the boot page directory is in use.
    Ok(unsafe { core::slice::from_raw_parts(mapping.va().as_ptr::<u8>(), len) })
}

static TEMP_SLOT_LOCK: Mutex<()> = Mutex::new(());

/// Maps frame `pfn` writable at the temporary slot, runs `f` with a pointer
/// to its first byte (4 KiB are mapped), and unmaps it again (Linux:
/// `kmap_local_page()`/`kunmap_local()`).
///
/// Each change of the slot's PTE is followed by the TLB flush `set_pte`
/// returns (`invlpg`, or a CR3 reload): without it, the next use of the slot
/// could still reach the previous frame through a stale TLB entry.
///
/// The pointer is raw: whether reading or writing the frame is sound depends
/// on who owns it, which only the caller knows. It is valid only inside `f`.
///
/// # Panics
/// When nested (there is one slot), or after the window was retired.
pub fn with_temp_mapping<R>(pfn: Pfn, f: impl FnOnce(*mut u8) -> R) -> R {
    assert!(
        !RETIRED.load(Ordering::SeqCst),
        "with_temp_mapping after the early map window was retired"
    );
    let Some(_guard) = TEMP_SLOT_LOCK.try_lock() else {
        panic!("with_temp_mapping nested: the boot-time temporary slot is already in use");
    };
    // The slot's PTE belongs to this function (the planner never hands it
    // out) and the lock above serialises its users.
    set_slot(TEMP_SLOT_VA, temp_slot_pte(pfn));
    let result = f(TEMP_SLOT_VA.as_mut_ptr());
    set_slot(TEMP_SLOT_VA, PTEntry(0));
    result
}
