//! Real boot information (tests/data, captured from GRUB and QEMU) through the
//! parsers, the memory-map sanitizer and memblock setup.

mod common;
use common::{FakeMem, aligned, as_bytes};
use kernel::addr::{Pfn, PhysAddr};
use kernel::boot_info::memmap::{self, E820_TYPE_RAM, PhysLimit};
use kernel::boot_info::{BootInfo, BootInfoError, Protocol, mb1, mb2};
use kernel::mm::memblock::{MEMBLOCK_ALLOC_ANYWHERE, Memblock, MemblockRegion};
use kernel::mm::setup::{self, KernelImage};

fn with_mb2<R>(raw: &[u8], f: impl FnOnce(BootInfo<'_>) -> R) -> R {
    let words = aligned(raw);
    let info =
        mb2::parse(PhysAddr(0x0029_5620), as_bytes(&words, raw.len())).expect("fixture parses");
    f(info)
}

/// Usable RAM as raw `(base, end)` numbers, to compare with literals.
fn raw(ram: &memmap::UsableRam) -> Vec<(u64, u64)> {
    ram.ranges.iter().map(|&(b, e)| (b.0, e.0)).collect()
}

const GRUB_8M: &[u8] = include_bytes!("data/grub-mb2-8M.mbi");
const GRUB_128M: &[u8] = include_bytes!("data/grub-mb2-128M.mbi");
const GRUB_3G: &[u8] = include_bytes!("data/grub-mb2-3G.mbi");
const GRUB_4G: &[u8] = include_bytes!("data/grub-mb2-4G.mbi");
const GRUB_CUTMEM: &[u8] = include_bytes!("data/grub-mb2-128M-cutmem.mbi");
const QEMU_MB1_LOW: &[u8] = include_bytes!("data/qemu-mb1-128M-0x00009000.bin");
const QEMU_MB1_END: &[u8] = include_bytes!("data/qemu-mb1-128M-0x0011f000.bin");

fn fresh_memblock() -> Memblock {
    let memory = Box::leak(vec![MemblockRegion::default(); 128].into_boxed_slice());
    let reserved = Box::leak(vec![MemblockRegion::default(); 128].into_boxed_slice());
    Memblock::new(memory, reserved)
}

const IMAGE: KernelImage = KernelImage {
    start: PhysAddr(0x10_0000),
    end: PhysAddr(0x12_0000),
};

#[test]
fn grub_128m_map_gives_the_expected_usable_ram() {
    with_mb2(GRUB_128M, |info| {
        assert_eq!(info.protocol, Protocol::Multiboot2);
        assert!(info.loader_name.unwrap().starts_with("GRUB 2.06"));
        assert_eq!(info.memory_map.as_ref().unwrap().len(), 6);
        assert!(info.elf_sections.is_some());
        let ram = memmap::usable_ram(
            &memmap::sanitize(info.memory_map.as_ref().unwrap()),
            PhysLimit::NoPae,
        );
        assert_eq!(raw(&ram), [(0, 0x9f000), (0x10_0000, 0x7fe_0000)]);
        assert_eq!(ram.above_limit_bytes, 0);
        assert_eq!(ram.partial_page_bytes, 0xc00);
    });
}

#[test]
fn grub_8m_and_3g_maps() {
    with_mb2(GRUB_8M, |info| {
        let ram = memmap::usable_ram(
            &memmap::sanitize(info.memory_map.as_ref().unwrap()),
            PhysLimit::NoPae,
        );
        assert_eq!(raw(&ram).last(), Some(&(0x10_0000, 0x7e_0000)));
    });
    with_mb2(GRUB_3G, |info| {
        let ram = memmap::usable_ram(
            &memmap::sanitize(info.memory_map.as_ref().unwrap()),
            PhysLimit::NoPae,
        );
        assert_eq!(raw(&ram).last(), Some(&(0x10_0000, 0xbffe_0000)));
    });
}

#[test]
fn grub_4g_ram_above_4_gib_is_ignored_and_counted() {
    with_mb2(GRUB_4G, |info| {
        let map = memmap::sanitize(info.memory_map.as_ref().unwrap());
        assert!(
            map.regions
                .iter()
                .any(|r| r.base == PhysAddr(1 << 32) && r.typ == E820_TYPE_RAM)
        );
        let ram = memmap::usable_ram(&map, PhysLimit::NoPae);
        assert_eq!(ram.above_limit_bytes, 1 << 30);
        assert!(ram.ranges.iter().all(|&(_, end)| end <= PhysAddr(1 << 32)));
    });
}

#[test]
fn grub_cutmem_holes_cost_the_pages_they_touch() {
    with_mb2(GRUB_CUTMEM, |info| {
        let ram = memmap::usable_ram(
            &memmap::sanitize(info.memory_map.as_ref().unwrap()),
            PhysLimit::NoPae,
        );
        assert_eq!(
            raw(&ram),
            [
                (0, 0x9f000),
                (0x10_0000, 0x80_0000),
                (0x80_1000, 0xff_0000),
                (0x101_0000, 0x7fe_0000)
            ]
        );
    });
}

#[test]
fn grub_128m_through_memblock_setup() {
    with_mb2(GRUB_128M, |info| {
        let mut mb = fresh_memblock();
        let mut mem = FakeMem::default();
        let setup =
            setup::memblock_setup(&info, None, PhysLimit::NoPae, IMAGE, &mut mb, &mut mem).unwrap();
        assert_eq!(mb.memory.total_size(), setup.usable.total_bytes());
        assert_eq!(mb.memory.cnt(), 2);
        // The first MiB, the image, the boot information.
        assert!(mb.is_region_reserved(PhysAddr(0), 0x1000));
        assert!(mb.is_region_reserved(PhysAddr(0xf_f000), 0x1000));
        assert!(mb.is_region_reserved(IMAGE.start, 0x1000));
        assert!(mb.is_region_reserved(PhysAddr(0x0029_5620), 8));
        assert!(!mb.is_region_reserved(PhysAddr(0x40_0000), 0x1000));
        // Every allocation avoids all of them.
        mb.set_current_limit(PhysAddr(0x80_0000));
        let pa = mb
            .alloc_range(
                0x1000,
                0x1000,
                PhysAddr(0),
                MEMBLOCK_ALLOC_ANYWHERE,
                &mut mem,
            )
            .unwrap();
        assert_eq!(
            pa,
            PhysAddr(0x7f_f000),
            "top-down: the highest page below current_limit"
        );
        assert_eq!(mem.zeroed.last(), Some(&(PhysAddr(0x7f_f000), 0x1000)));
    });
}

#[test]
fn mem_limit_trims_usable_ram() {
    with_mb2(GRUB_128M, |info| {
        let mut mb = fresh_memblock();
        let setup = setup::memblock_setup(
            &info,
            Some(64 << 20),
            PhysLimit::NoPae,
            IMAGE,
            &mut mb,
            &mut FakeMem::default(),
        )
        .unwrap();
        assert_eq!(
            mb.memory.regions().last().unwrap().end(),
            PhysAddr(64 << 20)
        );
        assert_eq!(setup.mem_limit_removed, 0x7fe_0000 - (64 << 20));
    });
}

#[test]
fn qemu_multiboot1_through_parse_and_setup() {
    let read = |pa: PhysAddr, len: usize| -> Result<&'static [u8], BootInfoError> {
        for (base, page) in [
            (PhysAddr(0x9000), QEMU_MB1_LOW),
            (PhysAddr(0x11_f000), QEMU_MB1_END),
        ] {
            if (base..base + 4096).contains(&pa) {
                let from = (pa - base) as usize;
                return Ok(&page[from..page.len().min(from + len)]);
            }
        }
        Err(BootInfoError::Unmappable { pa, len })
    };
    let info = mb1::parse(PhysAddr(0x9500), read).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot1);
    assert!(info.cmdline.ends_with(b"selftest"), "{:?}", info.cmdline);
    assert_eq!(info.loader_name, Some("qemu"));
    let map = info.memory_map.as_ref().unwrap();
    assert!(
        map.iter()
            .any(|e| e.base == PhysAddr(0x10_0000) && e.typ == 1)
    );
    // An image that ends before QEMU's strings at 0x11f000, so that their
    // reservation is visible on its own.
    let image = KernelImage {
        start: PhysAddr(0x10_0000),
        end: PhysAddr(0x11_0000),
    };
    let mut mb = fresh_memblock();
    setup::memblock_setup(
        &info,
        None,
        PhysLimit::NoPae,
        image,
        &mut mb,
        &mut FakeMem::default(),
    )
    .unwrap();
    let reserved: Vec<_> = mb
        .reserved
        .regions()
        .iter()
        .map(|r| (r.base.0, r.end().0))
        .collect();
    // [0, 1 MiB) holds the info structure and the memory map; the command
    // line ("<kernel path> selftest" and its NUL) and the loader name "qemu"
    // follow each other at 0x11f000.
    let strings_end = 0x11_f000 + info.cmdline.len() as u64 + 1 + "qemu".len() as u64 + 1;
    assert_eq!(reserved, [(0, 0x11_0000), (0x11_f000, strings_end)]);
}

fn no_zero(_: Pfn, _: u32) {}

#[test]
fn grub_128m_hands_off_to_the_buddy_allocator() {
    use kernel::mm::buddy::BuddyAllocator;
    use kernel::mm::page::Page;
    use kernel::mm::zone::{DEFAULT_MAX_LOW_PFN, ZoneType};
    with_mb2(GRUB_128M, |info| {
        let mut mb = fresh_memblock();
        let mut mem = FakeMem::default();
        setup::memblock_setup(&info, None, PhysLimit::NoPae, IMAGE, &mut mb, &mut mem).unwrap();
        mb.set_current_limit(PhysAddr(16 << 20));
        let max_pfn = setup::max_pfn(&mb);
        assert_eq!(max_pfn, Pfn(0x7fe0));
        // The kernel allocates mem_map from memblock before the hand-off.
        let map = setup::alloc_mem_map(&mut mb, max_pfn, &mut mem).unwrap();
        assert_eq!((map.nr_pages, map.desc_size), (max_pfn.0, 8));
        assert_eq!(map.bytes(), u64::from(max_pfn.0) * 8);
        assert!(map.pa.is_page_aligned());
        let mem_map_pa = map.pa;
        let mut mem_map = vec![Page::reserved(ZoneType::Dma); map.nr_pages as usize];
        let mut buddy = BuddyAllocator::new(&mut mem_map, DEFAULT_MAX_LOW_PFN, no_zero);
        let accounts = setup::buddy_handoff(&mb, &mut buddy).unwrap();
        let dma = accounts[ZoneType::Dma.index()];
        let normal = accounts[ZoneType::Normal.index()];
        // DMA: 159 pages below 640 KiB + 3840 pages in [1 MiB, 16 MiB).
        assert_eq!(dma.present, 159 + 3840);
        assert_eq!(normal.present, 0x7fe0 - 0x1000);
        // Reserved: the first MiB's 159 RAM pages, the image (32 pages), the
        // boot information (1 page) and mem_map (64 pages) — mem_map lies
        // below 16 MiB (top-down under current_limit), so all in DMA.
        assert!(mem_map_pa + map.bytes() <= PhysAddr(16 << 20));
        assert_eq!(dma.reserved, 159 + 32 + 1 + 64);
        assert_eq!(normal.reserved, 0);
        assert_eq!(dma.managed, dma.present - dma.reserved);
        assert_eq!(buddy.nr_free_pages(), dma.managed + normal.managed);
        assert_eq!(buddy.check(), Ok(()));
    });
}

#[test]
fn max_pfn_of_an_empty_memblock_is_zero_and_mem_map_needs_room() {
    let mut mb = fresh_memblock();
    assert_eq!(setup::max_pfn(&mb), Pfn(0));
    // No memory at all: memblock has nowhere to put mem_map.
    let mut mem = FakeMem::default();
    let err = setup::alloc_mem_map(&mut mb, Pfn(0x8000), &mut mem).unwrap_err();
    assert_eq!(err.bytes, 0x8000 * 8);
    assert!(
        err.to_string()
            .starts_with("cannot allocate mem_map (262144 bytes): ")
    );
    // A region ending mid-page: max_pfn rounds down.
    mb.add(PhysAddr(0), 0x10_0000 + 0x800, &mut mem).unwrap();
    assert_eq!(setup::max_pfn(&mb), Pfn(0x100));
}
