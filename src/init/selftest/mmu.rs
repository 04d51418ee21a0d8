//! Self-tests of the final page directory, run after `paging_init` with
//! `selftest`: mapping, remapping, the TLB lesson, faults on unmapped and
//! read-only pages (through the fault-tolerant probes), page-table
//! accounting, the map API's errors, and kmap of HighMem pages.

use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::arch::x86::highmem::{self, kmap, kmap_local, kunmap};
use crate::arch::x86::paging;
use crate::arch::x86::probe::{ProbeFault, probe_read, probe_write_u8};
use crate::arch::x86::tlb::ArchTlb;

/// [`probe_read`] for the self-tests, which probe only RAM (the kernel, frames
/// they own) and unmapped addresses.
fn probe(va: u32) -> Result<u32, ProbeFault> {
    // SAFETY: every address the self-tests probe is RAM or unmapped, never
    // device memory, and no `&mut` to it is live.
    unsafe { probe_read(VirtAddr(va)) }
}
use crate::arch::x86::{boot_stack, cpu, exit, tlb};
use crate::mm::buddy::BuddyAllocator;
use crate::mm::gfp::{GFP_HIGHUSER, GFP_KERNEL};
use crate::mm::highmem::KmapError;
use crate::mm::layout::{
    KERNEL_PHYS_BASE, PAGE_OFFSET, PDE_SPAN, PKMAP_BASE, PKMAP_END, VMALLOC_START, phys_to_virt,
    virt_to_phys,
};
use crate::mm::paging::{MapError, PAGE_KERNEL, PTFlags};
use crate::mm::zone::ZoneType;
use log::info;

/// A test virtual address in the vmalloc area, at the start of a page
/// table's span of its own (no other mapping shares it).
const TEST_VA: VirtAddr = VirtAddr(VMALLOC_START);
/// A second one, 4 MiB further: a different page-directory entry.
const TEST_VA2: VirtAddr = VirtAddr(VMALLOC_START + 2 * PDE_SPAN);

type Buddy = BuddyAllocator<'static>;
type PagingTest = fn(&mut Buddy) -> Result<(), &'static str>;

/// Runs the paging self-tests; returns how many passed (all, or it does not
/// return).
pub fn run(b: &mut Buddy) -> u32 {
    let tests: [(&str, PagingTest); 11] = [
        (
            "final page directory: identity map gone, holes unmapped",
            final_directory,
        ),
        (
            "write through a new mapping, read through the direct map",
            map_write_read,
        ),
        ("remap to another frame and read it", remap_read),
        (
            "TLB lesson: a changed PTE is seen after the flush",
            tlb_lesson,
        ),
        (
            "global-page lesson: a CR3 reload keeps global entries, a CR4.PGE toggle drops them",
            global_tlb_lesson,
        ),
        ("unmapped page faults (not present)", unmapped_faults),
        ("kernel text and rodata are read-only", text_read_only),
        (
            "page tables allocated on demand and freed when empty",
            table_accounting,
        ),
        (
            "map errors: already mapped, not mapped, out of range, misaligned",
            map_errors,
        ),
        ("kmap and kmap_local reach every frame", kmap_test),
        ("kmap reaches RAM above 4 GiB (PAE)", kmap_above_4g),
    ];
    for (name, test) in tests {
        match test(b) {
            Ok(()) => info!(target: "selftest", "{name} ... ok"),
            Err(why) => exit::fatal(format_args!("selftest '{name}' failed: {why}")),
        }
    }
    tests.len() as u32
}

/// Logs a probe's fault: the decoded error code, the region, the walk.
fn log_fault(what: &str, f: &ProbeFault) {
    info!(target: "selftest", "  {what}: #PF at {:#010x}: {} access ({})",
        f.cr2, f.error, crate::arch::x86::idt::describe_address(f.cr2));
    if let Some(w) = paging::walk_current(f.cr2) {
        info!(target: "selftest", "    page-table walk: {w}");
    }
}

fn final_directory(_: &mut Buddy) -> Result<(), &'static str> {
    if !highmem::is_final() {
        return Err("paging_init did not record the switch");
    }
    let identity = KERNEL_PHYS_BASE + 0x1000; // was identity-mapped at boot
    let fault = probe(identity)
        .err()
        .ok_or("the identity map is still there")?;
    if fault.error.present() {
        return Err("identity address faulted, but not as not-present");
    }
    log_fault("identity address", &fault);
    probe(0).err().ok_or("the null page is mapped")?;
    let (guard, _, _) = boot_stack();
    probe(guard.0)
        .err()
        .ok_or("the stack guard page is mapped")?;
    probe(PAGE_OFFSET)
        .err()
        .ok_or("physical page 0 is mapped")?;
    // The kernel is reachable at PAGE_OFFSET + its physical address.
    let text = VirtAddr(run as *const () as u32);
    probe(text.0).map_err(|_| "kernel text does not read")?;
    let (pa, _) = paging::translate(text).map_err(|_| "kernel text does not translate")?;
    if pa != virt_to_phys(text) {
        return Err("kernel text is not at PAGE_OFFSET + its physical address");
    }
    Ok(())
}

/// A fresh lowmem frame from the buddy allocator with `tag` in its first
/// word (written through the direct map).
fn tagged_frame(b: &mut Buddy, tag: u32) -> Result<PhysAddr, &'static str> {
    let (pfn, _) = b
        .alloc_pages(GFP_KERNEL, 0)
        .ok_or("out of memory")?
        .into_raw();
    let pa = pfn.phys();
    // SAFETY: a frame just allocated, lowmem, in the direct map; ours alone.
    unsafe { core::ptr::write_volatile(phys_to_virt(pa).as_mut_ptr::<u32>(), tag) };
    Ok(pa)
}

fn free_frame(b: &mut Buddy, pa: PhysAddr) {
    if let Err(e) = b.free_pages_raw(pa.pfn(), 0) {
        exit::fatal(format_args!("selftest: freeing {pa:#x}: {e}"));
    }
}

fn read_va(va: VirtAddr) -> u32 {
    // SAFETY: only called on TEST_VA while it maps a frame the test owns.
    unsafe { core::ptr::read_volatile(va.as_ptr::<u32>()) }
}

fn map_write_read(b: &mut Buddy) -> Result<(), &'static str> {
    let pa = tagged_frame(b, 0)?;
    paging::map_page(b, TEST_VA, pa, PTFlags::RW)
        .map_err(|_| "map_page failed")?
        .flush(&mut ArchTlb);
    // SAFETY: TEST_VA now maps the frame, writable; the test owns it.
    unsafe { core::ptr::write_volatile(TEST_VA.as_mut_ptr::<u32>(), 0x1234_5678) };
    // SAFETY: the same frame through the direct map.
    let seen = unsafe { core::ptr::read_volatile(phys_to_virt(pa).as_ptr::<u32>()) };
    let (tr, flags) = paging::translate(TEST_VA).map_err(|_| "translate failed")?;
    info!(target: "selftest", "  {TEST_VA:#010x} -> {pa:#010x}: wrote 0x12345678, direct map {:#010x} reads {seen:#010x}; translate: {tr:#010x} {flags:?}",
        phys_to_virt(pa));
    let (unmapped, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    free_frame(b, pa);
    match (seen, tr, unmapped) {
        (0x1234_5678, t, u) if t == pa && u == pa => Ok(()),
        (0x1234_5678, _, _) => Err("translate or unmap returned the wrong frame"),
        _ => Err("the direct map does not see the write"),
    }
}

fn remap_read(b: &mut Buddy) -> Result<(), &'static str> {
    let a = tagged_frame(b, 0xAAAA_0001)?;
    let c = tagged_frame(b, 0xCCCC_0002)?;
    paging::map_page(b, TEST_VA, a, PTFlags::RW)
        .map_err(|_| "map A failed")?
        .flush(&mut ArchTlb);
    let first = read_va(TEST_VA);
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    paging::map_page(b, TEST_VA, c, PTFlags::RW)
        .map_err(|_| "map C failed")?
        .flush(&mut ArchTlb);
    let second = read_va(TEST_VA);
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    free_frame(b, a);
    free_frame(b, c);
    info!(target: "selftest", "  {TEST_VA:#010x}: {first:#010x} through frame {a:#010x}, then {second:#010x} through frame {c:#010x}");
    if (first, second) == (0xAAAA_0001, 0xCCCC_0002) {
        Ok(())
    } else {
        Err("a read did not see its frame's tag")
    }
}

/// Map VA -> A, read; change the PTE to B without a flush, read; flush,
/// read. What the second read sees depends on the TLB (an emulator may or
/// may not keep the stale entry); the third must see B.
fn tlb_lesson(b: &mut Buddy) -> Result<(), &'static str> {
    const TAG_A: u32 = 0xAAAA_AAAA;
    const TAG_B: u32 = 0xBBBB_BBBB;
    let a = tagged_frame(b, TAG_A)?;
    let bb = tagged_frame(b, TAG_B)?;
    paging::map_page(b, TEST_VA, a, PTFlags::RW)
        .map_err(|_| "map failed")?
        .flush(&mut ArchTlb);
    let before = read_va(TEST_VA); // loads the TLB entry VA -> A
    let (_, pending) = paging::remap_page(TEST_VA, bb, PTFlags::RW).map_err(|_| "remap failed")?;
    let stale = read_va(TEST_VA); // PTE says B; the TLB may still say A
    let (invlpg0, cr30) = tlb::flush_counts();
    let pge0 = tlb::global_flush_count();
    pending.flush(&mut ArchTlb);
    let (invlpg1, cr31) = tlb::flush_counts();
    let pge1 = tlb::global_flush_count();
    let after = read_va(TEST_VA);
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    free_frame(b, a);
    free_frame(b, bb);

    let name = |v: u32| tag_name(v, TAG_A, TAG_B);
    let method = if invlpg1 > invlpg0 {
        "invlpg"
    } else if cr31 > cr30 {
        "CR3 reload"
    } else if pge1 > pge0 {
        "CR4.PGE toggle"
    } else {
        return Err("the flush token executed neither invlpg nor a CR3 reload");
    };
    info!(target: "selftest", "  map {TEST_VA:#010x} -> A ({a:#010x}): read {before:#010x} ({})", name(before));
    info!(target: "selftest", "  PTE changed to B ({bb:#010x}) without a flush: read {stale:#010x} ({}{})",
        name(stale),
        if stale == TAG_A { ": the TLB still holds the old translation" } else { ": this CPU/emulator refetched the PTE" });
    info!(target: "selftest", "  after the flush ({method}): read {after:#010x} ({})", name(after));
    match (before, after) {
        (TAG_A, TAG_B) => Ok(()),
        (TAG_A, _) => Err("after the flush the new frame B is not seen"),
        _ => Err("the first read did not see frame A"),
    }
}

/// `A` or `B`: which of the two tagged frames a read of the lesson's page
/// saw, or `neither`.
fn tag_name(v: u32, tag_a: u32, tag_b: u32) -> &'static str {
    if v == tag_a {
        "A"
    } else if v == tag_b {
        "B"
    } else {
        "neither"
    }
}

/// With global pages (CR4.PGE): a global mapping's PTE is changed without
/// invalidation; a CR3 reload (which drops only non-global entries, Intel
/// SDM Vol. 3A §4.10.4.1) may leave the old translation (whether the
/// emulator models it is what the log shows), and the CR4.PGE toggle of
/// Linux `__flush_tlb_global` must drop it. Without global pages there is
/// nothing to show: the test says so and passes.
fn global_tlb_lesson(b: &mut Buddy) -> Result<(), &'static str> {
    const TAG_A: u32 = 0xA1A1_A1A1;
    const TAG_B: u32 = 0xB2B2_B2B2;
    if !tlb::global_pages() {
        info!(target: "selftest", "  no global pages in this mode (pge off): a CR3 reload flushes everything");
        return Ok(());
    }
    let a = tagged_frame(b, TAG_A)?;
    let bb = tagged_frame(b, TAG_B)?;
    paging::map_page(b, TEST_VA, a, PAGE_KERNEL)
        .map_err(|_| "map failed")?
        .flush(&mut ArchTlb);
    let before = read_va(TEST_VA); // a global TLB entry VA -> A
    let (_, pending) = paging::remap_page(TEST_VA, bb, PAGE_KERNEL).map_err(|_| "remap failed")?;
    pending.ignore("the lesson: flushed by a CR3 reload, then a CR4.PGE toggle, below");
    tlb::flush_tlb_nonglobal();
    let after_cr3 = read_va(TEST_VA);
    tlb::flush_tlb_all();
    let after_pge = read_va(TEST_VA);
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    free_frame(b, a);
    free_frame(b, bb);
    let name = |v: u32| tag_name(v, TAG_A, TAG_B);
    info!(target: "selftest", "  global map {TEST_VA:#010x} -> A ({a:#010x}): read {before:#010x} ({})", name(before));
    info!(target: "selftest", "  PTE changed to B ({bb:#010x}), then a CR3 reload: read {after_cr3:#010x} ({}{})",
        name(after_cr3),
        if after_cr3 == TAG_A { ": the global entry survived the reload" } else { ": this CPU/emulator dropped or refetched it" });
    info!(target: "selftest", "  after the CR4.PGE toggle: read {after_pge:#010x} ({})", name(after_pge));
    match (before, after_pge) {
        (TAG_A, TAG_B) => Ok(()),
        (TAG_A, _) => Err("after the CR4.PGE toggle the new frame B is not seen"),
        _ => Err("the first read did not see frame A"),
    }
}

fn unmapped_faults(b: &mut Buddy) -> Result<(), &'static str> {
    let pa = tagged_frame(b, 0x5555_5555)?;
    paging::map_page(b, TEST_VA, pa, PTFlags::RW)
        .map_err(|_| "map failed")?
        .flush(&mut ArchTlb);
    let mapped = probe(TEST_VA.0).map_err(|_| "the mapped page faulted")?;
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    free_frame(b, pa);
    if mapped != 0x5555_5555 {
        return Err("the mapped page read wrong");
    }
    let fault = probe(TEST_VA.0)
        .err()
        .ok_or("the unmapped page still reads")?;
    log_fault("read after unmap", &fault);
    if fault.cr2 != TEST_VA || fault.error.present() || fault.error.write() {
        return Err("the fault is not a not-present read of the page");
    }
    Ok(())
}

fn text_read_only(_: &mut Buddy) -> Result<(), &'static str> {
    let targets = [
        (".text", run as *const () as u32),
        (".rodata", TEST_NAME.as_ptr() as u32),
    ];
    for (what, va) in targets {
        let byte = probe(va & !3).map_err(|_| "cannot read the target")?;
        let old = (byte >> ((va & 3) * 8)) as u8;
        let (_, flags) = paging::translate(VirtAddr(va)).map_err(|_| "target not mapped")?;
        if flags.contains(PTFlags::RW) {
            return Err("the PTE of kernel code or rodata is writable");
        }
        // SAFETY: writes back the byte that is there, so even if the write
        // succeeds (a CPU without CR0.WP) nothing changes.
        match unsafe { probe_write_u8(VirtAddr(va), old) } {
            Err(f) if paging::write_protect_enabled() => {
                log_fault(what, &f);
                if !(f.error.present() && f.error.write()) {
                    return Err("the fault is not a protection violation on write");
                }
            }
            Err(_) => return Err("a write faulted although CR0.WP is clear"),
            Ok(()) if paging::write_protect_enabled() => {
                return Err("a write to a read-only page succeeded with CR0.WP set");
            }
            Ok(()) => info!(target: "selftest",
                "  {what}: write not refused: CR0.WP is unavailable on this CPU (CR0 {:#010x})", cpu::read_cr0()),
        }
    }
    Ok(())
}

/// In `.rodata`, for the read-only test.
static TEST_NAME: &str = "read-only";

fn table_accounting(b: &mut Buddy) -> Result<(), &'static str> {
    let tables = paging::nr_pt_pages();
    let pa = tagged_frame(b, 0)?;
    paging::map_page(b, TEST_VA2, pa, PTFlags::RW)
        .map_err(|_| "map failed")?
        .flush(&mut ArchTlb);
    let with_one = paging::nr_pt_pages();
    paging::map_page(b, TEST_VA2 + 0x1000, pa, PTFlags::RW)
        .map_err(|_| "second map failed")?
        .flush(&mut ArchTlb);
    let with_two = paging::nr_pt_pages();
    let mut seen = 0;
    paging::unmap_range(b, TEST_VA2, 2, |_, p| seen += u32::from(p == pa))
        .map_err(|_| "unmap_range failed")?
        .flush(&mut ArchTlb);
    let after = paging::nr_pt_pages();
    free_frame(b, pa);
    info!(target: "selftest", "  page tables: {tables} before, {with_one} after mapping {TEST_VA2:#010x}, {with_two} with a second page there, {after} after unmapping both");
    if (with_one, with_two, after, seen) == (tables + 1, tables + 1, tables, 2) {
        Ok(())
    } else {
        Err("page-table count did not go +1, +0, -1")
    }
}

fn map_errors(b: &mut Buddy) -> Result<(), &'static str> {
    let pa = tagged_frame(b, 0)?;
    paging::map_page(b, TEST_VA, pa, PTFlags::RW)
        .map_err(|_| "map failed")?
        .flush(&mut ArchTlb);
    let again = paging::map_page(b, TEST_VA, pa, PTFlags::RW).map(|f| f.ignore("error expected"));
    let (_, flush) = paging::unmap_page(b, TEST_VA).map_err(|_| "unmap failed")?;
    flush.flush(&mut ArchTlb);
    let twice = paging::unmap_page(b, TEST_VA).map(|(_, f)| f.ignore("error expected"));
    let low =
        paging::map_page(b, VirtAddr(0x1000), pa, PTFlags::RW).map(|f| f.ignore("error expected"));
    let odd = paging::map_page(b, TEST_VA + 1, pa, PTFlags::RW).map(|f| f.ignore("error expected"));
    free_frame(b, pa);
    for r in [again, twice, low, odd] {
        if let Err(e) = r {
            info!(target: "selftest", "  refused: {e}");
        }
    }
    match (again, twice, low, odd) {
        (
            Err(MapError::AlreadyMapped { .. }),
            Err(MapError::NotMapped { .. }),
            Err(MapError::OutOfRange { .. }),
            Err(MapError::Misaligned { .. }),
        ) => Ok(()),
        _ => Err("an invalid request was not refused with the right error"),
    }
}

/// Under PAE with RAM above 4 GiB: takes HighMem blocks of order 10 until
/// one lies above 4 GiB, kmaps its first frame (a 64-bit PTE), writes a tag
/// and reads it back through kmap_local, logs the pkmap slot's walk
/// (PDPTE, PDE, PTE), and gives every block back.
fn kmap_above_4g(b: &mut Buddy) -> Result<(), &'static str> {
    const FOUR_GIB_PFN: Pfn = Pfn(1 << 20);
    const ORDER: u8 = 10;
    if paging::current_format() != crate::mm::paging::Format::Pae || b.max_pfn() <= FOUR_GIB_PFN {
        info!(target: "selftest", "  no RAM above 4 GiB in this mode: nothing to reach");
        return Ok(());
    }
    // At most every HighMem block below 4 GiB (3.1 GiB: 800 blocks) is taken
    // before one above it comes.
    let mut taken = [Pfn(0); 1024];
    let mut n = 0;
    let mut found = None;
    while n < taken.len() {
        let Some(block) = b.alloc_pages(GFP_HIGHUSER, ORDER) else {
            break;
        };
        let (pfn, _) = block.into_raw();
        taken[n] = pfn;
        n += 1;
        if pfn >= FOUR_GIB_PFN {
            found = Some(pfn);
            break;
        }
    }
    let result = (|| {
        let pfn = found.ok_or("no HighMem block above 4 GiB came back")?;
        let tag = 0x4ABC_0000 | (pfn.0 & 0xffff);
        let va = VirtAddr(kmap(pfn).map_err(|_| "kmap failed")? as u32);
        // SAFETY: the slot maps the frame we own, writable, until kunmap.
        unsafe { core::ptr::write_volatile(va.as_mut_ptr::<u32>(), tag) };
        let walk = paging::walk_current(va);
        kunmap(pfn).map_err(|_| "kunmap failed")?;
        // SAFETY: the frame is ours, mapped for the closure.
        let back = kmap_local(pfn, |p| unsafe {
            core::ptr::read_volatile(p as *const u32)
        });
        info!(target: "selftest", "  pfn {pfn:#x} (physical {:#x}, above 4 GiB) kmapped at {va:#010x}: tag {tag:#010x} written, read back {back:#010x} through kmap_local",
            pfn.phys());
        if let Some(w) = walk {
            info!(target: "selftest", "    the slot's walk: {w}");
            if w.pa() != Some(pfn.phys()) {
                return Err("the pkmap slot's walk does not reach the frame");
            }
        }
        if back != tag {
            return Err("the tag did not come back");
        }
        Ok(())
    })();
    for &pfn in &taken[..n] {
        if let Err(e) = b.free_pages_raw(pfn, ORDER) {
            exit::fatal(format_args!("selftest: freeing block {pfn:#x}: {e}"));
        }
    }
    result
}

fn kmap_test(b: &mut Buddy) -> Result<(), &'static str> {
    let highmem = b.zone(ZoneType::HighMem).is_populated();
    if !highmem {
        let pa = tagged_frame(b, 0x10E0_0001)?;
        let va = VirtAddr(kmap(pa.pfn()).map_err(|_| "kmap failed")? as u32);
        kunmap(pa.pfn()).map_err(|_| "kunmap failed")?;
        free_frame(b, pa);
        info!(target: "selftest", "  no HighMem zone: kmap of lowmem frame {pa:#010x} returned its direct-map address {va:#010x}");
        return if va == phys_to_virt(pa) {
            Ok(())
        } else {
            Err("kmap of a lowmem frame did not return its direct-map address")
        };
    }
    const N: usize = 8;
    let mut pfns = [Pfn(0); N];
    for p in pfns.iter_mut() {
        let (pfn, _) = b
            .alloc_pages(GFP_HIGHUSER, 0)
            .ok_or("no HighMem page")?
            .into_raw();
        *p = pfn;
        if *p < b.max_low_pfn() {
            return Err("GFP_HIGHUSER returned a lowmem page although HighMem has free pages");
        }
    }
    // kmap each, write a tag through the pkmap slot, kunmap.
    let mut first_va = VirtAddr(0);
    for &pfn in &pfns {
        let va = VirtAddr(kmap(pfn).map_err(|_| "kmap failed")? as u32);
        if !(PKMAP_BASE..PKMAP_END).contains(&va.0) {
            return Err("kmap of a HighMem frame is not in the pkmap window");
        }
        let (tr, _) = paging::translate(va).map_err(|_| "pkmap slot not mapped")?;
        if tr != pfn.phys() {
            return Err("pkmap slot maps the wrong frame");
        }
        // SAFETY: the slot maps the frame we own, writable, until kunmap.
        unsafe { core::ptr::write_volatile(va.as_mut_ptr::<u32>(), pfn.0 ^ 0xC0DE_0000) };
        if first_va == VirtAddr(0) {
            first_va = va;
        }
        kunmap(pfn).map_err(|_| "kunmap failed")?;
        // The slot is empty now, and flushed: the TLB entry the write above
        // loaded must be gone too, or the probe would still read the frame.
        if paging::translate(va).is_ok() || probe(va.0).is_ok() {
            return Err("a pkmap slot still maps its frame after the last kunmap");
        }
    }
    // Read the tags back through kmap_local (the fixmap slots), nested.
    let nested = kmap_local(pfns[0], |p0| {
        kmap_local(pfns[1], |p1| {
            // SAFETY: both frames are ours, mapped for these closures.
            unsafe {
                (
                    core::ptr::read_volatile(p0 as *const u32),
                    core::ptr::read_volatile(p1 as *const u32),
                    p0 as u32,
                    p1 as u32,
                )
            }
        })
    });
    let mut all_tags = true;
    for &pfn in &pfns[2..] {
        // SAFETY: our frame, mapped for the closure.
        let tag = kmap_local(pfn, |p| unsafe {
            core::ptr::read_volatile(p as *const u32)
        });
        all_tags &= tag == pfn.0 ^ 0xC0DE_0000;
    }
    info!(target: "selftest", "  {N} HighMem frames from pfn {:#x}: kmap at {first_va:#010x}.., tags read back through kmap_local slots {:#010x} and {:#010x} (nested)",
        pfns[0], nested.2, nested.3);
    // Shared slot, double kunmap, leak report.
    let v1 = kmap(pfns[0]).map_err(|_| "kmap failed")?;
    let v2 = kmap(pfns[0]).map_err(|_| "kmap failed")?;
    let mut leaks = 0;
    highmem::report_leaks(|h| leaks += u32::from(h.pfn == pfns[0] && h.users == 2));
    kunmap(pfns[0]).map_err(|_| "kunmap failed")?;
    kunmap(pfns[0]).map_err(|_| "kunmap failed")?;
    let double = kunmap(pfns[0]);
    if let Err(e) = double {
        info!(target: "selftest", "  second kunmap refused: {e}");
    }
    let held_after = highmem::report_leaks(|_| {});
    for &pfn in &pfns {
        if b.free_pages_raw(pfn, 0).is_err() {
            return Err("freeing a HighMem frame failed");
        }
    }
    if nested.0 != pfns[0].0 ^ 0xC0DE_0000 || nested.1 != pfns[1].0 ^ 0xC0DE_0000 || !all_tags {
        return Err("a tag written through kmap did not read back through kmap_local");
    }
    if nested.2 == nested.3 {
        return Err("nested kmap_local calls shared a slot");
    }
    if v1 != v2 || leaks != 1 {
        return Err("two kmaps of one frame did not share a slot with 2 users");
    }
    if double != Err(KmapError::NotMapped { pfn: pfns[0] }) || held_after != 0 {
        return Err("the double kunmap was not refused, or a slot stayed held");
    }
    Ok(())
}
