//! Test support: a buddy allocator over RAM held in a `Vec`, reached at
//! fake kernel addresses, so that kmalloc runs unchanged on the host.

use super::SlabMemory;
use crate::addr::{Pfn, VirtAddr};
use crate::mm::buddy::BuddyAllocator;
use crate::mm::layout::{PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE};
use crate::mm::page::Page;
use crate::mm::zone::ZoneType;
use std::vec::Vec;

/// `nr_pages` pages of RAM at virtual `PAGE_OFFSET + pfn * PAGE_SIZE`,
/// bounds-checked on every access (an out-of-range access panics).
pub struct HostRam {
    bytes: Vec<u8>,
}

impl HostRam {
    /// Zeroed RAM of `nr_pages` pages.
    pub fn new(nr_pages: u32) -> HostRam {
        HostRam {
            bytes: std::vec![0; (nr_pages * PAGE_SIZE) as usize],
        }
    }

    fn index(&self, addr: VirtAddr, len: usize) -> usize {
        let off = addr
            .0
            .checked_sub(PAGE_OFFSET)
            .unwrap_or_else(|| panic!("HostRam: address {addr:#x} below PAGE_OFFSET"))
            as usize;
        assert!(
            off + len <= self.bytes.len(),
            "HostRam: [{addr:#x}, +{len}) beyond RAM"
        );
        off
    }

    /// The bytes `[addr, addr + len)`.
    pub fn slice(&self, addr: VirtAddr, len: usize) -> &[u8] {
        let i = self.index(addr, len);
        &self.bytes[i..i + len]
    }

    /// The bytes `[addr, addr + len)`, writable.
    pub fn slice_mut(&mut self, addr: VirtAddr, len: usize) -> &mut [u8] {
        let i = self.index(addr, len);
        &mut self.bytes[i..i + len]
    }
}

impl SlabMemory for HostRam {
    fn page_address(&self, pfn: Pfn) -> VirtAddr {
        VirtAddr(PAGE_OFFSET + (pfn.0 << PAGE_SHIFT))
    }
    fn virt_to_pfn(&self, addr: VirtAddr) -> Option<Pfn> {
        let off = addr.0.checked_sub(PAGE_OFFSET)?;
        ((off as usize) < self.bytes.len()).then_some(Pfn(off >> PAGE_SHIFT))
    }
    fn read_u32(&self, addr: VirtAddr) -> u32 {
        assert!(addr.0.is_multiple_of(4), "unaligned u32 {addr:#x}");
        u32::from_le_bytes(self.slice(addr, 4).try_into().unwrap())
    }
    fn write_u32(&mut self, addr: VirtAddr, value: u32) {
        assert!(addr.0.is_multiple_of(4), "unaligned u32 {addr:#x}");
        self.slice_mut(addr, 4)
            .copy_from_slice(&value.to_le_bytes());
    }
    fn read_u8(&self, addr: VirtAddr) -> u8 {
        self.slice(addr, 1)[0]
    }
    fn fill(&mut self, addr: VirtAddr, len: u32, byte: u8) {
        self.slice_mut(addr, len as usize).fill(byte);
    }
    fn find_mismatch(&self, addr: VirtAddr, len: u32, byte: u8) -> Option<u32> {
        self.slice(addr, len as usize)
            .iter()
            .position(|&b| b != byte)
            .map(|i| i as u32)
    }
    fn copy(&mut self, dst: VirtAddr, src: VirtAddr, len: u32) {
        let len = len as usize;
        let s = self.index(src, len);
        let d = self.index(dst, len);
        self.bytes.copy_within(s..s + len, d);
    }
}

fn no_zero(_pfn: Pfn, _nr_pages: u32) {}

/// A buddy allocator over `nr_pages` pages of lowmem, all free from pfn 16
/// up (pages below stand for the reserved low memory), plus its RAM.
pub fn machine(nr_pages: u32) -> (BuddyAllocator<'static>, HostRam) {
    let mem_map = Vec::leak(std::vec![Page::reserved(ZoneType::Dma); nr_pages as usize]);
    let mut buddy = BuddyAllocator::new(mem_map, Pfn(nr_pages), no_zero);
    buddy.mark_present(Pfn(0), Pfn(nr_pages));
    buddy.free_memory_range(Pfn(16), Pfn(nr_pages));
    buddy.setup_watermarks();
    (buddy, HostRam::new(nr_pages))
}
