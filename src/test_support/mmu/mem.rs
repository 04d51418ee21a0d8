//! Physical memory of the emulated machine ([`PhysMem`]) and the page-table
//! frame pool over it ([`Frames`]).
//!
//! Memory is a dense byte vector from physical address 0 (the [`Ram`]), plus
//! optional sparse ranges anywhere above it ([`PhysMem::add_ram`]): their
//! 4 KiB pages are allocated on first write and read as zeroes before, so a
//! test can put a page table or a data frame at 5 GiB or 63 GiB without
//! allocating gigabytes. An access outside both panics: the tests place
//! every table and frame themselves, and a walk that wanders off RAM is a
//! bug in the code under test or in the test.

use crate::addr::PhysAddr;
use crate::mm::layout::{ENTRIES_PER_TABLE, PAGE_SIZE};
use crate::mm::paging::{FrameSource, PageTableMemory, Table};
use core::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Bytes in a page, as a `u64`.
const PAGE: u64 = PAGE_SIZE as u64;

/// The dense physical memory from address 0, shared by [`PhysMem`] and
/// [`Frames`] (which zeroes and poisons frames in it).
pub type Ram = Rc<RefCell<Vec<u8>>>;

/// Sparse memory above the dense [`Ram`]: ranges declared present, and the
/// pages of them written so far.
#[derive(Default)]
pub struct SparseRam {
    /// `[start, end)` byte ranges, page-aligned, disjoint.
    ranges: Vec<(u64, u64)>,
    /// Page base -> contents; a missing page in a range reads as zeroes.
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl SparseRam {
    /// Pages written so far (the host memory the sparse ranges take).
    pub fn pages_allocated(&self) -> usize {
        self.pages.len()
    }

    fn covers(&self, pa: u64, len: u64) -> bool {
        self.ranges
            .iter()
            .any(|&(s, e)| s <= pa && pa.checked_add(len).is_some_and(|end| end <= e))
    }
}

/// Physical memory, as the page-table code and the MMU see it.
pub struct PhysMem {
    /// The dense bytes, from physical address 0.
    pub ram: Ram,
    /// Sparse ranges above the dense part ([`PhysMem::add_ram`]).
    pub high: Rc<RefCell<SparseRam>>,
}

impl PhysMem {
    /// `bytes` of zeroed dense physical memory from address 0.
    pub fn new(bytes: u32) -> Self {
        PhysMem {
            ram: Rc::new(RefCell::new(vec![0; bytes as usize])),
            high: Rc::new(RefCell::new(SparseRam::default())),
        }
    }

    /// Another handle on the same memory (both see every write).
    pub fn share(&self) -> PhysMem {
        PhysMem {
            ram: self.ram.clone(),
            high: self.high.clone(),
        }
    }

    /// Declares `[base, base + bytes)` as sparse RAM, zeroed; pages take
    /// host memory only once written.
    ///
    /// # Panics
    /// If `base` or `bytes` is not page-aligned, `bytes` is 0, or the range
    /// overlaps the dense memory or another sparse range.
    pub fn add_ram(&self, base: u64, bytes: u64) {
        assert!(
            base.is_multiple_of(PAGE) && bytes.is_multiple_of(PAGE) && bytes > 0,
            "add_ram({base:#x}, {bytes:#x}): not whole pages"
        );
        let end = base.checked_add(bytes).expect("add_ram: range overflows");
        assert!(
            base >= u64::from(self.len()),
            "add_ram({base:#x}): overlaps the dense memory"
        );
        let mut high = self.high.borrow_mut();
        assert!(
            high.ranges.iter().all(|&(s, e)| end <= s || base >= e),
            "add_ram({base:#x}, {bytes:#x}): overlaps another range"
        );
        high.ranges.push((base, end));
    }

    /// Size of the dense memory in bytes.
    pub fn len(&self) -> u32 {
        self.ram.borrow().len() as u32
    }

    /// Whether the dense memory has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `[pa, pa + len)` is all RAM (dense, or inside one sparse
    /// range).
    pub fn is_ram(&self, pa: u64, len: u64) -> bool {
        let dense = self.ram.borrow().len() as u64;
        pa.checked_add(len).is_some_and(|end| end <= dense) || self.high.borrow().covers(pa, len)
    }

    /// Copies `buf.len()` bytes from physical `pa` into `buf`.
    ///
    /// # Panics
    /// If any byte is outside RAM.
    pub fn read(&self, pa: u64, buf: &mut [u8]) {
        let len = buf.len() as u64;
        {
            let ram = self.ram.borrow();
            if pa
                .checked_add(len)
                .is_some_and(|end| end <= ram.len() as u64)
            {
                buf.copy_from_slice(&ram[pa as usize..(pa + len) as usize]);
                return;
            }
        }
        let high = self.high.borrow();
        assert!(high.covers(pa, len), "physical read at {pa:#x} beyond RAM");
        for (i, b) in buf.iter_mut().enumerate() {
            let a = pa + i as u64;
            *b = high
                .pages
                .get(&(a & !(PAGE - 1)))
                .map_or(0, |p| p[(a & (PAGE - 1)) as usize]);
        }
    }

    /// Copies `buf` to physical `pa`.
    ///
    /// # Panics
    /// If any byte is outside RAM.
    pub fn write(&self, pa: u64, buf: &[u8]) {
        let len = buf.len() as u64;
        {
            let mut ram = self.ram.borrow_mut();
            if pa
                .checked_add(len)
                .is_some_and(|end| end <= ram.len() as u64)
            {
                ram[pa as usize..(pa + len) as usize].copy_from_slice(buf);
                return;
            }
        }
        let mut high = self.high.borrow_mut();
        assert!(high.covers(pa, len), "physical write at {pa:#x} beyond RAM");
        for (i, &b) in buf.iter().enumerate() {
            let a = pa + i as u64;
            let page = high
                .pages
                .entry(a & !(PAGE - 1))
                .or_insert_with(|| vec![0; PAGE as usize].into_boxed_slice());
            page[(a & (PAGE - 1)) as usize] = b;
        }
    }

    /// The little-endian word at 64-bit physical `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn read_phys_u32(&self, pa: u64) -> u32 {
        let mut b = [0; 4];
        self.read(pa, &mut b);
        u32::from_le_bytes(b)
    }

    /// Stores `v` little-endian at 64-bit physical `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn write_phys_u32(&self, pa: u64, v: u32) {
        self.write(pa, &v.to_le_bytes());
    }

    /// The little-endian quadword at `pa` (a PAE entry).
    ///
    /// # Panics
    /// Outside RAM.
    pub fn read_u64(&self, pa: u64) -> u64 {
        let mut b = [0; 8];
        self.read(pa, &mut b);
        u64::from_le_bytes(b)
    }

    /// Stores `v` little-endian at `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn write_u64(&self, pa: u64, v: u64) {
        self.write(pa, &v.to_le_bytes());
    }

    /// The little-endian word at `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn read_u32(&self, pa: u32) -> u32 {
        self.read_phys_u32(u64::from(pa))
    }

    /// Stores `v` little-endian at `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn write_u32(&self, pa: u32, v: u32) {
        self.write_phys_u32(u64::from(pa), v);
    }

    /// A copy of the 1024 32-bit entries of the table at `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn table(&self, pa: u32) -> Table {
        self.table_at(PhysAddr::from_u32(pa))
    }

    /// A copy of the 1024 32-bit words of the 4 KiB frame at 64-bit `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn table_at(&self, pa: PhysAddr) -> Table {
        let mut bytes = [0; PAGE_SIZE as usize];
        self.read(pa.0, &mut bytes);
        let mut t: Table = [0; ENTRIES_PER_TABLE as usize];
        for (e, b) in t.iter_mut().zip(bytes.chunks_exact(4)) {
            *e = u32::from_le_bytes(b.try_into().unwrap());
        }
        t
    }

    /// A copy of the 512 64-bit entries of the PAE table at `pa`.
    ///
    /// # Panics
    /// Outside RAM.
    pub fn pae_table(&self, pa: PhysAddr) -> [u64; 512] {
        let mut bytes = [0; PAGE_SIZE as usize];
        self.read(pa.0, &mut bytes);
        let mut t = [0; 512];
        for (e, b) in t.iter_mut().zip(bytes.chunks_exact(8)) {
            *e = u64::from_le_bytes(b.try_into().unwrap());
        }
        t
    }
}

impl PageTableMemory for PhysMem {
    /// Copies the 1024 little-endian words out, runs `f`, copies them back.
    /// Any 4 KiB-aligned frame in RAM, below or above 4 GiB.
    fn with_table<R>(&mut self, table: PhysAddr, f: impl FnOnce(&mut Table) -> R) -> R {
        let pa = table.0;
        assert!(
            pa.is_multiple_of(PAGE) && self.is_ram(pa, PAGE),
            "with_table({pa:#x}): not a 4 KiB-aligned frame in RAM"
        );
        let mut t = self.table_at(table);
        let r = f(&mut t);
        let mut bytes = [0; PAGE_SIZE as usize];
        for (b, e) in bytes.chunks_exact_mut(4).zip(t.iter()) {
            b.copy_from_slice(&e.to_le_bytes());
        }
        self.write(pa, &bytes);
        r
    }
}

/// The page-table frame pool: a LIFO free list over a physical range of the
/// dense memory, handing out the lowest frame first. Frames are zeroed on
/// allocation and filled with `0xA5` on free, so that a walk through a freed
/// table finds garbage, not a plausible empty table.
pub struct Frames {
    ram: Ram,
    free: Vec<u32>,
    /// Frames handed out and not given back.
    pub live: BTreeSet<u32>,
    /// Every `free_table`, in order.
    pub freed: Vec<u32>,
}

impl Frames {
    /// `count` frames from physical `first` in `ram`.
    pub fn new(ram: Ram, first: u32, count: u32) -> Self {
        Frames {
            ram,
            free: (0..count).rev().map(|i| first + i * PAGE_SIZE).collect(),
            live: BTreeSet::new(),
            freed: Vec::new(),
        }
    }

    fn fill(&self, pa: u32, byte: u8) {
        let at = pa as usize;
        self.ram.borrow_mut()[at..at + PAGE_SIZE as usize].fill(byte);
    }

    /// Whether `pa` is in the free list.
    pub fn is_free(&self, pa: u32) -> bool {
        self.free.contains(&pa)
    }

    /// Frames still free.
    pub fn nr_free(&self) -> u32 {
        self.free.len() as u32
    }
}

impl FrameSource for Frames {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = self.free.pop()?;
        self.fill(pa, 0);
        assert!(self.live.insert(pa));
        Some(PhysAddr::from_u32(pa))
    }

    fn free_table(&mut self, table: PhysAddr) {
        let pa = table.as_u32();
        assert!(
            self.live.remove(&pa),
            "double free of page table {pa:#010x} (or never allocated)"
        );
        self.fill(pa, 0xA5);
        self.freed.push(pa);
        self.free.push(pa);
    }
}
