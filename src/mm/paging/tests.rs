//! Unit tests over an emulated i386 MMU.
//!
//! [`Machine`] is the emulated machine of `crate::test_support::mmu`
//! (physical memory as a byte vector, the [`PageTableMemory`]; a page-table
//! frame pool, the [`FrameSource`]; an MMU with CR3 and a TLB that changes
//! only on invalidation, the [`TlbFlusher`]) with one address space loaded.
//! Loads and stores go through the MMU the way the CPU does them, so a
//! forgotten TLB flush shows up as a stale read.

use super::*;
use crate::mm::layout::{PAGE_OFFSET, PKMAP_BASE};
use crate::test_support::Rng;
use crate::test_support::mmu::{A, D, Fault, Frames, Mmu, P, PS, PhysMem, RW, not_present};
use std::collections::{BTreeMap, BTreeSet};

/// Bytes of emulated physical memory: 8 MiB.
const RAM_SIZE: u32 = 8 << 20;
/// First frame of the page-table pool ([`Frames`]).
const TABLE_POOL: u32 = 0x0010_0000;
/// Frames in the default page-table pool: `[1 MiB, 2 MiB)`.
const TABLE_POOL_FRAMES: u32 = 256;
/// Data frames, `[4 MiB, 8 MiB)`: each holds [`tag`] of its address at
/// offset 0 when the machine starts.
const DATA_BASE: u32 = 0x0040_0000;

/// Marker written at offset 0 of data frame `pa`: distinct for every frame.
fn tag(pa: u32) -> u32 {
    0xDA7A_0000 | (pa >> PAGE_SHIFT)
}

/// `VirtAddr(va)`.
fn virt(va: u32) -> VirtAddr {
    VirtAddr(va)
}

/// `PhysAddr(pa)`.
fn phys(pa: u32) -> PhysAddr {
    PhysAddr::from_u32(pa)
}

/// Virtual address `n` pages after `va`.
fn page(va: u32, n: u32) -> u32 {
    va + n * PAGE_SIZE
}

/// Everything a failed request must leave as it was.
struct Snapshot {
    ram: Vec<u8>,
    nr_pt_pages: u32,
    live: BTreeSet<u32>,
}

/// An emulated machine with one address space loaded in CR3.
struct Machine {
    mem: PhysMem,
    frames: Frames,
    mmu: Mmu,
    space: AddressSpace,
}

impl Machine {
    /// An address space over virtual `[start, end)` with `table_frames`
    /// frames in the page-table pool (the page directory takes the first).
    fn new(start: u32, end: u64, table_frames: u32) -> Self {
        let mem = PhysMem::new(RAM_SIZE);
        for pa in (DATA_BASE..RAM_SIZE).step_by(PAGE_SIZE as usize) {
            mem.write_u32(pa, tag(pa));
        }
        let mut frames = Frames::new(mem.ram.clone(), TABLE_POOL, table_frames);
        let space = AddressSpace::new(&mut frames, virt(start), end).expect("page directory");
        let mmu = Mmu::new(space.pgd(), true);
        Machine {
            mem,
            frames,
            mmu,
            space,
        }
    }

    /// The kernel's space, `[PAGE_OFFSET, 4 GiB)`, on a CPU with `invlpg`.
    fn kernel() -> Self {
        Self::new(PAGE_OFFSET, 1 << 32, TABLE_POOL_FRAMES)
    }

    fn with_invlpg(mut self, has_invlpg: bool) -> Self {
        self.mmu.has_invlpg = has_invlpg;
        self
    }

    fn map(&mut self, va: u32, pa: u32, flags: PTFlags) -> Result<TlbFlush, MapError> {
        self.space
            .map_page(&mut self.mem, &mut self.frames, virt(va), phys(pa), flags)
    }

    /// Maps a page that must not be mapped yet (no TLB entry to drop).
    fn map_new(&mut self, va: u32, pa: u32, flags: PTFlags) {
        self.map(va, pa, flags)
            .unwrap_or_else(|e| panic!("map {va:#010x}: {e}"))
            .ignore("a new mapping: the TLB holds nothing for it");
    }

    fn remap(
        &mut self,
        va: u32,
        pa: u32,
        flags: PTFlags,
    ) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.space
            .remap_page(&mut self.mem, virt(va), phys(pa), flags)
    }

    fn unmap(&mut self, va: u32) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.space
            .unmap_page(&mut self.mem, &mut self.frames, virt(va))
    }

    fn map_range(
        &mut self,
        va: u32,
        pa: u32,
        pages: u32,
        flags: PTFlags,
    ) -> Result<TlbFlush, MapError> {
        self.space.map_range(
            &mut self.mem,
            &mut self.frames,
            virt(va),
            phys(pa),
            pages,
            flags,
        )
    }

    /// `unmap_range`, with the `(va, pa)` pairs `on_page` saw.
    fn unmap_range(
        &mut self,
        va: u32,
        pages: u32,
    ) -> (Result<TlbFlush, MapError>, Vec<(u32, u32)>) {
        let mut seen = Vec::new();
        let r = self
            .space
            .unmap_range(&mut self.mem, &mut self.frames, virt(va), pages, |v, p| {
                seen.push((v.0, p.as_u32()))
            });
        (r, seen)
    }

    fn ensure_table(&mut self, va: u32, pin: bool) -> Result<PhysAddr, MapError> {
        self.space
            .ensure_table(&mut self.mem, &mut self.frames, virt(va), pin)
    }

    /// The software translation: `(pa, flag bits)`.
    fn translate(&mut self, va: u32) -> Result<(u32, u32), MapError> {
        self.space
            .translate(&mut self.mem, virt(va))
            .map(|(pa, flags)| (pa.as_u32(), flags.bits() as u32))
    }

    fn walk(&mut self, va: u32) -> Walk {
        self.space.walk(&mut self.mem, virt(va))
    }

    fn read(&mut self, va: u32) -> Result<u32, Fault> {
        self.mmu.read_u32(&self.mem, va)
    }

    fn write(&mut self, va: u32, v: u32) -> Result<(), Fault> {
        self.mmu.write_u32(&self.mem, va, v)
    }

    fn flush(&mut self, token: TlbFlush) {
        token.flush(&mut self.mmu);
    }

    fn dump(&mut self) -> Vec<DumpRange> {
        let mut out = Vec::new();
        self.space.dump(&mut self.mem, |r| out.push(*r));
        out
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            ram: self.mem.ram.borrow().clone(),
            nr_pt_pages: self.space.nr_pt_pages(),
            live: self.frames.live.clone(),
        }
    }

    /// Panics, naming the first changed byte, if anything differs from
    /// `before`.
    fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        let ram = self.mem.ram.borrow();
        if let Some(i) = ram.iter().zip(&before.ram).position(|(a, b)| a != b) {
            panic!("{what}: physical byte {i:#010x} changed");
        }
        assert_eq!(
            self.space.nr_pt_pages(),
            before.nr_pt_pages,
            "{what}: nr_pt_pages"
        );
        assert_eq!(self.frames.live, before.live, "{what}: page-table frames");
    }
}

/// A fresh virtual address in the kernel space, PDE 800 (`0xC800_0000`).
const VA: u32 = 0xC800_0000;
/// Data frames for the TLB tests.
const FRAME_A: u32 = 0x0050_0000;
const FRAME_B: u32 = 0x0060_0000;

fn rw() -> PTFlags {
    PTFlags::RW
}

fn ro() -> PTFlags {
    PTFlags::empty()
}

// ---------------------------------------------------------------------------
// Mapping, translation, walks
// ---------------------------------------------------------------------------

#[test]
fn mapped_page_reads_and_writes_reach_the_frame() {
    let mut m = Machine::kernel();
    m.map_new(page(VA, 3), FRAME_A, rw());
    assert_eq!(m.read(page(VA, 3)), Ok(tag(FRAME_A)));
    m.write(page(VA, 3) + 0x124, 0x1234_5678).unwrap();
    assert_eq!(m.mem.read_u32(FRAME_A + 0x124), 0x1234_5678);
    assert_eq!(m.read(page(VA, 3) + 0x124), Ok(0x1234_5678));
    // The neighbours stay unmapped.
    for va in [page(VA, 2), page(VA, 4)] {
        assert_eq!(m.read(va), not_present(va));
    }
}

#[test]
fn translate_returns_frame_plus_offset_and_flags() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, rw());
    m.map_new(page(VA, 1), FRAME_B, ro());
    assert_eq!(m.translate(VA + 0xabc), Ok((FRAME_A + 0xabc, P | RW)));
    assert_eq!(m.translate(page(VA, 1) + 4), Ok((FRAME_B + 4, P)));
    let (pa, flags) = m.space.translate(&mut m.mem, virt(VA)).unwrap();
    assert_eq!(pa, phys(FRAME_A));
    assert_eq!(flags, PTFlags::P | PTFlags::RW);
}

#[test]
fn map_page_token_covers_the_one_page() {
    let mut m = Machine::kernel();
    let t = m.map(page(VA, 7), FRAME_A, rw()).unwrap();
    assert_eq!((t.va(), t.pages()), (virt(page(VA, 7)), 1));
    m.flush(t);
    assert_eq!(m.mmu.page_flushes, [page(VA, 7)]);
}

#[test]
fn walk_display_names_both_levels_and_the_frame() {
    let mut m = Machine::kernel();
    let va = 0xC010_1000;
    m.map_new(va, FRAME_A, ro());
    let w = m.walk(va + 0x234);
    let table = w.pde.address().as_u32();
    assert_eq!(w.pa(), Some(phys(FRAME_A + 0x234)));
    let s = w.to_string();
    assert!(s.starts_with("va 0xc0101234: PDE[768] = "), "{s}");
    assert!(s.contains(&format!("-> page table {table:#010x}")), "{s}");
    assert!(s.contains("PTE[257] = 0x00500001 (P (read-only))"), "{s}");
    assert!(s.ends_with("-> pa 0x00500234"), "{s}");

    // No page table; a page table without the page.
    let s = m.walk(0xD000_0000).to_string();
    assert!(
        s.contains("PDE[832] = 0x00000000 (not present) -> no page table"),
        "{s}"
    );
    let w = m.walk(0xC010_2000);
    assert_eq!(w.pa(), None);
    assert!(
        w.to_string()
            .ends_with("PTE[258] = 0x00000000 (not present) -> no frame")
    );

    // A 4 MiB page.
    let pgd = m.space.pgd();
    m.mem.with_table(pgd, |t| t[900] = DATA_BASE | PS | RW | P);
    let s = m.walk(900 << 22).to_string();
    assert!(s.contains("(P RW PS) -> 4 MiB page 0x00400000"), "{s}");
}

#[test]
fn accessors_report_the_directory_and_range() {
    let m = Machine::new(0xC000_0000, 0xC100_0000, 4);
    assert_eq!(m.space.pgd(), phys(TABLE_POOL));
    assert_eq!(m.space.range(), (virt(0xC000_0000), 0xC100_0000));
    assert_eq!(m.space.nr_pt_pages(), 0);
}

// ---------------------------------------------------------------------------
// TLB invalidation
// ---------------------------------------------------------------------------

/// Maps [`VA`] to [`FRAME_A`], reads it through the MMU (the TLB now holds
/// the translation), remaps it to [`FRAME_B`] and flushes the token or, with
/// `flush == false`, ignores it (a forgotten flush). Returns what the MMU
/// reads at [`VA`] afterwards, and the machine.
fn remap_and_read(has_invlpg: bool, flush: bool) -> (u32, Machine) {
    let mut m = Machine::kernel().with_invlpg(has_invlpg);
    m.map_new(VA, FRAME_A, rw());
    assert_eq!(m.read(VA), Ok(tag(FRAME_A)));
    let (old, token) = m.remap(VA, FRAME_B, rw()).unwrap();
    assert_eq!(old, phys(FRAME_A));
    // The page tables say B already, whatever the TLB says.
    assert_eq!(m.translate(VA), Ok((FRAME_B, P | RW)));
    if flush {
        m.flush(token);
    } else {
        token.ignore("test: simulating a forgotten flush");
    }
    let value = m.read(VA).unwrap();
    (value, m)
}

#[test]
fn remap_without_flush_reads_the_old_frame_until_flushed() {
    for has_invlpg in [true, false] {
        let (stale, mut m) = remap_and_read(has_invlpg, false);
        assert_eq!(stale, tag(FRAME_A), "unflushed, invlpg={has_invlpg}");
        assert!(m.mmu.page_flushes.is_empty() && m.mmu.full_flushes == 0);
        // A stale write lands in the old frame, too.
        m.write(VA, 0xBAD).unwrap();
        assert_eq!(m.mem.read_u32(FRAME_A), 0xBAD);
        assert_eq!(m.mem.read_u32(FRAME_B), tag(FRAME_B));

        let (fresh, m) = remap_and_read(has_invlpg, true);
        assert_eq!(fresh, tag(FRAME_B), "flushed, invlpg={has_invlpg}");
        if has_invlpg {
            assert_eq!(
                (&m.mmu.page_flushes[..], m.mmu.full_flushes),
                (&[VA][..], 0)
            );
        } else {
            assert_eq!((&m.mmu.page_flushes[..], m.mmu.full_flushes), (&[][..], 1));
        }
    }
}

/// Maps [`VA`] (and, with `neighbour`, the page after it, so that the page
/// table is not freed), reads [`VA`] through the MMU, unmaps it and flushes
/// or ignores the token; returns what the MMU read afterwards gives.
fn unmap_and_read(has_invlpg: bool, neighbour: bool, flush: bool) -> Result<u32, Fault> {
    let mut m = Machine::kernel().with_invlpg(has_invlpg);
    m.map_new(VA, FRAME_A, rw());
    if neighbour {
        m.map_new(page(VA, 1), FRAME_B, rw());
    }
    assert_eq!(m.read(VA), Ok(tag(FRAME_A)));
    let (pa, token) = m.unmap(VA).unwrap();
    assert_eq!(pa, phys(FRAME_A));
    assert_eq!(m.translate(VA), Err(MapError::NotMapped { va: virt(VA) }));
    assert_eq!(m.space.nr_pt_pages(), u32::from(neighbour));
    if flush {
        m.flush(token);
    } else {
        token.ignore("test: simulating a forgotten flush");
    }
    m.read(VA)
}

#[test]
fn unmap_without_flush_still_reads_until_flushed() {
    for has_invlpg in [true, false] {
        for neighbour in [true, false] {
            let why = format!("invlpg={has_invlpg} neighbour={neighbour}");
            assert_eq!(
                unmap_and_read(has_invlpg, neighbour, false),
                Ok(tag(FRAME_A)),
                "{why}"
            );
            assert_eq!(
                unmap_and_read(has_invlpg, neighbour, true),
                not_present(VA),
                "{why}"
            );
        }
    }
}

/// Maps `pages` pages from [`VA`] plus one page after a gap, reads them all
/// through the MMU, unmaps the `pages` with `unmap_range` and flushes the
/// token. Returns the machine with the flush counts of that one flush.
fn unmap_range_and_flush(has_invlpg: bool, pages: u32) -> Machine {
    let mut m = Machine::kernel().with_invlpg(has_invlpg);
    let outside = page(VA, pages + 1);
    m.map_range(VA, FRAME_A, pages, rw())
        .unwrap()
        .ignore("new mappings");
    m.map_new(outside, FRAME_B, rw());
    for i in 0..pages {
        assert_eq!(m.read(page(VA, i)), Ok(tag(page(FRAME_A, i))));
    }
    m.read(outside).unwrap();
    m.mmu.reset_counts();
    let (token, _) = m.unmap_range(VA, pages);
    let token = token.unwrap();
    assert_eq!((token.va(), token.pages()), (virt(VA), pages));
    m.flush(token);
    for i in 0..pages {
        let va = page(VA, i);
        assert!(!m.mmu.cached(va), "{va:#x} still cached");
        assert_eq!(m.read(va), not_present(va));
    }
    m
}

#[test]
fn flush_uses_one_invlpg_per_page_up_to_the_ceiling() {
    assert_eq!(FLUSH_CEILING, 33);
    for pages in [1, 2, FLUSH_CEILING] {
        let m = unmap_range_and_flush(true, pages);
        let expected: Vec<u32> = (0..pages).map(|i| page(VA, i)).collect();
        assert_eq!(m.mmu.page_flushes, expected, "{pages} pages");
        assert_eq!(m.mmu.full_flushes, 0, "{pages} pages");
        // Only the range was dropped.
        assert!(m.mmu.cached(page(VA, pages + 1)), "{pages} pages");
    }
}

#[test]
fn flush_above_the_ceiling_reloads_cr3_once() {
    for pages in [FLUSH_CEILING + 1, 100] {
        let m = unmap_range_and_flush(true, pages);
        assert!(m.mmu.page_flushes.is_empty(), "{pages} pages");
        assert_eq!(m.mmu.full_flushes, 1, "{pages} pages");
        assert!(m.mmu.tlb.is_empty());
    }
}

#[test]
fn flush_without_invlpg_always_reloads_cr3_once() {
    for pages in [1, FLUSH_CEILING, FLUSH_CEILING + 1] {
        let m = unmap_range_and_flush(false, pages);
        assert!(m.mmu.page_flushes.is_empty(), "{pages} pages");
        assert_eq!(m.mmu.full_flushes, 1, "{pages} pages");
        assert!(m.mmu.tlb.is_empty());
    }
}

#[test]
fn flush_of_no_pages_does_nothing() {
    for has_invlpg in [true, false] {
        let mut m = Machine::kernel().with_invlpg(has_invlpg);
        m.map_new(VA, FRAME_A, rw());
        m.read(VA).unwrap();
        let t = m.map_range(page(VA, 1), FRAME_B, 0, rw()).unwrap();
        assert_eq!(t.pages(), 0);
        m.flush(t);
        assert!(m.mmu.page_flushes.is_empty());
        assert_eq!(m.mmu.full_flushes, 0);
        assert!(m.mmu.cached(VA));
    }
}

#[test]
fn ignored_token_flushes_nothing() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, rw());
    m.read(VA).unwrap();
    let (_, t) = m.unmap(VA).unwrap();
    t.ignore("test");
    assert!(m.mmu.page_flushes.is_empty());
    assert_eq!(m.mmu.full_flushes, 0);
    assert!(m.mmu.cached(VA));
}

#[test]
#[should_panic(expected = "dropped")]
fn dropping_a_flush_token_panics() {
    let mut m = Machine::kernel();
    let token = m.map(VA, FRAME_A, rw()).unwrap();
    drop(token);
}

#[test]
fn mmu_faults_like_the_cpu() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, ro());
    // Write to a read-only page: a protection fault, and no TLB entry left.
    assert_eq!(
        m.write(VA, 1),
        Err(Fault {
            va: VA,
            write: true,
            present: true,
            ..Fault::default()
        })
    );
    assert!(!m.mmu.cached(VA));
    assert_eq!(m.read(VA), Ok(tag(FRAME_A)));
    assert!(m.mmu.cached(VA));
    // A cached read-only entry faults on write as well, and is dropped.
    assert!(m.write(VA, 1).unwrap_err().present);
    assert!(!m.mmu.cached(VA));
    assert_eq!(m.mem.read_u32(FRAME_A), tag(FRAME_A));
    // A hit does not walk.
    m.read(VA).unwrap();
    let walks = m.mmu.walks;
    m.read(VA + 8).unwrap();
    assert_eq!(m.mmu.walks, walks);
}

// ---------------------------------------------------------------------------
// Page-table accounting
// ---------------------------------------------------------------------------

#[test]
fn first_mapping_in_a_4mib_region_allocates_one_page_table() {
    let mut m = Machine::kernel();
    assert_eq!((m.space.nr_pt_pages(), m.frames.live.len()), (0, 1));
    m.map_new(page(VA, 5), FRAME_A, rw());
    assert_eq!((m.space.nr_pt_pages(), m.frames.live.len()), (1, 2));
    let w = m.walk(VA);
    assert!(w.pde.is_present() && !w.pde.is_page());
    assert!(m.frames.live.contains(&w.pde.address().as_u32()));
    // Same 4 MiB: no new table; the next 4 MiB: one more.
    m.map_new(page(VA, 1023), FRAME_B, rw());
    assert_eq!((m.space.nr_pt_pages(), m.frames.live.len()), (1, 2));
    m.map_new(page(VA, 1024), FRAME_B, rw());
    assert_eq!((m.space.nr_pt_pages(), m.frames.live.len()), (2, 3));
}

#[test]
fn unmapping_the_last_page_frees_its_table() {
    let mut m = Machine::kernel();
    m.map_new(page(VA, 5), FRAME_A, rw());
    m.map_new(page(VA, 6), FRAME_B, rw());
    let table = m.walk(VA).pde.address().as_u32();
    let (_, t) = m.unmap(page(VA, 5)).unwrap();
    m.flush(t);
    assert_eq!(m.space.nr_pt_pages(), 1);
    assert!(m.walk(VA).pde.is_present());
    assert!(m.frames.freed.is_empty());

    let (pa, t) = m.unmap(page(VA, 6)).unwrap();
    m.flush(t);
    assert_eq!(pa, phys(FRAME_B));
    assert_eq!(m.space.nr_pt_pages(), 0);
    assert_eq!(m.frames.freed, [table]);
    assert!(m.frames.is_free(table));
    assert_eq!(m.frames.live.len(), 1);
    let w = m.walk(VA);
    assert_eq!(w.pde.0, 0);
    assert!(w.pte.is_none());
    // The frame comes back for the next table.
    m.map_new(page(VA, 1024), FRAME_A, rw());
    assert_eq!(m.walk(page(VA, 1024)).pde.address().as_u32(), table);
}

#[test]
fn ensure_table_is_freed_when_emptied_unless_pinned() {
    let mut m = Machine::kernel();
    let loose = m.ensure_table(VA, false).unwrap();
    let pinned = m.ensure_table(page(VA, 1024), true).unwrap();
    assert_eq!(m.space.nr_pt_pages(), 2);
    // Asking again returns the same table, allocating nothing.
    assert_eq!(m.ensure_table(VA + 0x1000, false), Ok(loose));
    assert_eq!(m.ensure_table(page(VA, 1025), false), Ok(pinned));
    assert_eq!(m.space.nr_pt_pages(), 2);

    for va in [VA, page(VA, 1024)] {
        m.map_new(va, FRAME_A, rw());
        let (_, t) = m.unmap(va).unwrap();
        m.flush(t);
    }
    assert_eq!(m.frames.freed, [loose.as_u32()]);
    assert_eq!(m.space.nr_pt_pages(), 1);
    assert_eq!(m.walk(VA).pde.0, 0);
    assert_eq!(m.walk(page(VA, 1024)).pde.address(), pinned);
}

#[test]
fn map_linear_tables_are_pinned() {
    let mut m = Machine::kernel();
    m.space
        .map_linear(
            &mut m.mem,
            &mut m.frames,
            virt(VA),
            phys(FRAME_A),
            4,
            false,
            |_| Some(PTFlags::RW),
        )
        .unwrap()
        .ignore("new mappings");
    let table = m.walk(VA).pde.address();
    let (r, seen) = m.unmap_range(VA, 4);
    m.flush(r.unwrap());
    assert_eq!(seen.len(), 4);
    assert_eq!(m.space.nr_pt_pages(), 1);
    assert!(m.frames.freed.is_empty());
    assert_eq!(m.walk(VA).pde.address(), table);
}

#[test]
fn new_address_space_without_a_frame_is_no_memory() {
    let mut frames = Frames::new(PhysMem::new(RAM_SIZE).ram, TABLE_POOL, 0);
    assert_eq!(
        AddressSpace::new(&mut frames, virt(PAGE_OFFSET), 1 << 32).err(),
        Some(MapError::NoMemory {
            va: virt(PAGE_OFFSET)
        })
    );
}

// ---------------------------------------------------------------------------
// Errors: each leaves everything as it was
// ---------------------------------------------------------------------------

#[test]
fn misaligned_requests_change_nothing() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, rw());
    let before = m.snapshot();
    let e = |va, pa| MapError::Misaligned {
        va: virt(va),
        pa: phys(pa),
    };
    assert_eq!(
        m.map(VA + 0x800, FRAME_B, rw()).unwrap_err(),
        e(VA + 0x800, FRAME_B)
    );
    assert_eq!(
        m.map(page(VA, 1), FRAME_B + 4, rw()).unwrap_err(),
        e(page(VA, 1), FRAME_B + 4)
    );
    assert_eq!(
        m.remap(VA, FRAME_B + 0x10, rw()).unwrap_err(),
        e(VA, FRAME_B + 0x10)
    );
    assert_eq!(
        m.remap(VA + 4, FRAME_B, rw()).unwrap_err(),
        e(VA + 4, FRAME_B)
    );
    assert_eq!(m.unmap(VA + 4).unwrap_err(), e(VA + 4, 0));
    assert_eq!(
        m.map_range(page(VA, 1), FRAME_B + 1, 2, rw()).unwrap_err(),
        e(page(VA, 1), FRAME_B + 1)
    );
    assert_eq!(m.unmap_range(VA + 8, 1).0.unwrap_err(), e(VA + 8, 0));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(0xD000_0000),
        phys(0x10),
        2,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(r.unwrap_err(), e(0xD000_0000, 0x10));
    let r = m
        .space
        .install_table(&mut m.mem, virt(0xD000_0000), phys(0x0030_0800));
    assert_eq!(r.unwrap_err(), e(0xD000_0000, 0x0030_0800));
    m.assert_unchanged(&before, "misaligned");
    assert_eq!(m.translate(VA), Ok((FRAME_A, P | RW)));
}

#[test]
fn out_of_range_requests_change_nothing() {
    let (start, end) = (0xC000_0000, 0xC100_0000);
    let mut m = Machine::new(start, u64::from(end), TABLE_POOL_FRAMES);
    let before = m.snapshot();
    let e = |va| MapError::OutOfRange { va: virt(va) };
    let below = start - PAGE_SIZE;
    assert_eq!(m.map(below, FRAME_A, rw()).unwrap_err(), e(below));
    assert_eq!(m.map(end, FRAME_A, rw()).unwrap_err(), e(end));
    assert_eq!(
        m.map(0xFFFF_F000, FRAME_A, rw()).unwrap_err(),
        e(0xFFFF_F000)
    );
    assert_eq!(m.remap(below, FRAME_A, rw()).unwrap_err(), e(below));
    assert_eq!(m.unmap(end).unwrap_err(), e(end));
    assert_eq!(m.ensure_table(end, true), Err(e(end)));
    assert_eq!(m.ensure_table(below, false), Err(e(below)));
    // A range whose tail passes the end: its first pages stay unmapped.
    let last = end - PAGE_SIZE;
    assert_eq!(
        m.map_range(last - PAGE_SIZE, FRAME_A, 3, rw()).unwrap_err(),
        e(end)
    );
    assert_eq!(m.map_range(below, FRAME_A, 2, rw()).unwrap_err(), e(below));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(last - PAGE_SIZE),
        phys(FRAME_A),
        3,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(r.unwrap_err(), e(end));
    assert_eq!(
        m.space
            .install_table(&mut m.mem, virt(end), phys(0x0030_0000))
            .unwrap_err(),
        e(end)
    );
    assert_eq!(
        m.space.remove_table(&mut m.mem, virt(below)).unwrap_err(),
        e(below)
    );
    m.assert_unchanged(&before, "out of range");

    // The last page is inside.
    m.map_new(last, FRAME_A, rw());
    assert_eq!(m.read(last), Ok(tag(FRAME_A)));
    // And the end of a 4 GiB space is the top of the address space.
    let mut k = Machine::kernel();
    k.map_new(0xFFFF_F000, FRAME_A, rw());
    assert_eq!(k.read(0xFFFF_FFFC), Ok(0));
}

#[test]
fn mapping_a_mapped_page_reports_its_frame() {
    let mut m = Machine::kernel();
    m.map_new(page(VA, 2), FRAME_A, rw());
    m.read(page(VA, 2)).unwrap();
    let before = m.snapshot();
    let already = MapError::AlreadyMapped {
        va: virt(page(VA, 2)),
        pa: phys(FRAME_A),
    };
    assert_eq!(m.map(page(VA, 2), FRAME_B, ro()).unwrap_err(), already);
    assert_eq!(m.map(page(VA, 2), FRAME_A, rw()).unwrap_err(), already);
    m.assert_unchanged(&before, "already mapped");
    assert_eq!(m.read(page(VA, 2)), Ok(tag(FRAME_A)));
}

#[test]
fn unmapped_pages_report_not_mapped() {
    let mut m = Machine::kernel();
    m.map_new(page(VA, 1), FRAME_A, rw());
    let before = m.snapshot();
    // In a page table that exists, and where there is none.
    for va in [VA, page(VA, 2), 0xD000_0000] {
        let e = MapError::NotMapped { va: virt(va) };
        assert_eq!(m.translate(va), Err(e));
        assert_eq!(
            m.translate(va + 0x10),
            Err(MapError::NotMapped {
                va: virt(va + 0x10)
            })
        );
        assert_eq!(m.unmap(va).unwrap_err(), e);
        assert_eq!(m.remap(va, FRAME_B, rw()).unwrap_err(), e);
    }
    assert_eq!(
        m.space
            .remove_table(&mut m.mem, virt(0xD000_0000))
            .unwrap_err(),
        MapError::NotMapped {
            va: virt(0xD000_0000)
        }
    );
    m.assert_unchanged(&before, "not mapped");
}

#[test]
fn exhausted_frame_source_reports_no_memory() {
    // The page directory takes the only frame.
    let mut m = Machine::new(PAGE_OFFSET, 1 << 32, 1);
    let before = m.snapshot();
    let e = MapError::NoMemory { va: virt(VA) };
    assert_eq!(m.map(VA, FRAME_A, rw()).unwrap_err(), e);
    assert_eq!(m.map_range(VA, FRAME_A, 3, rw()).unwrap_err(), e);
    assert_eq!(m.ensure_table(VA, true), Err(e));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(VA),
        phys(FRAME_A),
        3,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(r.unwrap_err(), e);
    m.assert_unchanged(&before, "no memory");
    assert_eq!(m.walk(VA).pde.0, 0);
}

#[test]
fn map_range_out_of_tables_midway_writes_no_entry() {
    // Room for one page table: the range needs two.
    let mut m = Machine::new(PAGE_OFFSET, 1 << 32, 2);
    let start = page(VA, 1022);
    assert_eq!(
        m.map_range(start, FRAME_A, 4, rw()).unwrap_err(),
        MapError::NoMemory {
            va: virt(page(VA, 1024))
        }
    );
    for i in 0..4 {
        let va = page(start, i);
        assert_eq!(m.translate(va), Err(MapError::NotMapped { va: virt(va) }));
    }
    assert!(m.dump().is_empty());
}

#[test]
fn large_page_entries_are_translated_and_reported_not_changed() {
    let mut m = Machine::kernel();
    let big = 900 << 22;
    let pgd = m.space.pgd();
    m.mem.with_table(pgd, |t| t[900] = DATA_BASE | PS | RW | P);
    let before = m.snapshot();
    let e = |va| MapError::LargePage { va: virt(va) };
    let va = big + 0x5000;
    // A walk reads through a large page (Linux slow_virt_to_phys): the
    // offset within its 4 MiB, the PDE's flags without PS.
    assert_eq!(m.translate(va + 0x10), Ok((DATA_BASE + 0x5010, P | RW)));
    assert_eq!(m.map(va, FRAME_A, rw()).unwrap_err(), e(va));
    assert_eq!(m.remap(va, FRAME_A, rw()).unwrap_err(), e(va));
    assert_eq!(m.unmap(va).unwrap_err(), e(va));
    assert_eq!(m.ensure_table(va, true), Err(e(va)));
    assert_eq!(m.map_range(va, FRAME_A, 2, rw()).unwrap_err(), e(va));
    assert_eq!(m.unmap_range(va, 2).0.unwrap_err(), e(va));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(va),
        phys(FRAME_A),
        2,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(r.unwrap_err(), e(va));
    assert_eq!(
        m.space
            .install_table(&mut m.mem, virt(va), phys(0x0030_0000))
            .unwrap_err(),
        MapError::AlreadyMapped {
            va: virt(va),
            pa: phys(DATA_BASE)
        }
    );
    assert_eq!(
        m.dump(),
        [DumpRange {
            va: virt(big),
            pa: phys(DATA_BASE),
            pages: 1024,
            flags: u64::from(P | RW),
            page_shift: 22,
        }],
        "dump shows the 4 MiB page as one"
    );
    m.assert_unchanged(&before, "large page");
    // The emulated CPU does use it.
    assert_eq!(m.read(big + 0x0010_0000), Ok(tag(DATA_BASE + 0x0010_0000)));
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

#[test]
fn map_range_checks_every_page_before_writing() {
    let mut m = Machine::kernel();
    // Page 5 of the range (in the second page table) is taken.
    let start = page(VA, 1020);
    m.map_new(page(start, 5), FRAME_B, ro());
    let before = m.snapshot();
    assert_eq!(
        m.map_range(start, FRAME_A, 8, rw()).unwrap_err(),
        MapError::AlreadyMapped {
            va: virt(page(start, 5)),
            pa: phys(FRAME_B)
        }
    );
    m.assert_unchanged(&before, "map_range over a mapped page");
    for i in 0..5 {
        let va = page(start, i);
        assert_eq!(m.translate(va), Err(MapError::NotMapped { va: virt(va) }));
    }
    // Without the conflict the same range maps, across both tables.
    let t = m.map_range(start, FRAME_A, 5, rw()).unwrap();
    m.flush(t);
    for i in 0..5 {
        assert_eq!(m.read(page(start, i)), Ok(tag(page(FRAME_A, i))));
    }
    assert_eq!(m.space.nr_pt_pages(), 2);
}

#[test]
fn unmap_range_with_a_hole_changes_nothing() {
    let mut m = Machine::kernel();
    m.map_range(VA, FRAME_A, 6, rw())
        .unwrap()
        .ignore("new mappings");
    m.unmap(page(VA, 4)).unwrap().1.ignore("nothing cached");
    let before = m.snapshot();
    let (r, seen) = m.unmap_range(VA, 6);
    assert_eq!(
        r.unwrap_err(),
        MapError::NotMapped {
            va: virt(page(VA, 4))
        }
    );
    assert!(seen.is_empty());
    m.assert_unchanged(&before, "unmap_range over a hole");
}

#[test]
fn range_tokens_cover_every_page_and_unmap_range_reports_each_frame() {
    let mut m = Machine::kernel();
    let start = page(VA, 1022);
    let t = m.map_range(start, FRAME_A, 4, rw()).unwrap();
    assert_eq!((t.va(), t.pages()), (virt(start), 4));
    m.flush(t);
    assert_eq!(
        m.mmu.page_flushes,
        (0..4).map(|i| page(start, i)).collect::<Vec<_>>()
    );
    for i in 0..4 {
        assert_eq!(m.translate(page(start, i)), Ok((page(FRAME_A, i), P | RW)));
    }
    assert_eq!(m.space.nr_pt_pages(), 2);
    let (t, seen) = m.unmap_range(start, 4);
    let t = t.unwrap();
    assert_eq!((t.va(), t.pages()), (virt(start), 4));
    m.flush(t);
    let expected: Vec<(u32, u32)> = (0..4).map(|i| (page(start, i), page(FRAME_A, i))).collect();
    assert_eq!(seen, expected);
    assert_eq!(m.space.nr_pt_pages(), 0);
    assert_eq!(m.frames.freed.len(), 2);
}

// ---------------------------------------------------------------------------
// map_linear
// ---------------------------------------------------------------------------

/// Where [`map_linear_crossing_tables`] maps: virtual `0xC030_0000` (PTE
/// index 768) to physical `0x0020_0000`, 1296 pages over three page tables
/// (256 + 1024 + 16 entries).
const LIN_VA: u32 = 0xC030_0000;
const LIN_PA: u32 = 0x0020_0000;
const LIN_PAGES: u32 = 1296;
/// Read-only frames, across the first table boundary.
const LIN_RO: core::ops::Range<u32> = 0x002F_E000..0x0030_2000;
/// The one frame left out.
const LIN_HOLE: u32 = 0x0040_0000;

fn lin_va(pa: u32) -> u32 {
    pa - LIN_PA + LIN_VA
}

fn map_linear_crossing_tables(m: &mut Machine) -> TlbFlush {
    m.space
        .map_linear(
            &mut m.mem,
            &mut m.frames,
            virt(LIN_VA),
            phys(LIN_PA),
            LIN_PAGES,
            false,
            |pfn| match pfn.phys().as_u32() {
                LIN_HOLE => None,
                pa if LIN_RO.contains(&pa) => Some(PTFlags::empty()),
                _ => Some(PTFlags::RW),
            },
        )
        .unwrap()
}

#[test]
fn map_linear_maps_holes_and_read_only_pages_across_tables() {
    let mut m = Machine::kernel();
    let t = map_linear_crossing_tables(&mut m);
    assert_eq!((t.va(), t.pages()), (virt(LIN_VA), LIN_PAGES));
    m.flush(t);
    assert_eq!(m.space.nr_pt_pages(), 3);
    assert_eq!(m.mmu.full_flushes, 1);

    let last = LIN_PA + (LIN_PAGES - 1) * PAGE_SIZE;
    for (pa, flags) in [
        (LIN_PA, P | RW),
        (LIN_RO.start - PAGE_SIZE, P | RW),
        (LIN_RO.start, P),
        (0x0030_0000, P),
        (LIN_RO.end - PAGE_SIZE, P),
        (LIN_RO.end, P | RW),
        (LIN_HOLE + PAGE_SIZE, P | RW),
        (last, P | RW),
    ] {
        assert_eq!(m.translate(lin_va(pa)), Ok((pa, flags)), "pa {pa:#x}");
    }
    let hole = lin_va(LIN_HOLE);
    assert_eq!(
        m.translate(hole),
        Err(MapError::NotMapped { va: virt(hole) })
    );
    let past = lin_va(last + PAGE_SIZE);
    assert_eq!(
        m.translate(past),
        Err(MapError::NotMapped { va: virt(past) })
    );

    // Through the MMU.
    let ro_va = lin_va(LIN_RO.start + PAGE_SIZE);
    assert_eq!(m.read(ro_va), Ok(0));
    assert_eq!(
        m.write(ro_va, 7),
        Err(Fault {
            va: ro_va,
            write: true,
            present: true,
            ..Fault::default()
        })
    );
    assert_eq!(m.read(hole), not_present(hole));
    let data = lin_va(0x0060_0000) + 0x40;
    m.write(data, 0x600D).unwrap();
    assert_eq!(m.mem.read_u32(0x0060_0040), 0x600D);

    let run = |pa: u32, pages, flags| DumpRange {
        va: virt(lin_va(pa)),
        pa: phys(pa),
        pages,
        flags: u64::from(flags),
        page_shift: PAGE_SHIFT,
    };
    assert_eq!(
        m.dump(),
        [
            run(LIN_PA, 254, P | RW),
            run(LIN_RO.start, 4, P),
            run(LIN_RO.end, 254, P | RW),
            run(LIN_HOLE + PAGE_SIZE, 783, P | RW),
        ]
    );
}

#[test]
fn map_linear_conflict_reports_already_mapped() {
    let mut m = Machine::kernel();
    m.map_new(page(VA, 5), FRAME_B, rw());
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(VA),
        phys(FRAME_A),
        10,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(
        r.unwrap_err(),
        MapError::AlreadyMapped {
            va: virt(page(VA, 5)),
            pa: phys(FRAME_B)
        }
    );
    // As documented, the pages before the conflict are mapped; the existing
    // mapping is untouched.
    assert_eq!(m.translate(page(VA, 4)), Ok((page(FRAME_A, 4), P | RW)));
    assert_eq!(m.translate(page(VA, 5)), Ok((FRAME_B, P | RW)));
    assert_eq!(
        m.translate(page(VA, 6)),
        Err(MapError::NotMapped {
            va: virt(page(VA, 6))
        })
    );
}

// ---------------------------------------------------------------------------
// dump
// ---------------------------------------------------------------------------

/// A run of 300 read-write pages from `0xC03F_0000` (across a page-table
/// boundary) to `0x0050_0000`; one read-only page continuing both
/// sequences; a gap; a read-only page continuing the frames as if the gap
/// were mapped; a page whose frame is not the next one.
fn dump_fixture() -> (Machine, [DumpRange; 4]) {
    let mut m = Machine::kernel();
    let (va, pa) = (0xC03F_0000, 0x0050_0000);
    m.map_range(va, pa, 300, rw()).unwrap().ignore("new");
    m.map_new(page(va, 300), page(pa, 300), ro());
    m.map_new(page(va, 302), page(pa, 302), ro());
    m.map_new(page(va, 303), page(pa, 304), ro());
    let expected = [
        DumpRange {
            va: virt(va),
            pa: phys(pa),
            pages: 300,
            flags: u64::from(P | RW),
            page_shift: PAGE_SHIFT,
        },
        DumpRange {
            va: virt(page(va, 300)),
            pa: phys(page(pa, 300)),
            pages: 1,
            flags: u64::from(P),
            page_shift: PAGE_SHIFT,
        },
        DumpRange {
            va: virt(page(va, 302)),
            pa: phys(page(pa, 302)),
            pages: 1,
            flags: u64::from(P),
            page_shift: PAGE_SHIFT,
        },
        DumpRange {
            va: virt(page(va, 303)),
            pa: phys(page(pa, 304)),
            pages: 1,
            flags: u64::from(P),
            page_shift: PAGE_SHIFT,
        },
    ];
    (m, expected)
}

#[test]
fn dump_folds_runs_and_splits_on_flags_gaps_and_frames() {
    let (mut m, expected) = dump_fixture();
    assert_eq!(m.dump(), expected);
    assert_eq!(
        expected[0].to_string(),
        "[0xc03f0000, 0xc051c000) -> [0x00500000, 0x0062c000)    300 pages  P RW"
    );
    assert_eq!(
        expected[1].to_string(),
        "[0xc051c000, 0xc051d000) -> [0x0062c000, 0x0062d000)      1 pages  P (read-only)"
    );
}

#[test]
fn dump_ignores_accessed_and_dirty() {
    let (mut m, expected) = dump_fixture();
    let run = expected[0];
    let (written, read) = (page(run.va.0, 150), page(run.va.0, 10));
    m.write(written, 1).unwrap();
    m.read(read).unwrap();
    m.read(expected[1].va.0).unwrap();
    let (_, flags) = m.translate(written).unwrap();
    assert_eq!(flags, P | RW | A | D);
    let (_, flags) = m.translate(read).unwrap();
    assert_eq!(flags, P | RW | A);
    assert_eq!(m.dump(), expected);
}

#[test]
fn dump_clips_to_the_requested_range() {
    let (mut m, expected) = dump_fixture();
    let run = expected[0];
    let mut out = Vec::new();
    dump(
        &mut m.mem,
        Format::TwoLevel,
        m.space.pgd(),
        run.va + 100 * PAGE_SIZE,
        u64::from(page(run.va.0, 200)),
        |r| out.push(*r),
    );
    assert_eq!(
        out,
        [DumpRange {
            va: run.va + 100 * PAGE_SIZE,
            pa: run.pa + 100 * u64::from(PAGE_SIZE),
            pages: 100,
            flags: u64::from(P | RW),
            page_shift: PAGE_SHIFT,
        }]
    );
}

#[test]
fn dump_range_display_reaches_the_top_of_the_address_space() {
    let r = DumpRange {
        va: virt(0xFFFF_F000),
        pa: phys(0x0000_1000),
        pages: 1,
        flags: u64::from(P | RW | (1 << 8)),
        page_shift: PAGE_SHIFT,
    };
    assert_eq!(
        r.to_string(),
        "[0xfffff000, 0x100000000) -> [0x00001000, 0x00002000)      1 pages  P RW G"
    );
    let mut m = Machine::kernel();
    m.map_new(0xFFFF_F000, FRAME_A, rw());
    assert_eq!(
        m.dump(),
        [DumpRange {
            va: virt(0xFFFF_F000),
            pa: phys(FRAME_A),
            pages: 1,
            flags: u64::from(P | RW),
            page_shift: PAGE_SHIFT,
        }]
    );
}

// ---------------------------------------------------------------------------
// Borrowed page tables
// ---------------------------------------------------------------------------

/// A page table outside the frame source, as the boot stub's would be.
const EXTERNAL_TABLE: u32 = 0x0030_0000;

#[test]
fn install_table_borrows_a_table_without_owning_it() {
    let mut m = Machine::kernel();
    m.mem.with_table(phys(EXTERNAL_TABLE), |t| {
        t[5] = pfn_pte(phys(FRAME_A).pfn(), PTFlags::P | PTFlags::RW).0 as u32;
    });
    let t = m
        .space
        .install_table(&mut m.mem, virt(PKMAP_BASE + 0x1234), phys(EXTERNAL_TABLE))
        .unwrap();
    assert_eq!((t.va(), t.pages()), (virt(PKMAP_BASE), 1024));
    m.flush(t);
    assert_eq!(m.mmu.full_flushes, 1, "1024 pages: above the ceiling");
    assert_eq!(m.space.nr_pt_pages(), 0);
    assert_eq!(m.frames.live.len(), 1);

    let slot5 = page(PKMAP_BASE, 5);
    assert_eq!(m.translate(slot5 + 0x10), Ok((FRAME_A + 0x10, P | RW)));
    assert_eq!(m.read(slot5), Ok(tag(FRAME_A)));
    assert_eq!(
        m.space
            .install_table(&mut m.mem, virt(PKMAP_BASE), phys(0x0030_1000))
            .unwrap_err(),
        MapError::AlreadyMapped {
            va: virt(PKMAP_BASE),
            pa: phys(EXTERNAL_TABLE)
        }
    );

    // Mapping into it allocates nothing; emptying it frees nothing.
    m.map_new(page(PKMAP_BASE, 6), FRAME_B, rw());
    assert_eq!(m.mem.read_u32(EXTERNAL_TABLE + 4 * 6) & !0xfff, FRAME_B);
    let (_, t) = m.unmap(page(PKMAP_BASE, 6)).unwrap();
    m.flush(t);
    let (_, t) = m.unmap(slot5).unwrap();
    m.flush(t);
    assert!(m.walk(PKMAP_BASE).pde.is_present());
    assert_eq!(m.space.nr_pt_pages(), 0);
    assert!(m.frames.freed.is_empty());
    assert_eq!(m.frames.live.len(), 1);
}

#[test]
fn remove_table_unmaps_the_window_without_freeing_the_table() {
    let mut m = Machine::kernel();
    let entry = pfn_pte(phys(FRAME_A).pfn(), PTFlags::P | PTFlags::RW).0 as u32;
    m.mem.with_table(phys(EXTERNAL_TABLE), |t| t[5] = entry);
    m.space
        .install_table(&mut m.mem, virt(PKMAP_BASE), phys(EXTERNAL_TABLE))
        .unwrap()
        .ignore("not loaded");
    let slot5 = page(PKMAP_BASE, 5);
    assert_eq!(m.read(slot5), Ok(tag(FRAME_A)));

    let t = m.space.remove_table(&mut m.mem, virt(slot5)).unwrap();
    assert_eq!((t.va(), t.pages()), (virt(PKMAP_BASE), 1024));
    m.flush(t);
    assert_eq!(m.walk(PKMAP_BASE).pde.0, 0);
    assert_eq!(
        m.translate(slot5),
        Err(MapError::NotMapped { va: virt(slot5) })
    );
    assert_eq!(m.read(slot5), not_present(slot5));
    assert!(m.frames.freed.is_empty());
    assert_eq!(m.space.nr_pt_pages(), 0);
    // The owner's table is intact (the MMU set Accessed in it).
    assert_eq!(m.mem.read_u32(EXTERNAL_TABLE + 4 * 5), entry | A);
    assert_eq!(
        m.space
            .remove_table(&mut m.mem, virt(PKMAP_BASE))
            .unwrap_err(),
        MapError::NotMapped {
            va: virt(PKMAP_BASE)
        }
    );
}

/// After `remove_table`, the directory entry no longer refers to the
/// borrowed table, so a page table allocated there later is the address
/// space's own and must be freed when emptied.
#[test]
fn table_allocated_after_remove_table_is_freed_when_emptied() {
    let mut m = Machine::kernel();
    m.space
        .install_table(&mut m.mem, virt(PKMAP_BASE), phys(EXTERNAL_TABLE))
        .unwrap()
        .ignore("not loaded");
    m.space
        .remove_table(&mut m.mem, virt(PKMAP_BASE))
        .unwrap()
        .ignore("not loaded");
    m.map_new(PKMAP_BASE, FRAME_A, rw());
    assert_eq!(m.space.nr_pt_pages(), 1);
    let (_, t) = m.unmap(PKMAP_BASE).unwrap();
    m.flush(t);
    assert_eq!(m.space.nr_pt_pages(), 0, "the new table was not freed");
    assert_eq!(m.walk(PKMAP_BASE).pde.0, 0);
}

#[test]
fn set_pte_changes_an_owned_table_and_needs_its_flush() {
    let mut m = Machine::kernel();
    let table = m.ensure_table(PKMAP_BASE, true).unwrap();
    let slot = page(PKMAP_BASE, 3);
    let entry = |pa| pfn_pte(phys(pa).pfn(), PTFlags::P | PTFlags::RW);
    let t = set_pte(
        &mut m.mem,
        Format::TwoLevel,
        table,
        virt(slot + 0x123),
        entry(FRAME_A),
    );
    assert_eq!((t.va(), t.pages()), (virt(slot), 1));
    m.flush(t);
    assert_eq!(m.translate(slot), Ok((FRAME_A, P | RW)));
    assert_eq!(m.read(slot), Ok(tag(FRAME_A)));

    // Repointed: the old frame until the flush.
    let t = set_pte(
        &mut m.mem,
        Format::TwoLevel,
        table,
        virt(slot),
        entry(FRAME_B),
    );
    assert_eq!(m.read(slot), Ok(tag(FRAME_A)));
    m.mmu.reset_counts();
    m.flush(t);
    assert_eq!(m.mmu.page_flushes, [slot]);
    assert_eq!(m.read(slot), Ok(tag(FRAME_B)));

    // Cleared: not present once flushed; the pinned table stays.
    let t = set_pte(&mut m.mem, Format::TwoLevel, table, virt(slot), PTEntry(0));
    m.flush(t);
    assert_eq!(m.read(slot), not_present(slot));
    assert_eq!(m.walk(slot).pde.address(), table);
    assert_eq!(m.space.nr_pt_pages(), 1);
}

// ---------------------------------------------------------------------------
// The top of the address space
// ---------------------------------------------------------------------------

#[test]
fn map_range_past_4gib_is_out_of_range_in_a_space_from_zero() {
    let mut m = Machine::new(0, 1 << 32, TABLE_POOL_FRAMES);
    let before = m.snapshot();
    // The second page would wrap round to virtual 0, which is in range.
    let r = m.map_range(0xFFFF_F000, FRAME_A, 2, rw());
    assert!(matches!(r, Err(MapError::OutOfRange { .. })), "{r:?}");
    m.assert_unchanged(&before, "map_range past 4 GiB");
}

/// `unmap_range` checks each page with a wrapping address but, unlike
/// `map_range`, not against the end of the space: in a space starting at 0,
/// a range past 4 GiB passes the checks when page 0 is mapped, then the
/// unmap loop overflows (a panic in debug builds after the first page is
/// unmapped; in release it unmaps virtual page 0).
#[test]
fn unmap_range_past_4gib_is_out_of_range_in_a_space_from_zero() {
    let mut m = Machine::new(0, 1 << 32, TABLE_POOL_FRAMES);
    m.map_new(0xFFFF_F000, FRAME_A, rw());
    m.map_new(0, FRAME_B, rw());
    let before = m.snapshot();
    let (r, seen) = m.unmap_range(0xFFFF_F000, 2);
    assert!(matches!(r, Err(MapError::OutOfRange { .. })), "{r:?}");
    assert!(seen.is_empty());
    m.assert_unchanged(&before, "unmap_range past 4 GiB");
}

/// `map_range` checks the frames with wrapping additions but writes them
/// with plain ones: frames running past 4 GiB pass the checks, then the
/// write loop overflows after the first entries are written (in release it
/// maps physical 0). `map_linear` has the same overflow.
#[test]
fn map_range_of_frames_past_4gib_is_refused() {
    let mut m = Machine::kernel();
    let before = m.snapshot();
    let r = m.map_range(VA, 0xFFFF_F000, 2, rw());
    assert_eq!(
        r.unwrap_err(),
        MapError::FrameOutOfRange {
            pa: phys(0xFFFF_F000)
        }
    );
    assert_eq!(m.translate(VA), Err(MapError::NotMapped { va: virt(VA) }));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(VA),
        phys(0xFFFF_E000),
        3,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(
        r.unwrap_err(),
        MapError::FrameOutOfRange {
            pa: phys(0xFFFF_E000)
        }
    );
    m.assert_unchanged(&before, "a refused frame range");
}

/// A [`PhysAddr`] is 64 bits wide, a two-level entry 32: a frame or a
/// table at or above 4 GiB is refused with an error, never truncated into
/// an entry (which would map physical 0).
#[test]
fn frames_and_tables_at_4gib_are_refused_not_truncated() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, rw());
    let before = m.snapshot();
    let four_gib = PhysAddr(1 << 32);
    let e = MapError::FrameOutOfRange { pa: four_gib };
    let r = m
        .space
        .map_page(&mut m.mem, &mut m.frames, virt(page(VA, 1)), four_gib, rw());
    assert_eq!(r.err(), Some(e));
    let r = m.space.remap_page(&mut m.mem, virt(VA), four_gib, rw());
    assert_eq!(r.err(), Some(e));
    let r = m
        .space
        .install_table(&mut m.mem, virt(0xD000_0000), four_gib);
    assert_eq!(r.err(), Some(e));
    let r = m.space.map_linear(
        &mut m.mem,
        &mut m.frames,
        virt(page(VA, 1)),
        four_gib,
        1,
        false,
        |_| Some(PTFlags::RW),
    );
    assert_eq!(r.err(), Some(e));
    m.assert_unchanged(&before, "frames at 4 GiB");
    assert_eq!(m.translate(VA), Ok((FRAME_A, P | RW)));
}

#[test]
fn remove_table_refuses_a_table_the_space_owns() {
    let mut m = Machine::kernel();
    m.map_new(VA, FRAME_A, rw());
    let before = m.snapshot();
    assert_eq!(
        m.space.remove_table(&mut m.mem, virt(VA)).unwrap_err(),
        MapError::OwnedTable { va: virt(VA) }
    );
    m.assert_unchanged(&before, "a refused remove_table");
    assert_eq!(m.read(VA), Ok(tag(FRAME_A)));
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

#[test]
fn boot_stub_flags_are_present_and_writable() {
    assert_eq!(BOOT_PDE_FLAGS, 0x003);
    assert_eq!(BOOT_PTE_FLAGS, 0x003);
    let (pte, pde) = (u64::from(BOOT_PTE_FLAGS), u64::from(BOOT_PDE_FLAGS));
    assert_eq!(EntryFlags::pte(PTEntry(pte)).to_string(), "P RW");
    assert_eq!(EntryFlags::pde(PDEntry(pde)).to_string(), "P RW");
}

#[test]
fn entry_flags_display() {
    let pte = |bits: u32| EntryFlags::pte(PTEntry(u64::from(bits))).to_string();
    let pde = |bits: u32| EntryFlags::pde(PDEntry(u64::from(bits))).to_string();
    assert_eq!(pte(0), "not present");
    assert_eq!(pte(0x0050_0000 | RW | A | D), "not present");
    assert_eq!(pte(0x0050_0000 | P | RW | A), "P RW A");
    assert_eq!(pte(P), "P (read-only)");
    assert_eq!(pte(P | A | D), "P A D (read-only)");
    assert_eq!(pte(0x1ff), "P RW US PWT PCD A D PAT G");
    assert_eq!(pde(0x1ff), "P RW US PWT PCD A D PS G");
    assert_eq!(pte(P | RW | PS), "P RW PAT");
    assert_eq!(pde(P | RW | PS), "P RW PS");
    assert_eq!(pde(0x0040_0000 | P | (1 << 2)), "P US (read-only)");
}

#[test]
fn map_error_display_names_the_addresses() {
    let cases = [
        (
            MapError::Misaligned {
                va: virt(0xC000_0800),
                pa: phys(0x1000),
            },
            "va 0xc0000800 or pa 0x00001000 is not page-aligned",
        ),
        (
            MapError::OutOfRange { va: virt(0x1000) },
            "va 0x00001000 lies outside this address space's range",
        ),
        (
            MapError::AlreadyMapped {
                va: virt(0xC000_0000),
                pa: phys(0x0050_0000),
            },
            "va 0xc0000000 is already mapped (to pa 0x00500000)",
        ),
        (
            MapError::NotMapped {
                va: virt(0xC000_0000),
            },
            "va 0xc0000000 is not mapped",
        ),
        (
            MapError::NoMemory {
                va: virt(0xC000_0000),
            },
            "no memory for a page table to map va 0xc0000000",
        ),
        (
            MapError::LargePage {
                va: virt(0xC000_0000),
            },
            "va 0xc0000000 lies in a 4 MiB page",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

// ---------------------------------------------------------------------------
// Randomized against a model
// ---------------------------------------------------------------------------

/// The window: three page tables' worth from [`VA`]; a few slots in each,
/// including both ends, so that tables fill and empty often.
fn random_candidates() -> Vec<u32> {
    let mut v = Vec::new();
    for pde in 0..3 {
        for slot in [0, 1, 2, 3, 511, 512, 1022, 1023] {
            v.push(page(VA, pde * 1024 + slot));
        }
    }
    v
}

/// The model: `va -> (pa, writable)`.
type Model = BTreeMap<u32, (u32, bool)>;

/// Checks `va` against the model: `translate`, a read through the MMU (the
/// frame's tag) and a write at offset 8 (allowed or a protection fault).
fn check_page(m: &mut Machine, model: &Model, va: u32, why: &str) {
    match model.get(&va) {
        Some(&(pa, writable)) => {
            let (got, flags) = m.translate(va).unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(got, pa, "{why}: translate {va:#x}");
            assert_eq!(flags & RW != 0, writable, "{why}: flags of {va:#x}");
            assert_eq!(m.read(va), Ok(tag(pa)), "{why}: MMU read of {va:#x}");
            let r = m.write(va + 8, va);
            if writable {
                assert_eq!(r, Ok(()), "{why}: write {va:#x}");
                assert_eq!(m.mem.read_u32(pa + 8), va, "{why}");
            } else {
                assert_eq!(
                    r,
                    Err(Fault {
                        va: va + 8,
                        write: true,
                        present: true,
                        ..Fault::default()
                    }),
                    "{why}"
                );
            }
        }
        None => {
            assert_eq!(
                m.translate(va),
                Err(MapError::NotMapped { va: virt(va) }),
                "{why}"
            );
            assert_eq!(m.read(va), not_present(va), "{why}: MMU read of {va:#x}");
        }
    }
}

/// The model's mappings, from the dump expanded page by page.
fn dumped_pages(m: &mut Machine) -> BTreeMap<u32, (u32, bool)> {
    let mut pages = BTreeMap::new();
    for r in m.dump() {
        for i in 0..r.pages {
            pages.insert(
                page(r.va.0, i),
                (page(r.pa.as_u32(), i), r.flags & u64::from(RW) != 0),
            );
        }
    }
    pages
}

fn random_run(seed: u64, ops: u32) {
    let mut rng = Rng::new(seed);
    let mut m = Machine::kernel().with_invlpg(seed.is_multiple_of(2));
    let candidates = random_candidates();
    let frames: Vec<u32> = (0..32).map(|i| page(DATA_BASE, i)).collect();
    let mut model = Model::new();
    for n in 0..ops {
        let va = *rng.pick(&candidates);
        let pa = *rng.pick(&frames);
        let writable = rng.chance(50);
        let flags = if writable { rw() } else { ro() };
        let mut touched = vec![va];
        let op = rng.below(10);
        let why = format!("seed {seed} op {n} ({op}) at {va:#x}");
        match op {
            0..=3 => match (m.map(va, pa, flags), model.get(&va)) {
                (Ok(t), None) => {
                    m.flush(t);
                    model.insert(va, (pa, writable));
                }
                (Err(e), Some(&(old, _))) => {
                    assert_eq!(
                        e,
                        MapError::AlreadyMapped {
                            va: virt(va),
                            pa: phys(old)
                        },
                        "{why}"
                    )
                }
                (r, old) => panic!("{why}: map gave {r:?}, model {old:?}"),
            },
            4..=6 => match (m.unmap(va), model.remove(&va)) {
                (Ok((got, t)), Some((old, _))) => {
                    m.flush(t);
                    assert_eq!(got, phys(old), "{why}");
                }
                (Err(e), None) => assert_eq!(e, MapError::NotMapped { va: virt(va) }, "{why}"),
                (r, old) => panic!("{why}: unmap gave {r:?}, model {old:?}"),
            },
            7 | 8 => match (m.remap(va, pa, flags), model.get(&va).copied()) {
                (Ok((got, t)), Some((old, _))) => {
                    m.flush(t);
                    assert_eq!(got, phys(old), "{why}");
                    model.insert(va, (pa, writable));
                }
                (Err(e), None) => assert_eq!(e, MapError::NotMapped { va: virt(va) }, "{why}"),
                (r, old) => panic!("{why}: remap gave {r:?}, model {old:?}"),
            },
            _ => {
                // A range of 1..=3 pages, possibly across a table boundary.
                let pages = 1 + rng.below(3) as u32;
                touched = (0..pages).map(|i| page(va, i)).collect();
                let mapped: Vec<u32> = touched
                    .iter()
                    .copied()
                    .filter(|v| model.contains_key(v))
                    .collect();
                if rng.chance(50) {
                    match m.map_range(va, pa, pages, flags) {
                        Ok(t) => {
                            m.flush(t);
                            assert!(mapped.is_empty(), "{why}");
                            for (i, &v) in touched.iter().enumerate() {
                                model.insert(v, (page(pa, i as u32), writable));
                            }
                        }
                        Err(e) => {
                            let first = mapped[0];
                            let pa = model[&first].0;
                            assert_eq!(
                                e,
                                MapError::AlreadyMapped {
                                    va: virt(first),
                                    pa: phys(pa)
                                },
                                "{why}"
                            );
                        }
                    }
                } else {
                    let (r, seen) = m.unmap_range(va, pages);
                    match r {
                        Ok(t) => {
                            m.flush(t);
                            let expected: Vec<(u32, u32)> = touched
                                .iter()
                                .map(|&v| (v, model.remove(&v).expect("mapped").0))
                                .collect();
                            assert_eq!(seen, expected, "{why}");
                        }
                        Err(e) => {
                            let hole = *touched.iter().find(|v| !model.contains_key(v)).unwrap();
                            assert_eq!(e, MapError::NotMapped { va: virt(hole) }, "{why}");
                            assert!(seen.is_empty(), "{why}");
                        }
                    }
                }
            }
        }
        for &v in &touched {
            check_page(&mut m, &model, v, &why);
        }
        let tables: BTreeSet<u32> = model.keys().map(|&v| v >> 22).collect();
        assert_eq!(m.space.nr_pt_pages() as usize, tables.len(), "{why}");
        assert_eq!(m.frames.live.len(), 1 + tables.len(), "{why}");
        if n % 64 == 0 {
            for &v in &candidates {
                check_page(&mut m, &model, v, &why);
            }
            assert_eq!(dumped_pages(&mut m), model, "{why}");
        }
    }
}

#[test]
fn random_operations_agree_with_a_model() {
    for seed in [1, 2, 0x5EED, 0xDEAD_BEEF_u64] {
        random_run(seed, 2000);
    }
}
