//! Host tests of `boot_info::ranges`.

use super::*;
use crate::boot_info::memmap::sanitize;
use crate::boot_info::tests::Mb2Builder;
use crate::boot_info::{MemoryMapEntry, mb2};

/// QEMU's map at 128 MiB, plus the e1000's registers as a reserved
/// range (as some firmware lists MMIO).
fn qemu_128m() -> SanitizedMap {
    let e = |base, length, typ| MemoryMapEntry {
        base: PhysAddr(base),
        length,
        typ,
    };
    sanitize(&[
        e(0, 0x9_fc00, 1),
        e(0x9_fc00, 0x400, 2),
        e(0xf_0000, 0x1_0000, 2),
        e(0x10_0000, 0x7ee_0000, 1),
        e(0x7fe_0000, 0x2_0000, 2),
        e(0xfebc_0000, 0x2_0000, 2),
        e(0xfffc_0000, 0x4_0000, 2),
    ])
}

/// The image as linked: `.boot` is 175 bytes, the rest starts a page on.
const KERNEL: [KernelSection; 2] = [
    KernelSection {
        name: ".boot",
        base: PhysAddr(0x10_0000),
        end: PhysAddr(0x10_00af),
    },
    KernelSection {
        name: ".text",
        base: PhysAddr(0x10_1000),
        end: PhysAddr(0x16_c000),
    },
];

fn with_module(start: u32, end: u32) -> Result<(), RangeError> {
    let mbi = Mb2Builder::new()
        .meminfo(639, 130_048)
        .module(start, end, "m")
        .build();
    // The information itself at 0x20000 (low RAM), as GRUB might put it.
    let info = mb2::parse(PhysAddr(0x2_0000), mbi.bytes()).unwrap();
    check(&info, &qemu_128m(), &KERNEL)
}

#[test]
fn checksums_read_at_most_4096_pages_of_a_range() {
    assert_eq!(checksum_step(PhysAddr(0), 0), 1);
    assert_eq!(checksum_step(PhysAddr(0), 16 << 20), 1);
    assert_eq!(checksum_step(PhysAddr(0), (16 << 20) + 1), 2);
    // Unaligned: 4096 pages plus a byte on each side span 4098 pages.
    assert_eq!(checksum_step(PhysAddr(0xfff), (16 << 20) - 0xfff + 1), 2);
    for len in [1u64 << 30, 3 << 30, 0xefe0_0000] {
        let step = checksum_step(PhysAddr(0), len);
        assert!(
            len.div_ceil(4096).div_ceil(step) <= CHECKSUM_MAX_PAGES,
            "{len:#x}"
        );
        assert!(
            len.div_ceil(4096).div_ceil(step - 1) > CHECKSUM_MAX_PAGES,
            "{len:#x}"
        );
    }
}

#[test]
fn a_module_in_ram_passes() {
    assert_eq!(with_module(0x20_0000, 0x20_1000), Ok(()));
    // Touching the kernel's end and RAM's end exactly is fine.
    assert_eq!(with_module(0x16_c000, 0x7fe_0000), Ok(()));
    // An empty module reads nothing.
    assert_eq!(with_module(0xfebc_0000, 0xfebc_0000), Ok(()));
}

#[test]
fn a_module_past_the_end_of_ram_is_refused_naming_the_hole() {
    // Issue 13: [2 MiB, 0xf0000000) took minutes of checksumming.
    let err = with_module(0x20_0000, 0xf000_0000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "module 0 [0x00200000, 0xf0000000) is not all RAM: [0x07fe0000, 0x08000000) is \
         reserved in the memory map (the kernel never reads such memory)"
    );
    let err = with_module(0x800_0000, 0x800_1000).unwrap_err();
    assert!(matches!(
        err,
        RangeError::NotRam {
            typ: None,
            base: PhysAddr(0x800_0000),
            ..
        }
    ));
}

#[test]
fn a_module_over_device_registers_is_refused() {
    // Issue 13: the e1000's registers at 0xfebc0000 were read.
    let err = with_module(0xfebc_0000, 0xfebc_1000).unwrap_err();
    assert_eq!(
        err,
        RangeError::NotRam {
            range: LoaderRange {
                what: "module",
                index: Some(0),
                base: PhysAddr(0xfebc_0000),
                end: PhysAddr(0xfebc_1000)
            },
            base: PhysAddr(0xfebc_0000),
            end: PhysAddr(0xfebc_1000),
            typ: Some(2)
        }
    );
}

#[test]
fn a_module_overlapping_the_kernel_image_is_refused_naming_both() {
    // Issue 13: this was reported as a kernel stack overflow.
    let err = with_module(0x15_0000, 0x20_0000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "module 0 [0x00150000, 0x00200000) overlaps the kernel image: .text [0x00101000, 0x0016c000)"
    );
    assert!(with_module(0x8_0000, 0x10_0001).is_err());
    // Between .boot and .text is not the kernel's (GRUB puts its
    // information there).
    assert_eq!(with_module(0x10_00b0, 0x10_1000), Ok(()));
}

#[test]
fn the_loaders_own_structures_are_checked_too() {
    let mbi = Mb2Builder::new().meminfo(639, 130_048).build();
    // Information placed in the BIOS area at 0xf0000 (reserved).
    let info = mb2::parse(PhysAddr(0xf_0000), mbi.bytes()).unwrap();
    let err = check(&info, &qemu_128m(), &KERNEL).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Multiboot2 information [0x000f0000, 0x000f0020) is not all RAM"),
        "{err}"
    );
}
