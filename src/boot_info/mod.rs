//! What the boot loader tells the kernel, validated: the protocol, where the
//! boot information lies, the command line, the loader's name, the memory
//! map, basic memory information, modules and ELF section headers.
//!
//! Where it sits: the first thing `kernel_entry` decodes (the command line
//! sets the log level), and the input of memblock: [`memmap::sanitize`] turns
//! the memory map into the usable RAM that memblock manages, and
//! [`BootInfo::boot_data`] lists what memblock must reserve.
//!
//! Invariant: nothing here trusts the loader. Every length is checked against
//! the size the loader gave before it is used, every walk advances by at least
//! one header, and anything malformed is a [`BootInfoError`] that names the
//! problem, which the kernel prints on its `PANIC:` line. The kernel reaches
//! the information through the early map window, so it may lie anywhere below
//! 4 GiB; this module only ever sees byte slices.
//!
//! Multiboot2 is read with the `multiboot2` crate after [`mb2::validate`] has
//! walked the tags itself (the crate asserts, i.e. panics, on some malformed
//! input, such as a memory-map entry size other than 24). Multiboot 1's fixed
//! structure is read field by field ([`mb1`]).
//!
//! # References
//! - Multiboot2 spec §3.3 "I386 machine state", §3.6.1 "Boot information
//!   format", §3.6.2 "Basic tags structure", §3.6.3 "Basic memory
//!   information", §3.6.5 "Boot command line", §3.6.6 "Modules", §3.6.7 "ELF-Symbols",
//!   §3.6.8 "Memory map", §3.6.9 "Boot loader name".
//! - Multiboot 0.6.96 §3.2 "Machine state", §3.3 "Boot information format".

use crate::addr::PhysAddr;
use core::fmt;

pub mod mb1;
pub mod mb2;
pub mod memmap;
pub mod ranges;

/// EAX value from a Multiboot2 loader (Multiboot2 spec §3.3).
pub const MULTIBOOT2_BOOTLOADER_MAGIC: u32 = 0x36D7_6289;
/// EAX value from a Multiboot 1 loader (Multiboot 0.6.96 §3.2).
pub const MULTIBOOT1_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Bytes of the Multiboot 1 information structure this kernel reads: every
/// field up to and including `boot_loader_name` (offset 64) and the APM
/// pointer.
pub const MULTIBOOT1_INFO_SIZE: usize = 72;

/// Largest Multiboot2 information structure accepted, in bytes. GRUB's is a
/// few KiB; the limit keeps a corrupt `total_size` from mapping all of memory.
pub const MULTIBOOT2_INFO_MAX: u32 = 1 << 20;

/// Longest command line kept, in bytes including the final NUL (Linux i386
/// `COMMAND_LINE_SIZE`).
pub const COMMAND_LINE_SIZE: usize = 2048;

/// Most memory-map entries kept (BIOS E820 maps have a few dozen; Linux's
/// `E820_MAX_ENTRIES_ZEROPAGE` is 128). Entries past it are counted in
/// [`BootInfo::mmap_ignored`] and logged, never a reason to refuse the boot.
pub const MAX_MMAP_ENTRIES: usize = 128;

/// Most modules accepted.
pub const MAX_MODULES: usize = 16;

/// Largest Multiboot 1 memory-map buffer (`mmap_length`) accepted, in bytes:
/// 2730 entries of 24 bytes, far more than any firmware hands over. A
/// corrupt length must not make the kernel map and read gigabytes.
pub const MB1_MMAP_MAX: u32 = 64 << 10;

/// Largest ELF section-header table (`num * entsize`) accepted, in bytes:
/// 1638 ELF32 section headers of 40 bytes. The kernel reserves and
/// checksums the table, so a corrupt `num` or `entsize` must not reach
/// gigabytes.
pub const ELF_SECTIONS_MAX: u64 = 64 << 10;

/// Most ranges of loader data that must be reserved (see
/// [`BootInfo::boot_data`]).
pub const MAX_BOOT_DATA: usize = 8 + 2 * MAX_MODULES;

/// Which Multiboot protocol started the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Multiboot 1 (QEMU `-kernel`, GRUB `multiboot`).
    Multiboot1,
    /// Multiboot2 (GRUB `multiboot2`).
    Multiboot2,
}

impl Protocol {
    /// The protocol that the magic number in EAX announces.
    ///
    /// # Errors
    /// [`BootInfoError::BadMagic`] for any other value: the kernel was not
    /// started by a Multiboot loader, and EBX cannot be trusted.
    pub fn from_magic(magic: u32) -> Result<Protocol, BootInfoError> {
        match magic {
            MULTIBOOT2_BOOTLOADER_MAGIC => Ok(Protocol::Multiboot2),
            MULTIBOOT1_BOOTLOADER_MAGIC => Ok(Protocol::Multiboot1),
            other => Err(BootInfoError::BadMagic(other)),
        }
    }

    /// Required alignment of the information structure, in bytes.
    pub const fn info_align(self) -> u32 {
        match self {
            Protocol::Multiboot1 => 4,
            Protocol::Multiboot2 => 8,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Multiboot1 => "Multiboot 1",
            Protocol::Multiboot2 => "Multiboot2",
        })
    }
}

/// Why the boot information cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// EAX held neither Multiboot magic.
    BadMagic(u32),
    /// The information structure's address is not aligned as the protocol
    /// requires.
    Misaligned {
        /// Physical address from EBX.
        addr: PhysAddr,
        /// Required alignment in bytes.
        align: u32,
    },
    /// Multiboot2 `total_size` is smaller than a header plus an end tag (16),
    /// larger than [`MULTIBOOT2_INFO_MAX`] or not a multiple of 8.
    BadTotalSize(u32),
    /// Fewer bytes are available than the structure needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A Multiboot2 tag is smaller than its type requires (every tag: 8).
    TagTooSmall {
        /// Tag type.
        typ: u32,
        /// Its `size` field.
        size: u32,
        /// Byte offset of the tag in the structure.
        offset: usize,
    },
    /// A Multiboot2 tag runs past `total_size`.
    TagPastEnd {
        /// Tag type.
        typ: u32,
        /// Its `size` field.
        size: u32,
        /// Byte offset of the tag in the structure.
        offset: usize,
        /// `total_size`.
        total: u32,
    },
    /// The Multiboot2 tags end without an end tag (type 0, size 8).
    MissingEndTag,
    /// A memory-map `entry_size` below 24 or not a multiple of 8 (Multiboot2),
    /// or an entry `size` below 20 (Multiboot 1).
    BadMmapEntrySize(u32),
    /// A Multiboot 1 memory-map entry runs past `mmap_length`.
    MmapEntryPastEnd {
        /// Byte offset of the entry in the buffer.
        offset: usize,
        /// `mmap_length`.
        length: u32,
    },
    /// More entries of some kind than this kernel keeps.
    TooMany {
        /// What: "memory-map entries", "modules".
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A module whose end lies below its start.
    BadModule {
        /// Module start.
        start: PhysAddr,
        /// Module end (exclusive).
        end: PhysAddr,
    },
    /// Neither a memory map nor basic memory information: the kernel cannot
    /// know where RAM is.
    NoMemoryInfo,
    /// The `multiboot2` crate rejected the structure after validation passed.
    Multiboot2Invalid,
    /// A string (loader name, module string) is not UTF-8. (The command
    /// line is passed on raw.)
    BadString(&'static str),
    /// A Multiboot2 string tag (command line, loader name, module) without
    /// the NUL that ends its string.
    Unterminated(&'static str),
    /// Bytes between the Multiboot2 end tag and `total_size`.
    TrailingBytes {
        /// Offset of the end tag.
        offset: usize,
        /// The structure's `total_size`.
        total: u32,
    },
    /// A loader-supplied table larger than the kernel accepts.
    TooLarge {
        /// What: "Multiboot 1 memory map", "ELF section headers".
        what: &'static str,
        /// Its size as the loader gives it, in bytes.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// Physical memory the information points to could not be mapped.
    Unmappable {
        /// Start of the range.
        pa: PhysAddr,
        /// Length in bytes.
        len: usize,
    },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::BadMagic(m) => write!(
                f,
                "bad boot magic {m:#010x} in EAX (expected Multiboot2 \
                 {MULTIBOOT2_BOOTLOADER_MAGIC:#010x} or Multiboot 1 \
                 {MULTIBOOT1_BOOTLOADER_MAGIC:#010x}): not started by a Multiboot loader"
            ),
            BootInfoError::Misaligned { addr, align } => write!(
                f,
                "boot information at {addr:#010x} is not {align}-byte aligned"
            ),
            BootInfoError::BadTotalSize(size) => write!(
                f,
                "Multiboot2 total_size {size} is not a multiple of 8 in [16, {MULTIBOOT2_INFO_MAX}]"
            ),
            BootInfoError::Truncated { needed, available } => write!(
                f,
                "boot information truncated: needs {needed} bytes, {available} available"
            ),
            BootInfoError::TagTooSmall { typ, size, offset } => write!(
                f,
                "Multiboot2 tag type {typ} at offset {offset} has size {size}, too small for its type"
            ),
            BootInfoError::TagPastEnd {
                typ,
                size,
                offset,
                total,
            } => write!(
                f,
                "Multiboot2 tag type {typ} at offset {offset} (size {size}) runs past total_size {total}"
            ),
            BootInfoError::MissingEndTag => f.write_str("Multiboot2 information has no end tag"),
            BootInfoError::BadMmapEntrySize(size) => write!(
                f,
                "memory-map entry size {size} is invalid (Multiboot2: at least 24 and a multiple of 8; Multiboot 1: at least 20)"
            ),
            BootInfoError::MmapEntryPastEnd { offset, length } => write!(
                f,
                "Multiboot 1 memory-map entry at offset {offset} runs past mmap_length {length}"
            ),
            BootInfoError::TooMany { what, max } => {
                write!(f, "more than {max} {what}: not supported")
            }
            BootInfoError::BadModule { start, end } => {
                write!(
                    f,
                    "module [{start:#010x}, {end:#010x}) ends before it starts"
                )
            }
            BootInfoError::NoMemoryInfo => {
                f.write_str("no memory map and no basic memory information: RAM unknown")
            }
            BootInfoError::Multiboot2Invalid => {
                f.write_str("Multiboot2 information rejected by the multiboot2 crate")
            }
            BootInfoError::BadString(what) => {
                write!(f, "boot information {what} is not a valid UTF-8 string")
            }
            BootInfoError::Unterminated(what) => {
                write!(f, "Multiboot2 {what} tag has no NUL to end its string")
            }
            BootInfoError::TrailingBytes { offset, total } => write!(
                f,
                "Multiboot2 end tag at offset {offset} is followed by {} more bytes before total_size {total}",
                total as usize - offset - 8
            ),
            BootInfoError::TooLarge { what, size, max } => {
                write!(
                    f,
                    "{what} of {size} bytes is larger than the {max}-byte limit"
                )
            }
            BootInfoError::Unmappable { pa, len } => {
                write!(f, "cannot map [{pa:#010x}, +{len:#x}) to read it")
            }
        }
    }
}

/// Basic memory information: KiB of lower (below 1 MiB) and upper (above
/// 1 MiB, up to the first hole) memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicMemInfo {
    /// Lower memory in KiB, starting at address 0 (at most 640).
    pub mem_lower_kib: u32,
    /// Upper memory in KiB, starting at 1 MiB.
    pub mem_upper_kib: u32,
}

/// One memory-map entry as the loader gave it: `[base, base + length)` in
/// bytes, of type `typ` (1 = available RAM; Multiboot2 spec §3.6.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryMapEntry {
    /// First byte (may be above 4 GiB).
    pub base: PhysAddr,
    /// Length in bytes (`base + length` may even overflow 64 bits).
    pub length: u64,
    /// Type, all 32 bits as given.
    pub typ: u32,
}

/// A module loaded by the boot loader: physical `[start, end)` and its string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    /// First byte (below 4 GiB: the loader passes 32 bits).
    pub start: PhysAddr,
    /// One past the last byte (at most 4 GiB - 1).
    pub end: PhysAddr,
    /// The module's command line (usually its name).
    pub string: &'a str,
}

/// Where the kernel's ELF section headers are, when the loader passed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfSections {
    /// Number of section headers.
    pub num: u32,
    /// Size of one header in bytes.
    pub entsize: u32,
    /// Index of the section-name string table.
    pub shndx: u32,
    /// Where the headers are (below 4 GiB).
    pub addr: PhysAddr,
}

/// A range of loader data that must survive memory initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootData {
    /// What it is, e.g. "Multiboot2 information".
    pub what: &'static str,
    /// First byte (below 4 GiB).
    pub base: PhysAddr,
    /// Length in bytes.
    pub size: u32,
}

/// Everything the kernel takes from the boot information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// The protocol that booted the kernel.
    pub protocol: Protocol,
    /// Where the structure lies: `[info_pa, info_pa + info_size)` (below
    /// 4 GiB: the loader passes the address in the 32-bit EBX).
    pub info_pa: PhysAddr,
    /// Size of the structure in bytes.
    pub info_size: u32,
    /// The command line as the loader gave it, without its NUL (empty if
    /// there is none). Raw bytes: they may not be UTF-8, and the kernel's
    /// copy (`cmdline::copy_lossy`) replaces what is not.
    pub cmdline: &'a [u8],
    /// The loader's name, if it gave one.
    pub loader_name: Option<&'a str>,
    /// Basic memory information, if present.
    pub meminfo: Option<BasicMemInfo>,
    /// The memory map as received, if present (in the loader's order): its
    /// first [`MAX_MMAP_ENTRIES`] entries.
    pub memory_map: Option<heapless::Vec<MemoryMapEntry, MAX_MMAP_ENTRIES>>,
    /// Entries past the first [`MAX_MMAP_ENTRIES`], not kept (Linux's
    /// `__e820__range_add()` also ignores what does not fit its table,
    /// with a warning; the boot goes on).
    pub mmap_ignored: u32,
    /// Memory-map tags in the information (Multiboot2; 1 normally). With
    /// more than one, the first is used and the kernel says so.
    pub mmap_tags: u32,
    /// Modules, in the loader's order.
    pub modules: heapless::Vec<Module<'a>, MAX_MODULES>,
    /// ELF section headers, if passed.
    pub elf_sections: Option<ElfSections>,
    /// Loader data to reserve (the structure, and for Multiboot 1 the
    /// buffers and strings it points to). Modules are listed in `modules`.
    pub boot_data: heapless::Vec<BootData, MAX_BOOT_DATA>,
}

impl BootInfo<'_> {
    /// Checks that the information says where RAM is.
    ///
    /// # Errors
    /// [`BootInfoError::NoMemoryInfo`] without a memory map and without basic
    /// memory information.
    pub fn check_memory_info(&self) -> Result<(), BootInfoError> {
        if self.memory_map.is_none() && self.meminfo.is_none() {
            return Err(BootInfoError::NoMemoryInfo);
        }
        Ok(())
    }

    /// The memory map the kernel goes by, sanitized: the loader's map, or
    /// without one the basic meminfo (`memmap::entries_from_meminfo`).
    pub fn sanitized_map(&self) -> memmap::SanitizedMap {
        match (&self.memory_map, self.meminfo) {
            (Some(map), _) => memmap::sanitize(map),
            (None, Some(m)) => memmap::sanitize(&memmap::entries_from_meminfo(m)),
            (None, None) => memmap::SanitizedMap::default(),
        }
    }
}

/// Reads the Multiboot2 `total_size` field, the first 4 bytes of the
/// structure (spec §3.6.1), and checks it.
///
/// # Errors
/// [`BootInfoError::Truncated`] if `header` is shorter than 8 bytes,
/// [`BootInfoError::BadTotalSize`] if the size cannot hold a header and an end
/// tag, exceeds [`MULTIBOOT2_INFO_MAX`], or is not a multiple of 8.
pub fn multiboot2_total_size(header: &[u8]) -> Result<u32, BootInfoError> {
    if header.len() < 8 {
        return Err(BootInfoError::Truncated {
            needed: 8,
            available: header.len(),
        });
    }
    let size = read_u32(header, 0)?;
    if !(16..=MULTIBOOT2_INFO_MAX).contains(&size) || !size.is_multiple_of(8) {
        return Err(BootInfoError::BadTotalSize(size));
    }
    Ok(size)
}

/// The string before the first NUL in `bytes`, or all of `bytes` if there is
/// none (the string was longer than the caller's bound: it is cut there, at a
/// character boundary).
fn cstr<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, BootInfoError> {
    let nul = bytes.iter().position(|&b| b == 0);
    let candidate = &bytes[..nul.unwrap_or(bytes.len())];
    match core::str::from_utf8(candidate) {
        Ok(s) => Ok(s),
        // Unterminated and cut inside a multi-byte character: keep the
        // complete characters.
        Err(e) if nul.is_none() && e.error_len().is_none() => {
            Ok(core::str::from_utf8(&candidate[..e.valid_up_to()]).unwrap_or(""))
        }
        Err(_) => Err(BootInfoError::BadString(what)),
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> Result<u32, BootInfoError> {
    match bytes.get(offset..offset + 4) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(BootInfoError::Truncated {
            needed: offset + 4,
            available: bytes.len(),
        }),
    }
}

fn read_u64(bytes: &[u8], offset: usize) -> Result<u64, BootInfoError> {
    let lo = read_u32(bytes, offset)?;
    let hi = read_u32(bytes, offset + 4)?;
    Ok(u64::from(lo) | (u64::from(hi) << 32))
}

#[cfg(test)]
pub(crate) mod tests;
