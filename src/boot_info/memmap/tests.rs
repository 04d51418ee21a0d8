//! Host tests of `boot_info::memmap`.

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
        usable_ram(&sanitize(&[e(0, 0x10000, 0x101)]), PhysLimit::NoPae)
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
    let ram = usable_ram(&map, PhysLimit::NoPae);
    assert!(ram.ranges.is_empty());
    assert_eq!(ram.above_limit_bytes, 0);
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
    let ram = usable_ram(&map, PhysLimit::NoPae);
    assert_eq!(
        ram.total_bytes(),
        usable_ram(&sanitize(&honest), PhysLimit::NoPae).total_bytes()
    );
    assert_eq!(ram.above_limit_bytes, 0);
    // An end of exactly 2^64 does not fit either.
    let map = sanitize(&[e(1 << 63, 1 << 63, 1)]);
    assert_eq!((map.overflowing, map.regions.len()), (1, 0));
}

#[test]
fn ram_above_4_gib_is_ignored_and_counted() {
    // QEMU -m 4G: 3 GiB below the PCI hole, 1 GiB from 4 GiB.
    let map = sanitize(&[e(0x10_0000, 0xbff0_0000, 1), e(FOUR_GIB, 0x4000_0000, 1)]);
    let ram = usable_ram(&map, PhysLimit::NoPae);
    assert_eq!(raw(&ram), [(0x10_0000, 0xc000_0000)]);
    assert_eq!(ram.above_limit_bytes, 0x4000_0000);
    // An entry crossing 4 GiB is cut there.
    let ram = usable_ram(&sanitize(&[e(0xffff_0000, 0x2_0000, 1)]), PhysLimit::NoPae);
    assert_eq!(raw(&ram), [(0xffff_0000, FOUR_GIB)]);
    assert_eq!(ram.above_limit_bytes, 0x1_0000);
}

#[test]
fn under_pae_ram_above_4_gib_is_usable() {
    // QEMU -m 8G: 3 GiB below the PCI hole, 5 GiB from 4 GiB.
    let map = sanitize(&[
        e(0, 0x9fc00, 1),
        e(0x10_0000, 0xbff0_0000, 1),
        e(FOUR_GIB, 0x1_4000_0000, 1),
    ]);
    let ram = usable_ram(&map, PhysLimit::Pae);
    assert_eq!(
        raw(&ram),
        [
            (0, 0x9f000),
            (0x10_0000, 0xc000_0000),
            (FOUR_GIB, 0x2_4000_0000)
        ]
    );
    assert_eq!((ram.limit, ram.above_limit_bytes), (PhysLimit::Pae, 0));
    assert_eq!(ram.total_bytes(), 0x9f000 + 0xbff0_0000 + 0x1_4000_0000);
    // The same map without PAE: the 5 GiB are counted, not used.
    let ram = usable_ram(&map, PhysLimit::NoPae);
    assert_eq!(ram.ranges.last().unwrap().1, PhysAddr(0xc000_0000));
    assert_eq!(ram.above_limit_bytes, 0x1_4000_0000);
}

#[test]
fn under_pae_ram_is_cut_4_kib_below_64_gib() {
    // QEMU -m 64G: 3 GiB low, 61 GiB from 4 GiB, so RAM ends at 65 GiB.
    let map = sanitize(&[e(0x10_0000, 0xbff0_0000, 1), e(FOUR_GIB, 61 << 30, 1)]);
    let ram = usable_ram(&map, PhysLimit::Pae);
    assert_eq!(PhysLimit::Pae.end(), PhysAddr(0xf_ffff_f000));
    assert_eq!(
        raw(&ram),
        [
            (0x10_0000, 0xc000_0000),
            (FOUR_GIB, SIXTY_FOUR_GIB - 0x1000)
        ]
    );
    assert_eq!(ram.above_limit_bytes, (1 << 30) + 0x1000);
    // The last usable frame is the largest pfn a descriptor link can name.
    let last = PhysAddr(ram.ranges.last().unwrap().1.0 - 1).pfn();
    assert_eq!(last.0, crate::mm::page::NIL_PFN - 1);
    // RAM entirely above the cut is only counted.
    let ram = usable_ram(&sanitize(&[e(SIXTY_FOUR_GIB, 1 << 30, 1)]), PhysLimit::Pae);
    assert_eq!((ram.ranges.len(), ram.above_limit_bytes), (0, 1 << 30));
}

#[test]
fn limits_name_their_end_and_reason() {
    assert_eq!(PhysLimit::NoPae.end(), PhysAddr(FOUR_GIB));
    assert_eq!(PhysLimit::NoPae.name(), "4 GiB");
    // Quoted by docs/02-boot-information.md and the mem-4g boot test.
    assert_eq!(
        PhysLimit::NoPae.reason(),
        "32-bit paging without PAE cannot address it"
    );
    assert_eq!(PhysLimit::Pae.name(), "64 GiB - 4 KiB");
    assert!(PhysLimit::Pae.reason().starts_with("PAE reaches 36-bit"));
}

#[test]
fn only_whole_pages_are_usable() {
    // [0x800, 0x3800): pages 1 and 2 only; a sub-page entry gives nothing.
    let ram = usable_ram(
        &sanitize(&[e(0x800, 0x3000, 1), e(0x10_0100, 0x200, 1)]),
        PhysLimit::NoPae,
    );
    assert_eq!(raw(&ram), [(0x1000, 0x3000)]);
    assert_eq!(ram.partial_page_bytes, 0x800 + 0x800 + 0x200);
    assert_eq!(ram.total_bytes(), 0x2000);
}

#[test]
fn an_unaligned_reserved_hole_costs_the_pages_it_touches() {
    // GRUB cutmem 0x800800-0x800c00 inside RAM [1 MiB, 16 MiB).
    let map = sanitize(&[e(0x10_0000, 0xf0_0000, 1), e(0x80_0800, 0x400, 2)]);
    let ram = usable_ram(&map, PhysLimit::NoPae);
    assert_eq!(raw(&ram), [(0x10_0000, 0x80_0000), (0x80_1000, 0x100_0000)]);
}

#[test]
fn meminfo_fallback_describes_lower_and_upper_memory() {
    let entries = entries_from_meminfo(BasicMemInfo {
        mem_lower_kib: 639,
        mem_upper_kib: 129_920,
    });
    let ram = usable_ram(&sanitize(&entries), PhysLimit::NoPae);
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
