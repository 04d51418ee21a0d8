//! The kernel's virtual address space: one source of truth.
//!
//! Every address-space constant is defined here and only here; the boot stub
//! (`boot/entry.S`) receives them as `global_asm!` operands and `linker.ld`
//! checks its own copy against them at link time.
//!
//! This module is pure arithmetic: it never dereferences anything, so it is
//! compiled and tested on the host as well.
//!
//! # Types
//! The constants are plain `u32` numbers: they are used in `const`
//! contexts (array lengths, other constants), handed to the boot stub as
//! `global_asm!` operands and checked by the linker script, where a wrapper
//! type cannot go. Everything that passes an address between modules at run
//! time is typed: [`phys_to_virt`] and [`virt_to_phys`] convert between
//! [`PhysAddr`] and [`VirtAddr`], [`region_of`] and [`KernelLayout`] take
//! [`VirtAddr`], [`fix_to_virt`] returns one. Wrap a constant where it
//! becomes an address (`VirtAddr(PKMAP_BASE)`).
//!
//! Two page directories use this space one after the other. The boot stub's
//! (`boot/entry.S`) maps only what the first Rust code needs; the final one
//! (`arch::x86::paging::paging_init`, after the buddy allocator exists) maps
//! all of low memory and the areas above it.
//!
//! ```text
//!  virtual       final page directory              boot page directory
//!  0xFFFF_FFFF +-----------------------------+
//!              | last page: hole (FIX_HOLE)  |
//!  0xFFFF_F000 +-----------------------------+  FIXADDR_TOP
//!              | fixmap: KM_SLOTS temporary  |  kmap_local slots, one
//!              | mapping slots               |  frame each, stacked
//!  0xFFFE_F000 +-----------------------------+  FIXADDR_START
//!              | (not mapped)                |
//!  0xFFC0_0000 +-----------------------------+
//!              | early map window, 4 MiB     |  boot information, read-only;
//!              | (removed after boot)        |  last slot: boot-time temporary map
//!  0xFF80_0000 +-----------------------------+  EARLY_MAP_BASE = PKMAP_END
//!              | pkmap: LAST_PKMAP slots     |  kmap() of HighMem pages
//!  0xFF40_0000 +-----------------------------+  PKMAP_BASE
//!              | 2 guard pages               |
//!  0xFF3F_E000 +-----------------------------+  VMALLOC_END
//!              | vmalloc area                |  (vmalloc, vmalloc_demand: mapped on first touch)
//!  0xF880_0000 +-----------------------------+  VMALLOC_START
//!              | 8 MiB gap (VMALLOC_OFFSET)  |  catches overruns of the direct map
//!  0xF800_0000 +-----------------------------+  PAGE_OFFSET + MAXMEM
//!              | direct map: physical        |  lowmem, [0, min(RAM, 896 MiB)):
//!              | [0, max_low_pfn * 4 KiB)    |  text/rodata read-only, the rest
//!              | at PAGE_OFFSET + pa         |  writable; page 0 and the boot
//!              |                             |  stack guard page left out
//!  0xC000_0000 +-----------------------------+  PAGE_OFFSET
//!              | (not mapped)                |  boot only: identity map of
//!              |                             |  [0x1000, BOOT_MAP_LIMIT)
//!  0x0000_1000 +-----------------------------+
//!              | null page, never mapped     |
//!  0x0000_0000 +-----------------------------+
//! ```
//!
//! The boot page directory maps physical `[0x1000, BOOT_MAP_LIMIT)` (16 MiB)
//! twice, at identity (needed while EIP is still physical) and at
//! `PAGE_OFFSET`, plus the early map window.
//!
//! # References
//! - Intel SDM Vol. 3A, §4.3 "32-Bit Paging".
//! - Linux: `arch/x86/include/asm/page_32_types.h` (`__PAGE_OFFSET`,
//!   `MAXMEM`), `arch/x86/include/asm/pgtable_32_areas.h` (`VMALLOC_OFFSET`,
//!   `VMALLOC_START`, `VMALLOC_END`), `arch/x86/include/asm/pgtable_32.h` and
//!   `highmem.h` (`PKMAP_BASE`, `LAST_PKMAP`), `arch/x86/include/asm/fixmap.h`
//!   (`FIXADDR_TOP`, `__fix_to_virt`), `arch/x86/kernel/head_32.S` (the boot
//!   page tables).

use crate::addr::{PhysAddr, VirtAddr};

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

/// Value: 16 MiB. The first 16 MiB of physical memory, which ISA DMA
/// controllers reach with 24-bit addresses: ZONE_DMA (Linux
/// `MAX_DMA_ADDRESS - PAGE_OFFSET`). Equal to [`BOOT_MAP_LIMIT`] by
/// coincidence only.
pub const ISA_DMA_LIMIT: u32 = 16 << 20;

/// Value: 896 MiB (0x3800_0000). The most physical memory the direct map
/// holds (Linux `MAXMEM` with the default split): 1 GiB of kernel space minus
/// 128 MiB for the areas above it. RAM above it is HighMem.
pub const MAXMEM: u32 = 896 << 20;

/// Value: 0xF800_0000. Where the largest possible direct map ends.
pub const DIRECT_MAP_MAX_END: u32 = PAGE_OFFSET + MAXMEM;

/// Value: 8 MiB. Unmapped gap between the direct map and the vmalloc area, so
/// that running off the end of low memory faults (Linux `VMALLOC_OFFSET`).
pub const VMALLOC_OFFSET: u32 = 8 << 20;

/// Value: 0xF880_0000. Start of the vmalloc area.
pub const VMALLOC_START: u32 = DIRECT_MAP_MAX_END + VMALLOC_OFFSET;

/// Value: 0xFF40_0000. Start of the pkmap window (Linux `PKMAP_BASE`): one
/// page table whose entries `kmap()` points at HighMem frames.
pub const PKMAP_BASE: u32 = 0xFF40_0000;

/// Value: 1024. Slots in the pkmap window (Linux `LAST_PKMAP` without PAE).
pub const LAST_PKMAP: u32 = ENTRIES_PER_TABLE;

/// Value: 0xFF80_0000. End of the pkmap window.
pub const PKMAP_END: u32 = PKMAP_BASE + LAST_PKMAP * PAGE_SIZE;

/// Value: 0xFF3F_E000. End of the vmalloc area: two unmapped guard pages below
/// `PKMAP_BASE` (Linux `VMALLOC_END = PKMAP_BASE - 2 * PAGE_SIZE`).
pub const VMALLOC_END: u32 = PKMAP_BASE - 2 * PAGE_SIZE;

/// Value: 0xFFFF_F000. Fixmap slot `idx` is at `FIXADDR_TOP - idx * 4 KiB`
/// (Linux `__fix_to_virt`); slot 0 (`FIX_HOLE`), the last page of the address
/// space, is never mapped.
pub const FIXADDR_TOP: u32 = 0xFFFF_F000;

/// Value: 16. Fixmap slots for `kmap_local` (Linux `KM_MAX_IDX`): the most
/// temporary mappings that can be nested at once.
pub const KM_SLOTS: u32 = 16;

/// Value: 1. Fixmap index of the first `kmap_local` slot (Linux
/// `FIX_KMAP_BEGIN`); the slots are `FIX_KMAP_BEGIN..FIX_KMAP_BEGIN + KM_SLOTS`.
pub const FIX_KMAP_BEGIN: u32 = 1;

/// Value: 0xFFFE_F000. Lowest fixmap address (slot 16).
pub const FIXADDR_START: u32 = fix_to_virt(FIX_KMAP_BEGIN + KM_SLOTS - 1).0;

/// Virtual address of fixmap slot `idx` (Linux `__fix_to_virt`).
pub const fn fix_to_virt(idx: u32) -> VirtAddr {
    VirtAddr(FIXADDR_TOP - idx * PAGE_SIZE)
}

/// Value: 1021. Page-directory index of the pkmap window's page table.
pub const PKMAP_PDE: u32 = pdx(PKMAP_BASE);

/// Value: 1023. Page-directory index of the fixmap's page table.
pub const FIXMAP_PDE: u32 = pdx(FIXADDR_START);

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
pub const fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    if pa.0 > (u32::MAX - PAGE_OFFSET) as u64 {
        panic!("phys_to_virt: physical address has no linear mapping");
    }
    VirtAddr(pa.0 as u32 + PAGE_OFFSET)
}

/// Physical address of kernel virtual address `va` (Linux `__pa`).
///
/// # Panics
/// If `va` is below `PAGE_OFFSET`.
pub const fn virt_to_phys(va: VirtAddr) -> PhysAddr {
    match va.0.checked_sub(PAGE_OFFSET) {
        Some(pa) => PhysAddr(pa as u64),
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

/// A part of the kernel's address space, as fault reports and the layout log
/// name it. [`region_of`] classifies an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// `[0, 4 KiB)`: never mapped, so that null pointers fault.
    NullPage,
    /// `[4 KiB, PAGE_OFFSET)`: the boot stub's identity map while the boot
    /// page directory is in use; nothing in the final one (no user space).
    Low,
    /// A section of the kernel image (`.text`, `.rodata`, ...), inside the
    /// direct map; the name is the section's.
    Kernel(&'static str),
    /// The unmapped page below the boot stack.
    StackGuard,
    /// The direct map of low memory.
    DirectMap,
    /// Between the end of the direct map and `VMALLOC_START`: no memory.
    AboveDirectMap,
    /// `[VMALLOC_START, VMALLOC_END)`.
    Vmalloc,
    /// The guard pages between vmalloc and pkmap.
    VmallocGuard,
    /// `[PKMAP_BASE, PKMAP_END)`: `kmap()` slots.
    Pkmap,
    /// `[EARLY_MAP_BASE, +4 MiB)`: the early map window.
    EarlyMap,
    /// `[FIXADDR_START, FIXADDR_TOP)`: the fixmap slots.
    Fixmap,
    /// Anything else (between the early map and the fixmap, the last page).
    Unmapped,
}

impl Region {
    /// A short name, as used in the log (`"direct map"`, `"vmalloc"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Region::NullPage => "null page",
            Region::Low => "below PAGE_OFFSET",
            Region::Kernel(section) => section,
            Region::StackGuard => "boot stack guard page",
            Region::DirectMap => "direct map",
            Region::AboveDirectMap => "above the direct map",
            Region::Vmalloc => "vmalloc",
            Region::VmallocGuard => "vmalloc guard",
            Region::Pkmap => "pkmap",
            Region::EarlyMap => "early map window",
            Region::Fixmap => "fixmap",
            Region::Unmapped => "unmapped",
        }
    }

    /// What an access there usually means, for a fault report.
    pub fn hint(self) -> &'static str {
        match self {
            Region::NullPage => "a null pointer dereference",
            Region::Low => "no mapping below PAGE_OFFSET once the identity map is gone",
            Region::Kernel(".text" | ".rodata" | ".boot") => "kernel code or constants, read-only",
            Region::Kernel(_) => "kernel data",
            Region::StackGuard => "kernel stack overflow",
            Region::DirectMap => "low memory, mapped linearly at PAGE_OFFSET + physical",
            Region::AboveDirectMap => "past the end of low memory",
            Region::Vmalloc => "virtually contiguous kernel mappings",
            Region::VmallocGuard => "overrun of the vmalloc area",
            Region::Pkmap => "kmap() of a HighMem page",
            Region::EarlyMap => "boot information, mapped early",
            Region::Fixmap => "kmap_local temporary mapping",
            Region::Unmapped => "nothing is ever mapped there",
        }
    }
}

impl core::fmt::Display for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.name(), self.hint())
    }
}

/// One row of the kernel address-space map ([`KERNEL_SPACE_MAP`]): a
/// region's fixed virtual bounds and what lives there, as the final-paging
/// report prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionSpan {
    /// The region ([`region_of`] returns it for every address in the span,
    /// given a full direct map and no kernel section or guard page there).
    pub region: Region,
    /// Short label for the map (`"vmalloc gap"` rather than
    /// [`Region::name`]'s `"above the direct map"`).
    pub label: &'static str,
    /// First virtual address.
    pub start: VirtAddr,
    /// One past the last, as a `u64` number (a span may end at 4 GiB, which
    /// no [`VirtAddr`] holds).
    pub end: u64,
    /// What the region holds.
    pub what: &'static str,
}

/// The kernel's address space from 0 up, one [`RegionSpan`] per region that
/// has fixed bounds (the kernel sections and the stack guard lie inside the
/// direct map; the gaps between the early map and the fixmap are
/// [`Region::Unmapped`] and left out). Ascending, not overlapping.
pub const KERNEL_SPACE_MAP: [RegionSpan; 8] = [
    RegionSpan {
        region: Region::NullPage,
        label: "null page",
        start: VirtAddr(0),
        end: PAGE_SIZE as u64,
        what: "never mapped",
    },
    RegionSpan {
        region: Region::Low,
        label: "low",
        start: VirtAddr(PAGE_SIZE),
        end: PAGE_OFFSET as u64,
        what: "nothing (no identity map, no user space)",
    },
    RegionSpan {
        region: Region::DirectMap,
        label: "direct map",
        start: VirtAddr(PAGE_OFFSET),
        end: DIRECT_MAP_MAX_END as u64,
        what: "lowmem at PAGE_OFFSET + physical",
    },
    RegionSpan {
        region: Region::AboveDirectMap,
        label: "vmalloc gap",
        start: VirtAddr(DIRECT_MAP_MAX_END),
        end: VMALLOC_START as u64,
        what: "VMALLOC_OFFSET, never mapped",
    },
    RegionSpan {
        region: Region::Vmalloc,
        label: "vmalloc",
        start: VirtAddr(VMALLOC_START),
        end: VMALLOC_END as u64,
        what: "vmalloc(), demand-paged areas",
    },
    RegionSpan {
        region: Region::Pkmap,
        label: "pkmap",
        start: VirtAddr(PKMAP_BASE),
        end: PKMAP_END as u64,
        what: "kmap() of HighMem, pinned page tables (1, or 2 under PAE)",
    },
    RegionSpan {
        region: Region::EarlyMap,
        label: "early map",
        start: VirtAddr(EARLY_MAP_BASE),
        end: EARLY_MAP_BASE as u64 + (EARLY_MAP_PAGES * PAGE_SIZE) as u64,
        what: "boot information, read-only, until checked",
    },
    RegionSpan {
        region: Region::Fixmap,
        label: "fixmap",
        start: VirtAddr(FIXADDR_START),
        end: FIXADDR_TOP as u64,
        what: "kmap_local slots, one pinned page table",
    },
];

#[cfg(test)]
mod region_map_tests {
    use super::*;

    /// Every span's first and last address classify as its region, and the
    /// spans ascend without overlapping.
    #[test]
    fn kernel_space_map_agrees_with_region_of() {
        let l = KernelLayout {
            sections: [("none", VirtAddr(0), VirtAddr(0)); 5],
            stack_guard: (VirtAddr(0), VirtAddr(0)),
            direct_map_end: VirtAddr(DIRECT_MAP_MAX_END),
        };
        let mut prev_end = 0;
        for s in KERNEL_SPACE_MAP {
            assert!(u64::from(s.start.0) >= prev_end, "{} overlaps", s.label);
            assert!(u64::from(s.start.0) < s.end, "{} is empty", s.label);
            assert_eq!(region_of(s.start, &l), s.region, "{}", s.label);
            let last = VirtAddr((s.end - 1) as u32);
            assert_eq!(region_of(last, &l), s.region, "{}", s.label);
            prev_end = s.end;
        }
    }
}

/// The run-time facts [`region_of`] needs besides the constants above.
#[derive(Clone, Copy, Debug)]
pub struct KernelLayout {
    /// The kernel image's sections: name and virtual `[start, end)`.
    pub sections: [(&'static str, VirtAddr, VirtAddr); 5],
    /// The boot stack's guard page, virtual `[start, end)`.
    pub stack_guard: (VirtAddr, VirtAddr),
    /// End of the direct map: `PAGE_OFFSET + BOOT_MAP_LIMIT` under the boot
    /// page directory, `PAGE_OFFSET + max_low_pfn * 4 KiB` under the final one.
    pub direct_map_end: VirtAddr,
}

/// Which region virtual address `va` belongs to.
pub fn region_of(va: VirtAddr, l: &KernelLayout) -> Region {
    if va.0 < PAGE_SIZE {
        return Region::NullPage;
    }
    if (l.stack_guard.0..l.stack_guard.1).contains(&va) {
        return Region::StackGuard;
    }
    if let Some(&(name, _, _)) = l.sections.iter().find(|s| (s.1..s.2).contains(&va)) {
        return Region::Kernel(name);
    }
    let va = va.0;
    match va {
        _ if va < PAGE_OFFSET => Region::Low,
        _ if va < l.direct_map_end.0.min(DIRECT_MAP_MAX_END) => Region::DirectMap,
        _ if va < VMALLOC_START => Region::AboveDirectMap,
        _ if va < VMALLOC_END => Region::Vmalloc,
        _ if va < PKMAP_BASE => Region::VmallocGuard,
        _ if va < PKMAP_END => Region::Pkmap,
        _ if va < EARLY_MAP_BASE + EARLY_MAP_PAGES * PAGE_SIZE => Region::EarlyMap,
        _ if (FIXADDR_START..FIXADDR_TOP).contains(&va) => Region::Fixmap,
        _ => Region::Unmapped,
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
        assert_eq!(DIRECT_MAP_MAX_END, 0xF800_0000);
        assert_eq!(VMALLOC_START, 0xF880_0000);
        assert_eq!(VMALLOC_END, 0xFF3F_E000);
        assert_eq!(PKMAP_END, EARLY_MAP_BASE);
        assert_eq!(PKMAP_PDE, 1021);
        assert_eq!(FIXMAP_PDE, 1023);
        assert_eq!(FIXADDR_START, 0xFFFE_F000);
        assert_eq!(fix_to_virt(FIX_KMAP_BEGIN), VirtAddr(0xFFFF_E000));
        assert_eq!(MAXMEM >> PAGE_SHIFT, crate::mm::zone::DEFAULT_MAX_LOW_PFN.0);
    }

    #[test]
    fn every_region_is_named() {
        let l = KernelLayout {
            sections: [
                (".boot", VirtAddr(0x0010_0000), VirtAddr(0x0010_1000)),
                (".text", VirtAddr(0xC010_1000), VirtAddr(0xC011_0000)),
                (".rodata", VirtAddr(0xC011_0000), VirtAddr(0xC012_0000)),
                (".data", VirtAddr(0xC012_0000), VirtAddr(0xC012_1000)),
                (".bss", VirtAddr(0xC012_1000), VirtAddr(0xC013_0000)),
            ],
            stack_guard: (VirtAddr(0xC012_8000), VirtAddr(0xC012_9000)),
            direct_map_end: VirtAddr(0xC800_0000),
        };
        let cases = [
            (0x0000_0010, Region::NullPage),
            (0x0010_0000, Region::Kernel(".boot")),
            (0x0020_0000, Region::Low),
            (0xC000_0000, Region::DirectMap),
            (0xC010_2000, Region::Kernel(".text")),
            (0xC012_8FFC, Region::StackGuard),
            (0xC012_9000, Region::Kernel(".bss")),
            (0xC7FF_FFFF, Region::DirectMap),
            (0xC800_0000, Region::AboveDirectMap),
            (0xF880_0000, Region::Vmalloc),
            (0xFF3F_E000, Region::VmallocGuard),
            (0xFF40_0000, Region::Pkmap),
            (0xFF80_0000, Region::EarlyMap),
            (0xFFC0_0000, Region::Unmapped),
            (0xFFFE_F000, Region::Fixmap),
            (0xFFFF_F000, Region::Unmapped),
        ];
        for (va, region) in cases {
            assert_eq!(region_of(VirtAddr(va), &l), region, "{va:#x}");
            assert!(!region.to_string().is_empty());
        }
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
        assert_eq!(phys_to_virt(PhysAddr(0x0010_0000)), VirtAddr(0xC010_0000));
        assert_eq!(virt_to_phys(VirtAddr(0xC010_0000)), PhysAddr(0x0010_0000));
        assert_eq!(phys_to_virt(PhysAddr(0x3FFF_F000)), VirtAddr(0xFFFF_F000));
    }

    #[test]
    #[should_panic(expected = "no linear mapping")]
    fn phys_to_virt_rejects_addresses_above_1_gib() {
        phys_to_virt(PhysAddr(0x4000_0000));
    }

    #[test]
    #[should_panic(expected = "below PAGE_OFFSET")]
    fn virt_to_phys_rejects_user_addresses() {
        virt_to_phys(VirtAddr(0x1000));
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_down(0x1fff, 0x1000), 0x1000);
        assert_eq!(align_up(0x1001, 0x1000), 0x2000);
        assert_eq!(align_up(0x1000, 0x1000), 0x1000);
    }
}
