//! From boot information to memblock: the memory map is logged, sanitized
//! and added; everything that must survive is reserved; `mem=` trims.
//!
//! Where it sits: right after the command line is parsed and before the first
//! allocation. Linux does the same work in `setup_arch()`:
//! `e820__memory_setup()` (print and sanitize the BIOS map),
//! `e820__memblock_setup()` (add usable RAM to memblock), `parse_memopt()`
//! (`mem=`), `memblock_reserve()` of the kernel image and boot data, and
//! "Always reserve the first 1M of RAM" (`arch/x86/kernel/setup.c`).
//!
//! The paging mode decides how far up RAM is used ([`PhysLimit`]: 4 GiB
//! without PAE, just under 64 GiB with it); RAM above 896 MiB becomes
//! HighMem. `mem_map`, one 8-byte descriptor per frame up to the end of RAM,
//! must live in low memory: [`fit_mem_map`] sizes it and removes RAM from the
//! top when it would take more than half of low memory.
//!
//! Pure: it logs through the `log` crate and touches memory only through
//! [`PhysMem`], so fixture tests run it on the host.

use super::buddy::BuddyAllocator;
use super::layout::PAGE_SIZE;
use super::memblock::{Memblock, MemblockError, PhysMem};
use super::page::Page;
use super::zone::{DEFAULT_MAX_LOW_PFN, MAX_DMA_PFN, MAX_NR_ZONES, ZoneType};
use crate::addr::{Pfn, PhysAddr};
use crate::boot_info::memmap::{self, PhysLimit, SanitizedMap, UsableRam};
use crate::boot_info::{self, BootInfo, MemoryMapEntry};
use log::{debug, info, warn};

/// Value: 1 MiB. Linux x86 reserves all of `[0, 1 MiB)`: the real-mode IVT and
/// BIOS data area, the EBDA, video memory and the BIOS ROMs live there, and
/// firmware bugs corrupt the rest often enough.
pub const LOW_MEMORY_RESERVED: u64 = 1 << 20;

/// The kernel image, physical `[start, end)` in bytes (from the linker
/// symbols: `pa(__kernel_start)`, `pa(__kernel_end)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

/// What [`memblock_setup`] found, for the caller's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySetup {
    /// The sanitized map.
    pub map: SanitizedMap,
    /// Its usable RAM.
    pub usable: UsableRam,
    /// Bytes of RAM removed by `mem=`.
    pub mem_limit_removed: u64,
    /// `mem_map`'s size and the low-memory rule ([`fit_mem_map`]), after
    /// `mem=`.
    pub mem_map: MemMapSizing,
}

/// `1024 MiB of RAM at or above 4 GiB ignored: 32-bit paging without PAE
/// cannot address it` (the words after "above" from [`PhysLimit`]).
struct IgnoredLine<'a>(&'a UsableRam);

impl core::fmt::Display for IgnoredLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (bytes, limit) = (self.0.above_limit_bytes, self.0.limit);
        write!(
            f,
            "{} MiB of RAM at or above {} ignored: {}",
            bytes >> 20,
            limit.name(),
            limit.reason()
        )
    }
}

/// One raw entry, Linux style, as received.
struct Raw<'a>(&'a MemoryMapEntry);

impl core::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let e = self.0;
        match (e.length, e.base.0.checked_add(e.length)) {
            (0, _) => write!(f, "[mem {:#018x} +0] (zero length)", e.base)?,
            (_, None) => write!(
                f,
                "[mem {:#018x} +{:#x}] (end overflows 64 bits)",
                e.base, e.length
            )?,
            (_, Some(end)) => write!(f, "[mem {:#018x}-{:#018x}]", e.base, end - 1)?,
        }
        write!(f, " {}", memmap::type_name(e.typ))?;
        if memmap::type_name(e.typ) == "unknown type" {
            write!(f, " {}", e.typ)?;
        }
        Ok(())
    }
}

/// Logs and sanitizes the memory map of `boot` (or basic meminfo without a
/// map), adds the usable RAM below `phys_limit` to `memblock`, applies `mem=`
/// (`mem_limit`, bytes, clipped to `phys_limit`), reserves the first 1 MiB,
/// the kernel image, the boot data and every module, and last removes the
/// RAM whose `mem_map` would not fit in low memory ([`fit_mem_map`] with
/// [`DEFAULT_MAX_LOW_PFN`]).
///
/// # Errors
/// A [`MemblockError`] if memblock cannot record a region (its arrays could
/// not grow).
pub fn memblock_setup(
    boot: &BootInfo<'_>,
    mem_limit: Option<u64>,
    phys_limit: PhysLimit,
    image: KernelImage,
    memblock: &mut Memblock,
    mem: &mut impl PhysMem,
) -> Result<MemorySetup, MemblockError> {
    let fallback;
    let entries: &[MemoryMapEntry] = match (&boot.memory_map, boot.meminfo) {
        (Some(map), _) => {
            if boot.mmap_ignored == 0 {
                info!(target: "memmap", "memory map from the boot loader, {} entries:", map.len());
            } else {
                info!(target: "memmap", "memory map from the boot loader, {} entries, the first {} kept:",
                    map.len() + boot.mmap_ignored as usize, map.len());
            }
            map
        }
        (None, Some(m)) => {
            warn!(target: "memmap",
                "no memory map from the boot loader: falling back to basic meminfo \
                 (lower {} KiB, upper {} KiB)", m.mem_lower_kib, m.mem_upper_kib);
            fallback = memmap::entries_from_meminfo(m);
            &fallback
        }
        // BootInfo parsing guarantees one of the two.
        (None, None) => &[],
    };
    for e in entries {
        info!(target: "memmap", "  received: {}", Raw(e));
    }
    if boot.mmap_tags > 1 {
        warn!(target: "memmap",
            "{} memory-map tags in the boot information: the first one (above) is used, the others ignored",
            boot.mmap_tags);
    }
    if boot.mmap_ignored > 0 {
        warn!(target: "memmap",
            "{} entries past the first {} ignored (Linux's e820 table also drops what does not fit)",
            boot.mmap_ignored, boot_info::MAX_MMAP_ENTRIES);
    }
    let map = memmap::sanitize(entries);
    if map.zero_length > 0 {
        warn!(target: "memmap", "{} zero-length entries dropped", map.zero_length);
    }
    for e in &map.overflowing_entries {
        warn!(target: "memmap",
            "  dropped: {}: a corrupt entry, ignored (Linux's e820 drops it too)", Raw(e));
    }
    if map.overflowing as usize > map.overflowing_entries.len() {
        warn!(target: "memmap", "  dropped: {} more entries ending past 2^64",
            map.overflowing as usize - map.overflowing_entries.len());
    }
    info!(target: "memmap", "sanitized, {} regions:", map.regions.len());
    for r in &map.regions {
        info!(target: "memmap", "  {r}");
    }
    let usable = memmap::usable_ram(&map, phys_limit);
    if usable.above_limit_bytes > 0 {
        warn!(target: "memmap", "{}", IgnoredLine(&usable));
    }
    if usable.partial_page_bytes > 0 {
        info!(target: "memmap",
            "{} bytes of RAM in partial pages ignored (only whole pages are usable)",
            usable.partial_page_bytes);
    }

    // Reservations first, before memblock can allocate anything (its arrays
    // grow by allocating): Linux's early_reserve_memory() also runs before
    // e820__memblock_setup() adds the RAM.
    let mut reserve = |what: &str, base: PhysAddr, size: u64, memblock: &mut Memblock| {
        if size == 0 {
            return Ok(());
        }
        info!(target: "memblock", "reserve [{base:#010x}-{:#010x}] {what}", base.0 + size - 1);
        memblock.reserve(base, size, mem)
    };
    reserve(
        "low memory: IVT, BIOS data, EBDA, ROMs (Linux reserves the first 1 MiB)",
        PhysAddr(0),
        LOW_MEMORY_RESERVED,
        memblock,
    )?;
    // The image includes everything boot/entry.S set up (boot page tables,
    // boot stack and its guard page are in .bss): it places nothing outside.
    reserve(
        "kernel image",
        image.start,
        image.end - image.start,
        memblock,
    )?;
    for d in &boot.boot_data {
        reserve(d.what, d.base, u64::from(d.size), memblock)?;
    }
    for (i, m) in boot.modules.iter().enumerate() {
        debug!(target: "memblock", "module {i} '{}'", m.string);
        reserve("module", m.start, m.end - m.start, memblock)?;
    }

    for &(base, end) in &usable.ranges {
        memblock.add(base, end - base, mem)?;
    }

    let mut mem_limit_removed = 0;
    if let Some(limit) = mem_limit {
        // Linux x86 parse_memopt(): e820__range_remove(mem_size, ULLONG_MAX -
        // mem_size, E820_TYPE_RAM): RAM at and above the limit is forgotten.
        // Nothing at or above the physical limit was added.
        let end = phys_limit.end().0;
        let limit = limit.min(end) & !u64::from(PAGE_SIZE - 1);
        let before = memblock.memory.total_size();
        memblock.remove(PhysAddr(limit), end - limit, mem)?;
        mem_limit_removed = before - memblock.memory.total_size();
        info!(target: "memblock",
            "mem={limit:#x}: {} KiB of RAM at and above {limit:#010x} removed",
            mem_limit_removed >> 10);
    }

    let mem_map = fit_mem_map(memblock, DEFAULT_MAX_LOW_PFN, mem)?;

    Ok(MemorySetup {
        map,
        usable,
        mem_limit_removed,
        mem_map,
    })
}

/// Value: 2. `mem_map` may take at most half of low memory (the RAM below
/// `max_low_pfn`); [`fit_mem_map`] removes RAM from the top until it does.
///
/// Why a rule at all: every descriptor lives in the direct map, and so does
/// everything else the kernel allocates for itself (page tables, slab
/// caches, kernel stacks), so RAM above 896 MiB costs low memory that does
/// not grow with it. Linux i386 never had such a check, and lived with the
/// consequence: with `CONFIG_HIGHMEM64G` a 32-byte `struct page` makes
/// `mem_map` 512 MiB at 64 GiB, "over half of low memory" (Corbet, OLS 2004),
/// and Gorman puts the practical limit at 16 GiB (*Understanding the Linux
/// Virtual Memory Manager* §2.7 "High Memory");
/// `Documentation/mm/highmem.rst` warns the same. Linux's own lower bound
/// is the other side of the same coin: `lowmem_pfn_init()` ignores a
/// `highmem=` that would leave less than 64 MiB of low memory. With this
/// kernel's 8-byte descriptor, `mem_map` is 128 MiB at 64 GiB, a seventh of
/// 896 MiB, so the rule bites only on machines with little low memory and
/// much RAM above it (e.g. 64 MiB below 4 GiB and 8 GiB above).
pub const MEM_MAP_LOWMEM_DIVISOR: u64 = 2;

/// Bytes of `mem_map` for pfns `[0, max_pfn)`: `max_pfn * size_of::<Page>()`
/// (8). Example: 8 GiB of RAM from 0 is `0x20_0000` frames, 16 MiB; 64 GiB
/// is 128 MiB.
pub const fn mem_map_bytes(max_pfn: Pfn) -> u64 {
    max_pfn.0 as u64 * core::mem::size_of::<Page>() as u64
}

/// `mem_map`'s size against low memory, as [`fit_mem_map`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemMapSizing {
    /// `max_pfn` before the rule: the end of RAM, in frames.
    pub wanted_max_pfn: Pfn,
    /// `max_pfn` after it (equal unless RAM was removed).
    pub max_pfn: Pfn,
    /// Low memory: bytes of RAM below `max_low_pfn`.
    pub lowmem_bytes: u64,
    /// The most `mem_map` may take: `lowmem_bytes / MEM_MAP_LOWMEM_DIVISOR`.
    pub budget_bytes: u64,
    /// Bytes of RAM removed from the top (0 if `mem_map` fitted).
    pub removed_bytes: u64,
}

impl MemMapSizing {
    /// `mem_map`'s size in bytes for `max_pfn` ([`mem_map_bytes`]).
    pub const fn bytes(&self) -> u64 {
        mem_map_bytes(self.max_pfn)
    }

    /// Largest `max_pfn` whose `mem_map` fits the budget.
    pub const fn max_pfn_allowed(&self) -> Pfn {
        let pfns = self.budget_bytes / core::mem::size_of::<Page>() as u64;
        Pfn(if pfns > u32::MAX as u64 {
            u32::MAX
        } else {
            pfns as u32
        })
    }
}

/// Sizes `mem_map` for the RAM memblock manages, without changing anything:
/// `max_pfn`, low memory below `max_low_pfn`, and the budget
/// ([`MEM_MAP_LOWMEM_DIVISOR`]).
pub fn mem_map_sizing(memblock: &Memblock, max_low_pfn: Pfn) -> MemMapSizing {
    let low_end = max_low_pfn.phys();
    let lowmem_bytes = memblock
        .memory
        .regions()
        .iter()
        .map(|r| r.end().min(low_end).0.saturating_sub(r.base.0))
        .sum::<u64>();
    let max_pfn = max_pfn(memblock);
    MemMapSizing {
        wanted_max_pfn: max_pfn,
        max_pfn,
        lowmem_bytes,
        budget_bytes: lowmem_bytes / MEM_MAP_LOWMEM_DIVISOR,
        removed_bytes: 0,
    }
}

/// Enforces the `mem_map` rule: if one descriptor per frame up to the end of
/// RAM would take more than half of low memory (the RAM below
/// `max_low_pfn`, see [`MEM_MAP_LOWMEM_DIVISOR`]), the RAM from
/// `max_pfn_allowed().phys()` up is removed from memblock, with a warning
/// that says how much and why, rather than the boot failing later for want
/// of low memory. Logs the size at info when RAM reaches above 4 GiB or RAM
/// is removed, at debug otherwise (so the logs of machines without such RAM
/// read as before).
///
/// Example: RAM `[0, 64 MiB)` and `[4 GiB, 12 GiB)`: `max_pfn` `0x30_0000`
/// needs 24 MiB of `mem_map`, the budget is 32 MiB: it fits. With only 32
/// MiB below 4 GiB the budget is 16 MiB, `max_pfn_allowed` is `0x20_0000`
/// (8 GiB), and `[8 GiB, 12 GiB)` is removed.
///
/// # Errors
/// A [`MemblockError`] if memblock cannot record the removal.
pub fn fit_mem_map(
    memblock: &mut Memblock,
    max_low_pfn: Pfn,
    mem: &mut impl PhysMem,
) -> Result<MemMapSizing, MemblockError> {
    let mut sizing = mem_map_sizing(memblock, max_low_pfn);
    let allowed = sizing.max_pfn_allowed();
    if sizing.max_pfn > allowed {
        let cut = allowed.phys();
        let before = memblock.memory.total_size();
        memblock.remove(cut, u64::MAX - cut.0, mem)?;
        sizing.removed_bytes = before - memblock.memory.total_size();
        sizing.max_pfn = max_pfn(memblock);
        warn!(target: "memblock", "{}", MemMapClipLine(&sizing));
    }
    if sizing.removed_bytes > 0 || sizing.max_pfn > PhysAddr(memmap::FOUR_GIB).pfn() {
        info!(target: "memblock", "{}", MemMapLine(&sizing));
    } else {
        debug!(target: "memblock", "{}", MemMapLine(&sizing));
    }
    Ok(sizing)
}

/// `4096 MiB of RAM at and above 0x200000000 removed: its mem_map would
/// not fit in low memory (pfns [0, 0x300000) need 24576 KiB, more than half
/// of the 32768 KiB of low memory)`.
struct MemMapClipLine<'a>(&'a MemMapSizing);

impl core::fmt::Display for MemMapClipLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.0;
        write!(
            f,
            "{} MiB of RAM at and above {:#x} removed: its mem_map would not fit in low memory \
             (pfns [0, {:#x}) need {} KiB, more than half of the {} KiB of low memory)",
            s.removed_bytes >> 20,
            s.max_pfn_allowed().phys(),
            s.wanted_max_pfn,
            mem_map_bytes(s.wanted_max_pfn) >> 10,
            s.lowmem_bytes >> 10
        )
    }
}

/// `mem_map will take 2359296 page descriptors of 8 bytes = 18432 KiB of
/// low memory (pfns [0, 0x240000); at most 458752 KiB, half of the 917504
/// KiB of low memory)`.
struct MemMapLine<'a>(&'a MemMapSizing);

impl core::fmt::Display for MemMapLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.0;
        write!(
            f,
            "mem_map will take {} page descriptors of {} bytes = {} KiB of low memory \
             (pfns [0, {:#x}); at most {} KiB, half of the {} KiB of low memory)",
            s.max_pfn,
            core::mem::size_of::<Page>(),
            s.bytes() >> 10,
            s.max_pfn,
            s.budget_bytes >> 10,
            s.lowmem_bytes >> 10
        )
    }
}

/// Per-zone page counts that must add up after the hand-off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneAccount {
    /// Pages of RAM (memblock `memory`) in the zone.
    pub present: u32,
    /// Of those, pages with any byte reserved in memblock.
    pub reserved: u32,
    /// Pages the buddy allocator manages (after the hand-off).
    pub managed: u32,
}

/// The hand-off failed its accounting: the buddy allocator manages a
/// different number of pages than memblock says are free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandoffMismatch {
    /// The zone.
    pub zone: ZoneType,
    /// What was counted.
    pub account: ZoneAccount,
}

impl core::fmt::Display for HandoffMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.account;
        write!(
            f,
            "zone {}: managed {} pages, but present {} - reserved {} = {}",
            self.zone,
            a.managed,
            a.present,
            a.reserved,
            a.present - a.reserved
        )
    }
}

/// Not enough memory left free after memblock's reservations for the boot
/// to reach the buddy allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoFreeMemory {
    /// RAM memblock manages, in bytes.
    pub ram: u64,
    /// Bytes free below the allocation limit.
    pub free: u64,
    /// Bytes the next step needs: `mem_map`, one descriptor per frame.
    pub needed: u64,
    /// memblock's `current_limit` (at most the end of low memory).
    pub limit: PhysAddr,
    /// Bytes free in all of low memory, whatever the limit: when they
    /// would hold `mem_map`, the limit (the part of RAM the kernel has
    /// mapped so far) is what is short, not the RAM.
    pub free_lowmem: u64,
}

impl core::fmt::Display for NoFreeMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "no free memory after reservations: {} KiB free below {:#010x}, mem_map needs {} KiB \
             ({} KiB of RAM, the rest reserved: the first MiB, the kernel image, boot data, modules)",
            self.free >> 10,
            self.limit,
            self.needed >> 10,
            self.ram >> 10
        )?;
        if self.free_lowmem >= self.needed.max(u64::from(PAGE_SIZE)) {
            write!(
                f,
                "; {} KiB of low memory are free, but above memblock's current limit: \
                 the kernel must map more of low memory before mem_map is allocated",
                self.free_lowmem >> 10
            )?;
        }
        Ok(())
    }
}

/// Checks, right after [`memblock_setup`], that memblock can still allocate
/// `mem_map` (one `Page` descriptor per frame up to the end of RAM, in whole
/// pages) below its `current_limit` and in low memory (where
/// [`alloc_mem_map`] looks): the first allocation the boot cannot do
/// without. A machine whose free RAM is all reserved stops here with one
/// clear message instead of failing in a later stage or self-test.
///
/// # Errors
/// [`NoFreeMemory`] with the numbers.
pub fn check_free_memory(memblock: &Memblock) -> Result<(), NoFreeMemory> {
    let limit = memblock.current_limit().min(DEFAULT_MAX_LOW_PFN.phys());
    let needed = mem_map_bytes(max_pfn(memblock)).next_multiple_of(u64::from(PAGE_SIZE));
    let low_end = DEFAULT_MAX_LOW_PFN.phys();
    let (mut free, mut free_lowmem) = (0, 0);
    memblock.for_each_free_range(|base, end| {
        free += end.min(limit).0.saturating_sub(base.0);
        free_lowmem += end.min(low_end).0.saturating_sub(base.0);
    });
    if free < needed.max(u64::from(PAGE_SIZE)) {
        return Err(NoFreeMemory {
            ram: memblock.memory.total_size(),
            free,
            needed,
            limit,
            free_lowmem,
        });
    }
    Ok(())
}

/// Value: 4 MiB. Room the boot direct map keeps beyond `mem_map` for
/// memblock's other early allocations (grown region arrays, the page tables
/// that extend the map).
pub const BOOT_MAP_SLACK: u64 = 4 << 20;

/// Where the boot direct map must end for `mem_map` to fit below it:
/// `None` when the free memory below memblock's current limit (the boot
/// stub's 16 MiB) holds `mem_map` plus [`BOOT_MAP_SLACK`]; else the current
/// limit plus their size, rounded up to 4 MiB (one boot page table each) and
/// capped at the end of low RAM (`max_low_pfn`). Linux i386 maps all of low
/// memory this early instead (`init_mem_mapping()`, with page tables from
/// memblock); this kernel maps only what `mem_map` needs and builds the
/// rest of the direct map after the buddy allocator exists.
///
/// Example: RAM up to 8 GiB: `mem_map` is 16 MiB, the 16 MiB boot map has
/// about 12 MiB free: the map must reach 16 + 16 + 4 = 36 MiB, rounded to
/// 36 MiB.
pub fn boot_map_end_needed(memblock: &Memblock, max_low_pfn: Pfn) -> Option<PhysAddr> {
    let limit = memblock.current_limit();
    let needed =
        mem_map_bytes(max_pfn(memblock)).next_multiple_of(u64::from(PAGE_SIZE)) + BOOT_MAP_SLACK;
    let mut free = 0;
    memblock.for_each_free_range(|base, end| free += end.min(limit).0.saturating_sub(base.0));
    if free >= needed {
        return None;
    }
    let low_ram_end = memblock
        .memory
        .regions()
        .iter()
        .filter(|r| r.base < max_low_pfn.phys())
        .map(|r| r.end().min(max_low_pfn.phys()))
        .max()?;
    let end = (limit.0 + needed)
        .next_multiple_of(4 << 20)
        .min(low_ram_end.0);
    (end > limit.0).then_some(PhysAddr(end & !u64::from(PAGE_SIZE - 1)))
}

/// Memblock hands its free memory to the buddy allocator (Linux:
/// `memblock_free_all()`): every page of `memory` becomes present in its
/// zone, and every whole page of memory that no reservation touches is
/// released, in the largest naturally aligned blocks its address allows
/// (Linux `__free_pages_memory()`, done by
/// [`BuddyAllocator::free_memory_range`]). Then the watermarks are computed.
///
/// Returns, per zone, present, reserved and managed pages, after checking
/// that `managed == present - reserved`, with `reserved` counted
/// independently from memblock's `reserved` array.
///
/// # Errors
/// [`HandoffMismatch`] for the first zone whose counts do not add up.
pub fn buddy_handoff(
    memblock: &Memblock,
    buddy: &mut BuddyAllocator<'_>,
) -> Result<[ZoneAccount; MAX_NR_ZONES], HandoffMismatch> {
    let page = u64::from(PAGE_SIZE);
    let max_pfn = buddy.max_pfn();
    // Whole pages of `[start, end)`, clamped to `max_pfn`.
    let pfns = |start: PhysAddr, end: PhysAddr| {
        let s = start.pfn_up().min(max_pfn);
        let e = end.pfn().min(max_pfn);
        (s, e)
    };
    for r in memblock.memory.regions() {
        let (s, e) = pfns(r.base, r.end());
        if s < e {
            buddy.mark_present(s, e);
        }
    }
    memblock.for_each_free_range(|start, end| {
        let (s, e) = pfns(start, end);
        if s < e {
            buddy.free_memory_range(s, e);
        }
    });
    buddy.setup_watermarks();

    // Independent count: pages of memory that a reservation touches.
    let mut accounts = [ZoneAccount::default(); MAX_NR_ZONES];
    let zone_of = |pfn: Pfn| {
        if pfn < MAX_DMA_PFN {
            0
        } else if pfn < buddy.max_low_pfn() {
            1
        } else {
            2
        }
    };
    for r in memblock.memory.regions() {
        let (s, e) = pfns(r.base, r.end());
        for z in buddy.zones() {
            let (zs, ze) = (s.max(z.start_pfn()), e.min(z.end_pfn()));
            if zs < ze {
                accounts[z.zone_type().index()].present += ze - zs;
            }
        }
    }
    let mut last_counted = None;
    for r in memblock.reserved.regions() {
        // Pages [floor(base), ceil(end)) that are memory.
        let first = r.base.pfn().min(max_pfn);
        let end = r.end().pfn_up().min(max_pfn);
        for pfn in first.range_to(end) {
            if last_counted == Some(pfn) {
                continue; // two reservations sharing a page count it once
            }
            if memblock.is_region_memory(pfn.phys(), page) {
                accounts[zone_of(pfn)].reserved += 1;
                last_counted = Some(pfn);
            }
        }
    }
    for z in buddy.zones() {
        let a = &mut accounts[z.zone_type().index()];
        a.managed = z.managed_pages();
        if a.managed != a.present - a.reserved {
            return Err(HandoffMismatch {
                zone: z.zone_type(),
                account: *a,
            });
        }
    }
    Ok(accounts)
}

/// `max_pfn` (Linux's name): one past the last page frame of RAM memblock
/// knows, i.e. the end of its last `memory` region in pages, rounded down; 0
/// for an empty memblock. `mem_map` holds one [`Page`] per pfn below it.
pub fn max_pfn(memblock: &Memblock) -> Pfn {
    memblock
        .memory
        .regions()
        .last()
        .map_or(Pfn(0), |r| r.end().pfn())
}

/// Where [`alloc_mem_map`] put `mem_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemMap {
    /// Physical address of the first descriptor, page-aligned.
    pub pa: PhysAddr,
    /// Descriptors: one per pfn in `[0, max_pfn)`.
    pub nr_pages: u32,
    /// Bytes per descriptor (`size_of::<Page>()`).
    pub desc_size: u32,
}

impl MemMap {
    /// Size of the array in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.nr_pages) * u64::from(self.desc_size)
    }
}

/// [`alloc_mem_map`] failed: memblock had no room for the array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemMapError {
    /// The array's size in bytes.
    pub bytes: u64,
    /// Why memblock refused.
    pub error: MemblockError,
}

impl core::fmt::Display for MemMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "cannot allocate mem_map ({} bytes): {}",
            self.bytes, self.error
        )
    }
}

/// Allocates (zeroed, page-aligned, below memblock's current limit and
/// below the end of low memory, [`DEFAULT_MAX_LOW_PFN`]: the kernel reaches
/// it through the direct map) `mem_map`, one [`Page`] descriptor per pfn in
/// `[0, max_pfn)` (Linux `alloc_node_mem_map()`). The range stays reserved
/// for good. `max_pfn` may lie above 4 GiB (RAM there is HighMem); the array
/// never does.
///
/// # Errors
/// [`MemMapError`] if memblock cannot allocate `max_pfn * 8` bytes.
pub fn alloc_mem_map(
    memblock: &mut Memblock,
    max_pfn: Pfn,
    mem: &mut impl PhysMem,
) -> Result<MemMap, MemMapError> {
    let desc_size = core::mem::size_of::<Page>() as u32;
    let bytes = mem_map_bytes(max_pfn);
    let pa = memblock
        .alloc_range(
            bytes,
            u64::from(PAGE_SIZE),
            PhysAddr(0),
            DEFAULT_MAX_LOW_PFN.phys(),
            mem,
        )
        .map_err(|error| MemMapError { bytes, error })?;
    Ok(MemMap {
        pa,
        nr_pages: max_pfn.0,
        desc_size,
    })
}

#[cfg(test)]
mod tests;
