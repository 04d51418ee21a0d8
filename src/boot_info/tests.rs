//! Boot information parsed from structures built byte by byte.

use super::*;

/// Builds a Multiboot2 information structure (spec §3.6.1–§3.6.2): an 8-byte
/// header `{ total_size: u32, reserved: u32 }`, then tags `{ type: u32,
/// size: u32, payload }`, each padded to 8 bytes, ending with tag type 0.
struct Mb2Builder {
    bytes: Vec<u8>,
}

impl Mb2Builder {
    fn new() -> Self {
        Mb2Builder { bytes: vec![0; 8] }
    }

    fn tag(mut self, typ: u32, payload: &[u8]) -> Self {
        let size = 8 + payload.len() as u32;
        self.bytes.extend_from_slice(&typ.to_le_bytes());
        self.bytes.extend_from_slice(&size.to_le_bytes());
        self.bytes.extend_from_slice(payload);
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        self
    }

    /// Tag 1 (§3.6.5) or 2 (§3.6.7): a NUL-terminated string.
    fn string_tag(self, typ: u32, s: &str) -> Self {
        let mut payload = s.as_bytes().to_vec();
        payload.push(0);
        self.tag(typ, &payload)
    }

    /// Appends the end tag and fills in total_size.
    fn build(self) -> Aligned {
        let mut b = self.tag(0, &[]).bytes;
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_le_bytes());
        Aligned::new(&b)
    }
}

/// Bytes at an 8-byte aligned address, as a loader provides them.
struct Aligned(Vec<u64>, usize);

impl Aligned {
    fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (i, b) in bytes.iter().enumerate() {
            words[i / 8] |= u64::from(*b) << (8 * (i % 8));
        }
        Aligned(words, bytes.len())
    }
    fn bytes(&self) -> &[u8] {
        let all: &[u8] = bytemuck_cast(&self.0);
        &all[..self.1]
    }
}

fn bytemuck_cast(words: &[u64]) -> &[u8] {
    // Little-endian host assumed (x86, as the kernel).
    // SAFETY: every bit pattern is a valid u8, and u8 has alignment 1.
    let (head, body, tail) = unsafe { words.align_to::<u8>() };
    assert!(head.is_empty() && tail.is_empty());
    body
}

fn meminfo_payload(lower: u32, upper: u32) -> Vec<u8> {
    [lower.to_le_bytes(), upper.to_le_bytes()].concat()
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
fn multiboot2_gives_cmdline_loader_and_meminfo() {
    let mbi = Mb2Builder::new()
        .string_tag(1, "selftest loglevel=debug")
        .string_tag(2, "GRUB 2.06")
        .tag(4, &meminfo_payload(639, 130_048))
        .build();
    let info = BootInfo::from_multiboot2(0x0010_a000, mbi.bytes()).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot2);
    assert_eq!(info.cmdline, "selftest loglevel=debug");
    assert_eq!(info.loader_name, Some("GRUB 2.06"));
    assert_eq!(
        info.meminfo,
        Some(BasicMemInfo {
            mem_lower_kib: 639,
            mem_upper_kib: 130_048
        })
    );
    assert_eq!(info.info_size as usize, mbi.bytes().len());
}

#[test]
fn multiboot2_without_optional_tags_is_fine() {
    let mbi = Mb2Builder::new().build();
    let info = BootInfo::from_multiboot2(0x1000, mbi.bytes()).unwrap();
    assert_eq!(info.cmdline, "");
    assert_eq!(info.loader_name, None);
    assert_eq!(info.meminfo, None);
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
        multiboot2_total_size(&[20, 0, 0, 0]),
        Err(BootInfoError::BadTotalSize(20))
    );
    assert!(matches!(
        multiboot2_total_size(&[16, 0]),
        Err(BootInfoError::Truncated { .. })
    ));
}

#[test]
fn multiboot2_structure_shorter_than_total_size_is_truncated() {
    let mbi = Mb2Builder::new().string_tag(1, "abc").build();
    let bytes = mbi.bytes();
    assert_eq!(
        BootInfo::from_multiboot2(0x1000, &bytes[..bytes.len() - 8]),
        Err(BootInfoError::Truncated {
            needed: bytes.len(),
            available: bytes.len() - 8
        })
    );
}

#[test]
fn multiboot2_tag_running_past_the_end_is_rejected() {
    let mbi = Mb2Builder::new().string_tag(1, "abc").build();
    let mut raw = mbi.bytes().to_vec();
    raw[12..16].copy_from_slice(&4096u32.to_le_bytes()); // cmdline tag size
    let bad = Aligned::new(&raw);
    assert_eq!(
        BootInfo::from_multiboot2(0x1000, bad.bytes()),
        Err(BootInfoError::Multiboot2Invalid)
    );
}

#[test]
fn multiboot2_missing_end_tag_is_rejected() {
    let mbi = Mb2Builder::new().string_tag(1, "abc").build();
    let mut raw = mbi.bytes().to_vec();
    let n = raw.len();
    raw[n - 8..n - 4].copy_from_slice(&5u32.to_le_bytes()); // end tag -> type 5
    let bad = Aligned::new(&raw);
    assert_eq!(
        BootInfo::from_multiboot2(0x1000, bad.bytes()),
        Err(BootInfoError::Multiboot2Invalid)
    );
}

#[test]
fn multiboot2_misaligned_address_is_rejected() {
    let mbi = Mb2Builder::new().build();
    assert_eq!(
        BootInfo::from_multiboot2(0x1004, mbi.bytes()),
        Err(BootInfoError::Misaligned {
            addr: 0x1004,
            align: 8
        })
    );
}

/// A Multiboot 1 structure (0.6.96 §3.3) with flags 0, 2, 9 set, its strings
/// at fake physical addresses 0x9000 (cmdline) and 0x9100 (loader name).
fn mb1_info(flags: u32) -> Vec<u8> {
    let mut b = vec![0u8; MULTIBOOT1_INFO_SIZE];
    b[0..4].copy_from_slice(&flags.to_le_bytes());
    b[4..8].copy_from_slice(&639u32.to_le_bytes());
    b[8..12].copy_from_slice(&130_048u32.to_le_bytes());
    b[16..20].copy_from_slice(&0x9000u32.to_le_bytes());
    b[64..68].copy_from_slice(&0x9100u32.to_le_bytes());
    b
}

fn fake_phys(pa: u32) -> Result<&'static [u8], BootInfoError> {
    match pa {
        0x9000 => Ok(b"/boot/kernel.elf selftest\0garbage"),
        0x9100 => Ok(b"qemu\0"),
        0x9200 => Ok(b"cut without a terminator"),
        _ => Ok(b"bad \xff utf-8\0"),
    }
}

#[test]
fn multiboot1_reads_fields_that_flags_mark_valid() {
    let info = BootInfo::from_multiboot1(0x9500, &mb1_info(1 | 4 | 512), fake_phys).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot1);
    assert_eq!(info.cmdline, "/boot/kernel.elf selftest");
    assert_eq!(info.loader_name, Some("qemu"));
    assert_eq!(info.meminfo.unwrap().mem_upper_kib, 130_048);

    let info = BootInfo::from_multiboot1(0x9500, &mb1_info(0), fake_phys).unwrap();
    assert_eq!(info.cmdline, "");
    assert_eq!(info.loader_name, None);
    assert_eq!(info.meminfo, None);
}

#[test]
fn multiboot1_errors() {
    assert!(matches!(
        BootInfo::from_multiboot1(0x9500, &[0; 16], fake_phys),
        Err(BootInfoError::Truncated { needed: 72, .. })
    ));
    assert_eq!(
        BootInfo::from_multiboot1(0x9502, &mb1_info(0), fake_phys),
        Err(BootInfoError::Misaligned {
            addr: 0x9502,
            align: 4
        })
    );
    let mut info = mb1_info(4);
    info[16..20].copy_from_slice(&0x9200u32.to_le_bytes());
    assert_eq!(
        BootInfo::from_multiboot1(0x9500, &info, fake_phys)
            .unwrap()
            .cmdline,
        "cut without a terminator",
        "an unterminated string is cut at the bound"
    );
    info[16..20].copy_from_slice(&0x7777u32.to_le_bytes());
    assert_eq!(
        BootInfo::from_multiboot1(0x9500, &info, fake_phys),
        Err(BootInfoError::BadString("command line"))
    );
}
