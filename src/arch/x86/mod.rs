//! i386: serial port, descriptor tables, exceptions, CPU identification,
//! TLB invalidation, the early map window, the live page tables (final
//! paging, kmap), memory probes, deliberate faults and the exit paths.
//!
//! Every file here touches the hardware: inline assembly, port I/O, control
//! or descriptor registers, or the live page tables
//! (`tests/structure/check.sh` checks it, and that no two files here import
//! each other in a circle). Import order, lowest first: `serial`, `exit`,
//! `sync`, `cpu`, `gdt`, `tlb`, `early_map`, `highmem` (the live direct
//! map's extent, `KernelPtMem`), `paging`, `probe`, `idt`, `fault`.
//!
//! Every `unsafe` block in this directory carries a `// SAFETY:` comment;
//! functions that cannot break memory safety whatever their arguments
//! (reading CR2, `invlpg`, reloading the *current* CR3) are safe functions,
//! those that can (loading a new CR3, a GDT) are `unsafe fn` with a
//! `# Safety` section.

pub mod boot_map;
pub mod cpu;
pub mod early_map;
pub mod exit;
pub mod fault;
pub mod gdt;
pub mod highmem;
pub mod idt;
pub mod paging;
pub mod probe;
pub mod serial;
pub mod sync;
pub mod tlb;

unsafe extern "C" {
    // Linker-script and boot-stub symbols; only their addresses are used.
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __boot_start: u8;
    static __boot_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static boot_stack_guard: u8;
    static boot_stack_bottom: u8;
    static boot_stack_top: u8;
    static boot_page_directory: u8;
    // `kernel_entry` in src/main.rs, by its symbol.
    static kernel_entry: u8;
}

/// A named `[start, end)` range of the kernel image, virtual addresses.
#[derive(Clone, Copy, Debug)]
pub struct ImageSection {
    /// Section name as in the linker script.
    pub name: &'static str,
    /// First byte (virtual).
    pub start: VirtAddr,
    /// One past the last byte (virtual).
    pub end: VirtAddr,
    /// Mapped read-only in the final page directory (`.boot`, `.text`,
    /// `.rodata`: code and constants).
    pub read_only: bool,
    /// Holds code (`.boot`, `.text`): executable even with NX.
    pub executable: bool,
}

impl ImageSection {
    /// Physical address of the first byte: `.boot` is linked at its
    /// physical address, the others at physical + `PAGE_OFFSET`.
    pub fn phys_start(&self) -> PhysAddr {
        if self.start.is_kernel() {
            crate::mm::layout::virt_to_phys(self.start)
        } else {
            PhysAddr::from_u32(self.start.0)
        }
    }

    /// The section by physical address, as the page-table builder takes it.
    pub fn phys_section(&self) -> PhysSection {
        let start = self.phys_start();
        PhysSection {
            name: self.name,
            start,
            end: start + u64::from(self.end - self.start),
            read_only: self.read_only,
            executable: self.executable,
        }
    }
}

use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::paging::kernel_space::PhysSection;

macro_rules! sym {
    ($s:ident) => {
        // Taking the address of an extern static never reads it.
        VirtAddr(core::ptr::addr_of!($s) as u32)
    };
}

/// The kernel image as the linker laid it out (see `linker.ld`). `.boot` is
/// linked at its physical address; the others at physical + `PAGE_OFFSET`.
pub fn image_sections() -> [ImageSection; 5] {
    [
        ImageSection {
            name: ".boot",
            start: sym!(__boot_start),
            end: sym!(__boot_end),
            read_only: true,
            executable: true,
        },
        ImageSection {
            name: ".text",
            start: sym!(__text_start),
            end: sym!(__text_end),
            read_only: true,
            executable: true,
        },
        ImageSection {
            name: ".rodata",
            start: sym!(__rodata_start),
            end: sym!(__rodata_end),
            read_only: true,
            executable: false,
        },
        ImageSection {
            name: ".data",
            start: sym!(__data_start),
            end: sym!(__data_end),
            read_only: false,
            executable: false,
        },
        ImageSection {
            name: ".bss",
            start: sym!(__bss_start),
            end: sym!(__bss_end),
            read_only: false,
            executable: false,
        },
    ]
}

/// `[__kernel_start, __kernel_end)`: the whole image, virtual addresses.
pub fn kernel_image() -> (VirtAddr, VirtAddr) {
    (sym!(__kernel_start), sym!(__kernel_end))
}

/// The boot stack: `(guard page, bottom, top)`, virtual addresses. The guard
/// is the page `[guard, bottom)`, left unmapped by `boot/entry.S`.
pub fn boot_stack() -> (VirtAddr, VirtAddr, VirtAddr) {
    (
        sym!(boot_stack_guard),
        sym!(boot_stack_bottom),
        sym!(boot_stack_top),
    )
}

/// Virtual address of the boot page directory (`boot/entry.S`).
pub fn boot_page_directory_va() -> VirtAddr {
    sym!(boot_page_directory)
}

/// Address of `kernel_entry` (src/main.rs), the Rust entry point.
pub fn kernel_entry_va() -> VirtAddr {
    sym!(kernel_entry)
}
