//! The kernel's virtual address space: one source of truth.
//!
//! Every address-space constant is defined here and only here; the boot stub
//! (`boot/entry.S`) receives them as `global_asm!` operands and `linker.ld`
//! checks its own copy against them at link time.
//!
//! This module is pure arithmetic: it never dereferences anything, so it is
//! compiled and tested on the host as well.
//!
//! ```text
//!  virtual
//!  0xFFFF_FFFF +-----------------------------+
//!              | (not mapped)                |
//!  0xFFC0_0000 +-----------------------------+
//!              | early map window, 4 MiB     |  any physical page, mapped on
//!              |                             |  demand (boot information)
//!  0xFF80_0000 +-----------------------------+  EARLY_MAP_BASE
//!              | (not mapped)                |
//!  0xC100_0000 +-----------------------------+  PAGE_OFFSET + BOOT_MAP_LIMIT
//!              | kernel image, boot stack    |  physical [0x1000, BOOT_MAP_LIMIT):
//!              | (its guard page: a hole),   |  the image and early memblock
//!              | early allocations           |  allocations
//!  0xC000_1000 +-----------------------------+
//!  0xC000_0000 +-----------------------------+  PAGE_OFFSET (this page unmapped)
//!              | (not mapped)                |
//!  0x0100_0000 +-----------------------------+  BOOT_MAP_LIMIT
//!              | identity map of the same    |  physical [0x1000, BOOT_MAP_LIMIT),
//!              | pages (boot only)           |  needed while EIP is still physical
//!  0x0000_1000 +-----------------------------+
//!              | null page, never mapped     |
//!  0x0000_0000 +-----------------------------+
//! ```
//!
//! # References
//! - Intel SDM Vol. 3A, §4.3 "32-Bit Paging".
//! - Linux: `arch/x86/include/asm/page_32_types.h` (`__PAGE_OFFSET`),
//!   `arch/x86/kernel/head_32.S` (the boot page tables).

/// Value: 12. log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// Value: 4096 (4 KiB). Bytes per page.
pub const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;

/// Value: 0xC000_0000. Physical address `p` of low memory is seen at virtual
/// `p + PAGE_OFFSET` (Linux's `__PAGE_OFFSET` with the default 3G/1G split).
pub const PAGE_OFFSET: u32 = 0xC000_0000;

/// Value: 0x0010_0000 (1 MiB). Physical address the loader places the image at.
pub const KERNEL_PHYS_BASE: u32 = 0x0010_0000;

/// Value: 0xC010_0000. Virtual address the image is linked to run at.
pub const KERNEL_VIRT_BASE: u32 = PAGE_OFFSET + KERNEL_PHYS_BASE;

/// Value: 1024. Entries in a page directory or a page table.
pub const ENTRIES_PER_TABLE: u32 = 1024;

/// Value: 4 MiB. Bytes mapped by one page table (one page-directory entry).
pub const PDE_SPAN: u32 = ENTRIES_PER_TABLE * PAGE_SIZE;

/// Value: 4. Page tables the boot stub uses for its linear mapping.
pub const BOOT_PAGE_TABLES: u32 = 4;

/// Value: 16 MiB. The boot stub maps physical `[0x1000, BOOT_MAP_LIMIT)` at
/// `PAGE_OFFSET` (and at identity): the kernel image (the linker refuses an
/// image whose end lies above it) and the memory memblock may hand out before
/// the final page tables exist (its `current_limit`).
pub const BOOT_MAP_LIMIT: u32 = BOOT_PAGE_TABLES * PDE_SPAN;

/// Value: 0xFF80_0000. Start of the early map window, a 4 MiB virtual range
/// covered by one boot page table into which early code maps any physical page
/// (Linux: `early_memremap()` over the fixmap).
pub const EARLY_MAP_BASE: u32 = 0xFF80_0000;

/// Value: 1024. Pages in the early map window.
pub const EARLY_MAP_PAGES: u32 = ENTRIES_PER_TABLE;

/// Value: 768. Page-directory index of `PAGE_OFFSET`.
pub const PAGE_OFFSET_PDE: u32 = pdx(PAGE_OFFSET);

/// Value: 1022. Page-directory index of the early map window.
pub const EARLY_MAP_PDE: u32 = pdx(EARLY_MAP_BASE);

/// Page-directory index of virtual address `va` (bits 31..22).
///
/// ```text
///  31            22 21            12 11             0
/// +----------------+----------------+----------------+
/// | dir index (10) | table index(10)| offset (12)    |
/// +----------------+----------------+----------------+
/// ```
pub const fn pdx(va: u32) -> u32 {
    va >> 22
}

/// Page-table index of virtual address `va` (bits 21..12).
pub const fn ptx(va: u32) -> u32 {
    (va >> PAGE_SHIFT) & (ENTRIES_PER_TABLE - 1)
}

/// Virtual address of physical `pa` in the kernel's linear map (Linux `__va`).
///
/// Only meaningful for addresses the current page tables map linearly: the
/// boot stub maps `[0x1000, BOOT_MAP_LIMIT)`.
///
/// # Panics
/// If `pa + PAGE_OFFSET` overflows 32 bits (physical memory above 1 GiB has no
/// linear address).
pub const fn phys_to_virt(pa: u32) -> u32 {
    match pa.checked_add(PAGE_OFFSET) {
        Some(va) => va,
        None => panic!("phys_to_virt: physical address has no linear mapping"),
    }
}

/// Physical address of kernel virtual address `va` (Linux `__pa`).
///
/// # Panics
/// If `va` is below `PAGE_OFFSET`.
pub const fn virt_to_phys(va: u32) -> u32 {
    match va.checked_sub(PAGE_OFFSET) {
        Some(pa) => pa,
        None => panic!("virt_to_phys: address below PAGE_OFFSET"),
    }
}

/// Rounds `x` down to a multiple of `align`, a power of two.
pub const fn align_down(x: u64, align: u64) -> u64 {
    assert!(align.is_power_of_two());
    x & !(align - 1)
}

/// Rounds `x` up to a multiple of `align`, a power of two.
///
/// # Panics
/// If `align` is not a power of two or the result overflows `u64`.
pub const fn align_up(x: u64, align: u64) -> u64 {
    assert!(align.is_power_of_two());
    match x.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => panic!("align_up: overflow"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_constants_have_their_documented_values() {
        assert_eq!(PAGE_SIZE, 4096);
        assert_eq!(KERNEL_VIRT_BASE, 0xC010_0000);
        assert_eq!(PDE_SPAN, 4 << 20);
        assert_eq!(BOOT_MAP_LIMIT, 16 << 20);
        assert_eq!(PAGE_OFFSET_PDE, 768);
        assert_eq!(EARLY_MAP_PDE, 1022);
    }

    #[test]
    fn va_split_into_directory_and_table_index() {
        // 0xC010_1234: dir 0x300 (768), table 0x101 (257), offset 0x234.
        assert_eq!(pdx(0xC010_1234), 768);
        assert_eq!(ptx(0xC010_1234), 257);
        assert_eq!(ptx(0xFFFF_F000), 1023);
    }

    #[test]
    fn linear_map_round_trips() {
        assert_eq!(phys_to_virt(0x0010_0000), 0xC010_0000);
        assert_eq!(virt_to_phys(0xC010_0000), 0x0010_0000);
    }

    #[test]
    #[should_panic(expected = "below PAGE_OFFSET")]
    fn virt_to_phys_rejects_user_addresses() {
        virt_to_phys(0x1000);
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_down(0x1fff, 0x1000), 0x1000);
        assert_eq!(align_up(0x1001, 0x1000), 0x2000);
        assert_eq!(align_up(0x1000, 0x1000), 0x1000);
    }
}
