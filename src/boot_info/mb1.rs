//! Multiboot 1 boot information: a fixed structure whose `flags` say which
//! fields are valid, with pointers to separate buffers (memory map, module
//! list, strings) elsewhere in physical memory.
//!
//! ```text
//!  offset  field                valid if flags bit
//!   0      flags
//!   4      mem_lower, mem_upper       0
//!  16      cmdline (pointer)          2
//!  20      mods_count, mods_addr      3   -> 16-byte entries {start, end, string, 0}
//!  28      syms: num, size, addr, shndx   5   (ELF section headers)
//!  44      mmap_length, mmap_addr     6   -> entries {size, base_addr: u64, length: u64, type}
//!  64      boot_loader_name (pointer) 9
//! ```
//!
//! A Multiboot 1 memory-map entry's `size` field counts the bytes after it
//! (20 for the basic entry), so the next entry is at `offset + size + 4`
//! (Multiboot 0.6.96 §3.3).

use super::{
    BasicMemInfo, BootData, BootInfo, BootInfoError, COMMAND_LINE_SIZE, ELF_SECTIONS_MAX,
    ElfSections, MAX_BOOT_DATA, MAX_MMAP_ENTRIES, MAX_MODULES, MB1_MMAP_MAX, MULTIBOOT1_INFO_SIZE,
    MemoryMapEntry, Module, Protocol, cstr, read_u32, read_u64,
};
use crate::addr::PhysAddr;

/// `flags` bits (Multiboot 0.6.96 §3.3).
pub mod flag {
    /// `mem_lower`, `mem_upper` valid.
    pub const MEM: u32 = 1 << 0;
    /// `cmdline` valid.
    pub const CMDLINE: u32 = 1 << 2;
    /// `mods_count`, `mods_addr` valid.
    pub const MODS: u32 = 1 << 3;
    /// ELF section-header table fields valid.
    pub const ELF_SHDR: u32 = 1 << 5;
    /// `mmap_length`, `mmap_addr` valid.
    pub const MMAP: u32 = 1 << 6;
    /// `boot_loader_name` valid.
    pub const BOOT_LOADER_NAME: u32 = 1 << 9;
}

/// Parses a Multiboot 1 information structure at `info_pa` (the loader
/// passes it in the 32-bit EBX).
///
/// `read_phys(pa, len)` returns the `len` bytes of physical memory at `pa`
/// (the kernel maps them through the early map window; tests serve them from
/// a buffer). Every range it is asked for lies below 4 GiB: the structure's
/// pointers are 32 bits. Strings are read up to [`COMMAND_LINE_SIZE`] bytes
/// (less near 4 GiB) and cut there if no NUL comes first.
///
/// # Errors
/// [`BootInfoError::Unmappable`] if the structure would reach past 4 GiB;
/// any [`BootInfoError`] about alignment, sizes, entries or strings, and
/// [`BootInfoError::NoMemoryInfo`] without a memory map and basic memory
/// information.
pub fn parse<'a>(
    info_pa: PhysAddr,
    mut read_phys: impl FnMut(PhysAddr, usize) -> Result<&'a [u8], BootInfoError>,
) -> Result<BootInfo<'a>, BootInfoError> {
    if !info_pa.0.is_multiple_of(4) {
        return Err(BootInfoError::Misaligned {
            addr: info_pa,
            align: 4,
        });
    }
    if info_pa.0 + MULTIBOOT1_INFO_SIZE as u64 > 1 << 32 {
        return Err(BootInfoError::Unmappable {
            pa: info_pa,
            len: MULTIBOOT1_INFO_SIZE,
        });
    }
    let bytes = read_phys(info_pa, MULTIBOOT1_INFO_SIZE)?;
    if bytes.len() < MULTIBOOT1_INFO_SIZE {
        return Err(BootInfoError::Truncated {
            needed: MULTIBOOT1_INFO_SIZE,
            available: bytes.len(),
        });
    }
    let mut boot_data: heapless::Vec<BootData, MAX_BOOT_DATA> = heapless::Vec::new();
    let mut keep = |what, base: PhysAddr, size: usize| {
        // MAX_BOOT_DATA covers every range this parser records.
        let _ = boot_data.push(BootData {
            what,
            base,
            size: size as u32,
        });
    };
    keep("Multiboot 1 information", info_pa, MULTIBOOT1_INFO_SIZE);

    let flags = read_u32(bytes, 0)?;
    let meminfo = if flags & flag::MEM != 0 {
        Some(BasicMemInfo {
            mem_lower_kib: read_u32(bytes, 4)?,
            mem_upper_kib: read_u32(bytes, 8)?,
        })
    } else {
        None
    };

    let cmdline = if flags & flag::CMDLINE != 0 {
        let pa = read_ptr(bytes, 16)?;
        // Raw bytes: the kernel's copy replaces what is not UTF-8.
        let s = read_phys(pa, string_bound(pa))?;
        let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
        keep("command line", pa, cstr_span(pa, s.len()));
        s
    } else {
        &[]
    };
    let loader_name = if flags & flag::BOOT_LOADER_NAME != 0 {
        let pa = read_ptr(bytes, 64)?;
        let s = read_string(&mut read_phys, pa, "boot loader name")?;
        keep("boot loader name", pa, cstr_span(pa, s.len()));
        Some(s)
    } else {
        None
    };

    let mut modules = heapless::Vec::new();
    if flags & flag::MODS != 0 {
        let count = read_u32(bytes, 20)? as usize;
        let addr = read_ptr(bytes, 24)?;
        if count > MAX_MODULES {
            return Err(BootInfoError::TooMany {
                what: "modules",
                max: MAX_MODULES,
            });
        }
        let list = if count > 0 {
            keep("Multiboot 1 module list", addr, count * 16);
            read_phys(addr, count * 16)?
        } else {
            &[][..]
        };
        for i in 0..count {
            let (start, end, string_pa) = (
                read_ptr(list, i * 16)?,
                read_ptr(list, i * 16 + 4)?,
                read_ptr(list, i * 16 + 8)?,
            );
            if end < start {
                return Err(BootInfoError::BadModule { start, end });
            }
            let string = if string_pa != PhysAddr(0) {
                let s = read_string(&mut read_phys, string_pa, "module string")?;
                keep("module string", string_pa, cstr_span(string_pa, s.len()));
                s
            } else {
                ""
            };
            let _ = modules.push(Module { start, end, string });
        }
    }

    let elf_sections = if flags & flag::ELF_SHDR != 0 {
        let e = ElfSections {
            num: read_u32(bytes, 28)?,
            entsize: read_u32(bytes, 32)?,
            addr: read_ptr(bytes, 36)?,
            shndx: read_u32(bytes, 40)?,
        };
        let table = u64::from(e.num) * u64::from(e.entsize);
        if table > ELF_SECTIONS_MAX {
            return Err(BootInfoError::TooLarge {
                what: "ELF section headers",
                size: table,
                max: ELF_SECTIONS_MAX,
            });
        }
        let room = (1u64 << 32) - e.addr.0;
        keep("ELF section headers", e.addr, table.min(room) as usize);
        Some(e)
    } else {
        None
    };

    let mut mmap_ignored = 0;
    let memory_map = if flags & flag::MMAP != 0 {
        let length = read_u32(bytes, 44)?;
        let addr = read_ptr(bytes, 48)?;
        if length > MB1_MMAP_MAX {
            return Err(BootInfoError::TooLarge {
                what: "Multiboot 1 memory map",
                size: u64::from(length),
                max: u64::from(MB1_MMAP_MAX),
            });
        }
        keep("Multiboot 1 memory map", addr, length as usize);
        let buf = if length == 0 {
            &[][..]
        } else {
            read_phys(addr, length as usize)?
        };
        let (map, ignored) = parse_mmap(buf, length)?;
        mmap_ignored = ignored;
        Some(map)
    } else {
        None
    };

    let mmap_tags = u32::from(memory_map.is_some());
    let info = BootInfo {
        protocol: Protocol::Multiboot1,
        info_pa,
        info_size: MULTIBOOT1_INFO_SIZE as u32,
        cmdline,
        loader_name,
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

/// A 32-bit physical pointer of the structure, at byte `offset` of `bytes`.
fn read_ptr(bytes: &[u8], offset: usize) -> Result<PhysAddr, BootInfoError> {
    Ok(PhysAddr::from_u32(read_u32(bytes, offset)?))
}

/// Bytes a string of `len` bytes at `pa` (below 4 GiB) occupies: its text
/// and the NUL, but never past 4 GiB (a string cut at the top of memory has
/// no NUL).
fn cstr_span(pa: PhysAddr, len: usize) -> usize {
    (len as u64 + 1).min((1u64 << 32) - pa.0) as usize
}

/// How many bytes a string at `pa` (below 4 GiB) may take:
/// [`COMMAND_LINE_SIZE`], fewer near 4 GiB.
fn string_bound(pa: PhysAddr) -> usize {
    (COMMAND_LINE_SIZE as u64).min((1u64 << 32) - pa.0) as usize
}

/// Reads the NUL-terminated string at `pa`, at most
/// [`COMMAND_LINE_SIZE`] bytes (fewer near 4 GiB); cut there without a NUL.
fn read_string<'a>(
    read_phys: &mut impl FnMut(PhysAddr, usize) -> Result<&'a [u8], BootInfoError>,
    pa: PhysAddr,
    what: &'static str,
) -> Result<&'a str, BootInfoError> {
    cstr(read_phys(pa, string_bound(pa))?, what)
}

/// Walks a Multiboot 1 memory-map buffer of `length` bytes.
///
/// # Errors
/// [`BootInfoError::BadMmapEntrySize`] for an entry `size` below 20,
/// [`BootInfoError::MmapEntryPastEnd`] for an entry that runs past `length`.
///
/// Entries past the first [`MAX_MMAP_ENTRIES`] are walked and counted (the
/// second value) but not kept.
pub fn parse_mmap(
    buf: &[u8],
    length: u32,
) -> Result<(heapless::Vec<MemoryMapEntry, MAX_MMAP_ENTRIES>, u32), BootInfoError> {
    if buf.len() < length as usize {
        return Err(BootInfoError::Truncated {
            needed: length as usize,
            available: buf.len(),
        });
    }
    let buf = &buf[..length as usize];
    let mut map = heapless::Vec::new();
    let mut ignored = 0;
    let mut offset = 0usize;
    // Each step advances by size + 4 >= 24 bytes, so the walk ends.
    while offset < buf.len() {
        if offset + 4 > buf.len() {
            return Err(BootInfoError::MmapEntryPastEnd { offset, length });
        }
        let size = read_u32(buf, offset)?;
        if size < 20 {
            return Err(BootInfoError::BadMmapEntrySize(size));
        }
        // saturating: on i386 usize is 32 bits, and a size near 2^32 must not
        // wrap around (which would make the walk stall or go backwards).
        let next = (offset + 4).saturating_add(size as usize);
        if next > buf.len() {
            return Err(BootInfoError::MmapEntryPastEnd { offset, length });
        }
        let entry = MemoryMapEntry {
            base: PhysAddr(read_u64(buf, offset + 4)?),
            length: read_u64(buf, offset + 12)?,
            typ: read_u32(buf, offset + 20)?,
        };
        if map.push(entry).is_err() {
            ignored += 1;
        }
        offset = next;
    }
    Ok((map, ignored))
}
