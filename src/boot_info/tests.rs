//! Boot information built byte by byte, well-formed and malformed.

use super::*;
use crate::mm::layout::PAGE_SHIFT;

/// Builds a Multiboot2 information structure (spec §3.6.1–§3.6.2): an 8-byte
/// header `{ total_size: u32, reserved: u32 }`, then tags `{ type: u32,
/// size: u32, payload }`, each padded to 8 bytes, ending with tag type 0.
pub(crate) struct Mb2Builder {
    bytes: Vec<u8>,
}

impl Mb2Builder {
    pub(crate) fn new() -> Self {
        Mb2Builder { bytes: vec![0; 8] }
    }

    /// A tag with `size` = 8 + payload length.
    pub(crate) fn tag(self, typ: u32, payload: &[u8]) -> Self {
        let size = 8 + payload.len() as u32;
        self.tag_with_size(typ, size, payload)
    }

    /// A tag whose `size` field says `size`, whatever the payload.
    pub(crate) fn tag_with_size(mut self, typ: u32, size: u32, payload: &[u8]) -> Self {
        self.bytes.extend_from_slice(&typ.to_le_bytes());
        self.bytes.extend_from_slice(&size.to_le_bytes());
        self.bytes.extend_from_slice(payload);
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        self
    }

    /// Tag 1 (§3.6.5) or 2 (§3.6.9): a NUL-terminated string.
    pub(crate) fn string_tag(self, typ: u32, s: &str) -> Self {
        let mut payload = s.as_bytes().to_vec();
        payload.push(0);
        self.tag(typ, &payload)
    }

    /// Tag 4 (§3.6.3): mem_lower, mem_upper in KiB.
    pub(crate) fn meminfo(self, lower: u32, upper: u32) -> Self {
        self.tag(4, &[lower.to_le_bytes(), upper.to_le_bytes()].concat())
    }

    /// Tag 6 (§3.6.8): entry_size, entry_version 0, entries (base, length,
    /// type, reserved), each padded to `entry_size`.
    pub(crate) fn mmap(self, entry_size: u32, entries: &[(u64, u64, u32)]) -> Self {
        let mut payload = [entry_size.to_le_bytes(), 0u32.to_le_bytes()].concat();
        for &(base, length, typ) in entries {
            let mut raw = [base.to_le_bytes(), length.to_le_bytes()].concat();
            raw.extend_from_slice(&typ.to_le_bytes());
            raw.resize(entry_size as usize, 0);
            payload.extend_from_slice(&raw);
        }
        self.tag(6, &payload)
    }

    /// Tag 3 (§3.6.6): mod_start, mod_end, string.
    pub(crate) fn module(self, start: u32, end: u32, s: &str) -> Self {
        let mut payload = [start.to_le_bytes(), end.to_le_bytes()].concat();
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.tag(3, &payload)
    }

    /// Tag 9 (§3.6.7): num, entsize, shndx (u32 each, as GRUB writes them),
    /// then `num * entsize` bytes of headers.
    pub(crate) fn elf_sections(self, num: u32, entsize: u32, shndx: u32) -> Self {
        let mut payload = [
            num.to_le_bytes(),
            entsize.to_le_bytes(),
            shndx.to_le_bytes(),
        ]
        .concat();
        payload.resize(12 + (num * entsize) as usize, 0);
        self.tag(9, &payload)
    }

    /// Fills in total_size without adding an end tag.
    pub(crate) fn build_without_end(self) -> Aligned {
        let mut b = self.bytes;
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_le_bytes());
        Aligned::new(&b)
    }

    /// Appends the end tag and fills in total_size.
    pub(crate) fn build(self) -> Aligned {
        self.tag(0, &[]).build_without_end()
    }
}

/// Bytes at an 8-byte aligned address, as a loader provides them.
pub(crate) struct Aligned(Vec<u64>, usize);

impl Aligned {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (i, b) in bytes.iter().enumerate() {
            words[i / 8] |= u64::from(*b) << (8 * (i % 8));
        }
        Aligned(words, bytes.len())
    }
    #[allow(unsafe_code, reason = "reinterprets the aligned words as bytes")]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: every bit pattern is a valid u8, and u8 has alignment 1.
        let (head, body, tail) = unsafe { self.0.align_to::<u8>() };
        assert!(head.is_empty() && tail.is_empty());
        &body[..self.1]
    }
    /// The bytes with `f` applied, still aligned.
    pub(crate) fn patched(&self, f: impl FnOnce(&mut Vec<u8>)) -> Aligned {
        let mut raw = self.bytes().to_vec();
        f(&mut raw);
        Aligned::new(&raw)
    }
}

fn qemu_like() -> Mb2Builder {
    Mb2Builder::new()
        .string_tag(1, "selftest loglevel=debug")
        .string_tag(2, "GRUB 2.06")
        .meminfo(639, 130_048)
        .mmap(
            24,
            &[
                (0, 0x9fc00, 1),
                (0x9fc00, 0x400, 2),
                (0xf0000, 0x10000, 2),
                (0x10_0000, 0x7ee_0000, 1),
                (0x7fe_0000, 0x2_0000, 2),
                (0xfffc_0000, 0x4_0000, 2),
            ],
        )
}

#[test]
fn magic_selects_the_protocol() {
    assert_eq!(Protocol::from_magic(0x36D7_6289), Ok(Protocol::Multiboot2));
    assert_eq!(Protocol::from_magic(0x2BAD_B002), Ok(Protocol::Multiboot1));
    let err = Protocol::from_magic(0xDEAD_BEEF).unwrap_err();
    assert_eq!(err, BootInfoError::BadMagic(0xDEAD_BEEF));
    assert!(
        err.to_string()
            .starts_with("bad boot magic 0xdeadbeef in EAX")
    );
}

#[test]
fn multiboot2_gives_every_field() {
    let mbi = qemu_like()
        .module(0x20_0000, 0x20_1234, "mod1 first")
        .module(0x20_2000, 0x20_2000, "empty")
        .elf_sections(3, 40, 2)
        .build();
    let info = mb2::parse(PhysAddr(0x0010_a000), mbi.bytes()).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot2);
    assert_eq!(info.cmdline, b"selftest loglevel=debug");
    assert_eq!(info.loader_name, Some("GRUB 2.06"));
    assert_eq!(
        info.meminfo,
        Some(BasicMemInfo {
            mem_lower_kib: 639,
            mem_upper_kib: 130_048
        })
    );
    let map = info.memory_map.as_ref().unwrap();
    assert_eq!(map.len(), 6);
    assert_eq!(
        map[3],
        MemoryMapEntry {
            base: PhysAddr(0x10_0000),
            length: 0x7ee_0000,
            typ: 1
        }
    );
    assert_eq!(info.modules.len(), 2);
    assert_eq!(
        info.modules[0],
        Module {
            start: PhysAddr(0x20_0000),
            end: PhysAddr(0x20_1234),
            string: "mod1 first"
        }
    );
    let elf = info.elf_sections.unwrap();
    assert_eq!((elf.num, elf.entsize, elf.shndx), (3, 40, 2));
    assert_eq!(info.info_size as usize, mbi.bytes().len());
    assert_eq!(
        info.boot_data.as_slice(),
        [BootData {
            what: "Multiboot2 information",
            base: PhysAddr(0x0010_a000),
            size: info.info_size
        }]
    );
}

#[test]
fn multiboot2_memory_map_entries_larger_than_24_bytes_are_read() {
    let mbi = Mb2Builder::new()
        .mmap(32, &[(0, 0x9fc00, 1), (0x10_0000, 0x100_0000, 1)])
        .build();
    let info = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap();
    let map = info.memory_map.unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map[1].length, 0x100_0000);
}

#[test]
fn multiboot2_meminfo_alone_is_enough() {
    let mbi = Mb2Builder::new().meminfo(639, 1024).build();
    let info = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap();
    assert_eq!(info.cmdline, b"");
    assert_eq!(info.loader_name, None);
    assert!(info.memory_map.is_none());
}

#[test]
fn multiboot2_without_memory_information_is_rejected() {
    let mbi = Mb2Builder::new().string_tag(1, "x").build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::NoMemoryInfo)
    );
}

#[test]
fn multiboot2_bad_total_size_is_rejected() {
    assert_eq!(
        multiboot2_total_size(&[8, 0, 0, 0, 0, 0, 0, 0]),
        Err(BootInfoError::BadTotalSize(8))
    );
    assert_eq!(
        multiboot2_total_size(&[0, 0, 0, 0x40, 0, 0, 0, 0]),
        Err(BootInfoError::BadTotalSize(0x4000_0000))
    );
    assert_eq!(
        multiboot2_total_size(&[20, 0, 0, 0, 0, 0, 0, 0]),
        Err(BootInfoError::BadTotalSize(20))
    );
    assert!(matches!(
        multiboot2_total_size(&[16, 0]),
        Err(BootInfoError::Truncated { .. })
    ));
}

#[test]
fn multiboot2_structure_shorter_than_total_size_is_truncated() {
    let mbi = qemu_like().build();
    let bytes = mbi.bytes();
    let short = Aligned::new(&bytes[..bytes.len() - 8]);
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), short.bytes()),
        Err(BootInfoError::Truncated {
            needed: bytes.len(),
            available: bytes.len() - 8
        })
    );
}

#[test]
fn multiboot2_tag_smaller_than_a_header_is_rejected() {
    let mbi = Mb2Builder::new().tag_with_size(21, 4, &[]).build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::TagTooSmall {
            typ: 21,
            size: 4,
            offset: 8
        })
    );
}

#[test]
fn multiboot2_tag_smaller_than_its_type_needs_is_rejected() {
    // A memory-map tag of 12 bytes has no room for entry_size/entry_version.
    let mbi = Mb2Builder::new().tag(6, &[24, 0, 0, 0]).build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::TagTooSmall {
            typ: 6,
            size: 12,
            offset: 8
        })
    );
}

#[test]
fn multiboot2_tag_running_past_the_end_is_rejected() {
    let mbi = Mb2Builder::new()
        .meminfo(1, 2)
        .string_tag(1, "abc")
        .build()
        .patched(|raw| raw[28..32].copy_from_slice(&4096u32.to_le_bytes()));
    assert!(matches!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::TagPastEnd {
            typ: 1,
            size: 4096,
            offset: 24,
            ..
        })
    ));
}

#[test]
fn multiboot2_missing_end_tag_is_rejected() {
    let mbi = Mb2Builder::new().meminfo(1, 2).build_without_end();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::MissingEndTag)
    );
    // An end tag turned into another type: the walk runs out of bytes.
    let mbi = Mb2Builder::new().meminfo(1, 2).build().patched(|raw| {
        let n = raw.len();
        raw[n - 8..n - 4].copy_from_slice(&5u32.to_le_bytes());
    });
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::MissingEndTag)
    );
}

#[test]
fn multiboot2_tag_size_near_4_gib_is_past_the_end_not_a_wrap() {
    // On i386, offset + size would wrap a 32-bit usize; the walk must still
    // call it past the end.
    for size in [u32::MAX, u32::MAX - 7, 0xFFFF_FFF8] {
        let mbi = Mb2Builder::new().tag_with_size(21, size, &[]).build();
        assert!(
            matches!(
                mb2::parse(PhysAddr(0x1000), mbi.bytes()),
                Err(BootInfoError::TagPastEnd { typ: 21, .. })
            ),
            "size {size:#x}"
        );
    }
}

#[test]
fn multiboot2_meminfo_tag_longer_than_16_bytes_is_read() {
    let mbi = Mb2Builder::new()
        .tag(
            4,
            &[639u32.to_le_bytes(), 7168u32.to_le_bytes(), [0; 4], [0; 4]].concat(),
        )
        .build();
    let info = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap();
    assert_eq!(info.meminfo.unwrap().mem_upper_kib, 7168);
}

#[test]
fn multiboot2_information_reaching_past_4_gib_is_refused() {
    let mbi = qemu_like().build();
    assert!(matches!(
        mb2::parse(PhysAddr(0xFFFF_FFC0), mbi.bytes()),
        Err(BootInfoError::Unmappable {
            pa: PhysAddr(0xFFFF_FFC0),
            ..
        })
    ));
}

#[test]
fn multiboot2_memory_map_entry_size_below_24_is_rejected() {
    for size in [0, 20, 28] {
        let mbi = Mb2Builder::new().mmap(size, &[]).build();
        assert_eq!(
            mb2::parse(PhysAddr(0x1000), mbi.bytes()),
            Err(BootInfoError::BadMmapEntrySize(size)),
            "entry_size {size}"
        );
    }
}

#[test]
fn multiboot2_string_without_nul_is_called_unterminated() {
    // Issue 13: it used to be reported as "not a valid UTF-8 string".
    for (typ, what) in [(1, "command line"), (2, "boot loader name")] {
        let mbi = Mb2Builder::new().meminfo(1, 2).tag(typ, b"abcd").build();
        let err = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap_err();
        assert_eq!(err, BootInfoError::Unterminated(what));
        assert_eq!(
            err.to_string(),
            format!("Multiboot2 {what} tag has no NUL to end its string")
        );
    }
    let mut module = [0x1000u32.to_le_bytes(), 0x2000u32.to_le_bytes()].concat();
    module.extend_from_slice(b"name");
    let mbi = Mb2Builder::new().meminfo(1, 2).tag(3, &module).build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::Unterminated("module string"))
    );
}

#[test]
fn multiboot2_bytes_after_the_end_tag_are_refused_by_our_validator() {
    // Issue 13: the multiboot2 crate refused these with a vague message.
    let good = Mb2Builder::new().meminfo(1, 2).build();
    let junk = good.patched(|raw| {
        raw.extend_from_slice(&[0xAA; 16]);
        let total = raw.len() as u32;
        raw[0..4].copy_from_slice(&total.to_le_bytes());
    });
    let err = mb2::validate(junk.bytes()).unwrap_err();
    assert_eq!(
        err,
        BootInfoError::TrailingBytes {
            offset: 24,
            total: 48
        }
    );
    assert_eq!(
        err.to_string(),
        "Multiboot2 end tag at offset 24 is followed by 16 more bytes before total_size 48"
    );
    assert_eq!(mb2::parse(PhysAddr(0x1000), junk.bytes()), Err(err));
}

#[test]
fn multiboot2_second_memory_map_tag_is_counted_and_the_first_used() {
    let mbi = Mb2Builder::new()
        .mmap(24, &[(0, 0x9_f000, 1)])
        .mmap(24, &[(0, 0x1000, 2), (0x10_0000, 0x100_0000, 1)])
        .build();
    let info = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap();
    assert_eq!(info.mmap_tags, 2);
    assert_eq!(
        info.memory_map.unwrap().as_slice(),
        [MemoryMapEntry {
            base: PhysAddr(0),
            length: 0x9_f000,
            typ: 1
        }]
    );
}

#[test]
fn multiboot2_elf_section_table_must_fit_its_tag() {
    let mbi = Mb2Builder::new()
        .meminfo(1, 2)
        .elf_sections(3, 40, 2)
        .build();
    assert!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes())
            .unwrap()
            .elf_sections
            .is_some()
    );
    // num = entsize = 0xffffffff in a tag of 20 bytes.
    let payload = [
        u32::MAX.to_le_bytes(),
        u32::MAX.to_le_bytes(),
        0u32.to_le_bytes(),
    ]
    .concat();
    let mbi = Mb2Builder::new().meminfo(1, 2).tag(9, &payload).build();
    assert!(matches!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::TagPastEnd { typ: 9, .. })
    ));
}

#[test]
fn multiboot2_module_ending_before_its_start_is_rejected() {
    let mbi = Mb2Builder::new()
        .meminfo(1, 2)
        .module(0x3000, 0x2000, "m")
        .build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), mbi.bytes()),
        Err(BootInfoError::BadModule {
            start: PhysAddr(0x3000),
            end: PhysAddr(0x2000)
        })
    );
}

#[test]
fn multiboot2_memory_map_entries_past_128_are_counted_and_too_many_modules_refused() {
    // Issue 13: a map of 300 entries (UEFI firmware passes hundreds) used to
    // refuse the boot; the first 128 are kept, the rest counted.
    let entries: Vec<_> = (0..300u64).map(|i| (i << PAGE_SHIFT, 0x1000, 1)).collect();
    let mbi = Mb2Builder::new().mmap(24, &entries).build();
    let info = mb2::parse(PhysAddr(0x1000), mbi.bytes()).unwrap();
    let map = info.memory_map.unwrap();
    assert_eq!((map.len(), info.mmap_ignored), (128, 172));
    assert_eq!(map[127].base, PhysAddr(127 << PAGE_SHIFT));
    let mut b = Mb2Builder::new().meminfo(1, 2);
    for i in 0..17 {
        b = b.module(i << PAGE_SHIFT, (i << PAGE_SHIFT) + 1, "m");
    }
    assert_eq!(
        mb2::parse(PhysAddr(0x1000), b.build().bytes()),
        Err(BootInfoError::TooMany {
            what: "modules",
            max: 16
        })
    );
}

#[test]
fn multiboot2_misaligned_address_is_rejected() {
    let mbi = qemu_like().build();
    assert_eq!(
        mb2::parse(PhysAddr(0x1004), mbi.bytes()),
        Err(BootInfoError::Misaligned {
            addr: PhysAddr(0x1004),
            align: 8
        })
    );
}

#[test]
fn every_error_names_its_problem() {
    let text = BootInfoError::TagPastEnd {
        typ: 6,
        size: 400,
        offset: 56,
        total: 200,
    }
    .to_string();
    assert_eq!(
        text,
        "Multiboot2 tag type 6 at offset 56 (size 400) runs past total_size 200"
    );
    assert_eq!(
        BootInfoError::BadMmapEntrySize(20).to_string(),
        "memory-map entry size 20 is invalid (Multiboot2: at least 24 and a multiple of 8; Multiboot 1: at least 20)"
    );
}

// ---- Multiboot 1 -----------------------------------------------------------

/// Physical memory for Multiboot 1 tests: a few buffers at fake addresses.
struct LoaderMemory(Vec<(u32, Vec<u8>)>);

impl LoaderMemory {
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], BootInfoError> {
        for (base, bytes) in &self.0 {
            let base = PhysAddr::from_u32(*base);
            if (base..base + bytes.len() as u64).contains(&pa) {
                let from = (pa - base) as usize;
                return Ok(&bytes[from..bytes.len().min(from + len)]);
            }
        }
        Err(BootInfoError::Unmappable { pa, len })
    }
}

fn mb1_mmap_entry(size: u32, base: u64, length: u64, typ: u32) -> Vec<u8> {
    let mut e = size.to_le_bytes().to_vec();
    e.extend_from_slice(&base.to_le_bytes());
    e.extend_from_slice(&length.to_le_bytes());
    e.extend_from_slice(&typ.to_le_bytes());
    e.resize(4 + size as usize, 0);
    e
}

/// QEMU-like Multiboot 1 information at 0x9500: flags, meminfo, cmdline at
/// 0x9000, loader name at 0x9100, two modules listed at 0x9200 (strings at
/// 0x9300), ELF headers, mmap of 3 entries at 0x9400.
fn mb1_world(flags: u32, mmap: Vec<u8>) -> LoaderMemory {
    let mut info = vec![0u8; MULTIBOOT1_INFO_SIZE];
    let mut put = |off: usize, v: u32| info[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put(0, flags);
    put(4, 639);
    put(8, 130_048);
    put(16, 0x9000);
    put(20, 2);
    put(24, 0x9200);
    put(28, 12);
    put(32, 40);
    put(36, 0x9800);
    put(40, 11);
    put(44, mmap.len() as u32);
    put(48, 0x9400);
    put(64, 0x9100);
    let mods: Vec<u8> = [
        0x20_0000u32,
        0x20_0100,
        0x9300,
        0,
        0x20_1000,
        0x20_1000,
        0,
        0,
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect();
    LoaderMemory(vec![
        (0x9000, b"/boot/kernel.elf selftest\0".to_vec()),
        (0x9100, b"qemu\0".to_vec()),
        (0x9200, mods),
        (0x9300, b"initrd.img\0".to_vec()),
        (0x9400, mmap),
        (0x9500, info),
        (0x9600, b"cut without a terminator".to_vec()),
        (0x9700, b"bad \xff utf-8\0".to_vec()),
    ])
}

fn qemu_mb1_mmap() -> Vec<u8> {
    [
        mb1_mmap_entry(20, 0, 0x9fc00, 1),
        mb1_mmap_entry(20, 0x9fc00, 0x400, 2),
        mb1_mmap_entry(20, 0x10_0000, 0x7ee_0000, 1),
    ]
    .concat()
}

const ALL_MB1: u32 = mb1::flag::MEM
    | mb1::flag::CMDLINE
    | mb1::flag::MODS
    | mb1::flag::ELF_SHDR
    | mb1::flag::MMAP
    | mb1::flag::BOOT_LOADER_NAME;

#[test]
fn multiboot1_reads_fields_that_flags_mark_valid() {
    let world = mb1_world(ALL_MB1, qemu_mb1_mmap());
    let info = mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot1);
    assert_eq!(info.cmdline, b"/boot/kernel.elf selftest");
    assert_eq!(info.loader_name, Some("qemu"));
    assert_eq!(info.meminfo.unwrap().mem_upper_kib, 130_048);
    assert_eq!(info.memory_map.as_ref().unwrap().len(), 3);
    assert_eq!(info.memory_map.as_ref().unwrap()[2].length, 0x7ee_0000);
    assert_eq!(
        info.modules.as_slice(),
        [
            Module {
                start: PhysAddr(0x20_0000),
                end: PhysAddr(0x20_0100),
                string: "initrd.img"
            },
            Module {
                start: PhysAddr(0x20_1000),
                end: PhysAddr(0x20_1000),
                string: ""
            }
        ]
    );
    assert_eq!(
        info.elf_sections,
        Some(ElfSections {
            num: 12,
            entsize: 40,
            shndx: 11,
            addr: PhysAddr(0x9800)
        })
    );
    let what: Vec<_> = info.boot_data.iter().map(|d| (d.what, d.base.0)).collect();
    assert_eq!(
        what,
        [
            ("Multiboot 1 information", 0x9500),
            ("command line", 0x9000),
            ("boot loader name", 0x9100),
            ("Multiboot 1 module list", 0x9200),
            ("module string", 0x9300),
            ("ELF section headers", 0x9800),
            ("Multiboot 1 memory map", 0x9400),
        ]
    );
}

#[test]
fn multiboot1_fields_without_their_flag_are_ignored() {
    let world = mb1_world(mb1::flag::MEM, qemu_mb1_mmap());
    let info = mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)).unwrap();
    assert_eq!(info.cmdline, b"");
    assert_eq!(info.loader_name, None);
    assert!(info.memory_map.is_none() && info.modules.is_empty());
    assert_eq!(info.elf_sections, None);
}

#[test]
fn multiboot1_without_memory_information_is_rejected() {
    let world = mb1_world(mb1::flag::CMDLINE, vec![]);
    assert_eq!(
        mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)),
        Err(BootInfoError::NoMemoryInfo)
    );
}

#[test]
fn multiboot1_memory_map_entry_errors() {
    // size 16 < 20
    let world = mb1_world(ALL_MB1, mb1_mmap_entry(16, 0, 0x1000, 1));
    assert_eq!(
        mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)),
        Err(BootInfoError::BadMmapEntrySize(16))
    );
    // The second entry's size runs past mmap_length.
    let mut mmap = mb1_mmap_entry(20, 0, 0x1000, 1);
    mmap.extend_from_slice(&mb1_mmap_entry(40, 0x1000, 0x1000, 1)[..24]);
    let world = mb1_world(ALL_MB1, mmap);
    assert_eq!(
        mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)),
        Err(BootInfoError::MmapEntryPastEnd {
            offset: 24,
            length: 48
        })
    );
    // A larger-than-basic entry (size 28) is stepped over correctly.
    let mmap = [
        mb1_mmap_entry(28, 0, 0x1000, 1),
        mb1_mmap_entry(20, 0x10_0000, 0x1000, 1),
    ]
    .concat();
    let (map, ignored) = mb1::parse_mmap(&mmap, mmap.len() as u32).unwrap();
    assert_eq!((map[1].base, ignored), (PhysAddr(0x10_0000), 0));
    // An empty map is an empty map.
    assert!(mb1::parse_mmap(&[], 0).unwrap().0.is_empty());
    // Past 128 entries: kept up to 128, the rest walked and counted.
    let many: Vec<u8> = (0..200u64)
        .flat_map(|i| mb1_mmap_entry(20, i << PAGE_SHIFT, 0x1000, 1))
        .collect();
    let (map, ignored) = mb1::parse_mmap(&many, many.len() as u32).unwrap();
    assert_eq!((map.len(), ignored), (128, 72));
    // A size near 2^32 is past the end, not a wrap (i386 usize is 32 bits).
    let huge = mb1_mmap_entry(20, 0, 0x1000, 1);
    let mut huge_size = huge.clone();
    huge_size[0..4].copy_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
    assert_eq!(
        mb1::parse_mmap(&huge_size, 24),
        Err(BootInfoError::MmapEntryPastEnd {
            offset: 0,
            length: 24
        })
    );
    // A buffer shorter than mmap_length is truncated, not silently cut.
    assert_eq!(
        mb1::parse_mmap(&huge, 48),
        Err(BootInfoError::Truncated {
            needed: 48,
            available: 24
        })
    );
}

#[test]
fn multiboot1_structure_errors() {
    let world = mb1_world(ALL_MB1, qemu_mb1_mmap());
    assert_eq!(
        mb1::parse(PhysAddr(0x9502), |pa, len| world.read(pa, len)),
        Err(BootInfoError::Misaligned {
            addr: PhysAddr(0x9502),
            align: 4
        })
    );
    // An address from a 64-bit caller that a 32-bit EBX cannot hold.
    assert_eq!(
        mb1::parse(PhysAddr(1 << 32), |pa, len| world.read(pa, len)),
        Err(BootInfoError::Unmappable {
            pa: PhysAddr(1 << 32),
            len: 72
        })
    );
    let short = LoaderMemory(vec![(0x9500, vec![0; 16])]);
    assert!(matches!(
        mb1::parse(PhysAddr(0x9500), |pa, len| short.read(pa, len)),
        Err(BootInfoError::Truncated { needed: 72, .. })
    ));
}

#[test]
fn multiboot1_command_line_is_cut_at_the_bound_and_kept_raw_if_not_utf8() {
    let mut world = mb1_world(mb1::flag::MEM | mb1::flag::CMDLINE, vec![]);
    world.0[5].1[16..20].copy_from_slice(&0x9600u32.to_le_bytes());
    let info = mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)).unwrap();
    assert_eq!(info.cmdline, b"cut without a terminator");
    // Issue 13: not UTF-8 used to refuse the boot; the raw bytes are passed
    // on and the kernel's copy replaces the bad one (cmdline::copy_lossy).
    let mut world = mb1_world(mb1::flag::MEM | mb1::flag::CMDLINE, vec![]);
    world.0[5].1[16..20].copy_from_slice(&0x9700u32.to_le_bytes());
    let info = mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)).unwrap();
    assert_eq!(info.cmdline, b"bad \xff utf-8");
}

#[test]
fn multiboot1_tables_larger_than_their_limits_are_refused_before_reading() {
    // Issue 13: num = entsize = 0xffffffff made the kernel reserve and read
    // [2 MiB, 4 GiB); a huge mmap_length would be mapped and walked.
    let mut world = mb1_world(mb1::flag::MEM | mb1::flag::ELF_SHDR, vec![]);
    world.0[5].1[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    world.0[5].1[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = mb1::parse(PhysAddr(0x9500), |pa, len| world.read(pa, len)).unwrap_err();
    assert_eq!(
        err,
        BootInfoError::TooLarge {
            what: "ELF section headers",
            size: u64::from(u32::MAX) * u64::from(u32::MAX),
            max: ELF_SECTIONS_MAX
        }
    );
    let mut world = mb1_world(mb1::flag::MEM | mb1::flag::MMAP, vec![]);
    world.0[5].1[44..48].copy_from_slice(&0x1000_0000u32.to_le_bytes());
    let mut reads = 0;
    let err = mb1::parse(PhysAddr(0x9500), |pa, len| {
        reads += usize::from(pa == PhysAddr(0x9400));
        world.read(pa, len)
    })
    .unwrap_err();
    assert_eq!(reads, 0, "the map buffer must not be read");
    assert_eq!(
        err.to_string(),
        "Multiboot 1 memory map of 268435456 bytes is larger than the 65536-byte limit"
    );
}
