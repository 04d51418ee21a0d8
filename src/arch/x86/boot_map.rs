//! Extending the boot direct map before the buddy allocator exists, when
//! `mem_map` does not fit in the boot stub's 16 MiB (RAM above 4 GiB under
//! PAE: 16 MiB of descriptors at 8 GiB, 128 MiB at 64 GiB).
//!
//! The boot page directory is 32-bit whatever mode the final one will use;
//! this adds page-directory entries after the boot stub's four, each with a
//! page table from memblock (below the current limit, so reachable through
//! the part already mapped), mapping the next 4 MiB of low memory at
//! `PAGE_OFFSET + pa` (Linux i386: `init_mem_mapping()` →
//! `kernel_physical_mapping_init()` with `alloc_low_pages()`, which maps all
//! of low memory at this point). No TLB flush: the entries were not present
//! before (Intel SDM Vol. 3A §4.10.4.3). The tables stay reserved when the
//! final page directory replaces this one.

use super::boot_page_directory_va;
use super::highmem::set_direct_map_end;
use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::layout::{PAGE_OFFSET, PAGE_SIZE, PDE_SPAN, phys_to_virt};
use crate::mm::memblock::{Memblock, MemblockError, PhysMem};
use crate::mm::paging::{BOOT_PDE_FLAGS, BOOT_PTE_FLAGS, Format, PTEntry, PTFlags, Table};

/// Maps physical `[memblock.current_limit(), end)` at `PAGE_OFFSET + pa` in
/// the boot page directory, raises memblock's current limit to `end` and
/// records the new end of the live direct map. Returns the number of page
/// tables added (taken from memblock).
///
/// # Errors
/// A [`MemblockError`] if memblock has no page for a table; the tables
/// added before stay and the limit stays where it was.
///
/// # Panics
/// If `end` lies beyond 896 MiB (the direct map's room) or the current
/// limit is not 4 MiB aligned.
pub fn extend(
    memblock: &mut Memblock,
    phys: &mut impl PhysMem,
    end: PhysAddr,
) -> Result<u32, MemblockError> {
    let start = memblock.current_limit();
    assert!(
        start.0.is_multiple_of(u64::from(PDE_SPAN)),
        "boot map end {start:#x} is not 4 MiB aligned"
    );
    assert!(
        end.0 <= u64::from(crate::mm::layout::MAXMEM),
        "boot map extension to {end:#x} leaves low memory"
    );
    let pd = boot_page_directory_va().as_mut_ptr::<Table>();
    let mut added = 0;
    let mut chunk = start.0;
    while chunk < end.0 {
        let table = memblock.alloc_range(
            u64::from(PAGE_SIZE),
            u64::from(PAGE_SIZE),
            PhysAddr(0),
            start,
            phys,
        )?;
        let pages = ((end.0 - chunk) / u64::from(PAGE_SIZE)).min(1024) as usize;
        let flags = PTFlags::from_bits_truncate(u64::from(BOOT_PTE_FLAGS));
        // SAFETY: memblock just reserved (and zeroed) this page for the
        // table; it lies below the old limit, in the boot direct map; no
        // other reference to it exists.
        let t = unsafe { &mut *phys_to_virt(table).as_mut_ptr::<Table>() };
        for i in 0..pages {
            let pa = PhysAddr(chunk + ((i as u64) << 12));
            Format::TwoLevel.write(t, i, PTEntry::new(pa, flags).0);
        }
        let pde = VirtAddr(PAGE_OFFSET + chunk as u32).pdx() as usize;
        // SAFETY: the boot page directory is the live one, in the image's
        // .bss (mapped writable); entry `pde` was not present (the boot stub
        // maps only its first 16 MiB), so no translation depends on it and
        // the CPU may load the new one whenever it likes.
        unsafe { (*pd)[pde] = table.as_u32() | BOOT_PDE_FLAGS };
        added += 1;
        chunk += u64::from(PDE_SPAN);
    }
    memblock.set_current_limit(end);
    set_direct_map_end(end.pfn());
    Ok(added)
}
