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
