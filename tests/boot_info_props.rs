//! Property tests (structured fuzzing) of everything that reads what the
//! boot loader hands over: the Multiboot2 and Multiboot 1 parsers, the
//! memory-map sanitizer, the loader-range checks, memblock setup and the
//! command line.
//!
//! Inputs are the real fixtures in `tests/data` (GRUB and QEMU captures)
//! with a few structured mutations each: bytes and 32-bit fields overwritten
//! with values that matter (0, 1, all ones, sizes, addresses near 4 GiB),
//! truncation, growth. Besides "no panic, no hang", each property checks
//! meaning, e.g. that no byte becomes usable RAM unless a type-1 entry of
//! the input says so and no other entry covers it (no phantom RAM).
//!
//! `make test` runs proptest's default number of cases per property (256);
//! `make fuzz` runs many more (`PROPTEST_CASES`, in release mode).

mod common;
use common::{FakeMem, aligned, as_bytes};
use kernel::addr::PhysAddr;
use kernel::boot_info::memmap::{self, E820_TYPE_RAM, FOUR_GIB, PhysLimit, SanitizedMap};
use kernel::boot_info::ranges::{self, KernelSection};
use kernel::boot_info::{BootInfo, BootInfoError, MemoryMapEntry, mb1, mb2};
use kernel::cmdline;
use kernel::mm::memblock::{Memblock, MemblockRegion};
use kernel::mm::setup::{self, KernelImage};
use proptest::prelude::*;

const MB2_FIXTURES: [&[u8]; 5] = [
    include_bytes!("data/grub-mb2-8M.mbi"),
    include_bytes!("data/grub-mb2-128M.mbi"),
    include_bytes!("data/grub-mb2-3G.mbi"),
    include_bytes!("data/grub-mb2-4G.mbi"),
    include_bytes!("data/grub-mb2-128M-cutmem.mbi"),
];
/// QEMU's Multiboot 1 information: the page at 0x9000 (map and info at
/// 0x9500), the page at 0x11f000 (command line, loader name).
const MB1_PAGES: [(u32, &[u8]); 2] = [
    (0x9000, include_bytes!("data/qemu-mb1-128M-0x00009000.bin")),
    (
        0x11_f000,
        include_bytes!("data/qemu-mb1-128M-0x0011f000.bin"),
    ),
];

/// One structured change to a fixture.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite one byte (offset taken modulo the length).
    Byte(usize, u8),
    /// Overwrite a 32-bit field at a 4-aligned offset.
    Word(usize, u32),
    /// Overwrite a 64-bit field at an 8-aligned offset (memory-map
    /// base/length fields).
    Quad(usize, u64),
    /// Cut the input to this fraction (in 1/256) of its length.
    Truncate(u8),
    /// Append bytes.
    Extend(Vec<u8>),
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(8),
        Just(24),
        Just(0x1000),
        Just(0x10_0000),
        Just(0x7fff_ffff),
        Just(0xfebc_0000),
        Just(0xffff_f000),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(0x10_0000),
        Just(FOUR_GIB),
        Just(u64::MAX),
        Just(u64::MAX - 0x8_0000),
        Just(1 << 63),
        any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(o, b)| Mutation::Byte(o, b)),
        4 => (any::<usize>(), interesting_u32()).prop_map(|(o, v)| Mutation::Word(o, v)),
        3 => (any::<usize>(), interesting_u64()).prop_map(|(o, v)| Mutation::Quad(o, v)),
        1 => any::<u8>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
    ]
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let n = bytes.len();
        match m {
            Mutation::Byte(o, b) if n > 0 => bytes[o % n] = *b,
            Mutation::Word(o, v) if n >= 4 => {
                let at = (o % (n / 4)) * 4;
                bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            Mutation::Quad(o, v) if n >= 8 => {
                let at = (o % (n / 8)) * 8;
                bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            Mutation::Truncate(f) => bytes.truncate(n * usize::from(*f) / 256),
            Mutation::Extend(more) => bytes.extend_from_slice(more),
            _ => {}
        }
    }
}

/// Is `[base, end)` covered by the union of `spans`?
fn covered(mut base: u64, end: u64, spans: &[(u64, u64)]) -> bool {
    let mut spans = spans.to_vec();
    spans.sort_unstable();
    for (b, e) in spans {
        if b > base {
            break;
        }
        base = base.max(e);
        if base >= end {
            return true;
        }
    }
    base >= end
}

/// The input's entries as `[base, end)` spans of one type (entries that
/// reach 2^64 are not a claim about any byte).
fn spans_of(entries: &[MemoryMapEntry], keep: impl Fn(u32) -> bool) -> Vec<(u64, u64)> {
    entries
        .iter()
        .filter(|e| e.length > 0 && keep(e.typ))
        .filter_map(|e| e.base.0.checked_add(e.length).map(|end| (e.base.0, end)))
        .collect()
}

/// What the sanitized map and its usable RAM must mean, given the input.
fn check_map_meaning(entries: &[MemoryMapEntry], map: &SanitizedMap) -> Result<(), TestCaseError> {
    for pair in map.regions.windows(2) {
        prop_assert!(
            pair[0].end <= pair[1].base,
            "regions sorted and disjoint: {pair:?}"
        );
        prop_assert!(
            pair[0].end < pair[1].base || pair[0].typ != pair[1].typ,
            "same-type neighbours merged: {pair:?}"
        );
    }
    for r in &map.regions {
        prop_assert!(r.base < r.end, "empty region {r:?}");
        // Each region is covered by input entries of its own type.
        prop_assert!(
            covered(r.base.0, r.end.0, &spans_of(entries, |t| t == r.typ)),
            "region {r:?} is not what the input said"
        );
    }
    for limit in [PhysLimit::NoPae, PhysLimit::Pae] {
        check_usable_ram(entries, map, limit)?;
    }
    Ok(())
}

/// The usable RAM of `map` under `limit`: only input RAM, page-aligned,
/// below the limit, never over a reserved entry.
fn check_usable_ram(
    entries: &[MemoryMapEntry],
    map: &SanitizedMap,
    limit: PhysLimit,
) -> Result<(), TestCaseError> {
    let ram = memmap::usable_ram(map, limit);
    let input_ram = spans_of(entries, |t| t == E820_TYPE_RAM);
    // Entries that beat RAM where they overlap it: Linux's rule is that the
    // larger type wins, so only types above 1 (a type-0 entry loses to RAM).
    let other = spans_of(entries, |t| t > E820_TYPE_RAM);
    let claimed: u128 = input_ram.iter().map(|(b, e)| u128::from(e - b)).sum();
    prop_assert!(
        u128::from(ram.total_bytes()) <= claimed,
        "more RAM than the input's usable entries"
    );
    for &(PhysAddr(b), PhysAddr(e)) in &ram.ranges {
        prop_assert!(b < e && e <= limit.end().0 && b % 4096 == 0 && e % 4096 == 0);
        prop_assert!(covered(b, e, &input_ram), "phantom RAM [{b:#x}, {e:#x})");
        prop_assert!(
            !other.iter().any(|&(ob, oe)| ob < e && b < oe),
            "usable [{b:#x}, {e:#x}) overlaps a reserved entry"
        );
    }
    Ok(())
}

const IMAGE: KernelImage = KernelImage {
    start: PhysAddr(0x10_0000),
    end: PhysAddr(0x16_c000),
};
const SECTIONS: [KernelSection; 2] = [
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

/// Everything the kernel does with parsed information before the buddy
/// allocator, with its meaning checked.
fn check_boot_info(info: &BootInfo<'_>) -> Result<(), TestCaseError> {
    let map = info.sanitized_map();
    if let Some(entries) = &info.memory_map {
        check_map_meaning(entries, &map)?;
    }
    let accepted = ranges::check(info, &map, &SECTIONS).is_ok();
    if accepted {
        // Every range the kernel would read is RAM and not the kernel.
        for r in ranges::loader_ranges(info).filter(|r| r.base < r.end) {
            let ram_spans: Vec<_> = map
                .regions
                .iter()
                .filter(|x| x.typ == E820_TYPE_RAM)
                .map(|x| (x.base.0, x.end.0))
                .collect();
            prop_assert!(
                covered(r.base.0, r.end.0, &ram_spans),
                "{r} accepted outside RAM"
            );
            prop_assert!(
                !SECTIONS.iter().any(|s| r.base < s.end && s.base < r.end),
                "{r} accepted over the kernel"
            );
            prop_assert!(ranges::checksum_step(r.base, r.end - r.base) >= 1);
        }
    }
    let memory = Box::leak(vec![MemblockRegion::default(); 8].into_boxed_slice());
    let reserved = Box::leak(vec![MemblockRegion::default(); 8].into_boxed_slice());
    let mut mb = Memblock::new(memory, reserved);
    // Under PAE, RAM above 4 GiB reaches memblock and the mem_map rule.
    let limit = if info.memory_map.as_ref().is_some_and(|m| m.len() % 2 == 0) {
        PhysLimit::Pae
    } else {
        PhysLimit::NoPae
    };
    if let Ok(setup) =
        setup::memblock_setup(info, None, limit, IMAGE, &mut mb, &mut FakeMem::default())
    {
        prop_assert_eq!(setup.map, map);
        let usable: Vec<_> = setup
            .usable
            .ranges
            .iter()
            .map(|&(b, e)| (b.0, e.0))
            .collect();
        for r in mb.memory.regions() {
            prop_assert!(
                covered(r.base.0, r.end().0, &usable),
                "memblock manages [{:#x}, +{:#x}) outside usable RAM",
                r.base,
                r.size
            );
        }
        prop_assert!(mb.check().is_ok());
        // The mem_map rule holds: at most half of low memory.
        prop_assert!(setup.mem_map.bytes() <= setup.mem_map.budget_bytes);
        prop_assert_eq!(setup.mem_map.max_pfn, setup::max_pfn(&mb));
        let _ = setup::check_free_memory(&mb);
    }
    Ok(())
}

proptest! {
    // Cases from PROPTEST_CASES (default 256); failures are printed, not
    // written into the tree.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn multiboot2_fixtures_mutated(
        fixture in 0..MB2_FIXTURES.len(),
        muts in prop::collection::vec(mutation(), 1..6),
        info_pa in prop_oneof![Just(0x29_5620u32), Just(0x1_0000), Just(0xffff_ff00)],
    ) {
        let mut bytes = MB2_FIXTURES[fixture].to_vec();
        apply(&mut bytes, &muts);
        let words = aligned(&bytes);
        let bytes = as_bytes(&words, bytes.len());
        if let Ok(info) = mb2::parse(PhysAddr::from_u32(info_pa), bytes) {
            prop_assert!(mb2::validate(bytes).is_ok());
            prop_assert!(info.memory_map.is_some() || info.meminfo.is_some());
            check_boot_info(&info)?;
        }
    }

    #[test]
    fn multiboot1_fixtures_mutated(
        page in 0..2usize,
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut pages: Vec<(u32, Vec<u8>)> = MB1_PAGES.iter().map(|(a, p)| (*a, p.to_vec())).collect();
        apply(&mut pages[page].1, &muts);
        pages[page].1.resize(4096, 0);
        let mut reads = 0u64;
        let read = |pa: PhysAddr, len: usize| {
            reads += len as u64;
            for (base, bytes) in &pages {
                let base = PhysAddr::from_u32(*base);
                if (base..base + 4096).contains(&pa) {
                    let from = (pa - base) as usize;
                    return Ok(&bytes[from..bytes.len().min(from + len)]);
                }
            }
            Err(BootInfoError::Unmappable { pa, len })
        };
        let parsed = mb1::parse(PhysAddr(0x9500), read);
        // A bounded amount is ever asked for, whatever the fields say.
        prop_assert!(reads <= 72 + 4 * 2048 + 16 * 16 + 16 * 2048 + (64 << 10));
        if let Ok(info) = parsed {
            check_boot_info(&info)?;
        }
    }

    #[test]
    fn sanitizer_on_any_entries(
        entries in prop::collection::vec(
            (interesting_u64(), interesting_u64(), prop_oneof![Just(1u32), Just(2), Just(3), Just(5), any::<u32>()])
                .prop_map(|(base, length, typ)| MemoryMapEntry { base: PhysAddr(base), length, typ }),
            0..40,
        ),
    ) {
        let map = memmap::sanitize(&entries);
        check_map_meaning(&entries, &map)?;
        let dropped = entries.iter().filter(|e| e.length > 0 && e.base.0.checked_add(e.length).is_none()).count();
        prop_assert_eq!(map.overflowing as usize, dropped);
    }

    #[test]
    fn command_line_bytes(
        raw in prop::collection::vec(prop_oneof![any::<u8>(), Just(b' '), Just(b'='), Just(0xff)], 0..300),
        cap in 0usize..400,
    ) {
        let mut buf = vec![0u8; cap];
        let copy = cmdline::copy_lossy(&raw, &mut buf);
        let text = std::str::from_utf8(&buf[..copy.len]);
        prop_assert!(text.is_ok(), "the copy is UTF-8");
        let text = text.unwrap();
        let lossy = String::from_utf8_lossy(&raw);
        if copy.cut {
            prop_assert!(lossy.starts_with(text));
        } else {
            prop_assert_eq!(text, &*lossy);
            let invalid = raw.utf8_chunks().filter(|c| !c.invalid().is_empty()).count();
            prop_assert_eq!(copy.replaced as usize, invalid);
        }
        let mut warned = Vec::new();
        let _ = cmdline::parse(text, |w| warned.push(w.to_string()));
        let mut words = text.split_ascii_whitespace().peekable();
        if words.peek().is_some_and(|w| w.contains('/') && !w.contains('=')) {
            words.next(); // the kernel's path, skipped by the parser
        }
        for word in words.filter(|w| w.contains('\u{FFFD}')) {
            prop_assert!(warned.iter().any(|w| w.contains(word)), "'{}' not warned about", word);
        }
    }
}
