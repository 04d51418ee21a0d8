//! The loader's data: reading the boot information through the early map
//! window, refusing loader ranges that are not where they may be, the
//! command-line copy, and the CRC-32 checksums that show the data survived
//! memory initialisation (Linux: `setup_arch()`'s `early_memremap()` of the
//! boot parameters, `boot_command_line`, `early_reserve_initrd()`'s checks).

use crate::addr::PhysAddr;
use crate::arch::x86::{self, early_map, exit::fatal, highmem};
use crate::boot_info::{
    BootInfo, BootInfoError, COMMAND_LINE_SIZE, MAX_BOOT_DATA, MAX_MODULES, Protocol, mb1, mb2,
    multiboot2_total_size, ranges,
};
use crate::cmdline;
use crate::mm::layout::PAGE_SIZE;

/// The command line, copied out of the loader's memory (Linux:
/// `boot_command_line`), which later stages may reuse.
static COMMAND_LINE: spin::Once<([u8; COMMAND_LINE_SIZE], cmdline::LossyCopy)> = spin::Once::new();

/// The boot information the loader left at physical address `ebx`,
/// announced by `magic` (EAX), parsed and with its ranges checked; a bad one
/// ends the boot on the fatal path.
///
/// `ebx` is the register as `kernel_entry` received it (32 bits, Multiboot2
/// spec §3.3); it becomes a [`PhysAddr`] here, once, and everything past
/// this function sees the typed address.
pub fn read(magic: u32, ebx: u32) -> BootInfo<'static> {
    let info_pa = PhysAddr::from_u32(ebx);
    let protocol = Protocol::from_magic(magic).unwrap_or_else(|e| fatal(format_args!("{e}")));
    let boot = read_boot_info(protocol, info_pa)
        .unwrap_or_else(|e| fatal(format_args!("{protocol} boot information: {e}")));
    check_loader_ranges(&boot);
    boot
}

/// Maps and parses the boot information through the early map window.
fn read_boot_info(
    protocol: Protocol,
    info_pa: PhysAddr,
) -> Result<BootInfo<'static>, BootInfoError> {
    let map = |pa: PhysAddr, len: usize| {
        early_map::early_memremap_ro(pa, len).map_err(|_| BootInfoError::Unmappable { pa, len })
    };
    match protocol {
        Protocol::Multiboot2 => {
            if !info_pa.0.is_multiple_of(8) {
                return Err(BootInfoError::Misaligned {
                    addr: info_pa,
                    align: 8,
                });
            }
            let total = multiboot2_total_size(map(info_pa, 8)?)?;
            mb2::parse(info_pa, map(info_pa, total as usize)?)
        }
        Protocol::Multiboot1 => mb1::parse(info_pa, map),
    }
}

/// Refuses the boot if a module or a loader structure is not in RAM or
/// overlaps the kernel image (`boot_info::ranges`), before anything reads it.
fn check_loader_ranges(boot: &BootInfo<'_>) {
    let kernel = x86::image_sections().map(|s| {
        let p = s.phys_section();
        ranges::KernelSection {
            name: p.name,
            base: p.start,
            end: p.end,
        }
    });
    if let Err(e) = ranges::check(boot, &boot.sanitized_map(), &kernel) {
        fatal(format_args!("{} boot information: {e}", boot.protocol));
    }
}

/// Copies the loader's command-line bytes into [`COMMAND_LINE`] as UTF-8
/// (`cmdline::copy_lossy`: bytes that are not UTF-8 replaced, cut to fit).
pub fn save_command_line(raw: &[u8]) -> (&'static str, cmdline::LossyCopy) {
    let (buf, copy) = COMMAND_LINE.call_once(|| {
        let mut buf = [0u8; COMMAND_LINE_SIZE];
        let copy = cmdline::copy_lossy(raw, &mut buf[..COMMAND_LINE_SIZE - 1]);
        (buf, copy)
    });
    (core::str::from_utf8(&buf[..copy.len]).unwrap_or(""), *copy)
}

/// CRC-32 (ISO-HDLC, as zlib and gzip compute it) of
/// `[pa, pa + len)`, reading every `step`-th page of it
/// (`ranges::checksum_step`: every page up to 16 MiB), a page at a time
/// through `kmap_local` (the direct map where it reaches, else a temporary
/// mapping), so a module of any size can be checked without filling the
/// early map window.
#[allow(unsafe_code, reason = "reads loader data through a temporary mapping")]
fn crc32_phys(pa: PhysAddr, len: u64, step: u64) -> u32 {
    const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = CRC32.digest();
    let end = pa + len;
    let mut at = pa;
    let mut index = 0;
    while at < end {
        let page = at.pfn().phys();
        let chunk_end = end.min(page + u64::from(PAGE_SIZE));
        let (offset, n) = ((at - page) as usize, (chunk_end - at) as usize);
        if index % step == 0 {
            highmem::kmap_local(page.pfn(), |ptr| {
                // SAFETY: `ptr` maps the frame for this closure; the bytes
                // are loader data in RAM (checked by `check_loader_ranges`)
                // that nothing writes (reserved in memblock).
                digest.update(unsafe { core::slice::from_raw_parts(ptr.add(offset), n) });
            });
        }
        at = chunk_end;
        index += 1;
    }
    digest.finalize()
}

/// The checksums of the loader's data (boot information, then modules),
/// taken before memory initialisation and compared after it.
pub struct BootChecksums {
    /// CRC-32 per range of `ranges::loader_ranges`, in its order.
    pub sums: heapless::Vec<u32, { MAX_BOOT_DATA + MAX_MODULES }>,
    /// Bytes the ranges cover.
    pub bytes: u64,
    /// Bytes actually read (large ranges are sampled).
    pub read: u64,
}

/// CRC-32 of every loader range (`ranges::loader_ranges`: the loader's
/// structures, then the modules), large ones sampled one page in
/// `ranges::checksum_step` (`report::checksums` says which).
pub fn checksums(boot: &BootInfo<'_>) -> BootChecksums {
    let (mut bytes, mut read) = (0u64, 0u64);
    let sums = ranges::loader_ranges(boot)
        .map(|r| {
            let len = r.end - r.base;
            let step = ranges::checksum_step(r.base, len);
            bytes += len;
            read += len.div_ceil(step);
            crc32_phys(r.base, len, step)
        })
        .collect();
    BootChecksums { sums, bytes, read }
}

/// Checks that the loader's data survived memory initialisation (against
/// `before`, from [`checksums`]); anything overwritten ends the boot on the
/// fatal path. Returns the checksums taken now, for the report.
pub fn check_intact(boot: &BootInfo<'_>, before: &BootChecksums) -> BootChecksums {
    let after = checksums(boot);
    let n = boot.boot_data.len();
    for (i, d) in boot.boot_data.iter().enumerate() {
        if before.sums[i] != after.sums[i] {
            fatal(format_args!(
                "{} at {:#010x} was overwritten during memory initialisation",
                d.what, d.base
            ));
        }
    }
    for (i, m) in boot.modules.iter().enumerate() {
        if before.sums[n + i] != after.sums[n + i] {
            fatal(format_args!(
                "module {i} '{}' was overwritten during memory initialisation",
                m.string
            ));
        }
    }
    after
}
