//! In-kernel self-tests of what only real (or emulated) hardware can show,
//! run with `selftest` on the command line. Each prints one
//! `selftest: <name> ... ok` line; a failure takes the fatal path with a
//! `PANIC:` line naming the test and what it saw.

use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::arch::x86::early_map::with_temp_mapping;
use crate::arch::x86::{boot_page_directory_va, boot_stack, cpu, early_map, exit, idt, tlb};
use crate::mm::buddy::BuddyAllocator;
use crate::mm::gfp::{GFP_ATOMIC, GFP_DMA, GFP_HIGHUSER, GFP_KERNEL, Gfp};
use crate::mm::layout::{PAGE_OFFSET, align_up, phys_to_virt, virt_to_phys};
use crate::mm::memblock::{MEMBLOCK_ALLOC_ANYWHERE, Memblock};
use crate::mm::page::PageFlags;
use crate::mm::zone::{MAX_DMA_PFN, ZoneType};
use crate::runtime::direct_map::BootDirectMap;
use log::{info, warn};

mod kmem;
mod mmu;
pub use kmem::run as kmem;
pub use mmu::run as paging;

/// A self-test: `Err` says what it saw instead of the expected.
type SelfTest = fn() -> Result<(), &'static str>;

/// Runs every self-test; returns how many passed (all, or it does not return).
pub fn run() -> u32 {
    let tests: [(&str, SelfTest); 5] = [
        ("paging is on with the boot page directory", paging_enabled),
        (
            "both aliases of the kernel reach the same frames",
            higher_half_alias,
        ),
        ("null page and stack guard are unmapped", holes_unmapped),
        ("early map reads physical memory", early_map_reads_physical),
        ("int3 reaches the IDT and returns", breakpoint_returns),
    ];
    for (name, test) in tests {
        match test() {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => exit::fatal(format_args!("selftest '{name}' failed: {why}")),
        }
    }
    tests.len() as u32
}

fn paging_enabled() -> Result<(), &'static str> {
    if !cpu::paging_enabled() {
        return Err("CR0.PG is clear");
    }
    if cpu::read_cr3_pgd() != virt_to_phys(boot_page_directory_va()) {
        return Err("CR3 does not hold pa(boot_page_directory)");
    }
    Ok(())
}

/// Translates `va` through the page directory CR3 holds (here the boot
/// one), in software as the CPU does (Intel SDM Vol. 3A §4.3: PDE at CR3 +
/// 4 * pdx, PTE at PDE.frame + 4 * ptx), with the walker fault reports use.
/// `None` if the PDE or PTE is not present.
fn walk(va: u32) -> Option<u32> {
    crate::arch::x86::paging::walk_current(VirtAddr(va))?
        .pa()
        .map(PhysAddr::as_u32)
}

static ALIAS_PROBE: spin::Mutex<u32> = spin::Mutex::new(0);

fn higher_half_alias() -> Result<(), &'static str> {
    let mut probe = ALIAS_PROBE.lock();
    let va = &mut *probe as *mut u32 as u32;
    let identity = (va - PAGE_OFFSET) as *const u32;
    for pattern in [0x5a5a_1234, 0xa5a5_4321] {
        // Volatile: the compiler must not drop or delay this store, which only
        // the read through the other alias observes.
        // SAFETY: `probe` is a valid, exclusively borrowed u32.
        unsafe { core::ptr::write_volatile(&mut *probe, pattern) };
        // SAFETY: `identity` is the identity-map alias of `probe`'s frame,
        // which the boot stub maps (PDE 0 and PDE 768 share page tables).
        let seen = unsafe { identity.read_volatile() };
        if seen != pattern {
            return Err("a write through PAGE_OFFSET was not seen through the identity map");
        }
    }
    Ok(())
}

fn holes_unmapped() -> Result<(), &'static str> {
    let (guard, _, _) = boot_stack();
    if walk(0).is_some() || walk(PAGE_OFFSET).is_some() {
        return Err("the null page is mapped");
    }
    if walk(guard.0).is_some() || walk(guard.0 - PAGE_OFFSET).is_some() {
        return Err("the boot stack guard page is mapped");
    }
    let here = VirtAddr(run as *const () as u32);
    if walk(here.0) != Some(virt_to_phys(here).as_u32()) {
        return Err("kernel text does not translate to pa = va - PAGE_OFFSET");
    }
    Ok(())
}

static KNOWN_BYTES: [u8; 16] = *b"early-map-probe!";

fn early_map_reads_physical() -> Result<(), &'static str> {
    let va = VirtAddr(KNOWN_BYTES.as_ptr() as u32);
    let before = tlb::flush_counts();
    let bytes = early_map::early_memremap_ro(virt_to_phys(va), 16)
        .map_err(|_| "early_memremap_ro failed")?;
    if bytes != KNOWN_BYTES {
        return Err("bytes read through the window differ from the kernel's copy");
    }
    if walk(bytes.as_ptr() as u32) != Some(virt_to_phys(va).as_u32()) {
        return Err("window PTE does not point at the requested frame");
    }
    if tlb::flush_counts() == before {
        return Err("mapping a window slot did not flush its TLB entry");
    }
    Ok(())
}

fn breakpoint_returns() -> Result<(), &'static str> {
    let before = idt::breakpoints_caught();
    idt::expect_breakpoint();
    // SAFETY: int3 raises #BP; the handler sees it was announced and returns
    // to the next instruction with every register restored.
    unsafe { core::arch::asm!("int3") };
    if idt::breakpoints_caught() != before + 1 {
        return Err("the #BP handler did not run");
    }
    Ok(())
}

/// A memblock self-test: `Err` says what it saw instead of the expected.
type MemblockTest = fn(&mut Memblock, &mut BootDirectMap) -> Result<(), &'static str>;

/// memblock on real memory: allocations land where asked, are zeroed and
/// reserved, and freeing them restores the totals. Returns the number of
/// tests passed (all, or it does not return).
pub fn memblock(memblock: &mut Memblock, phys: &mut BootDirectMap) -> u32 {
    let tests: [(&str, MemblockTest); 2] = [
        (
            "memblock top-down allocation is zeroed, reserved and freed",
            memblock_top_down,
        ),
        (
            "memblock bottom-up allocation below 16 MiB (DMA)",
            memblock_bottom_up_dma,
        ),
    ];
    for (name, test) in tests {
        match test(memblock, phys) {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => exit::fatal(format_args!("selftest '{name}' failed: {why}")),
        }
    }
    tests.len() as u32
}

const THREE_PAGES: u64 = 3 * 4096;

fn memblock_top_down(mb: &mut Memblock, phys: &mut BootDirectMap) -> Result<(), &'static str> {
    let reserved_before = mb.reserved.total_size();
    let limit = mb.current_limit();
    let pa = mb
        .alloc_range(
            THREE_PAGES,
            4096,
            PhysAddr(0),
            MEMBLOCK_ALLOC_ANYWHERE,
            phys,
        )
        .map_err(|_| "allocation of 3 pages failed")?;
    if pa + THREE_PAGES > limit || !mb.is_region_reserved(pa, THREE_PAGES) {
        return Err("allocation above current_limit or not reserved");
    }
    // Dirty it, free it, allocate again: top-down returns the same highest
    // free range, and it must come back zeroed.
    let va = phys_to_virt(pa).as_mut_ptr::<u8>();
    // SAFETY: [pa, pa + 3 pages) is ours (just allocated) and lies in the boot
    // direct map (below current_limit), mapped writable at `va`.
    unsafe { core::ptr::write_bytes(va, 0xA5, THREE_PAGES as usize) };
    mb.free(pa, THREE_PAGES, phys).map_err(|_| "free failed")?;
    let again = mb
        .alloc_range(
            THREE_PAGES,
            4096,
            PhysAddr(0),
            MEMBLOCK_ALLOC_ANYWHERE,
            phys,
        )
        .map_err(|_| "second allocation failed")?;
    if again != pa {
        return Err("top-down allocation did not return the highest free range again");
    }
    // SAFETY: as above, for the same range allocated again.
    let bytes = unsafe { core::slice::from_raw_parts(va, THREE_PAGES as usize) };
    if bytes.iter().any(|&b| b != 0) {
        return Err("allocated memory is not zeroed");
    }
    mb.free(again, THREE_PAGES, phys)
        .map_err(|_| "free failed")?;
    if mb.reserved.total_size() != reserved_before {
        return Err("reserved size differs after freeing everything");
    }
    mb.check().map_err(|_| "memblock invariants broken")?;
    Ok(())
}

fn memblock_bottom_up_dma(mb: &mut Memblock, phys: &mut BootDirectMap) -> Result<(), &'static str> {
    const MIB: u64 = 1 << 20;
    let reserved_before = mb.reserved.total_size();
    mb.set_bottom_up(true);
    let result = mb.phys_alloc_range(4096, 4096, PhysAddr(MIB), PhysAddr(16 * MIB), phys);
    mb.set_bottom_up(false);
    let pa = result.map_err(|_| "allocation below 16 MiB failed")?;
    if !(MIB..16 * MIB).contains(&pa.0) || !mb.is_region_reserved(pa, 4096) {
        return Err("allocation outside [1 MiB, 16 MiB) or not reserved");
    }
    if mb.reserved.total_size() != reserved_before + 4096 {
        return Err("reserved size did not grow by exactly one page");
    }
    mb.check()
        .map_err(|_| "memblock invariants broken after allocation")?;
    mb.free(pa, 4096, phys).map_err(|_| "free failed")?;
    let mut lowest_after = None;
    mb.for_each_free_range(|start, end| {
        // The lowest page-aligned free page at or above 1 MiB.
        let first = align_up(start.0.max(MIB), 4096);
        if lowest_after.is_none() && first + 4096 <= end.0 {
            lowest_after = Some(PhysAddr(first));
        }
    });
    if lowest_after != Some(pa) {
        return Err("bottom-up allocation was not the lowest free page above 1 MiB");
    }
    mb.check().map_err(|_| "memblock invariants broken")?;
    Ok(())
}

/// A buddy self-test: `Err` says what it saw instead of the expected.
type BuddyTest = fn(&mut BuddyAllocator<'static>) -> Result<(), &'static str>;

/// The buddy allocator on real memory. Returns the number of tests passed
/// (all, or it does not return).
pub fn buddy(b: &mut BuddyAllocator<'static>) -> u32 {
    let tests: [(&str, BuddyTest); 5] = [
        ("buddy invariants hold after the hand-off", buddy_check),
        (
            "the OSDev 12K example: a 16K block, 3 pages out, the 4th back",
            twelve_k,
        ),
        (
            "zone DMA exhaustion fails cleanly, then everything is freed",
            exhaust_dma,
        ),
        ("a double free is reported and changes nothing", double_free),
        (
            "__GFP_ZERO pages come back zeroed, in every zone",
            zeroed_pages,
        ),
    ];
    for (name, test) in tests {
        match test(b) {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => exit::fatal(format_args!("selftest '{name}' failed: {why}")),
        }
    }
    tests.len() as u32
}

fn buddy_check(b: &mut BuddyAllocator<'static>) -> Result<(), &'static str> {
    checked(b, "the invariant checker found a broken invariant")
}

/// Runs the invariant checker; on failure logs which invariant broke and
/// returns `why`.
fn checked(b: &BuddyAllocator<'static>, why: &'static str) -> Result<(), &'static str> {
    b.check().map_err(|e| {
        log::error!(target: "selftest", "buddy check: {e}");
        why
    })
}

fn twelve_k(b: &mut BuddyAllocator<'static>) -> Result<(), &'static str> {
    let (pfn, n) = b
        .alloc_pages_exact(GFP_KERNEL, 12 * 1024)
        .ok_or("alloc_pages_exact(12K) failed")?;
    if n != 3 || !pfn.is_aligned(2) {
        return Err("12K did not come as 3 pages at the start of a 16K block");
    }
    let start = Pfn(pfn.0 & !15);
    info!(target: "selftest",
        "12K = 3 pages at pfn {pfn:#x}; pfns [{start:#x}, {:#x}) now ('#' used, '.' free, \
         'p' on the per-cpu list, 'x' inside a larger free block):", start + 16);
    b.diagram(start, start + 16, |l| info!(target: "selftest", "  {l}"));
    // The 4th page went back as an order-0 free, which lands on the per-cpu
    // list first (as in Linux, where make_alloc_exact() calls free_page()).
    let tail_free = b.free_block_containing(pfn + 3).is_some()
        || b.page(pfn + 3).is_some_and(|p| p.has(PageFlags::PCP));
    if !tail_free {
        return Err("the 4th page of the 16K block was not given back");
    }
    b.free_pages_exact(pfn, 12 * 1024)
        .map_err(|_| "free_pages_exact refused the 12K")?;
    b.drain_pages();
    info!(target: "selftest", "after free_pages_exact and draining the per-cpu lists:");
    b.diagram(start, start + 16, |l| info!(target: "selftest", "  {l}"));
    checked(b, "invariants broken after the 12K example")
}

fn exhaust_dma(b: &mut BuddyAllocator<'static>) -> Result<(), &'static str> {
    b.drain_pages();
    let free_before = b.nr_free_pages();
    // The allocated pages are chained through their own first word (DMA
    // pages lie in the boot direct map), so no memory is needed to track them.
    let mut head = Pfn(u32::MAX);
    let mut count = 0u32;
    while let Some(block) = b.alloc_pages(GFP_DMA | Gfp::NOWARN, 0) {
        let (pfn, _) = block.into_raw();
        if pfn >= MAX_DMA_PFN {
            return Err("GFP_DMA returned a page above 16 MiB");
        }
        // SAFETY: the page was just allocated to us and lies in the boot
        // direct map (below 16 MiB), mapped writable.
        unsafe { phys_to_virt(pfn.phys()).as_mut_ptr::<u32>().write(head.0) };
        head = pfn;
        count += 1;
    }
    let dma = b.zone(ZoneType::Dma);
    let (left, min) = (dma.free_pages(), dma.watermark().min);
    info!(target: "selftest",
        "zone DMA: {count} pages allocated before GFP_DMA failed; {left} free pages left, min watermark {min}");
    // GFP_DMA may not dip below min (per-cpu refills included), so the
    // zone stops exactly there.
    if count == 0 || left != min {
        return Err("zone DMA did not stop exactly at its min watermark");
    }
    if b.take_warning().is_some() {
        return Err("__GFP_NOWARN failure still recorded a warning");
    }
    // Without __GFP_NOWARN the same failure is reported (Linux warn_alloc()).
    if b.alloc_pages(GFP_DMA, 0).is_some() {
        return Err("GFP_DMA succeeded in an exhausted zone");
    }
    match b.take_warning() {
        Some(failure) => warn!(target: "buddy", "{failure}"),
        None => return Err("an allocation failure without __GFP_NOWARN recorded no warning"),
    }
    // GFP_ATOMIC may dip below min (to min/2): it still gets a page.
    let atomic = b
        .alloc_pages(GFP_ATOMIC | Gfp::DMA, 0)
        .ok_or("GFP_ATOMIC could not dip below the min watermark")?;
    b.free_pages(atomic).map_err(|_| "free refused")?;
    while head != Pfn(u32::MAX) {
        // SAFETY: as above; each chained page is still ours until freed.
        let next = Pfn(unsafe { phys_to_virt(head.phys()).as_ptr::<u32>().read() });
        b.free_pages_raw(head, 0)
            .map_err(|_| "freeing an exhausted-zone page was refused")?;
        head = next;
    }
    b.drain_pages();
    if b.nr_free_pages() != free_before {
        return Err("free page count differs after freeing everything");
    }
    checked(b, "invariants broken after exhaustion")
}

fn double_free(b: &mut BuddyAllocator<'static>) -> Result<(), &'static str> {
    let block = b
        .alloc_pages(GFP_KERNEL, 2)
        .ok_or("order-2 allocation failed")?;
    let (pfn, order) = block.into_raw();
    b.free_pages_raw(pfn, order)
        .map_err(|_| "the first free was refused")?;
    let free = b.nr_free_pages();
    match b.free_pages_raw(pfn, order) {
        Ok(()) => Err("the double free was accepted"),
        Err(bad) => {
            // Reported the way Linux's bad_page() does, and absorbed nothing.
            warn!(target: "buddy", "{bad}");
            if b.nr_free_pages() != free {
                return Err("the refused double free changed the free count");
            }
            checked(b, "invariants broken after the double free")
        }
    }
}

fn zeroed_pages(b: &mut BuddyAllocator<'static>) -> Result<(), &'static str> {
    for (gfp, zone) in [
        (GFP_DMA, ZoneType::Dma),
        (GFP_KERNEL, ZoneType::Normal),
        (GFP_HIGHUSER, ZoneType::HighMem),
    ] {
        if !b.zone(zone).is_populated() {
            continue;
        }
        // Dirty a page, free it, and ask for a zeroed one: the free lists are
        // LIFO, so the same frame comes back and must have been cleared.
        let block = b.alloc_pages(gfp, 0).ok_or("allocation failed")?;
        let pfn = block.pfn();
        with_temp_mapping(pfn, |p| {
            // SAFETY: `p` maps the page we own, writable, for this closure.
            unsafe { core::ptr::write_bytes(p, 0x5A, 4096) }
        });
        b.free_pages(block).map_err(|_| "free refused")?;
        let block = b
            .alloc_pages(gfp | Gfp::ZERO, 0)
            .ok_or("zeroed allocation failed")?;
        let clean = with_temp_mapping(block.pfn(), |p| {
            // SAFETY: `p` maps the page we own, for this closure.
            let bytes = unsafe { core::slice::from_raw_parts(p, 4096) };
            bytes.iter().all(|&x| x == 0)
        });
        let same = block.pfn() == pfn;
        b.free_pages(block).map_err(|_| "free refused")?;
        // The same frame must come back (LIFO per-cpu list), from the zone
        // asked for: otherwise the test would prove nothing.
        if !same || b.page(pfn).map(|p| p.zone()) != Some(zone) {
            return Err("the dirtied frame did not come back from the expected zone");
        }
        if !clean {
            return Err("a __GFP_ZERO page was not zeroed");
        }
        info!(target: "selftest",
            "zone {}: pfn {pfn:#x} dirtied, freed, allocated again with __GFP_ZERO: zero",
            zone.name());
    }
    Ok(())
}
