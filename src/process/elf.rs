//! ELF32 program checks: the front end of the program loader (pure logic).
//!
//! [`parse`] takes the bytes of a user program (a Multiboot module) and
//! either describes what to map ([`ElfImage`]: the entry point and the
//! `PT_LOAD` segments) or says why the file is refused ([`ElfError`]), as
//! Linux `load_elf_binary()` refuses a bad file with `-ENOEXEC`. The header
//! and program-header table are read by the `elf` crate (no_std, no
//! allocation); the checks here are the kernel's:
//!
//! - ELF magic, `ELFCLASS32`, little-endian (`ELFDATA2LSB`), `ET_EXEC`
//!   (static, not position-independent), `EM_386`, no `PT_INTERP` (no
//!   dynamic linker);
//! - at most [`MAX_PHDRS`] program headers (Linux's limit: the table fits
//!   in one 4 KiB page) and 1 to [`MAX_LOAD_SEGMENTS`] non-empty `PT_LOAD`
//!   segments;
//! - per `PT_LOAD`: `p_filesz <= p_memsz`; `p_offset + p_filesz` within the
//!   file; `p_vaddr % 4096 == p_offset % 4096` (the file page maps onto the
//!   memory page); its pages inside the user range
//!   `[`[`USER_START`]`, `[`TASK_SIZE`]`)`;
//! - no two segments share a page (each user page gets one protection;
//!   Linux would let the later mapping win, this kernel refuses);
//! - the entry point lies inside an executable segment.
//!
//! `PT_LOAD`s with `p_memsz == 0` are skipped, as Linux skips them.
//!
//! # References
//! - System V ABI, "Program Header" and the Intel386 supplement (ELF32,
//!   `EM_386`, page size 4096); Linux `fs/binfmt_elf.c`
//!   (`load_elf_binary`, `elf_read_implies_exec`, `load_elf_phdrs`).

#![forbid(unsafe_code)]

use crate::mm::layout::PAGE_SIZE;
use crate::mm::mmap::MMAP_MIN_ADDR;
use bitflags::bitflags;
use core::fmt;
use elf::ElfBytes;
use elf::abi;
use elf::endian::LittleEndian;

/// Lowest user address a segment may use: the null page stays unmapped so
/// that a null dereference faults (Linux's `mmap_min_addr`, the same bound
/// the area list keeps).
pub const USER_START: u32 = MMAP_MIN_ADDR;
pub use crate::mm::mmap::TASK_SIZE;
/// Most program headers a file may have (Linux `load_elf_phdrs`: the table
/// must fit in 4 KiB, 128 entries of 32 bytes).
pub const MAX_PHDRS: usize = 4096 / 32;
/// Most non-empty `PT_LOAD` segments (text, rodata, data/bss and a few
/// more; the programs in `user/` have three).
pub const MAX_LOAD_SEGMENTS: usize = 8;

bitflags! {
    /// A segment's permissions (`p_flags`, the ELF `PF_*` bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SegmentFlags: u32 {
        /// `PF_X`: executable.
        const X = abi::PF_X;
        /// `PF_W`: writable.
        const W = abi::PF_W;
        /// `PF_R`: readable.
        const R = abi::PF_R;
    }
}

impl fmt::Display for SegmentFlags {
    /// `R-X` style, as readelf prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |flag, c| if self.contains(flag) { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            bit(SegmentFlags::R, 'R'),
            bit(SegmentFlags::W, 'W'),
            bit(SegmentFlags::X, 'X')
        )
    }
}

/// One checked `PT_LOAD` segment: map `[vaddr, vaddr + memsz)` with
/// `flags`; its first `filesz` bytes come from the file at `offset`, the
/// rest is zero (`.bss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First virtual address (not necessarily page-aligned).
    pub vaddr: u32,
    /// Bytes in memory (`>= filesz`, `> 0`).
    pub memsz: u32,
    /// Bytes from the file.
    pub filesz: u32,
    /// File offset of the first byte (`offset % 4096 == vaddr % 4096`).
    pub offset: u32,
    /// Permissions.
    pub flags: SegmentFlags,
}

impl Segment {
    /// End of the segment in memory, exclusive (`vaddr + memsz`, at most
    /// [`TASK_SIZE`]).
    pub fn end(&self) -> u32 {
        self.vaddr + self.memsz
    }

    /// First page's address (`vaddr` rounded down to 4 KiB).
    pub fn page_start(&self) -> u32 {
        self.vaddr & !(PAGE_SIZE - 1)
    }

    /// End of the last page, exclusive (`end()` rounded up to 4 KiB; at most
    /// [`TASK_SIZE`], so it cannot overflow).
    pub fn page_end(&self) -> u32 {
        self.end().next_multiple_of(PAGE_SIZE)
    }

    /// The bytes the file gives this segment, `file[offset..offset + filesz]`.
    ///
    /// # Panics
    /// If `file` is not the slice [`parse`] checked the segment against.
    pub fn file_bytes<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.offset as usize..(self.offset + self.filesz) as usize]
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LOAD [{:#010x}, {:#010x}) {} filesz {:#x} offset {:#x}",
            self.vaddr,
            self.end(),
            self.flags,
            self.filesz,
            self.offset
        )
    }
}

/// A checked program: where to start and what to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// Entry point (`e_entry`), inside an executable segment.
    pub entry: u32,
    /// The non-empty `PT_LOAD` segments, in file order, no two sharing a
    /// page.
    pub segments: heapless::Vec<Segment, MAX_LOAD_SEGMENTS>,
}

impl ElfImage {
    /// End of the highest segment's last page: where Linux puts the
    /// initial break (`start_brk`, page-aligned).
    pub fn image_end(&self) -> u32 {
        self.segments
            .iter()
            .map(Segment::page_end)
            .max()
            .unwrap_or(USER_START)
    }
}

/// Why a program was refused (Linux answers each with `-ENOEXEC`).
#[derive(Debug)]
pub enum ElfError {
    /// The file does not start with `\x7fELF` (shown: its first bytes).
    NotElf {
        /// Up to the first four bytes.
        magic: [u8; 4],
        /// How many of `magic` the file has (a file may be shorter).
        len: usize,
    },
    /// `EI_CLASS` is not `ELFCLASS32`.
    NotElf32 {
        /// The byte found (2 = ELFCLASS64).
        class: u8,
    },
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian {
        /// The byte found (2 = big-endian).
        data: u8,
    },
    /// The header or program-header table cannot be read (truncated file,
    /// a table beyond the file, a wrong entry size...): the `elf` crate's
    /// error.
    Malformed(elf::ParseError),
    /// `e_type` is not `ET_EXEC`.
    NotExecutable {
        /// The type found (1 = ET_REL, 3 = ET_DYN: PIE or shared object).
        e_type: u16,
    },
    /// `e_machine` is not `EM_386`.
    NotI386 {
        /// The machine found (62 = x86-64).
        machine: u16,
    },
    /// More program headers than [`MAX_PHDRS`].
    TooManyProgramHeaders {
        /// `e_phnum` (`0xffff`, `PN_XNUM`, counts as too many).
        count: usize,
    },
    /// A `PT_INTERP` header: the program wants a dynamic linker.
    Interpreter,
    /// No non-empty `PT_LOAD` segment: nothing to run.
    NoLoadSegment,
    /// More non-empty `PT_LOAD`s than [`MAX_LOAD_SEGMENTS`].
    TooManyLoadSegments,
    /// A `PT_LOAD` whose file part is larger than its memory part.
    FileszExceedsMemsz {
        /// Program-header index.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A `PT_LOAD` whose pages are not all in `[USER_START, TASK_SIZE)`.
    OutsideUserRange {
        /// Program-header index.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A `PT_LOAD` whose file bytes run past the end of the file.
    BeyondFile {
        /// Program-header index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        filesz: u64,
        /// The file's length.
        file_len: usize,
    },
    /// `p_vaddr % 4096 != p_offset % 4096`: the file page cannot be mapped
    /// onto the memory page.
    Misaligned {
        /// Program-header index.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_offset`.
        offset: u64,
    },
    /// Two `PT_LOAD`s share a page (or overlap).
    Overlap {
        /// Program-header index of the first.
        first: usize,
        /// Program-header index of the second.
        second: usize,
    },
    /// The entry point is in no executable segment.
    EntryNotExecutable {
        /// `e_entry`.
        entry: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf { magic, len } => {
                write!(
                    f,
                    "not an ELF file (starts with {:02x?}, not 7f 45 4c 46)",
                    &magic[..*len]
                )
            }
            ElfError::NotElf32 { class } => {
                write!(
                    f,
                    "not a 32-bit ELF file (EI_CLASS {class}, ELFCLASS32 is 1)"
                )
            }
            ElfError::NotLittleEndian { data } => {
                write!(f, "not little-endian (EI_DATA {data}, ELFDATA2LSB is 1)")
            }
            ElfError::Malformed(e) => write!(f, "malformed ELF header or program headers: {e}"),
            ElfError::NotExecutable { e_type } => write!(
                f,
                "not a static executable (e_type {e_type}, ET_EXEC is 2; 3 is PIE or a shared object)"
            ),
            ElfError::NotI386 { machine } => {
                write!(f, "not an i386 program (e_machine {machine}, EM_386 is 3)")
            }
            ElfError::TooManyProgramHeaders { count } => {
                write!(f, "{count} program headers, more than {MAX_PHDRS}")
            }
            ElfError::Interpreter => {
                write!(
                    f,
                    "dynamically linked (PT_INTERP): only static programs run here"
                )
            }
            ElfError::NoLoadSegment => write!(f, "no PT_LOAD segment: nothing to map"),
            ElfError::TooManyLoadSegments => {
                write!(f, "more than {MAX_LOAD_SEGMENTS} PT_LOAD segments")
            }
            ElfError::FileszExceedsMemsz {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "segment {index}: p_filesz {filesz:#x} larger than p_memsz {memsz:#x}"
            ),
            ElfError::OutsideUserRange {
                index,
                vaddr,
                memsz,
            } => write!(
                f,
                "segment {index}: [{vaddr:#x}, {:#x}) is outside user space [{USER_START:#x}, {TASK_SIZE:#x})",
                vaddr + memsz
            ),
            ElfError::BeyondFile {
                index,
                offset,
                filesz,
                file_len,
            } => write!(
                f,
                "segment {index}: file bytes [{offset:#x}, {:#x}) run past the end of the {file_len:#x}-byte file",
                offset + filesz
            ),
            ElfError::Misaligned {
                index,
                vaddr,
                offset,
            } => write!(
                f,
                "segment {index}: p_vaddr {vaddr:#x} and p_offset {offset:#x} differ modulo the 4 KiB page"
            ),
            ElfError::Overlap { first, second } => {
                write!(f, "segments {first} and {second} overlap or share a page")
            }
            ElfError::EntryNotExecutable { entry } => {
                write!(f, "entry point {entry:#x} is in no executable segment")
            }
        }
    }
}

impl From<elf::ParseError> for ElfError {
    fn from(e: elf::ParseError) -> ElfError {
        ElfError::Malformed(e)
    }
}

/// Checks a user program and describes what to map.
///
/// `bytes` is the whole file (a Multiboot module). Nothing is mapped or
/// allocated; the segments' file bytes are `Segment::file_bytes(bytes)`.
///
/// # Errors
/// The first check that fails, in the order of the module doc; every
/// variant of [`ElfError`].
pub fn parse(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    // The identification bytes first, for errors more precise than the
    // crate's.
    let mut magic = [0u8; 4];
    let len = bytes.len().min(4);
    magic[..len].copy_from_slice(&bytes[..len]);
    if len < 4 || magic != abi::ELFMAGIC {
        return Err(ElfError::NotElf { magic, len });
    }
    if let Some(&class) = bytes.get(abi::EI_CLASS)
        && class != abi::ELFCLASS32
    {
        return Err(ElfError::NotElf32 { class });
    }
    if let Some(&data) = bytes.get(abi::EI_DATA)
        && data != abi::ELFDATA2LSB
    {
        return Err(ElfError::NotLittleEndian { data });
    }

    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes)?;
    let ehdr = &file.ehdr;
    if ehdr.e_type != abi::ET_EXEC {
        return Err(ElfError::NotExecutable {
            e_type: ehdr.e_type,
        });
    }
    if ehdr.e_machine != abi::EM_386 {
        return Err(ElfError::NotI386 {
            machine: ehdr.e_machine,
        });
    }
    let count = usize::from(ehdr.e_phnum);
    if count > MAX_PHDRS {
        return Err(ElfError::TooManyProgramHeaders { count });
    }
    let entry = ehdr.e_entry;

    // (program-header index, segment) of every non-empty PT_LOAD.
    let mut loads: heapless::Vec<(usize, Segment), MAX_LOAD_SEGMENTS> = heapless::Vec::new();
    for (index, ph) in file.segments().into_iter().flatten().enumerate() {
        match ph.p_type {
            abi::PT_INTERP => return Err(ElfError::Interpreter),
            abi::PT_LOAD => {}
            _ => continue,
        }
        let (vaddr, memsz, filesz, offset) = (ph.p_vaddr, ph.p_memsz, ph.p_filesz, ph.p_offset);
        if filesz > memsz {
            return Err(ElfError::FileszExceedsMemsz {
                index,
                filesz,
                memsz,
            });
        }
        if memsz == 0 {
            continue;
        }
        // ELF32 fields are 32-bit, so these sums cannot overflow u64.
        let page_start = vaddr & !u64::from(PAGE_SIZE - 1);
        if page_start < u64::from(USER_START) || vaddr + memsz > u64::from(TASK_SIZE) {
            return Err(ElfError::OutsideUserRange {
                index,
                vaddr,
                memsz,
            });
        }
        if offset + filesz > bytes.len() as u64 {
            return Err(ElfError::BeyondFile {
                index,
                offset,
                filesz,
                file_len: bytes.len(),
            });
        }
        if vaddr % u64::from(PAGE_SIZE) != offset % u64::from(PAGE_SIZE) {
            return Err(ElfError::Misaligned {
                index,
                vaddr,
                offset,
            });
        }
        // In range: each value fits in u32 (checked against TASK_SIZE and
        // the file length, which a 32-bit kernel's slice cannot exceed).
        let seg = Segment {
            vaddr: vaddr as u32,
            memsz: memsz as u32,
            filesz: filesz as u32,
            offset: offset as u32,
            flags: SegmentFlags::from_bits_truncate(ph.p_flags),
        };
        for &(first, other) in &loads {
            if seg.page_start() < other.page_end() && other.page_start() < seg.page_end() {
                return Err(ElfError::Overlap {
                    first,
                    second: index,
                });
            }
        }
        loads
            .push((index, seg))
            .map_err(|_| ElfError::TooManyLoadSegments)?;
    }
    if loads.is_empty() {
        return Err(ElfError::NoLoadSegment);
    }
    let in_exec = loads.iter().any(|(_, s)| {
        s.flags.contains(SegmentFlags::X)
            && u64::from(s.vaddr) <= entry
            && entry < u64::from(s.end())
    });
    if !in_exec {
        return Err(ElfError::EntryNotExecutable { entry });
    }
    Ok(ElfImage {
        entry: entry as u32,
        segments: loads.iter().map(|&(_, s)| s).collect(),
    })
}

#[cfg(test)]
mod tests;
