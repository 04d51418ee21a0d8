//! The final page directory, built on the emulated machine
//! (`crate::test_support::mmu`) and walked page by page like the CPU walks
//! it, every region of `layout.rs` checked against what it must hold.

use super::*;
use crate::mm::layout::{
    EARLY_MAP_PDE, ENTRIES_PER_TABLE, FIXMAP_PDE, KernelLayout, PAGE_OFFSET_PDE, PAGE_SHIFT,
    PAGE_SIZE, PKMAP_PDE, Region, VMALLOC_START, pdx, phys_to_virt, ptx, region_of,
};
use crate::mm::paging::PagingMode;
use crate::mm::paging::Table;
use crate::test_support::Rng;
use crate::test_support::mmu::{Fault, Frames, Mmu, P, PhysMem, RW, not_present};
use std::collections::BTreeSet;

/// Bytes of emulated RAM: page tables and the early map table live here;
/// the direct map's other frames need no backing for a walk.
const RAM: u32 = 8 << 20;
/// The page-table pool: `[6 MiB, 7 MiB)`.
const POOL: u32 = 0x0060_0000;
/// Frames in the pool: enough for the largest direct map (224 tables).
const POOL_FRAMES: u32 = 256;
/// The boot stub's early map table, in the image's `.bss`.
const EARLY_TABLE: u32 = 0x001D_0000;
/// The boot stack's guard frame, in `.bss`.
const GUARD: Pfn = Pfn(0x1C0);
/// Frames the early map window maps before the build (slot `i` -> entry).
const EARLY_SLOTS: [(usize, u32); 3] = [(0, 0x0050_0000), (1, 0x0050_1000), (5, 0x0FFF_F000)];

/// An image like the linker's: `.boot` at 1 MiB (not page-aligned at its
/// end), then page-aligned `.text`, `.rodata`, `.data`, `.bss`, ending at
/// 2 MiB.
fn sections() -> [PhysSection; 5] {
    let s = |name, start: u64, end: u64, read_only| PhysSection {
        name,
        start: PhysAddr(start),
        end: PhysAddr(end),
        read_only,
        executable: read_only && name != ".rodata",
    };
    [
        s(".boot", 0x0010_0000, 0x0010_0345, true),
        s(".text", 0x0010_1000, 0x0018_0000, true),
        s(".rodata", 0x0018_0000, 0x001A_0000, true),
        s(".data", 0x001A_0000, 0x001B_0000, false),
        s(".bss", 0x001B_0000, 0x0020_0000, false),
    ]
}

/// Read-only frames of [`sections`]: `.boot` 1, `.text` 127, `.rodata` 32.
const RO_FRAMES: u32 = 1 + 127 + 32;

fn layout(max_low_pfn: u32, sections: &[PhysSection]) -> KernelSpaceLayout<'_> {
    KernelSpaceLayout {
        mode: PagingMode::LEGACY,
        max_low_pfn: Pfn(max_low_pfn),
        sections,
        stack_guard: GUARD,
        early_map_table: PhysAddr::from_u32(EARLY_TABLE),
    }
}

/// A machine after [`build_kernel_space`].
struct Built {
    mem: PhysMem,
    frames: Frames,
    ks: KernelSpace,
    /// The early map table as the boot stub left it.
    early: Table,
}

/// Builds on a fresh machine whose page-table pool holds `pool` frames.
fn build(
    l: &KernelSpaceLayout,
    pool: u32,
) -> (Result<KernelSpace, KernelSpaceError>, PhysMem, Frames) {
    let mut mem = PhysMem::new(RAM);
    for (slot, pa) in EARLY_SLOTS {
        mem.with_table(PhysAddr::from_u32(EARLY_TABLE), |t| t[slot] = pa | P);
    }
    let mut frames = Frames::new(mem.ram.clone(), POOL, pool);
    let r = build_kernel_space(l, &mut frames, &mut mem);
    (r, mem, frames)
}

fn build_ok(l: &KernelSpaceLayout) -> Built {
    let (r, mem, frames) = build(l, POOL_FRAMES);
    let ks = r.unwrap_or_else(|e| panic!("build_kernel_space: {e}"));
    let early = mem.table(EARLY_TABLE);
    Built {
        mem,
        frames,
        ks,
        early,
    }
}

/// The facts `region_of` needs, as the kernel derives them: `.boot` at its
/// physical (link) address, the other sections at `PAGE_OFFSET + pa`.
fn kernel_layout(l: &KernelSpaceLayout, direct_map_end: Pfn) -> KernelLayout {
    let mut sections = [("", VirtAddr(0), VirtAddr(0)); 5];
    for (out, s) in sections.iter_mut().zip(l.sections) {
        let base = if s.name == ".boot" { 0 } else { PAGE_OFFSET };
        let at = |pa: PhysAddr| VirtAddr(base + pa.as_u32());
        *out = (s.name, at(s.start), at(s.end));
    }
    let guard = phys_to_virt(l.stack_guard.phys());
    KernelLayout {
        sections,
        stack_guard: (guard, guard + PAGE_SIZE),
        direct_map_end: phys_to_virt(direct_map_end.phys()),
    }
}

/// Checks the directory entry by entry, then every page of the 4 GiB by
/// the region `layout.rs` puts it in.
fn check(b: &Built, l: &KernelSpaceLayout) {
    let r = b.ks.report;
    let end = l.direct_map_end();
    assert_eq!(r.direct_map_end, end);
    let direct_tables = end.0.div_ceil(ENTRIES_PER_TABLE);
    let pgd = r.pgd.as_u32();
    assert_eq!(b.ks.space.pgd().as_u32(), pgd);
    assert_eq!(
        b.ks.space.range(),
        (VirtAddr(PAGE_OFFSET), u64::from(PKMAP_BASE))
    );

    // The directory.
    let dir = b.mem.table(pgd);
    let table_pde = |pa: u32| pa | P | RW;
    for (i, &pde) in dir.iter().enumerate() {
        let i = i as u32;
        let why = format!("PDE {i}");
        match i {
            _ if (PAGE_OFFSET_PDE..PAGE_OFFSET_PDE + direct_tables).contains(&i) => {
                assert_eq!(pde & 0xfff, P | RW, "{why}");
                assert!(b.frames.live.contains(&(pde & !0xfff)), "{why}");
            }
            PKMAP_PDE => assert_eq!(pde, table_pde(b.ks.pkmap_table.as_u32()), "{why}"),
            EARLY_MAP_PDE => assert_eq!(pde, table_pde(EARLY_TABLE), "{why}"),
            FIXMAP_PDE => assert_eq!(pde, table_pde(b.ks.fixmap_table.as_u32()), "{why}"),
            _ => assert_eq!(pde, 0, "{why}: nothing else is mapped"),
        }
    }
    let empty: Table = [0; ENTRIES_PER_TABLE as usize];
    assert_eq!(b.mem.table(b.ks.pkmap_table.as_u32()), empty, "pkmap table");
    assert_eq!(
        b.mem.table(b.ks.fixmap_table.as_u32()),
        empty,
        "fixmap table"
    );
    assert_eq!(
        b.mem.table(EARLY_TABLE),
        b.early,
        "early map table untouched"
    );

    // The page tables: the direct map's, pkmap, fixmap; the early map table
    // is borrowed, not allocated.
    assert_eq!(r.nr_pt_pages, direct_tables + 2);
    assert_eq!(b.ks.space.nr_pt_pages(), r.nr_pt_pages);
    assert_eq!(b.frames.live.len() as u32, 1 + r.nr_pt_pages);
    assert!(b.frames.live.contains(&pgd));
    assert!(!b.frames.live.contains(&EARLY_TABLE));

    // Every page, as the CPU sees it.
    let kl = kernel_layout(l, end);
    let mmu = Mmu::new(r.pgd, true);
    let (mut direct, mut ro) = (0, 0);
    let mut seen = BTreeSet::new();
    for vpn in 0..1u32 << 20 {
        let va = vpn << PAGE_SHIFT;
        let read = mmu.probe(&b.mem, va, false);
        let write = mmu.probe(&b.mem, va, true);
        let region = region_of(VirtAddr(va), &kl);
        seen.insert(match region {
            Region::Kernel(_) => "kernel image",
            r => r.name(),
        });
        let why = format!("{va:#010x} ({})", region.name());
        match region {
            Region::Kernel(_) | Region::DirectMap if va >= PAGE_OFFSET => {
                let pa = va - PAGE_OFFSET;
                let pfn = Pfn(pa >> PAGE_SHIFT);
                if pfn == Pfn(0) {
                    assert_eq!(read, not_present(va), "{why}: page 0 is a hole");
                    continue;
                }
                direct += 1;
                assert_eq!(read.map(|(f, _)| f), Ok(pa), "{why}: PAGE_OFFSET + pa");
                let read_only = l.is_read_only(pfn);
                if let Region::Kernel(name) = region {
                    let s = l.sections.iter().find(|s| s.name == name).unwrap();
                    assert_eq!(read_only, s.read_only, "{why}");
                }
                if read_only {
                    ro += 1;
                    let fault = Fault {
                        va,
                        write: true,
                        present: true,
                        ..Fault::default()
                    };
                    assert_eq!(write, Err(fault), "{why}: read-only");
                } else {
                    assert_eq!(write.map(|(f, _)| f), Ok(pa), "{why}: writable");
                }
            }
            Region::EarlyMap => {
                let e = b.early[ptx(va) as usize];
                if e & P == 0 {
                    assert_eq!(read, not_present(va), "{why}");
                } else {
                    assert_eq!(read.map(|(f, _)| f), Ok(e & !0xfff), "{why}");
                    assert!(write.is_err(), "{why}: the early map is read-only");
                }
            }
            // `.boot` at its link address, below PAGE_OFFSET, and every
            // other region: nothing is mapped there.
            _ => assert_eq!(read, not_present(va), "{why}: must be unmapped"),
        }
    }
    // Every region of layout.rs was walked (and checked above).
    let all = [
        "null page",
        "below PAGE_OFFSET",
        "kernel image",
        "boot stack guard page",
        "direct map",
        "above the direct map",
        "vmalloc",
        "vmalloc guard",
        "pkmap",
        "early map window",
        "fixmap",
        "unmapped",
    ];
    assert_eq!(seen, BTreeSet::from(all), "regions walked");
    assert_eq!(
        r.direct_pages, direct,
        "direct pages counted from the tables"
    );
    assert_eq!(
        r.direct_pages,
        end.0 - 2,
        "all frames but page 0 and the guard"
    );
    assert_eq!(r.ro_pages, ro);
    assert_eq!(r.ro_pages, RO_FRAMES);
}

/// Loads and stores through the TLB path of the MMU, and the map API of the
/// built space.
fn check_access(b: &mut Built) {
    let mut mmu = Mmu::new(b.ks.space.pgd(), true);
    // The early map table through the direct map.
    let early_va = PAGE_OFFSET + EARLY_TABLE;
    assert_eq!(mmu.read_u32(&b.mem, early_va), Ok(EARLY_SLOTS[0].1 | P));
    // .data is writable, .text is not.
    assert_eq!(mmu.write_u32(&b.mem, 0xC01A_0010, 7), Ok(()));
    assert_eq!(b.mem.read_u32(0x001A_0010), 7);
    assert_eq!(
        mmu.write_u32(&b.mem, 0xC010_2000, 7),
        Err(Fault {
            va: 0xC010_2000,
            write: true,
            present: true,
            ..Fault::default()
        })
    );
    assert_eq!(mmu.read_u32(&b.mem, 0x0010_2000), not_present(0x0010_2000));
    // The map API: vmalloc addresses map, the pinned windows are off limits.
    let flush =
        b.ks.space
            .map_page(
                &mut b.mem,
                &mut b.frames,
                VirtAddr(VMALLOC_START),
                PhysAddr(0x0050_0000),
                PTFlags::RW,
            )
            .expect("vmalloc page");
    flush.flush(&mut mmu);
    assert_eq!(mmu.read_u32(&b.mem, VMALLOC_START), Ok(0));
    let err =
        b.ks.space
            .map_page(
                &mut b.mem,
                &mut b.frames,
                VirtAddr(PKMAP_BASE),
                PhysAddr(0x0050_0000),
                PTFlags::RW,
            )
            .err();
    assert_eq!(
        err,
        Some(MapError::OutOfRange {
            va: VirtAddr(PKMAP_BASE)
        })
    );

    // Pinned tables: a vmalloc table goes with its last page, a direct-map
    // table stays when all its 1024 pages are unmapped (Linux never frees
    // the kernel's lowmem page tables), and the borrowed early map table is
    // the only one `remove_table` accepts.
    let tables = b.ks.space.nr_pt_pages();
    let (_, flush) =
        b.ks.space
            .unmap_page(&mut b.mem, &mut b.frames, VirtAddr(VMALLOC_START))
            .expect("the vmalloc page");
    flush.flush(&mut mmu);
    assert_eq!(b.ks.space.nr_pt_pages(), tables - 1, "vmalloc table freed");
    let second_table = VirtAddr(PAGE_OFFSET + ENTRIES_PER_TABLE * PAGE_SIZE);
    b.ks.space
        .unmap_range(
            &mut b.mem,
            &mut b.frames,
            second_table,
            ENTRIES_PER_TABLE,
            |_, _| {},
        )
        .expect("a direct-map table's pages")
        .flush(&mut mmu);
    assert_eq!(
        b.ks.space.nr_pt_pages(),
        tables - 1,
        "a direct-map table is pinned"
    );
    assert!(b.ks.space.translate(&mut b.mem, second_table).is_err());
    for (va, what) in [
        (second_table, "direct map"),
        (VirtAddr(PKMAP_BASE), "pkmap"),
        (VirtAddr(FIXADDR_START), "fixmap"),
    ] {
        assert!(
            matches!(
                b.ks.space.remove_table(&mut b.mem, va),
                Err(MapError::OutOfRange { .. } | MapError::OwnedTable { .. })
            ),
            "{what}: remove_table refused"
        );
    }
    b.ks.space
        .remove_table(&mut b.mem, VirtAddr(EARLY_MAP_BASE))
        .expect("the borrowed early map table")
        .flush(&mut mmu);
}

#[test]
fn an_8_mib_machine_gets_the_documented_directory() {
    let s = sections();
    let l = layout(2048, &s);
    let mut b = build_ok(&l);
    check(&b, &l);
    assert_eq!(b.ks.report.nr_pt_pages, 2 + 2);
    assert_eq!(b.ks.report.pgd, PhysAddr::from_u32(POOL), "the first frame");
    check_access(&mut b);
}

#[test]
fn the_largest_direct_map_covers_896_mib() {
    let s = sections();
    let l = layout(MAX_DIRECT_MAP_PFN.0, &s);
    let mut b = build_ok(&l);
    check(&b, &l);
    assert_eq!(b.ks.report.nr_pt_pages, 224 + 2);
    assert_eq!(b.ks.report.direct_pages, 229_376 - 2);
    check_access(&mut b);
}

#[test]
fn mem_below_the_image_end_still_maps_the_image() {
    let s = sections();
    // `mem=1536K`: RAM ends inside .text.
    let l = layout(0x180, &s);
    assert_eq!(l.direct_map_end(), Pfn(0x200), "the end of .bss");
    let b = build_ok(&l);
    check(&b, &l);
    assert_eq!(b.ks.report.direct_pages, 0x200 - 2);
}

#[test]
fn random_layouts_hold_every_region() {
    for seed in [1, 2, 3, 0x5EED] {
        let mut rng = Rng::new(seed);
        let max_low_pfn = rng.range(0, u64::from(MAX_DIRECT_MAP_PFN.0) + 1) as u32;
        let mut s = sections();
        // A .bss of random length (the guard and early table stay inside),
        // and a .boot of random length within its page.
        s[4].end = PhysAddr(rng.range(0x001E_0001, 0x0040_0000));
        s[0].end = PhysAddr(0x0010_0000 + rng.range(1, 0x1000));
        let l = layout(max_low_pfn, &s);
        let b = build_ok(&l);
        check(&b, &l);
    }
}

#[test]
fn a_direct_map_past_896_mib_is_refused_before_allocating() {
    let s = sections();
    let l = layout(MAX_DIRECT_MAP_PFN.0 + 1, &s);
    let (r, _, frames) = build(&l, POOL_FRAMES);
    let end = Pfn(MAX_DIRECT_MAP_PFN.0 + 1);
    assert_eq!(r.err(), Some(KernelSpaceError::TooLarge { end }));
    assert!(frames.live.is_empty());
}

#[test]
fn a_frame_shared_by_rodata_and_data_is_refused() {
    let mut s = sections();
    s[2].end = PhysAddr(0x001A_0800);
    s[3].start = PhysAddr(0x001A_0800);
    let l = layout(2048, &s);
    let (r, _, frames) = build(&l, POOL_FRAMES);
    assert_eq!(
        r.err(),
        Some(KernelSpaceError::SharedPage {
            pfn: Pfn(0x1A0),
            read_only: ".rodata",
            writable: ".data"
        })
    );
    assert!(frames.live.is_empty());
}

/// The early map table's address is a 64-bit [`PhysAddr`]; one no
/// directory entry can hold is refused, not truncated.
#[test]
fn an_early_map_table_above_4_gib_is_refused() {
    let s = sections();
    let mut l = layout(2048, &s);
    l.early_map_table = PhysAddr(1 << 32);
    let (r, _, _) = build(&l, POOL_FRAMES);
    assert_eq!(
        r.err(),
        Some(KernelSpaceError::Map {
            step: BuildStep::EarlyMapWindow,
            err: MapError::FrameOutOfRange {
                pa: PhysAddr(1 << 32)
            },
        })
    );
}

#[test]
fn every_allocation_failure_is_an_error() {
    let s = sections();
    let l = layout(2048, &s);
    // pgd, 2 direct-map tables, pkmap, fixmap: 5 frames.
    let steps = [
        (BuildStep::PageDirectory, PAGE_OFFSET),
        (BuildStep::DirectMap, PAGE_OFFSET),
        (BuildStep::DirectMap, PAGE_OFFSET + (4 << 20)),
        (BuildStep::PkmapTable, PKMAP_BASE),
        (BuildStep::FixmapTable, FIXADDR_START),
    ];
    for (pool, (step, va)) in steps.into_iter().enumerate() {
        let (r, _, frames) = build(&l, pool as u32);
        let err = MapError::NoMemory { va: VirtAddr(va) };
        assert_eq!(
            r.err(),
            Some(KernelSpaceError::Map { step, err }),
            "{pool} frames"
        );
        assert_eq!(frames.nr_free(), 0);
    }
    assert!(build(&l, steps.len() as u32).0.is_ok());
}

#[test]
fn errors_name_the_step() {
    let cases = [
        (
            KernelSpaceError::Map {
                step: BuildStep::DirectMap,
                err: MapError::NoMemory {
                    va: VirtAddr(0xC040_0000),
                },
            },
            "direct map: no memory for a page table to map va 0xc0400000",
        ),
        (
            KernelSpaceError::Map {
                step: BuildStep::EarlyMapWindow,
                err: MapError::AlreadyMapped {
                    va: VirtAddr(EARLY_MAP_BASE),
                    pa: PhysAddr(0x1000),
                },
            },
            "early map window: va 0xff800000 is already mapped (to pa 0x00001000)",
        ),
        (
            KernelSpaceError::TooLarge { end: Pfn(0x38001) },
            "direct map: frames [0, 0x38001) exceed the 896 MiB of low memory",
        ),
        (
            KernelSpaceError::SharedPage {
                pfn: Pfn(0x1a0),
                read_only: ".rodata",
                writable: ".data",
            },
            "direct map: frame 0x1a0 holds read-only .rodata and writable .data",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
    for step in [
        BuildStep::PageDirectory,
        BuildStep::PkmapTable,
        BuildStep::FixmapTable,
    ] {
        assert!(!step.name().is_empty());
    }
    assert_eq!(pdx(FIXADDR_START), FIXMAP_PDE);
}

// ---------------------------------------------------------------------------
// Every paging mode, checked by the emulated MMU of that mode
// ---------------------------------------------------------------------------

use crate::mm::paging::Format;
use crate::test_support::mmu::{Access, AccessKind};

/// Builds the 32 MiB directory in `mode`, loads it into an MMU of that mode
/// (CR4.PSE, CR4.PAE with its PDPTE registers, CR4.PGE, EFER.NXE as the
/// kernel sets them) and checks every page of the direct map and the early
/// map window through the MMU's own walk: frames, read-only code and
/// rodata, holes, NX on data with NX, and global entries surviving a CR3
/// reload with PGE. Returns the build's report.
fn check_mode(mode: PagingMode) -> KernelSpaceReport {
    let secs = sections();
    let mut l = layout(0x2000, &secs);
    l.mode = mode;
    let mut b = build_ok(&l);
    let pgd = b.ks.report.pgd;
    let mut mmu = match mode.format {
        Format::TwoLevel => Mmu::new(pgd, true).with_pse(mode.large_pages),
        Format::Pae => Mmu::new_pae(&b.mem, pgd, true, mode.nx).expect("PDPTEs load"),
    }
    .with_pge(mode.global);
    let acc = |kind| Access { kind, user: false };
    for pfn in 0..0x2000u32 {
        let va = PAGE_OFFSET + (pfn << 12);
        let pa = u64::from(pfn) << 12;
        let read = mmu.probe_as(&b.mem, va, acc(AccessKind::Read));
        if pfn == 0 || Pfn(pfn) == GUARD {
            assert!(read.is_err(), "{mode}: hole pfn {pfn:#x} mapped");
            continue;
        }
        assert_eq!(
            mmu.translate(&b.mem, va, acc(AccessKind::Read)),
            Ok(pa),
            "{mode}: pfn {pfn:#x}"
        );
        let ro = l.is_read_only(Pfn(pfn));
        let write = mmu.probe_as(&b.mem, va, acc(AccessKind::Write));
        assert_eq!(write.is_err(), ro, "{mode}: write to pfn {pfn:#x}");
        let fetch = mmu.probe_as(&b.mem, va, acc(AccessKind::Fetch));
        let exec = !mode.nx || l.is_executable(Pfn(pfn));
        match fetch {
            Ok(_) => assert!(exec, "{mode}: data pfn {pfn:#x} executable"),
            Err(f) => {
                assert!(!exec, "{mode}: code pfn {pfn:#x} not executable");
                assert!(f.present && f.instr, "{mode}: NX fault {f:?}");
            }
        }
    }
    for (slot, pa) in EARLY_SLOTS {
        let va = EARLY_MAP_BASE + ((slot as u32) << 12);
        assert_eq!(
            mmu.translate(&b.mem, va, acc(AccessKind::Read)),
            Ok(u64::from(pa)),
            "{mode}: early slot {slot}"
        );
    }
    // A CR3 reload keeps global translations only.
    let text = PAGE_OFFSET + 0x0010_1000;
    mmu.translate(&b.mem, text, acc(AccessKind::Read)).unwrap();
    mmu.load_cr3(&b.mem, pgd).unwrap();
    assert_eq!(
        mmu.cached(text),
        mode.global,
        "{mode}: global entry after a CR3 reload"
    );
    let _ = &mut b;
    b.ks.report
}

#[test]
fn every_mode_maps_the_same_kernel_as_its_mmu_sees_it() {
    let legacy = check_mode(PagingMode::LEGACY);
    let pse = check_mode(PagingMode {
        format: Format::TwoLevel,
        large_pages: true,
        global: true,
        nx: false,
    });
    let pae = check_mode(PagingMode {
        format: Format::Pae,
        large_pages: false,
        global: false,
        nx: false,
    });
    let pae_large_nx = check_mode(PagingMode {
        format: Format::Pae,
        large_pages: true,
        global: true,
        nx: true,
    });
    // 32 MiB: 8 tables of 4 KiB pages; with PSE the first 4 MiB (holes,
    // read-only code) keeps a table and 7 are 4 MiB pages.
    assert_eq!((legacy.large_pages, pse.large_pages), (0, 7));
    assert_eq!(legacy.nr_pt_pages - pse.nr_pt_pages, 7);
    // PAE: 512-entry tables, twice as many for 4 KiB pages, one page
    // directory; 2 MiB pages leave one table (the first 2 MiB).
    assert_eq!(pae.nr_pd_pages, 1);
    assert_eq!(pae.nr_pt_pages - pae_large_nx.nr_pt_pages, 15);
    assert_eq!(pae_large_nx.large_pages, 15);
    assert_eq!(legacy.direct_pages, pae_large_nx.direct_pages);
}
