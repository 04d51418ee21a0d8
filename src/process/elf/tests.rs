//! Host tests of the ELF32 checks, on files built here byte by byte.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

const TEXT: u32 = 0x0804_8000;

/// One program header to emit.
#[derive(Clone, Copy)]
struct Ph {
    p_type: u32,
    offset: u32,
    vaddr: u32,
    filesz: u32,
    memsz: u32,
    flags: u32,
}

fn load(offset: u32, vaddr: u32, filesz: u32, memsz: u32, flags: u32) -> Ph {
    Ph {
        p_type: abi::PT_LOAD,
        offset,
        vaddr,
        filesz,
        memsz,
        flags,
    }
}

/// Builds an ELF32 file: header at 0, program headers at 52, zero bytes up
/// to `len`. The fields default to a valid i386 static executable.
struct Builder {
    ident: [u8; 16],
    e_type: u16,
    machine: u16,
    entry: u32,
    phentsize: u16,
    phnum: Option<u16>,
    phs: Vec<Ph>,
    len: usize,
}

impl Builder {
    /// What `user/linker.ld` makes of a small program: headers and text
    /// (R-X) at 0x08048000, rodata (R--) on the next page, data and a bss
    /// (RW-) after it.
    fn program() -> Builder {
        let mut ident = [0u8; 16];
        ident[..4].copy_from_slice(&abi::ELFMAGIC);
        ident[abi::EI_CLASS] = abi::ELFCLASS32;
        ident[abi::EI_DATA] = abi::ELFDATA2LSB;
        ident[abi::EI_VERSION] = 1;
        Builder {
            ident,
            e_type: abi::ET_EXEC,
            machine: abi::EM_386,
            entry: TEXT + 0xa0,
            phentsize: 32,
            phnum: None,
            phs: vec![
                load(0, TEXT, 0x118b, 0x118b, abi::PF_R | abi::PF_X),
                load(0x2000, TEXT + 0x2000, 0x290, 0x290, abi::PF_R),
                load(
                    0x3000,
                    TEXT + 0x3000,
                    0x10,
                    0x40_0008,
                    abi::PF_R | abi::PF_W,
                ),
            ],
            len: 0x3010,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.ident);
        b.extend_from_slice(&self.e_type.to_le_bytes());
        b.extend_from_slice(&self.machine.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes()); // e_version
        b.extend_from_slice(&self.entry.to_le_bytes());
        b.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
        b.extend_from_slice(&0u32.to_le_bytes()); // e_shoff: no sections
        b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        b.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
        b.extend_from_slice(&self.phentsize.to_le_bytes());
        let phnum = self.phnum.unwrap_or(self.phs.len() as u16);
        b.extend_from_slice(&phnum.to_le_bytes());
        b.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
        b.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        b.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(b.len(), 52);
        for ph in &self.phs {
            for v in [
                ph.p_type, ph.offset, ph.vaddr, ph.vaddr, ph.filesz, ph.memsz, ph.flags, 0x1000,
            ] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        if b.len() < self.len {
            b.resize(self.len, 0);
        }
        b
    }

    fn parse(&self) -> Result<ElfImage, ElfError> {
        parse(&self.bytes())
    }
}

#[test]
fn a_linked_program_is_described() {
    let img = Builder::program().parse().expect("valid program");
    assert_eq!(img.entry, TEXT + 0xa0);
    let s: Vec<Segment> = img.segments.iter().copied().collect();
    assert_eq!(
        s,
        vec![
            Segment {
                vaddr: TEXT,
                memsz: 0x118b,
                filesz: 0x118b,
                offset: 0,
                flags: SegmentFlags::R | SegmentFlags::X
            },
            Segment {
                vaddr: TEXT + 0x2000,
                memsz: 0x290,
                filesz: 0x290,
                offset: 0x2000,
                flags: SegmentFlags::R
            },
            Segment {
                vaddr: TEXT + 0x3000,
                memsz: 0x40_0008,
                filesz: 0x10,
                offset: 0x3000,
                flags: SegmentFlags::R | SegmentFlags::W
            },
        ]
    );
    assert_eq!(img.image_end(), TEXT + 0x3000 + 0x40_1000);
    assert_eq!(s[2].page_end(), TEXT + 0x3000 + 0x40_1000);
    assert_eq!(s[0].page_start(), TEXT);
    let bytes = Builder::program().bytes();
    assert_eq!(s[2].file_bytes(&bytes).len(), 0x10);
    assert_eq!(&s[0].file_bytes(&bytes)[..4], b"\x7fELF");
    assert_eq!(
        s[0].to_string(),
        "LOAD [0x08048000, 0x0804918b) R-X filesz 0x118b offset 0x0"
    );
}

#[test]
fn empty_load_segments_and_other_headers_are_skipped() {
    let mut b = Builder::program();
    b.phs.insert(
        0,
        Ph {
            p_type: abi::PT_GNU_STACK,
            offset: 0,
            vaddr: 0,
            filesz: 0,
            memsz: 0,
            flags: 6,
        },
    );
    b.phs.push(load(0, 0, 0, 0, abi::PF_R));
    let img = b.parse().expect("valid program");
    assert_eq!(img.segments.len(), 3);
}

fn err(b: &Builder) -> ElfError {
    match b.parse() {
        Ok(img) => panic!("accepted: {img:?}"),
        Err(e) => e,
    }
}

#[test]
fn not_elf() {
    let mut b = Builder::program();
    b.ident[0] = b'M';
    let e = err(&b);
    assert!(matches!(e, ElfError::NotElf { len: 4, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "not an ELF file (starts with [4d, 45, 4c, 46], not 7f 45 4c 46)"
    );
    assert!(matches!(
        parse(b"\x7fEL"),
        Err(ElfError::NotElf { len: 3, .. })
    ));
    assert!(matches!(parse(b""), Err(ElfError::NotElf { len: 0, .. })));
}

#[test]
fn not_elf32() {
    let mut b = Builder::program();
    b.ident[abi::EI_CLASS] = abi::ELFCLASS64;
    let e = err(&b);
    assert!(matches!(e, ElfError::NotElf32 { class: 2 }), "{e:?}");
    assert!(e.to_string().contains("not a 32-bit ELF file"));
}

#[test]
fn not_little_endian() {
    let mut b = Builder::program();
    b.ident[abi::EI_DATA] = abi::ELFDATA2MSB;
    let e = err(&b);
    assert!(matches!(e, ElfError::NotLittleEndian { data: 2 }), "{e:?}");
    assert!(e.to_string().contains("not little-endian"));
}

#[test]
fn truncated_or_malformed_headers() {
    let bytes = Builder::program().bytes();
    let e = parse(&bytes[..40]).expect_err("truncated header");
    assert!(matches!(e, ElfError::Malformed(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("malformed ELF header or program headers: ")
    );
    // The program-header table runs past the end of the file.
    let e = parse(&bytes[..52 + 32 * 2]).expect_err("truncated table");
    assert!(matches!(e, ElfError::Malformed(_)), "{e:?}");
    let mut b = Builder::program();
    b.phentsize = 56;
    assert!(matches!(err(&b), ElfError::Malformed(_)));
}

#[test]
fn not_exec() {
    let mut b = Builder::program();
    b.e_type = abi::ET_DYN;
    let e = err(&b);
    assert!(matches!(e, ElfError::NotExecutable { e_type: 3 }), "{e:?}");
    assert!(e.to_string().contains("not a static executable"));
}

#[test]
fn not_i386() {
    let mut b = Builder::program();
    b.machine = abi::EM_X86_64;
    let e = err(&b);
    assert!(matches!(e, ElfError::NotI386 { machine: 62 }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "not an i386 program (e_machine 62, EM_386 is 3)"
    );
}

#[test]
fn no_load_segment() {
    let mut b = Builder::program();
    b.phs.clear();
    assert!(matches!(err(&b), ElfError::NoLoadSegment));
    b.phs.push(load(0, TEXT, 0, 0, abi::PF_R | abi::PF_X));
    let e = err(&b);
    assert!(matches!(e, ElfError::NoLoadSegment));
    assert_eq!(e.to_string(), "no PT_LOAD segment: nothing to map");
}

#[test]
fn interpreter() {
    let mut b = Builder::program();
    b.phs.insert(
        0,
        Ph {
            p_type: abi::PT_INTERP,
            offset: 0x100,
            vaddr: TEXT + 0x100,
            filesz: 19,
            memsz: 19,
            flags: 4,
        },
    );
    let e = err(&b);
    assert!(matches!(e, ElfError::Interpreter), "{e:?}");
    assert!(e.to_string().contains("PT_INTERP"));
}

#[test]
fn filesz_exceeds_memsz() {
    let mut b = Builder::program();
    b.phs[1].filesz = 0x291;
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::FileszExceedsMemsz {
                index: 1,
                filesz: 0x291,
                memsz: 0x290
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "segment 1: p_filesz 0x291 larger than p_memsz 0x290"
    );
}

#[test]
fn outside_user_range() {
    // The null page.
    let mut b = Builder::program();
    b.phs[1].vaddr = 0x0fff;
    b.phs[1].offset = 0x1fff;
    assert!(matches!(
        err(&b),
        ElfError::OutsideUserRange { index: 1, .. }
    ));
    // Into the kernel's quarter, by one byte.
    let mut b = Builder::program();
    b.phs[2].vaddr = TASK_SIZE - 0x40_0000;
    b.phs[2].offset = 0x3000;
    let e = err(&b);
    assert!(
        matches!(e, ElfError::OutsideUserRange { index: 2, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "segment 2: [0xbfc00000, 0xc0000008) is outside user space [0x1000, 0xc0000000)"
    );
    // Ending exactly at TASK_SIZE is fine.
    b.phs[2].memsz = 0x40_0000;
    b.entry = TEXT;
    assert!(b.parse().is_ok());
    // Wrapping past 4 GiB.
    let mut b = Builder::program();
    b.phs[2].vaddr = 0xffff_f000;
    b.phs[2].offset = 0x3000;
    assert!(matches!(
        err(&b),
        ElfError::OutsideUserRange { index: 2, .. }
    ));
}

#[test]
fn beyond_file() {
    let mut b = Builder::program();
    b.len = 0x300f;
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::BeyondFile {
                index: 2,
                offset: 0x3000,
                filesz: 0x10,
                file_len: 0x300f
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "segment 2: file bytes [0x3000, 0x3010) run past the end of the 0x300f-byte file"
    );
}

#[test]
fn misaligned() {
    let mut b = Builder::program();
    b.phs[1].offset = 0x2004;
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::Misaligned {
                index: 1,
                vaddr: 0x0804_a000,
                offset: 0x2004
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("differ modulo the 4 KiB page"));
    // Unaligned but congruent is fine (GNU ld's data segments look so).
    let mut b = Builder::program();
    b.phs[1].offset = 0x2004;
    b.phs[1].vaddr = TEXT + 0x2004;
    assert!(b.parse().is_ok());
}

#[test]
fn overlapping_segments() {
    // Overlapping bytes.
    let mut b = Builder::program();
    b.phs[1].vaddr = TEXT + 0x1000;
    b.phs[1].offset = 0x1000;
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::Overlap {
                first: 0,
                second: 1
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "segments 0 and 1 overlap or share a page");
    // Disjoint bytes in one page.
    let mut b = Builder::program();
    b.phs[1].vaddr = TEXT + 0x1190;
    b.phs[1].offset = 0x1190;
    assert!(matches!(
        err(&b),
        ElfError::Overlap {
            first: 0,
            second: 1
        }
    ));
    // Out of order (rodata's header before text's, on text's last page):
    // still found.
    let mut b = Builder::program();
    b.phs.swap(0, 1);
    b.phs[0].vaddr = TEXT + 0x1000;
    b.phs[0].offset = 0x1000;
    assert!(matches!(
        err(&b),
        ElfError::Overlap {
            first: 0,
            second: 1
        }
    ));
}

#[test]
fn entry_outside_executable_segments() {
    let mut b = Builder::program();
    b.entry = TEXT + 0x2000; // rodata: R--
    let e = err(&b);
    assert!(
        matches!(e, ElfError::EntryNotExecutable { entry: 0x0804_a000 }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "entry point 0x804a000 is in no executable segment"
    );
    b.entry = TEXT + 0x118b; // one past the text
    assert!(matches!(err(&b), ElfError::EntryNotExecutable { .. }));
    b.entry = 0;
    assert!(matches!(err(&b), ElfError::EntryNotExecutable { .. }));
}

#[test]
fn too_many_segments() {
    let mut b = Builder::program();
    for i in 3..=MAX_LOAD_SEGMENTS as u32 {
        b.phs.push(load(
            0x3000,
            TEXT + 0x1000_0000 + i * 0x1000,
            0x10,
            0x10,
            abi::PF_R,
        ));
    }
    assert_eq!(b.phs.len(), MAX_LOAD_SEGMENTS + 1);
    let e = err(&b);
    assert!(matches!(e, ElfError::TooManyLoadSegments), "{e:?}");
    assert_eq!(e.to_string(), "more than 8 PT_LOAD segments");
    b.phs.pop();
    assert_eq!(
        b.parse().expect("at the limit").segments.len(),
        MAX_LOAD_SEGMENTS
    );

    let mut b = Builder::program();
    let note = Ph {
        p_type: abi::PT_NOTE,
        offset: 0,
        vaddr: 0,
        filesz: 0,
        memsz: 0,
        flags: 4,
    };
    b.phs.resize(MAX_PHDRS + 1, note);
    b.len = 0x3010 + 32 * MAX_PHDRS;
    let e = err(&b);
    assert!(
        matches!(e, ElfError::TooManyProgramHeaders { count: 129 }),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "129 program headers, more than 128");
}

#[test]
fn flags_print_as_readelf_does() {
    assert_eq!(SegmentFlags::empty().to_string(), "---");
    assert_eq!(SegmentFlags::all().to_string(), "RWX");
    assert_eq!((SegmentFlags::R | SegmentFlags::W).to_string(), "RW-");
}
