//! Multiboot2 boot information: validation by hand, then typed access through
//! the `multiboot2` crate.
//!
//! ```text
//!  offset 0  +-----------------+  total_size: u32, reserved: u32   (§3.6.1)
//!            | total_size      |
//!  offset 8  +-----------------+  tags, each 8-byte aligned         (§3.6.2)
//!            | type | size     |  size counts the 8-byte header, not the
//!            | payload ...     |  padding to the next 8-byte boundary
//!            +-----------------+
//!            | ...             |
//!            | 0    | 8        |  end tag
//!            +-----------------+  total_size
//! ```

use super::{
    BasicMemInfo, BootData, BootInfo, BootInfoError, ElfSections, MAX_MODULES, MemoryMapEntry,
    Module, Protocol, multiboot2_total_size, read_u32, read_u64,
};
use crate::addr::PhysAddr;

/// Tag types this module checks (Multiboot2 spec §3.6).
pub mod tag {
    /// End of the tags.
    pub const END: u32 = 0;
    /// Boot command line (§3.6.5).
    pub const CMDLINE: u32 = 1;
    /// Boot loader name (§3.6.9).
    pub const BOOT_LOADER_NAME: u32 = 2;
    /// A module (§3.6.6).
    pub const MODULE: u32 = 3;
    /// Basic memory information (§3.6.3).
    pub const BASIC_MEMINFO: u32 = 4;
    /// Memory map (§3.6.8).
    pub const MMAP: u32 = 6;
    /// ELF section headers (§3.6.7).
    pub const ELF_SECTIONS: u32 = 9;
}

/// Smallest valid `size` of a tag of type `typ`.
fn min_tag_size(typ: u32) -> u32 {
    match typ {
        tag::END => 8,
        tag::CMDLINE | tag::BOOT_LOADER_NAME => 9, // header + at least the NUL
        tag::MODULE => 17,                         // + mod_start, mod_end, NUL
        tag::BASIC_MEMINFO => 16,                  // + mem_lower, mem_upper
        tag::MMAP => 16,                           // + entry_size, entry_version
        tag::ELF_SECTIONS => 20,                   // + num, entsize, shndx
        _ => 8,
    }
}

/// A checked tag: its type and payload (the bytes after the 8-byte header).
#[derive(Clone, Copy, Debug)]
struct RawTag<'a> {
    typ: u32,
    offset: usize,
    payload: &'a [u8],
}

/// Walks the tags of `bytes` (the whole structure, `total_size` long) and
/// checks each one, calling `each` for every tag before the end tag.
///
/// Checks: every tag lies inside `total_size`, is at least 8 bytes (and at
/// least the minimum for its type), strings are NUL-terminated inside their
/// tag, memory-map entries are at least 24 bytes and a multiple of 8, and an
/// end tag of size 8 closes the list. The walk advances by at least 8 bytes
/// per tag, so it ends.
fn walk<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(RawTag<'a>) -> Result<(), BootInfoError>,
) -> Result<(), BootInfoError> {
    let total = multiboot2_total_size(bytes)?;
    if bytes.len() < total as usize {
        return Err(BootInfoError::Truncated {
            needed: total as usize,
            available: bytes.len(),
        });
    }
    let bytes = &bytes[..total as usize];
    let mut offset = 8;
    loop {
        if offset + 8 > bytes.len() {
            return Err(BootInfoError::MissingEndTag);
        }
        let typ = read_u32(bytes, offset)?;
        let size = read_u32(bytes, offset + 4)?;
        if size < min_tag_size(typ) {
            return Err(BootInfoError::TagTooSmall { typ, size, offset });
        }
        // saturating: on i386 usize is 32 bits, and a size near 2^32 must not
        // wrap around to a small `end`.
        let end = offset.saturating_add(size as usize);
        if end > bytes.len() {
            return Err(BootInfoError::TagPastEnd {
                typ,
                size,
                offset,
                total,
            });
        }
        let payload = &bytes[offset + 8..end];
        match typ {
            tag::END => {
                if size != 8 {
                    return Err(BootInfoError::TagTooSmall { typ, size, offset });
                }
                if end != bytes.len() {
                    return Err(BootInfoError::TrailingBytes {
                        offset,
                        total: bytes.len() as u32,
                    });
                }
                return Ok(());
            }
            tag::CMDLINE | tag::BOOT_LOADER_NAME | tag::MODULE => {
                let string = if typ == tag::MODULE {
                    &payload[8..]
                } else {
                    payload
                };
                if !string.contains(&0) {
                    return Err(BootInfoError::Unterminated(tag_string_name(typ)));
                }
            }
            tag::MMAP => {
                let entry_size = read_u32(payload, 0)?;
                if entry_size < 24 || !entry_size.is_multiple_of(8) {
                    return Err(BootInfoError::BadMmapEntrySize(entry_size));
                }
            }
            _ => {}
        }
        each(RawTag {
            typ,
            offset,
            payload,
        })?;
        // Next tag at the next 8-byte boundary; size >= 8 so this advances.
        offset = (end + 7) & !7;
    }
}

fn tag_string_name(typ: u32) -> &'static str {
    match typ {
        tag::CMDLINE => "command line",
        tag::BOOT_LOADER_NAME => "boot loader name",
        _ => "module string",
    }
}

/// Checks a Multiboot2 structure without interpreting it: every tag inside
/// `total_size` and at least as large as its type needs, strings
/// NUL-terminated, memory-map entry sizes valid, and an end tag last.
///
/// # Errors
/// The first problem found, as a [`BootInfoError`].
pub fn validate(bytes: &[u8]) -> Result<(), BootInfoError> {
    walk(bytes, |_| Ok(()))
}

/// Parses a Multiboot2 information structure at `info_pa`.
///
/// `bytes` is the whole structure, `[info_pa, info_pa + total_size)`, and
/// must start at an 8-byte aligned address (the early map keeps the page
/// offset, so this holds whenever `info_pa` is aligned).
///
/// # Errors
/// [`BootInfoError::Unmappable`] if the structure would reach past 4 GiB;
/// any [`BootInfoError`] about size, alignment, tags or strings, and
/// [`BootInfoError::NoMemoryInfo`] if there is neither a memory map nor basic
/// memory information.
pub fn parse(info_pa: PhysAddr, bytes: &[u8]) -> Result<BootInfo<'_>, BootInfoError> {
    if !info_pa.0.is_multiple_of(8) || bytes.as_ptr().align_offset(8) != 0 {
        return Err(BootInfoError::Misaligned {
            addr: info_pa,
            align: 8,
        });
    }
    validate(bytes)?;
    let total = multiboot2_total_size(bytes)?;
    if info_pa.0 + u64::from(total) > 1 << 32 {
        return Err(BootInfoError::Unmappable {
            pa: info_pa,
            len: total as usize,
        });
    }

    // The memory map is read here, from the raw entries, because the crate
    // insists on entry_size == 24 while the spec allows larger entries.
    let mut memory_map = None;
    let mut mmap_ignored = 0;
    let mut mmap_tags = 0;
    // The command line from the raw tag as well: the crate refuses one that
    // is not UTF-8, the kernel replaces the bad bytes and boots.
    let mut cmdline: &[u8] = &[];
    walk(bytes, |t| {
        if t.typ == tag::CMDLINE {
            // `validate` checked that the tag holds a NUL.
            cmdline = t.payload.split(|&b| b == 0).next().unwrap_or(&[]);
        }
        if t.typ == tag::MMAP {
            mmap_tags += 1;
        }
        // The first memory map is used; later ones are only counted.
        if t.typ == tag::MMAP && mmap_tags == 1 {
            let entry_size = read_u32(t.payload, 0)? as usize;
            let entries = &t.payload[8..];
            let mut map = heapless::Vec::new();
            for raw in entries.chunks_exact(entry_size) {
                let entry = MemoryMapEntry {
                    base: PhysAddr(read_u64(raw, 0)?),
                    length: read_u64(raw, 8)?,
                    typ: read_u32(raw, 16)?,
                };
                if map.push(entry).is_err() {
                    mmap_ignored += 1;
                }
            }
            memory_map = Some(map);
        }
        Ok(())
    })?;

    #[allow(
        unsafe_code,
        reason = "the multiboot2 crate reads the tags through a raw pointer"
    )]
    // SAFETY:
    // - `bytes` is a live shared slice of at least `total_size` bytes, the
    //   only range the crate reads, and `validate` has checked every tag's
    //   bounds, so the crate's own walk stays inside it.
    // - Its start is 8-byte aligned, as `BootInformationHeader` requires.
    let mbi = unsafe { multiboot2::BootInformation::load(bytes.as_ptr().cast()) }
        .map_err(|_| BootInfoError::Multiboot2Invalid)?;

    let loader_name = match mbi.boot_loader_name_tag() {
        Some(t) => Some(
            t.name()
                .map_err(|_| BootInfoError::BadString("boot loader name"))?,
        ),
        None => None,
    };
    // Basic meminfo from the raw tag too: the crate asserts that the tag is
    // exactly 16 bytes, while a longer one is merely unusual.
    let mut meminfo = None;
    walk(bytes, |t| {
        if t.typ == tag::BASIC_MEMINFO {
            meminfo = Some(BasicMemInfo {
                mem_lower_kib: read_u32(t.payload, 0)?,
                mem_upper_kib: read_u32(t.payload, 4)?,
            });
        }
        Ok(())
    })?;
    let mut modules = heapless::Vec::new();
    for m in mbi.module_tags() {
        let string = m
            .cmdline()
            .map_err(|_| BootInfoError::BadString("module string"))?;
        let (start, end) = (
            PhysAddr::from_u32(m.start_address()),
            PhysAddr::from_u32(m.end_address()),
        );
        if end < start {
            return Err(BootInfoError::BadModule { start, end });
        }
        let module = Module {
            start,
            end,
            string: rebase_str(bytes, string),
        };
        modules.push(module).map_err(|_| BootInfoError::TooMany {
            what: "modules",
            max: MAX_MODULES,
        })?;
    }
    // ELF section headers: read from the raw tag (num, entsize, shndx are
    // u32 in GRUB's tag; the headers follow them inside the tag).
    let mut elf_sections = None;
    walk(bytes, |t| {
        if t.typ == tag::ELF_SECTIONS {
            let e = ElfSections {
                num: read_u32(t.payload, 0)?,
                entsize: read_u32(t.payload, 4)?,
                shndx: read_u32(t.payload, 8)?,
                addr: info_pa + (t.offset as u64 + 20),
            };
            // The headers follow inside the tag.
            let table = u64::from(e.num) * u64::from(e.entsize);
            if table > (t.payload.len() - 12) as u64 {
                return Err(BootInfoError::TagPastEnd {
                    typ: t.typ,
                    size: (table + 20).min(u64::from(u32::MAX)) as u32,
                    offset: t.offset,
                    total,
                });
            }
            elf_sections = Some(e);
        }
        Ok(())
    })?;

    let mut boot_data = heapless::Vec::new();
    let _ = boot_data.push(BootData {
        what: "Multiboot2 information",
        base: info_pa,
        size: total,
    });
    let info = BootInfo {
        protocol: Protocol::Multiboot2,
        info_pa,
        info_size: total,
        cmdline,
        loader_name: loader_name.map(|s| rebase_str(bytes, s)),
        meminfo,
        memory_map,
        mmap_ignored,
        mmap_tags,
        modules,
        elf_sections,
        boot_data,
    };
    info.check_memory_info()?;
    Ok(info)
}

/// `s`, which points into `bytes`, as a sub-slice of `bytes` (same bytes,
/// lifetime of `bytes`); `""` if it does not point into `bytes`.
fn rebase_str<'a>(bytes: &'a [u8], s: &str) -> &'a str {
    let Some(offset) = (s.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize) else {
        return "";
    };
    match bytes.get(offset..offset + s.len()) {
        // The crate validated these bytes as UTF-8 a moment ago.
        Some(sub) => core::str::from_utf8(sub).unwrap_or(""),
        None => "",
    }
}
