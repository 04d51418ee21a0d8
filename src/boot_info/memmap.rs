//! The memory map, sanitized: sorted, non-overlapping regions, and from them
//! the usable RAM that memblock manages.
//!
//! Where it sits: between the boot information and memblock. A loader's map
//! (from the BIOS's E820 call) may be unsorted, overlap itself, hold
//! zero-length entries, cross 4 GiB, or end past 2^64; this module turns it
//! into a clean description, the way Linux's `e820__update_table()` does.
//! Entries whose `base + length` does not fit in 64 bits are dropped, not
//! clipped, as Linux drops them: such an entry is corrupt, and clipping one
//! at 1 MiB would invent RAM up to 4 GiB (phantom frames the buddy
//! allocator would hand out).
//!
//! The basic meminfo is not used to cut the map: Multiboot says `mem_upper`
//! is *at most* the RAM up to the first hole and "not guaranteed to be this
//! value" (Multiboot 0.6.96 §3.3; old BIOS calls cap it at 15 or 64 MiB), so
//! RAM beyond it is no contradiction. It describes RAM only when there is no
//! map ([`entries_from_meminfo`]).
//!
//!
//! Basic algorithm: collect every entry's start and end as change points and
//! sort them; between two consecutive change points, the region has the type
//! of the entries covering it, and when several overlap, the **largest type
//! value wins** (RAM is type 1, the smallest, so any reserved entry beats it:
//! Linux's rule, comparing all 32 bits). Uncovered stretches are holes.
//! Neighbours of the same type merge.
//!
//! Usable RAM is then every type-1 region, cut at the physical limit of the
//! paging mode ([`PhysLimit`]: 4 GiB without PAE, just under 64 GiB with it;
//! what lies above is counted and logged) and shrunk to whole pages (a
//! partial page cannot be handed out).
//!
//! # References
//! - Multiboot2 spec §3.6.8 "Memory map" (types 1-5).
//! - Linux: `arch/x86/kernel/e820.c` `e820__update_table()` (the sweep),
//!   `e820_print_type()` (type names); `arch/x86/mm/init_32.c`
//!   `highmem_pfn_init()` (`MAX_NONPAE_PFN`: "only 4GB will be used" without
//!   `CONFIG_HIGHMEM64G`); `arch/x86/include/asm/sparsemem.h`
//!   (`MAX_PHYSMEM_BITS` 36 under PAE).
//! - Intel SDM Vol. 3A §4.3 "32-Bit Paging", §4.4 "PAE Paging".

use super::{BasicMemInfo, MAX_MMAP_ENTRIES, MemoryMapEntry};
use crate::addr::PhysAddr;
use crate::mm::layout::{PAGE_SIZE, align_down, align_up};
use crate::mm::page::MAX_PFN_LIMIT;
use core::fmt;

/// Type 1: available RAM.
pub const E820_TYPE_RAM: u32 = 1;
/// Type 2: reserved.
pub const E820_TYPE_RESERVED: u32 = 2;
/// Type 3: ACPI tables, reclaimable after they are read.
pub const E820_TYPE_ACPI: u32 = 3;
/// Type 4: ACPI non-volatile storage, preserved across sleep.
pub const E820_TYPE_NVS: u32 = 4;
/// Type 5: defective RAM.
pub const E820_TYPE_UNUSABLE: u32 = 5;

/// Value: 4 GiB. The first byte 32-bit paging cannot reach.
pub const FOUR_GIB: u64 = 1 << 32;

/// Value: 64 GiB. The first byte PAE paging with 36-bit physical addresses
/// (MAXPHYADDR 36) cannot reach (Linux i386 PAE: `MAX_PHYSMEM_BITS` 36).
pub const SIXTY_FOUR_GIB: u64 = 1 << 36;

/// How far up physical memory the kernel can use RAM, and why: the cut
/// [`usable_ram`] applies, chosen by the paging mode.
///
/// | limit | end | why |
/// |---|---|---|
/// | [`NoPae`](Self::NoPae) | 4 GiB, `0x1_0000_0000` | a 32-bit page-table entry holds a 20-bit frame number (SDM §4.3) |
/// | [`Pae`](Self::Pae) | 64 GiB - 4 KiB, `0xf_ffff_f000` | a 64-bit entry holds 36-bit addresses here (SDM §4.4, MAXPHYADDR 36), and `mem_map`'s 24-bit list links reserve pfn `0xff_ffff` as "no page" ([`MAX_PFN_LIMIT`]) |
///
/// Linux i386 stops at the same places: without `CONFIG_HIGHMEM64G`
/// `highmem_pfn_init()` trims `max_pfn` to `MAX_NONPAE_PFN` (4 GiB, "only
/// 4GB will be used"), and with it `MAX_PHYSMEM_BITS` is 36.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhysLimit {
    /// Two-level 32-bit paging: nothing at or above 4 GiB.
    NoPae,
    /// PAE paging: nothing at or above 64 GiB - 4 KiB.
    Pae,
    /// PAE paging on a CPU whose physical addresses have 32 bits
    /// (MAXPHYADDR 32, `CpuFeatures::phys_bits`): nothing at or above
    /// 4 GiB either, as an address bit above 31 is a reserved-bit fault.
    PaePhys32,
}

impl PhysLimit {
    /// One past the last usable byte: 4 GiB, or 64 GiB - 4 KiB
    /// (`MAX_PFN_LIMIT.phys()`).
    pub const fn end(self) -> PhysAddr {
        match self {
            PhysLimit::NoPae | PhysLimit::PaePhys32 => PhysAddr(FOUR_GIB),
            PhysLimit::Pae => MAX_PFN_LIMIT.phys(),
        }
    }

    /// The end as the log names it: `"4 GiB"`, `"64 GiB - 4 KiB"`.
    pub const fn name(self) -> &'static str {
        match self {
            PhysLimit::NoPae | PhysLimit::PaePhys32 => "4 GiB",
            PhysLimit::Pae => "64 GiB - 4 KiB",
        }
    }

    /// Why RAM at or above [`end`](Self::end) cannot be used, for the log.
    pub const fn reason(self) -> &'static str {
        match self {
            PhysLimit::NoPae => "32-bit paging without PAE cannot address it",
            PhysLimit::PaePhys32 => {
                "this CPU's physical addresses have 32 bits (MAXPHYADDR 32: no CPUID leaf 0x80000008, no PSE-36), so PAE entries cannot hold it either"
            }
            PhysLimit::Pae => {
                "PAE reaches 36-bit physical addresses (MAXPHYADDR 36: 64 GiB), and pfn 0xffffff, \
                 the last frame below 64 GiB, is mem_map's no-page link"
            }
        }
    }
}

const _: () = assert!(PhysLimit::Pae.end().0 == SIXTY_FOUR_GIB - PAGE_SIZE as u64);

/// Name of a memory-map type, as Linux prints it.
pub fn type_name(typ: u32) -> &'static str {
    match typ {
        E820_TYPE_RAM => "usable",
        E820_TYPE_RESERVED => "reserved",
        E820_TYPE_ACPI => "ACPI data",
        E820_TYPE_NVS => "ACPI NVS",
        E820_TYPE_UNUSABLE => "unusable",
        _ => "unknown type",
    }
}

/// A sanitized region: `[base, end)` of type `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: PhysAddr,
    /// One past the last byte (at most `u64::MAX`: entries reaching 2^64
    /// are dropped).
    pub end: PhysAddr,
    /// Memory-map type.
    pub typ: u32,
}

impl fmt::Display for Region {
    /// Linux style: `[mem 0x0000000000100000-0x0000000007fdffff] usable`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[mem {:#018x}-{:#018x}] {}",
            self.base,
            self.end.0 - 1,
            type_name(self.typ)
        )?;
        if type_name(self.typ) == "unknown type" {
            write!(f, " {}", self.typ)?;
        }
        Ok(())
    }
}

/// Most sanitized regions: n entries have at most 2n change points.
pub const MAX_REGIONS: usize = 2 * MAX_MMAP_ENTRIES;

/// The sanitized map and what sanitizing dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SanitizedMap {
    /// Sorted, non-overlapping, same-type neighbours merged.
    pub regions: heapless::Vec<Region, MAX_REGIONS>,
    /// Entries of length 0, dropped.
    pub zero_length: u32,
    /// Entries whose end `base + length` reaches or passes 2^64: dropped.
    pub overflowing: u32,
    /// The first [`MAX_REPORTED`] of them, as received, for the log.
    pub overflowing_entries: heapless::Vec<MemoryMapEntry, MAX_REPORTED>,
}

/// How many dropped entries [`SanitizedMap`] keeps to name in the log.
pub const MAX_REPORTED: usize = 8;

/// Sanitizes `entries` (see the module docs).
pub fn sanitize(entries: &[MemoryMapEntry]) -> SanitizedMap {
    let mut out = SanitizedMap::default();
    // Each entry as [base, end); an end past 2^64 drops the entry.
    let mut spans: heapless::Vec<(u64, u64, u32), MAX_MMAP_ENTRIES> = heapless::Vec::new();
    for e in entries {
        if e.length == 0 {
            out.zero_length += 1;
            continue;
        }
        let Some(end) = e.base.0.checked_add(e.length) else {
            out.overflowing += 1;
            let _ = out.overflowing_entries.push(*e);
            continue;
        };
        // entries.len() <= MAX_MMAP_ENTRIES (the parsers enforce it).
        let _ = spans.push((e.base.0, end, e.typ));
    }
    let mut points: heapless::Vec<u64, MAX_REGIONS> = heapless::Vec::new();
    for &(base, end, _) in &spans {
        let _ = points.push(base);
        let _ = points.push(end);
    }
    points.sort_unstable();
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a == b {
            continue;
        }
        // Largest type among the entries covering [a, b) (Linux's rule).
        let typ = spans
            .iter()
            .filter(|&&(base, end, _)| base <= a && b <= end)
            .map(|&(_, _, t)| t)
            .max();
        let Some(typ) = typ else { continue };
        match out.regions.last_mut() {
            Some(last) if last.end.0 == a && last.typ == typ => last.end = PhysAddr(b),
            _ => {
                let _ = out.regions.push(Region {
                    base: PhysAddr(a),
                    end: PhysAddr(b),
                    typ,
                });
            }
        }
    }
    out
}

/// The RAM a map without a memory map describes: `[0, mem_lower KiB)` and
/// `[1 MiB, 1 MiB + mem_upper KiB)` (Multiboot2 spec §3.6.3), as entries.
pub fn entries_from_meminfo(m: BasicMemInfo) -> [MemoryMapEntry; 2] {
    [
        MemoryMapEntry {
            base: PhysAddr(0),
            length: u64::from(m.mem_lower_kib) * 1024,
            typ: E820_TYPE_RAM,
        },
        MemoryMapEntry {
            base: PhysAddr(1 << 20),
            length: u64::from(m.mem_upper_kib) * 1024,
            typ: E820_TYPE_RAM,
        },
    ]
}

/// Usable RAM: page-aligned `[base, end)` ranges below `limit.end()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableRam {
    /// The cut that was applied.
    pub limit: PhysLimit,
    /// Sorted, non-overlapping, page-aligned, below `limit.end()`.
    pub ranges: heapless::Vec<(PhysAddr, PhysAddr), MAX_REGIONS>,
    /// Bytes of type-1 RAM at or above `limit.end()`, ignored.
    pub above_limit_bytes: u64,
    /// Bytes of type-1 RAM lost to rounding partial pages inwards.
    pub partial_page_bytes: u64,
}

impl UsableRam {
    /// Total usable bytes.
    pub fn total_bytes(&self) -> u64 {
        self.ranges.iter().map(|&(b, e)| e - b).sum()
    }
}

/// The usable RAM in a sanitized map below `limit` (see the module docs).
///
/// Example: RAM `[1 MiB, 3 GiB)` and `[4 GiB, 8 GiB)`: with
/// [`PhysLimit::NoPae`] the ranges are the first one and `above_limit_bytes`
/// is 4 GiB; with [`PhysLimit::Pae`] both ranges are kept and nothing is
/// ignored.
pub fn usable_ram(map: &SanitizedMap, limit: PhysLimit) -> UsableRam {
    let mut out = UsableRam {
        limit,
        ranges: heapless::Vec::new(),
        above_limit_bytes: 0,
        partial_page_bytes: 0,
    };
    let page = u64::from(PAGE_SIZE);
    for r in map.regions.iter().filter(|r| r.typ == E820_TYPE_RAM) {
        let (base, end_all) = (r.base.0, r.end.0);
        let end = end_all.min(limit.end().0);
        out.above_limit_bytes += end_all - base.max(end).min(end_all);
        if base >= end {
            continue;
        }
        let base_aligned = align_up(base, page);
        let end_aligned = align_down(end, page);
        if base_aligned >= end_aligned {
            out.partial_page_bytes += end - base;
            continue;
        }
        out.partial_page_bytes += (base_aligned - base) + (end - end_aligned);
        let _ = out
            .ranges
            .push((PhysAddr(base_aligned), PhysAddr(end_aligned)));
    }
    out
}

#[cfg(test)]
mod tests;
