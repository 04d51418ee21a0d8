//! Host tests of `mm::setup`.

use super::*;
use crate::boot_info::mb2;
use crate::boot_info::tests::Mb2Builder;
use crate::test_support::phys::{self, FakePhys};

/// The 8-slot memblock every test starts from (small, so that adding
/// many ranges grows its arrays).
fn memblock() -> Memblock {
    phys::memblock(8)
}

const IMAGE: KernelImage = KernelImage {
    start: PhysAddr(0x10_0000),
    end: PhysAddr(0x13_0000),
};

#[test]
fn all_ram_reserved_is_reported_before_anything_allocates() {
    // Issue 13: RAM only from 1 MiB to the end of the kernel image (and
    // low memory, reserved whole): nothing is free.
    let mbi = Mb2Builder::new()
        .mmap(24, &[(0, 0x9fc00, 1), (0x10_0000, 0x3_0000, 1)])
        .build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    memblock_setup(
        &info,
        None,
        PhysLimit::NoPae,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    let err = check_free_memory(&mb).unwrap_err();
    assert_eq!((err.free, err.needed), (0, 0x1000));
    assert!(
        err.to_string()
            .starts_with("no free memory after reservations: 0 KiB free"),
        "{err}"
    );
    // One page more than the image: mem_map (0x131 frames * 8 bytes)
    // fits in it.
    let mbi = Mb2Builder::new()
        .mmap(24, &[(0, 0x9fc00, 1), (0x10_0000, 0x3_1000, 1)])
        .build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    memblock_setup(
        &info,
        None,
        PhysLimit::NoPae,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    assert_eq!(check_free_memory(&mb), Ok(()));
}

#[test]
fn without_a_memory_map_basic_meminfo_describes_ram() {
    let mbi = Mb2Builder::new().meminfo(639, 7 * 1024).build();
    let info = mb2::parse(PhysAddr(0x2000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    let setup = memblock_setup(
        &info,
        None,
        PhysLimit::NoPae,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    assert_eq!(
        setup.usable.ranges.as_slice(),
        [
            (PhysAddr(0), PhysAddr(0x9f000)),
            (PhysAddr(0x10_0000), PhysAddr(0x80_0000))
        ]
    );
    assert_eq!(mb.memory.total_size(), 0x9f000 + 0x70_0000);
}

#[test]
fn reservations_cover_low_memory_image_info_and_modules() {
    let mbi = Mb2Builder::new()
        .mmap(24, &[(0, 0x9fc00, 1), (0x10_0000, 0x700_0000, 1)])
        .module(0x40_0000, 0x40_0010, "m")
        .build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    memblock_setup(
        &info,
        None,
        PhysLimit::NoPae,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    let reserved: Vec<_> = mb
        .reserved
        .regions()
        .iter()
        .map(|r| (r.base.0, r.end().0))
        .collect();
    // [0, 1 MiB) absorbs the boot information at 0x3000 and merges with
    // the image that starts at 1 MiB.
    assert_eq!(reserved, [(0, 0x13_0000), (0x40_0000, 0x40_0010)]);
}

#[test]
fn arrays_grown_while_adding_ram_never_land_on_a_module() {
    // 20 RAM ranges (more than the 8-slot test arrays hold) and a module
    // at the very top of the 8th: when the 9th range is added the array
    // grows, and a top-down search for room looks there first.
    let ranges: Vec<_> = (0..20u64)
        .map(|i| (0x100_0000 + i * 0x10_0000, 0x8_0000, 1))
        .collect();
    let top = 0x100_0000 + 7 * 0x10_0000 + 0x8_0000;
    let mbi = Mb2Builder::new()
        .mmap(24, &ranges)
        .module((top - 0x4000) as u32, top as u32, "m")
        .build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    let mut mem = FakePhys::empty();
    memblock_setup(&info, None, PhysLimit::NoPae, IMAGE, &mut mb, &mut mem).unwrap();
    assert_eq!(mb.memory.cnt(), 20);
    assert!(mb.memory.storage_pa().is_some(), "the memory array grew");
    assert!(!mem.written().is_empty(), "memblock wrote nothing");
    for (start, end) in mem.written() {
        assert!(
            end.0 <= top - 0x4000 || start.0 >= top,
            "[{start:#x}, {end:#x}) written over the module"
        );
    }
    assert!(mb.is_region_reserved(PhysAddr(top - 0x4000), 0x4000));
}

#[test]
fn a_refused_region_array_fails_the_setup() {
    // Nine RAM ranges overflow the 8-slot memory array; the fake
    // memory refuses the bigger one, so the add fails and says why.
    let ranges: Vec<_> = (0..9u64)
        .map(|i| (0x100_0000 + i * 0x10_0000, 0x8_0000, 1))
        .collect();
    let mbi = Mb2Builder::new().mmap(24, &ranges).build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    let mut mem = FakePhys::empty().refusing_arrays();
    assert_eq!(
        memblock_setup(&info, None, PhysLimit::NoPae, IMAGE, &mut mb, &mut mem),
        Err(MemblockError::ArrayFull { name: "memory" })
    );
    assert_eq!(mem.arrays().len(), 1);
    assert_eq!(mb.memory.cnt(), 8);
    mb.check().unwrap();
}

#[test]
fn mem_limit_below_the_image_still_reserves_it() {
    let mbi = Mb2Builder::new()
        .mmap(24, &[(0x10_0000, 0x700_0000, 1)])
        .build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    let setup = memblock_setup(
        &info,
        Some(0x20_0000),
        PhysLimit::NoPae,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    assert_eq!(mb.memory.total_size(), 0x10_0000);
    assert_eq!(setup.mem_limit_removed, 0x700_0000 - 0x10_0000);
    assert!(mb.is_region_reserved(IMAGE.start, IMAGE.end - IMAGE.start));
}

// RAM above 4 GiB: the physical limit, mem=, the mem_map rule, and the
// zones of the hand-off.

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// memblock_setup on a Multiboot2 map of `(base, length, type)` entries.
fn setup_map(
    entries: &[(u64, u64, u32)],
    mem_limit: Option<u64>,
    limit: PhysLimit,
) -> (Memblock, MemorySetup) {
    let mbi = Mb2Builder::new().mmap(24, entries).build();
    let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
    let mut mb = memblock();
    let setup = memblock_setup(
        &info,
        mem_limit,
        limit,
        IMAGE,
        &mut mb,
        &mut FakePhys::empty(),
    )
    .unwrap();
    mb.check().unwrap();
    (mb, setup)
}

fn memory(mb: &Memblock) -> Vec<(u64, u64)> {
    mb.memory
        .regions()
        .iter()
        .map(|r| (r.base.0, r.end().0))
        .collect()
}

/// QEMU -m 8G: 3 GiB below the PCI hole, 5 GiB from 4 GiB.
const QEMU_8G: [(u64, u64, u32); 3] = [
    (0, 0x9fc00, 1),
    (0x10_0000, 3 * GIB - 0x10_0000, 1),
    (4 * GIB, 5 * GIB, 1),
];

/// QEMU -m 64G: 61 GiB from 4 GiB, so RAM ends at 65 GiB.
const QEMU_64G: [(u64, u64, u32); 3] = [
    (0, 0x9fc00, 1),
    (0x10_0000, 3 * GIB - 0x10_0000, 1),
    (4 * GIB, 61 * GIB, 1),
];

#[test]
fn without_pae_ram_above_4_gib_is_ignored_with_todays_line() {
    let (mb, setup) = setup_map(&QEMU_8G, None, PhysLimit::NoPae);
    assert_eq!(memory(&mb), [(0, 0x9f000), (0x10_0000, 3 * GIB)]);
    assert_eq!(setup.usable.above_limit_bytes, 5 * GIB);
    // The exact text docs/02-boot-information.md and the mem-4g boot test
    // quote (for their 1 GiB).
    assert_eq!(
        IgnoredLine(&setup.usable).to_string(),
        "5120 MiB of RAM at or above 4 GiB ignored: 32-bit paging without PAE cannot address it"
    );
    assert_eq!(setup.mem_map.max_pfn, Pfn(0xc_0000));
    assert_eq!(setup.mem_map.removed_bytes, 0);
}

#[test]
fn under_pae_ram_above_4_gib_reaches_memblock() {
    let (mb, setup) = setup_map(&QEMU_8G, None, PhysLimit::Pae);
    assert_eq!(
        memory(&mb),
        [(0, 0x9f000), (0x10_0000, 3 * GIB), (4 * GIB, 9 * GIB)]
    );
    assert_eq!(setup.usable.above_limit_bytes, 0);
    assert_eq!(mb.memory.total_size(), 8 * GIB - 0x10_0000 + 0x9f000);
    // mem_map for pfns [0, 9 GiB): 0x24_0000 frames * 8 bytes = 18 MiB.
    let m = setup.mem_map;
    assert_eq!(
        (m.wanted_max_pfn, m.max_pfn),
        (Pfn(0x24_0000), Pfn(0x24_0000))
    );
    assert_eq!(m.bytes(), 18 * MIB);
    // Low memory: the RAM below 896 MiB (the first MiB is a hole but for
    // [0, 0x9f000)); half of it is the budget.
    assert_eq!(m.lowmem_bytes, 896 * MIB - 0x10_0000 + 0x9f000);
    assert_eq!(m.budget_bytes, m.lowmem_bytes / 2);
    assert_eq!(m.removed_bytes, 0);
    assert_eq!(
        MemMapLine(&m).to_string(),
        "mem_map will take 2359296 page descriptors of 8 bytes = 18432 KiB of low memory \
         (pfns [0, 0x240000); at most 458558 KiB, half of the 917116 KiB of low memory)"
    );
    assert_eq!(check_free_memory(&mb), Ok(()));
}

#[test]
fn under_pae_ram_is_cut_below_64_gib_and_mem_map_is_128_mib() {
    let (mb, setup) = setup_map(&QEMU_64G, None, PhysLimit::Pae);
    assert_eq!(memory(&mb).last(), Some(&(4 * GIB, 64 * GIB - 0x1000)));
    assert_eq!(setup.usable.above_limit_bytes, GIB + 0x1000);
    assert_eq!(
        IgnoredLine(&setup.usable).to_string(),
        "1024 MiB of RAM at or above 64 GiB - 4 KiB ignored: PAE reaches 36-bit physical \
         addresses (MAXPHYADDR 36: 64 GiB), and pfn 0xffffff, the last frame below 64 GiB, \
         is mem_map's no-page link"
    );
    // Every pfn a descriptor can link: [0, 0xFF_FFFF), 128 MiB - 8 bytes.
    assert_eq!(setup.mem_map.max_pfn, crate::mm::page::MAX_PFN_LIMIT);
    assert_eq!(setup.mem_map.bytes(), 128 * MIB - 8);
    assert_eq!(setup.mem_map.removed_bytes, 0);
    assert_eq!(mem_map_bytes(Pfn(0x100_0000)), 128 * MIB);
    assert_eq!(mem_map_bytes(Pfn(0x20_0000)), 16 * MIB);
}

#[test]
fn mem_above_4_gib_trims_under_pae_and_is_clipped_to_4_gib_without() {
    // mem=6G under PAE: [6 GiB, 9 GiB) goes.
    let (mb, setup) = setup_map(&QEMU_8G, Some(6 * GIB), PhysLimit::Pae);
    assert_eq!(memory(&mb).last(), Some(&(4 * GIB, 6 * GIB)));
    assert_eq!(setup.mem_limit_removed, 3 * GIB);
    assert_eq!(setup.mem_map.max_pfn, Pfn(0x18_0000));
    // Without PAE the limit is clipped to 4 GiB: nothing there to remove.
    let (mb, setup) = setup_map(&QEMU_8G, Some(6 * GIB), PhysLimit::NoPae);
    assert_eq!(memory(&mb).last(), Some(&(0x10_0000, 3 * GIB)));
    assert_eq!(setup.mem_limit_removed, 0);
    // mem=2G under PAE removes the top of low RAM and all of high RAM.
    let (mb, setup) = setup_map(&QEMU_8G, Some(2 * GIB), PhysLimit::Pae);
    assert_eq!(memory(&mb).last(), Some(&(0x10_0000, 2 * GIB)));
    assert_eq!(setup.mem_limit_removed, 6 * GIB);
    // A limit above the end of RAM changes nothing.
    let (_, setup) = setup_map(&QEMU_8G, Some(100 * GIB), PhysLimit::Pae);
    assert_eq!(setup.mem_limit_removed, 0);
}

#[test]
fn mem_map_that_would_take_over_half_of_low_memory_clips_ram() {
    // 64 MiB below 4 GiB, 8 GiB above: mem_map for pfns [0, 12 GiB) is
    // 24 MiB, under the 32 MiB budget.
    let fits = [(0x10_0000, 63 * MIB, 1), (4 * GIB, 8 * GIB, 1)];
    let (mb, setup) = setup_map(&fits, None, PhysLimit::Pae);
    assert_eq!(setup.mem_map.removed_bytes, 0);
    assert_eq!(setup.mem_map.bytes(), 24 * MIB);
    assert_eq!(memory(&mb).last(), Some(&(4 * GIB, 12 * GIB)));
    // With 32 MiB below 4 GiB ([1 MiB, 32 MiB): 31 MiB of low memory) the
    // budget is 15.5 MiB, enough for 0x1F_0000 pfns (7.75 GiB): the RAM
    // from there up goes, and mem_map is exactly the budget.
    let clipped = [(0x10_0000, 31 * MIB, 1), (4 * GIB, 8 * GIB, 1)];
    let (mb, setup) = setup_map(&clipped, None, PhysLimit::Pae);
    let m = setup.mem_map;
    assert_eq!(m.lowmem_bytes, 31 * MIB);
    assert_eq!(m.max_pfn_allowed(), Pfn(0x1f_0000));
    assert_eq!(
        (m.wanted_max_pfn, m.max_pfn),
        (Pfn(0x30_0000), Pfn(0x1f_0000))
    );
    assert_eq!(memory(&mb).last(), Some(&(4 * GIB, 0x1_f000_0000)));
    assert_eq!(m.removed_bytes, 12 * GIB - 0x1_f000_0000);
    assert_eq!(m.bytes(), m.budget_bytes);
    assert_eq!(
        MemMapClipLine(&m).to_string(),
        "4352 MiB of RAM at and above 0x1f0000000 removed: its mem_map would not fit in low \
         memory (pfns [0, 0x300000) need 24576 KiB, more than half of the 31744 KiB of low memory)"
    );
    // The same map without PAE never gets there.
    let (_, setup) = setup_map(&clipped, None, PhysLimit::NoPae);
    assert_eq!(setup.mem_map.removed_bytes, 0);
}

#[test]
fn below_896_mib_the_rule_never_bites() {
    // mem_map is max_pfn * 8 = RAM / 512: at most a 256th of low memory
    // when all RAM is low, whatever the holes below it.
    for mib in [3, 8, 128, 896] {
        let (_, setup) = setup_map(&[(0x10_0000, (mib - 1) * MIB, 1)], None, PhysLimit::Pae);
        let m = setup.mem_map;
        assert_eq!(m.removed_bytes, 0, "{mib} MiB");
        assert!(m.bytes() * 256 <= m.lowmem_bytes + 0x10_0000, "{mib} MiB");
    }
}

/// The `zero` hook of the buddy allocators below: never called (nothing
/// asks for `__GFP_ZERO`).
fn no_zero(_: Pfn, _: u32) {}

/// memblock_setup, mem_map (below 896 MiB, whatever memblock's limit), the
/// buddy allocator over it, and the hand-off; returns the allocator.
fn handoff(entries: &[(u64, u64, u32)]) -> (BuddyAllocator<'static>, MemMap) {
    let (mut mb, setup) = setup_map(entries, None, PhysLimit::Pae);
    assert_eq!(mb.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
    let map = alloc_mem_map(&mut mb, setup.mem_map.max_pfn, &mut FakePhys::empty()).unwrap();
    assert!(map.pa.0 + map.bytes() <= DEFAULT_MAX_LOW_PFN.phys().0);
    let mem_map = vec![Page::reserved(ZoneType::Normal); map.nr_pages as usize].leak();
    let mut buddy = BuddyAllocator::new(mem_map, DEFAULT_MAX_LOW_PFN, no_zero);
    let accounts = buddy_handoff(&mb, &mut buddy).unwrap();
    for z in buddy.zones() {
        let a = accounts[z.zone_type().index()];
        assert_eq!(a.managed, a.present - a.reserved, "{}", z.zone_type());
    }
    (buddy, map)
}

use crate::mm::memblock::MEMBLOCK_ALLOC_ANYWHERE;

#[test]
fn at_8_gib_highmem_spans_896_mib_to_9_gib() {
    let (buddy, map) = handoff(&QEMU_8G);
    // Top-down below 896 MiB: the last 18 MiB of low memory.
    assert_eq!(map.pa, PhysAddr(896 * MIB - 18 * MIB));
    let spans: Vec<_> = buddy
        .zones()
        .iter()
        .map(|z| (z.start_pfn().0, z.end_pfn().0))
        .collect();
    assert_eq!(
        spans,
        [(0, 0x1000), (0x1000, 0x3_8000), (0x3_8000, 0x24_0000)]
    );
    let high = buddy.zone(ZoneType::HighMem);
    // [896 MiB, 3 GiB) and [4 GiB, 9 GiB): 7296 MiB, the "HighMem ≈ 7.1
    // GiB" of an 8 GiB machine; the hole [3 GiB, 4 GiB) is spanned, not
    // present.
    assert_eq!(high.spanned_pages(), 0x24_0000 - 0x3_8000);
    assert_eq!(high.present_pages(), 0x8_8000 + 0x14_0000);
    assert_eq!(u64::from(high.present_pages()) * 4096, 7296 * MIB);
    assert_eq!(high.managed_pages(), high.present_pages());
    assert_eq!(high.free_pages(), high.managed_pages());
    // Frames above 4 GiB are HighMem, free, in whole order-10 blocks.
    let top = Pfn(0x24_0000 - 1);
    assert_eq!(buddy.page(top).unwrap().zone(), ZoneType::HighMem);
    assert_eq!(buddy.free_block_containing(top), Some((Pfn(0x23_fc00), 10)));
    assert_eq!(
        buddy.free_block_containing(Pfn(0x10_0000)),
        Some((Pfn(0x10_0000), 10))
    );
    assert_eq!(
        buddy.free_block_containing(Pfn(0xc_0000)),
        None,
        "the PCI hole"
    );
    let mut lines = Vec::new();
    buddy.buddyinfo(|l| lines.push(l.to_string()));
    assert_eq!(
        lines.last().unwrap(),
        "Node 0, zone  HighMem      0      0      0      0      0      0      0      0      0      0   1824 "
    );
    buddy.check().unwrap();
}

#[test]
fn at_64_gib_the_last_linkable_frame_is_free_and_linked() {
    let (buddy, map) = handoff(&QEMU_64G);
    assert_eq!(map.bytes(), 128 * MIB - 8);
    assert_eq!(map.nr_pages, 0xFF_FFFF);
    let high = buddy.zone(ZoneType::HighMem);
    assert_eq!(high.end_pfn(), crate::mm::page::MAX_PFN_LIMIT);
    // [896 MiB, 3 GiB) and [4 GiB, 64 GiB - 4 KiB).
    assert_eq!(high.present_pages(), 0x8_8000 + 0xF0_0000 - 1);
    assert_eq!(high.free_pages(), high.present_pages());
    // The last 1023 frames are free in blocks of order 9 down to 0; the
    // order-0 block is pfn 0xFF_FFFE, the largest pfn a link names, and
    // the free list reaches it.
    let last = Pfn(0xFF_FFFE);
    assert_eq!(buddy.free_block_containing(last), Some((last, 0)));
    let listed: Vec<_> = high
        .free_area(0)
        .free_list()
        .iter(buddy.mem_map())
        .collect();
    assert_eq!(listed, [last]);
    let orders: Vec<_> = (0..=10).map(|o| high.free_area(o).nr_free()).collect();
    // 0x8_8000 + 0xEF_FC00 pfns in order-10 blocks: 0x5E0 blocks from
    // [896 MiB, 3 GiB) and [4 GiB, 64 GiB - 4 MiB).
    assert_eq!(
        orders,
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, (0x8_8000 + 0xEF_FC00) >> 10]
    );
    buddy.check().unwrap();
}

#[test]
fn mem_map_beyond_the_boot_window_says_the_limit_is_short_not_the_ram() {
    // 8 GiB under PAE with the boot stub's 16 MiB window: 18 MiB of
    // mem_map cannot fit below the limit, though low memory has room.
    let (mut mb, _) = setup_map(&QEMU_8G, None, PhysLimit::Pae);
    mb.set_current_limit(PhysAddr(16 * MIB));
    let err = check_free_memory(&mb).unwrap_err();
    assert_eq!(err.needed, 18 * MIB);
    assert_eq!(err.free, 16 * MIB - IMAGE.end.0);
    assert!(
        err.to_string().ends_with(
            "; 916288 KiB of low memory are free, but above memblock's current limit: \
             the kernel must map more of low memory before mem_map is allocated"
        ),
        "{err}"
    );
    // Once the limit covers low memory, it fits.
    mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
    assert_eq!(check_free_memory(&mb), Ok(()));
}

#[test]
fn the_boot_map_grows_only_when_mem_map_does_not_fit_in_it() {
    // 128 MiB: mem_map is 256 KiB, the 16 MiB boot map holds it.
    let setup = |ram: &[(u64, u64, u32)]| {
        let mbi = Mb2Builder::new().mmap(24, ram).build();
        let info = mb2::parse(PhysAddr(0x3000), mbi.bytes()).unwrap();
        let mut mb = memblock();
        mb.set_current_limit(PhysAddr(16 << 20));
        memblock_setup(
            &info,
            None,
            PhysLimit::Pae,
            IMAGE,
            &mut mb,
            &mut FakePhys::empty(),
        )
        .unwrap();
        mb
    };
    let small = setup(&[(0, 0x9fc00, 1), (0x10_0000, (128 << 20) - 0x10_0000, 1)]);
    assert_eq!(boot_map_end_needed(&small, DEFAULT_MAX_LOW_PFN), None);
    // 8 GiB (3 GiB below 4 GiB, 5 above): 18 MiB of mem_map (pfns up to
    // 0x24_0000) plus 4 MiB of slack from 16 MiB: 38 MiB, rounded up to
    // 40 MiB (whole boot page tables).
    let big = setup(&[
        (0, 0x9fc00, 1),
        (0x10_0000, 0xbfee_0000, 1),
        (1 << 32, 5 << 30, 1),
    ]);
    assert_eq!(mem_map_bytes(max_pfn(&big)), 18 << 20);
    assert_eq!(
        boot_map_end_needed(&big, DEFAULT_MAX_LOW_PFN),
        Some(PhysAddr(40 << 20))
    );
    // Low RAM ending at 38 MiB caps the map there (half of it still holds
    // mem_map, so the mem_map rule removes nothing).
    let capped = setup(&[
        (0, 0x9fc00, 1),
        (0x10_0000, 0x250_0000, 1),
        (1 << 32, 5 << 30, 1),
    ]);
    assert_eq!(
        boot_map_end_needed(&capped, DEFAULT_MAX_LOW_PFN),
        Some(PhysAddr(38 << 20))
    );
}
