//! What the boot loader tells the kernel: which protocol booted it, where the
//! boot information lies, the command line and the loader's name.
//!
//! Where it sits: the first thing `kernel_entry` decodes, before the logger is
//! configured, because the command line sets the log level. Issue 3 extends
//! this module with the memory map and modules that feed memblock.
//!
//! The kernel reaches the information through the early map window
//! (`arch::x86::early_map`), so it may lie anywhere below 4 GiB; this module
//! only ever sees byte slices and never reads past the size the loader gave.
//! Multiboot2 is parsed with the `multiboot2` crate; Multiboot 1's fixed
//! structure is small enough to read field by field here.
//!
//! # References
//! - Multiboot2 spec §3.3 "I386 machine state" (magic in EAX, info in EBX),
//!   §3.6.1 "Boot information format", §3.6.2 "Basic tags structure",
//!   §3.6.3 "Basic memory information", §3.6.4 "BIOS Boot device",
//!   §3.6.5 "Boot command line", §3.6.7 "Boot loader name".
//! - Multiboot 0.6.96 §3.2 "Machine state", §3.3 "Boot information format".

use core::fmt;

/// EAX value from a Multiboot2 loader (Multiboot2 spec §3.3).
pub const MULTIBOOT2_BOOTLOADER_MAGIC: u32 = 0x36D7_6289;
/// EAX value from a Multiboot 1 loader (Multiboot 0.6.96 §3.2).
pub const MULTIBOOT1_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Bytes of the Multiboot 1 information structure up to and including
/// `boot_loader_name` (offset 64) and the APM pointer: every field this
/// kernel reads.
pub const MULTIBOOT1_INFO_SIZE: usize = 72;

/// Largest Multiboot2 information structure accepted, in bytes. GRUB's is a
/// few KiB; the limit keeps a corrupt `total_size` from mapping all of memory.
pub const MULTIBOOT2_INFO_MAX: u32 = 1 << 20;

/// Longest command line kept, in bytes including the final NUL (Linux i386
/// `COMMAND_LINE_SIZE`).
pub const COMMAND_LINE_SIZE: usize = 2048;

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
        addr: u32,
        /// Required alignment in bytes.
        align: u32,
    },
    /// Multiboot2 `total_size` is smaller than a header plus an end tag (16)
    /// or larger than [`MULTIBOOT2_INFO_MAX`].
    BadTotalSize(u32),
    /// Fewer bytes are available than the structure needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The `multiboot2` crate rejected the structure (a tag too small or
    /// running past the end, no end tag).
    Multiboot2Invalid,
    /// A string (command line, loader name) is not UTF-8 (Multiboot2: or not
    /// NUL-terminated within its tag).
    BadString(&'static str),
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::BadMagic(m) => write!(
                f,
                "bad boot magic {m:#010x} in EAX (expected Multiboot2 {MULTIBOOT2_BOOTLOADER_MAGIC:#010x} \
                 or Multiboot 1 {MULTIBOOT1_BOOTLOADER_MAGIC:#010x}): not started by a Multiboot loader"
            ),
            BootInfoError::Misaligned { addr, align } => write!(
                f,
                "boot information at {addr:#010x} is not {align}-byte aligned"
            ),
            BootInfoError::BadTotalSize(size) => write!(
                f,
                "Multiboot2 total_size {size} is outside [16, {MULTIBOOT2_INFO_MAX}]"
            ),
            BootInfoError::Truncated { needed, available } => write!(
                f,
                "boot information truncated: needs {needed} bytes, {available} available"
            ),
            BootInfoError::Multiboot2Invalid => {
                f.write_str("Multiboot2 information is malformed (bad tag size or missing end tag)")
            }
            BootInfoError::BadString(what) => {
                write!(f, "boot information {what} is not a valid UTF-8 string")
            }
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
    let size = read_u32(header, 0)?;
    if !(16..=MULTIBOOT2_INFO_MAX).contains(&size) || !size.is_multiple_of(8) {
        return Err(BootInfoError::BadTotalSize(size));
    }
    Ok(size)
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

/// What the kernel takes from the boot information at this stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// The protocol that booted the kernel.
    pub protocol: Protocol,
    /// Where the structure lies: `[info_pa, info_pa + info_size)` in bytes.
    pub info_pa: u32,
    /// Size of the structure in bytes.
    pub info_size: u32,
    /// The command line (empty if the loader gave none).
    pub cmdline: &'a str,
    /// The loader's name, if it gave one.
    pub loader_name: Option<&'a str>,
    /// Basic memory information, if present.
    pub meminfo: Option<BasicMemInfo>,
}

impl<'a> BootInfo<'a> {
    /// Parses a Multiboot2 information structure.
    ///
    /// `bytes` is the whole structure, `[info_pa, info_pa + total_size)`,
    /// and must start at an 8-byte aligned address (the early map keeps the
    /// page offset, so this holds whenever `info_pa` is aligned).
    ///
    /// # Errors
    /// Any [`BootInfoError`] about size, alignment or tags.
    pub fn from_multiboot2(info_pa: u32, bytes: &'a [u8]) -> Result<Self, BootInfoError> {
        let total = multiboot2_total_size(bytes)?;
        if bytes.len() < total as usize {
            return Err(BootInfoError::Truncated {
                needed: total as usize,
                available: bytes.len(),
            });
        }
        if !info_pa.is_multiple_of(8) || bytes.as_ptr().align_offset(8) != 0 {
            return Err(BootInfoError::Misaligned {
                addr: info_pa,
                align: 8,
            });
        }
        // SAFETY:
        // - `bytes` is a live shared slice of at least `total_size` bytes, the
        //   only range the crate reads (it checks every tag against
        //   total_size), and it outlives the returned value ('a).
        // - Its start is 8-byte aligned, as `BootInformationHeader` requires.
        #[allow(unsafe_code)]
        let mbi = unsafe { multiboot2::BootInformation::load(bytes.as_ptr().cast()) }
            .map_err(|_| BootInfoError::Multiboot2Invalid)?;

        let cmdline = match mbi.command_line_tag() {
            Some(tag) => tag
                .cmdline()
                .map_err(|_| BootInfoError::BadString("command line"))?,
            None => "",
        };
        let loader_name = match mbi.boot_loader_name_tag() {
            Some(tag) => Some(
                tag.name()
                    .map_err(|_| BootInfoError::BadString("boot loader name"))?,
            ),
            None => None,
        };
        let meminfo = mbi.basic_memory_info_tag().map(|t| BasicMemInfo {
            mem_lower_kib: t.memory_lower(),
            mem_upper_kib: t.memory_upper(),
        });
        // The strings borrow from `mbi`, which borrows `bytes` for 'a; re-derive
        // them from `bytes` so their lifetime is 'a, not that of `mbi`.
        Ok(BootInfo {
            protocol: Protocol::Multiboot2,
            info_pa,
            info_size: total,
            cmdline: rebase_str(bytes, cmdline),
            loader_name: loader_name.map(|s| rebase_str(bytes, s)),
            meminfo,
        })
    }

    /// Parses a Multiboot 1 information structure.
    ///
    /// `bytes` holds at least [`MULTIBOOT1_INFO_SIZE`] bytes from `info_pa`.
    /// The command line and loader name are separate NUL-terminated strings
    /// elsewhere in physical memory: `read_cstr(pa)` must return the bytes
    /// from `pa` on, up to a bound of its choosing; a string with no NUL
    /// before that bound is cut there.
    ///
    /// # Errors
    /// Any [`BootInfoError`] about size, alignment or strings.
    pub fn from_multiboot1(
        info_pa: u32,
        bytes: &[u8],
        mut read_cstr: impl FnMut(u32) -> Result<&'a [u8], BootInfoError>,
    ) -> Result<Self, BootInfoError> {
        if !info_pa.is_multiple_of(4) {
            return Err(BootInfoError::Misaligned {
                addr: info_pa,
                align: 4,
            });
        }
        if bytes.len() < MULTIBOOT1_INFO_SIZE {
            return Err(BootInfoError::Truncated {
                needed: MULTIBOOT1_INFO_SIZE,
                available: bytes.len(),
            });
        }
        // Multiboot 0.6.96 §3.3: `flags` says which fields are valid.
        let flags = read_u32(bytes, 0)?;
        let meminfo = if flags & (1 << 0) != 0 {
            Some(BasicMemInfo {
                mem_lower_kib: read_u32(bytes, 4)?,
                mem_upper_kib: read_u32(bytes, 8)?,
            })
        } else {
            None
        };
        let cmdline = if flags & (1 << 2) != 0 {
            cstr(read_cstr(read_u32(bytes, 16)?)?, "command line")?
        } else {
            ""
        };
        let loader_name = if flags & (1 << 9) != 0 {
            Some(cstr(read_cstr(read_u32(bytes, 64)?)?, "boot loader name")?)
        } else {
            None
        };
        Ok(BootInfo {
            protocol: Protocol::Multiboot1,
            info_pa,
            info_size: MULTIBOOT1_INFO_SIZE as u32,
            cmdline,
            loader_name,
            meminfo,
        })
    }
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

fn read_u32(bytes: &[u8], offset: usize) -> Result<u32, BootInfoError> {
    match bytes.get(offset..offset + 4) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(BootInfoError::Truncated {
            needed: offset + 4,
            available: bytes.len(),
        }),
    }
}

#[cfg(test)]
mod tests;
