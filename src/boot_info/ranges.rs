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
mod tests;
