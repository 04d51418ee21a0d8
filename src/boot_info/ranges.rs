//! Loader-supplied ranges, checked before the kernel touches them.
//!
//! Where it sits: right after the boot information is parsed and before
//! anything reads or reserves what it points to. The kernel checksums every
//! module and every piece of loader data (to prove that memory
//! initialisation left them intact) and reserves them in memblock, so a
//! range straight from the loader's numbers could make it read device
//! registers, walk gigabytes of memory that is not there, or reserve the
//! kernel's own image. Each range must therefore:
//!
//! - lie entirely in RAM the sanitized memory map reports (type 1): never a
//!   hole, never a reserved or device range (MMIO is never read);
//! - not overlap a section of the kernel image (`.boot`, `.text`, ...,
//!   `.bss`). The gaps between sections are not the kernel's: GRUB places
//!   its Multiboot2 information in the page after the 175 bytes of `.boot`.
//!
//! Sizes are bounded by these rules (a range inside RAM below 4 GiB) and by
//! the parsers' own limits (`MB1_MMAP_MAX`, `ELF_SECTIONS_MAX`,
//! `MULTIBOOT2_INFO_MAX`, `COMMAND_LINE_SIZE`, `MAX_MODULES`).
//!
//! Linux trusts its boot loader more: the i386 boot path reserves the
//! initrd where the loader says (`early_reserve_initrd()`, in older kernels
//! `i386_start_kernel()`) without checking the e820 map there. This kernel
//! is fed forged boot information in its tests, so it checks every range.

use super::BootInfo;
use super::memmap::{E820_TYPE_RAM, SanitizedMap, type_name};
use crate::addr::PhysAddr;
use crate::mm::layout::PAGE_SIZE;
use core::fmt;

/// One range from the loader: `[base, end)` in bytes, physical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderRange {
    /// What it is: "module", "Multiboot2 information", "command line", ...
    pub what: &'static str,
    /// The module's index, for modules.
    pub index: Option<usize>,
    /// First byte.
    pub base: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

impl fmt::Display for LoaderRange {
    /// `module 0 [0x00200000, 0x00300000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)?;
        if let Some(i) = self.index {
            write!(f, " {i}")?;
        }
        write!(f, " [{:#010x}, {:#010x})", self.base, self.end)
    }
}

/// Why a loader range is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Part of the range is not RAM: `[base, end)` of it is a hole in the
    /// map (`typ` None) or a region of type `typ`.
    NotRam {
        /// The range.
        range: LoaderRange,
        /// First byte of the offending part.
        base: PhysAddr,
        /// One past its last byte.
        end: PhysAddr,
        /// The map's type there, or None for a hole.
        typ: Option<u32>,
    },
    /// The range overlaps a section of the kernel image.
    OverlapsKernel {
        /// The range.
        range: LoaderRange,
        /// The section: name and physical `[start, end)`.
        section: KernelSection,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeError::NotRam {
                range,
                base,
                end,
                typ,
            } => {
                write!(f, "{range} is not all RAM: [{base:#010x}, {end:#010x}) is ")?;
                match typ {
                    None => f.write_str("a hole in the memory map")?,
                    Some(t) => write!(f, "{} in the memory map", type_name(t))?,
                }
                f.write_str(" (the kernel never reads such memory)")
            }
            RangeError::OverlapsKernel { range, section } => write!(
                f,
                "{range} overlaps the kernel image: {} [{:#010x}, {:#010x})",
                section.name, section.base, section.end
            ),
        }
    }
}

/// A section of the kernel image, physical `[base, end)` in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSection {
    /// `.boot`, `.text`, `.rodata`, `.data`, `.bss`.
    pub name: &'static str,
    /// First byte.
    pub base: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

/// Every range in `boot` that the kernel reads and reserves: the loader's
/// structures first, then the modules, in the loader's order.
pub fn loader_ranges<'a>(boot: &'a BootInfo<'_>) -> impl Iterator<Item = LoaderRange> + 'a {
    let data = boot.boot_data.iter().map(|d| LoaderRange {
        what: d.what,
        index: None,
        base: d.base,
        end: d.base + u64::from(d.size),
    });
    let modules = boot.modules.iter().enumerate().map(|(i, m)| LoaderRange {
        what: "module",
        index: Some(i),
        base: m.start,
        end: m.end,
    });
    data.chain(modules)
}

/// Checks every loader range in `boot` against the sanitized `map` and the
/// sections of the kernel image; see the module docs.
///
/// # Errors
/// The first range that is refused, and why.
pub fn check(
    boot: &BootInfo<'_>,
    map: &SanitizedMap,
    kernel: &[KernelSection],
) -> Result<(), RangeError> {
    for range in loader_ranges(boot).filter(|r| r.base < r.end) {
        if let Some(&section) = kernel
            .iter()
            .find(|s| range.base < s.end && s.base < range.end)
        {
            return Err(RangeError::OverlapsKernel { range, section });
        }
        check_ram(range, map)?;
    }
    Ok(())
}

/// `range` must be covered by type-1 regions of `map` (sorted, disjoint).
fn check_ram(range: LoaderRange, map: &SanitizedMap) -> Result<(), RangeError> {
    let mut at = range.base;
    for r in &map.regions {
        if r.end <= at {
            continue;
        }
        if at >= range.end {
            break;
        }
        if r.base > at {
            return Err(RangeError::NotRam {
                range,
                base: at,
                end: r.base.min(range.end),
                typ: None,
            });
        }
        if r.typ != E820_TYPE_RAM {
            return Err(RangeError::NotRam {
                range,
                base: at,
                end: r.end.min(range.end),
                typ: Some(r.typ),
            });
        }
        at = r.end;
    }
    if at < range.end {
        return Err(RangeError::NotRam {
            range,
            base: at,
            end: range.end,
            typ: None,
        });
    }
    Ok(())
}

/// Most pages of one range that the boot checksums read: 16 MiB. A larger
/// module is sampled (every `step`-th page), so checksumming stays bounded
/// in time whatever the loader passes (about a second under emulation).
pub const CHECKSUM_MAX_PAGES: u64 = 4096;

/// The sampling step for a range of `len` bytes starting at `base`: 1
/// (every page) up to [`CHECKSUM_MAX_PAGES`] pages, else the smallest step
/// that reads at most that many.
pub fn checksum_step(base: PhysAddr, len: u64) -> u64 {
    let page = u64::from(PAGE_SIZE);
    let pages = (u64::from(base.page_offset()) + len).div_ceil(page);
    pages.div_ceil(CHECKSUM_MAX_PAGES).max(1)
}

#[cfg(test)]
mod tests {
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
}
