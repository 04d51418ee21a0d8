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
//! Usable RAM is then every type-1 region, cut at 4 GiB (no PAE: the kernel
//! cannot address more; what lies above is counted and logged) and shrunk to
//! whole pages (a partial page cannot be handed out).
//!
//! # References
//! - Multiboot2 spec §3.6.8 "Memory map" (types 1-5).
//! - Linux: `arch/x86/kernel/e820.c` `e820__update_table()` (the sweep),
//!   `e820_print_type()` (type names).

use super::{BasicMemInfo, MAX_MMAP_ENTRIES, MemoryMapEntry};
use crate::addr::PhysAddr;
use crate::mm::layout::{PAGE_SIZE, align_down, align_up};
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

/// Usable RAM: page-aligned `[base, end)` ranges below 4 GiB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsableRam {
    /// Sorted, non-overlapping, page-aligned, below 4 GiB.
    pub ranges: heapless::Vec<(PhysAddr, PhysAddr), MAX_REGIONS>,
    /// Bytes of type-1 RAM at or above 4 GiB, ignored (no PAE).
    pub above_4g_bytes: u64,
    /// Bytes of type-1 RAM lost to rounding partial pages inwards.
    pub partial_page_bytes: u64,
}

impl UsableRam {
    /// Total usable bytes.
    pub fn total_bytes(&self) -> u64 {
        self.ranges.iter().map(|&(b, e)| e - b).sum()
    }
}

/// The usable RAM in a sanitized map (see the module docs).
pub fn usable_ram(map: &SanitizedMap) -> UsableRam {
    let mut out = UsableRam::default();
    let page = u64::from(PAGE_SIZE);
    for r in map.regions.iter().filter(|r| r.typ == E820_TYPE_RAM) {
        let (base, end_all) = (r.base.0, r.end.0);
        let end = end_all.min(FOUR_GIB);
        out.above_4g_bytes += end_all - base.max(end).min(end_all);
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
mod tests {
    use super::*;

    fn e(base: u64, length: u64, typ: u32) -> MemoryMapEntry {
        MemoryMapEntry {
            base: PhysAddr(base),
            length,
            typ,
        }
    }

    fn r(base: u64, end: u64, typ: u32) -> Region {
        Region {
            base: PhysAddr(base),
            end: PhysAddr(end),
            typ,
        }
    }

    /// Usable ranges as raw `(base, end)` numbers, to compare with literals.
    fn raw(ram: &UsableRam) -> Vec<(u64, u64)> {
        ram.ranges.iter().map(|&(b, e)| (b.0, e.0)).collect()
    }

    #[test]
    fn a_clean_qemu_map_is_kept_as_is() {
        let map = sanitize(&[
            e(0, 0x9fc00, 1),
            e(0x9fc00, 0x400, 2),
            e(0xf0000, 0x10000, 2),
            e(0x10_0000, 0x7ee_0000, 1),
            e(0x7fe_0000, 0x2_0000, 2),
        ]);
        assert_eq!(
            map.regions.as_slice(),
            [
                r(0, 0x9fc00, 1),
                r(0x9fc00, 0xa0000, 2),
                r(0xf0000, 0x10_0000, 2),
                r(0x10_0000, 0x7fe_0000, 1),
                r(0x7fe_0000, 0x800_0000, 2),
            ]
        );
    }

    #[test]
    fn unsorted_entries_are_sorted_and_neighbours_merge() {
        let map = sanitize(&[e(0x20_0000, 0x10_0000, 1), e(0x10_0000, 0x10_0000, 1)]);
        assert_eq!(map.regions.as_slice(), [r(0x10_0000, 0x30_0000, 1)]);
    }

    #[test]
    fn reserved_wins_over_ram_where_they_overlap() {
        // RAM [1 MiB, 4 MiB) with a reserved hole [2 MiB, 2 MiB + 4 KiB).
        let map = sanitize(&[e(0x10_0000, 0x30_0000, 1), e(0x20_0000, 0x1000, 2)]);
        assert_eq!(
            map.regions.as_slice(),
            [
                r(0x10_0000, 0x20_0000, 1),
                r(0x20_0000, 0x20_1000, 2),
                r(0x20_1000, 0x40_0000, 1),
            ]
        );
    }

    #[test]
    fn the_largest_type_wins_comparing_all_32_bits() {
        let map = sanitize(&[e(0, 0x2000, 3), e(0x1000, 0x2000, 0x1_0001 << 8)]);
        assert_eq!(
            map.regions.as_slice(),
            [r(0, 0x1000, 3), r(0x1000, 0x3000, 0x100_0100)]
        );
        // Type 0x101 is not type 1: not usable.
        assert!(
            usable_ram(&sanitize(&[e(0, 0x10000, 0x101)]))
                .ranges
                .is_empty()
        );
    }

    #[test]
    fn duplicates_and_zero_length_entries() {
        let map = sanitize(&[e(0x1000, 0x1000, 1), e(0x1000, 0x1000, 1), e(0x5000, 0, 1)]);
        assert_eq!(map.regions.as_slice(), [r(0x1000, 0x2000, 1)]);
        assert_eq!(map.zero_length, 1);
    }

    #[test]
    fn an_end_past_2_pow_64_drops_the_entry() {
        let map = sanitize(&[e(0xFFFF_FFFF_0000_0000, u64::MAX, 1)]);
        assert_eq!(map.overflowing, 1);
        assert!(map.regions.is_empty());
        let ram = usable_ram(&map);
        assert!(ram.ranges.is_empty());
        assert_eq!(ram.above_4g_bytes, 0);
    }

    #[test]
    fn a_wrapping_entry_at_1_mib_adds_no_phantom_ram() {
        // Issue 13: on a 128 MiB guest, a usable entry at 1 MiB whose end
        // wraps past 2^64 used to be clipped to 2^64 and turned into RAM up
        // to 4 GiB. It is dropped; the honest entries stay as they were.
        let honest = [
            e(0, 0x9_fc00, 1),
            e(0x10_0000, 0x7ee_0000, 1),
            e(0xfffc_0000, 0x4_0000, 2),
        ];
        let wrapping = e(0x10_0000, u64::MAX - 0x8_0000, 1);
        let mut with = honest.to_vec();
        with.insert(1, wrapping);
        let map = sanitize(&with);
        assert_eq!(map.overflowing, 1);
        assert_eq!(map.overflowing_entries.as_slice(), [wrapping]);
        assert_eq!(map.regions, sanitize(&honest).regions);
        let ram = usable_ram(&map);
        assert_eq!(
            ram.total_bytes(),
            usable_ram(&sanitize(&honest)).total_bytes()
        );
        assert_eq!(ram.above_4g_bytes, 0);
        // An end of exactly 2^64 does not fit either.
        let map = sanitize(&[e(1 << 63, 1 << 63, 1)]);
        assert_eq!((map.overflowing, map.regions.len()), (1, 0));
    }

    #[test]
    fn ram_above_4_gib_is_ignored_and_counted() {
        // QEMU -m 4G: 3 GiB below the PCI hole, 1 GiB from 4 GiB.
        let map = sanitize(&[e(0x10_0000, 0xbff0_0000, 1), e(FOUR_GIB, 0x4000_0000, 1)]);
        let ram = usable_ram(&map);
        assert_eq!(raw(&ram), [(0x10_0000, 0xc000_0000)]);
        assert_eq!(ram.above_4g_bytes, 0x4000_0000);
        // An entry crossing 4 GiB is cut there.
        let ram = usable_ram(&sanitize(&[e(0xffff_0000, 0x2_0000, 1)]));
        assert_eq!(raw(&ram), [(0xffff_0000, FOUR_GIB)]);
        assert_eq!(ram.above_4g_bytes, 0x1_0000);
    }

    #[test]
    fn only_whole_pages_are_usable() {
        // [0x800, 0x3800): pages 1 and 2 only; a sub-page entry gives nothing.
        let ram = usable_ram(&sanitize(&[e(0x800, 0x3000, 1), e(0x10_0100, 0x200, 1)]));
        assert_eq!(raw(&ram), [(0x1000, 0x3000)]);
        assert_eq!(ram.partial_page_bytes, 0x800 + 0x800 + 0x200);
        assert_eq!(ram.total_bytes(), 0x2000);
    }

    #[test]
    fn an_unaligned_reserved_hole_costs_the_pages_it_touches() {
        // GRUB cutmem 0x800800-0x800c00 inside RAM [1 MiB, 16 MiB).
        let map = sanitize(&[e(0x10_0000, 0xf0_0000, 1), e(0x80_0800, 0x400, 2)]);
        let ram = usable_ram(&map);
        assert_eq!(raw(&ram), [(0x10_0000, 0x80_0000), (0x80_1000, 0x100_0000)]);
    }

    #[test]
    fn meminfo_fallback_describes_lower_and_upper_memory() {
        let entries = entries_from_meminfo(BasicMemInfo {
            mem_lower_kib: 639,
            mem_upper_kib: 129_920,
        });
        let ram = usable_ram(&sanitize(&entries));
        assert_eq!(
            raw(&ram),
            [(0, 0x9f000), (0x10_0000, 0x10_0000 + 129_920 * 1024)]
        );
    }

    #[test]
    fn regions_print_like_linux() {
        assert_eq!(
            r(0x10_0000, 0x7fe_0000, 1).to_string(),
            "[mem 0x0000000000100000-0x0000000007fdffff] usable"
        );
        assert_eq!(
            r(0, 0x1000, 77).to_string(),
            "[mem 0x0000000000000000-0x0000000000000fff] unknown type 77"
        );
    }
}
