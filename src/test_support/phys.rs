//! One fake physical memory for host tests: [`FakePhys`], the
//! [`PhysMem`] that memblock (and everything that drives memblock, such as
//! `mm::setup`) runs on in host tests.
//!
//! RAM is a byte vector standing for physical `[base, base + len)`, filled
//! with [`POISON`] so that a test sees what was zeroed. Writes outside it
//! are recorded but otherwise ignored, so a test can describe gigabytes of
//! RAM and back only the part it inspects (or none: [`FakePhys::empty`]).
//! Region arrays memblock asks for are leaked from the heap, not carved out
//! of the byte vector; [`FakePhys::refusing_arrays`] hands out none, so
//! growth fails the way it does when the kernel has no room.

use crate::addr::PhysAddr;
use crate::mm::memblock::{Memblock, MemblockRegion, PhysMem};
use std::vec::Vec;

/// Value: 0xAA. The byte fake RAM starts out as.
pub const POISON: u8 = 0xAA;

/// Fake physical memory: `len` bytes at `base`, plus a record of every
/// [`PhysMem`] call.
pub struct FakePhys {
    base: PhysAddr,
    bytes: Vec<u8>,
    zeroed: Vec<(PhysAddr, u64)>,
    arrays: Vec<(PhysAddr, usize)>,
    refuse_arrays: bool,
}

impl FakePhys {
    /// `len` bytes of RAM at physical `base`, each [`POISON`].
    pub fn new(base: PhysAddr, len: usize) -> FakePhys {
        FakePhys {
            base,
            bytes: std::vec![POISON; len],
            zeroed: Vec::new(),
            arrays: Vec::new(),
            refuse_arrays: false,
        }
    }

    /// No RAM at all: calls are only recorded.
    pub fn empty() -> FakePhys {
        FakePhys::new(PhysAddr(0), 0)
    }

    /// The same memory, but [`PhysMem::region_array`] returns an empty
    /// slice (the call is still recorded): every array growth fails with
    /// `MemblockError::ArrayFull`.
    pub fn refusing_arrays(mut self) -> FakePhys {
        self.refuse_arrays = true;
        self
    }

    /// Indexes of the part of `[pa, pa + len)` that lies in the vector.
    fn backed(&self, pa: PhysAddr, len: u64) -> core::ops::Range<usize> {
        let ram_end = self.base.0 + self.bytes.len() as u64;
        let start = pa.0.clamp(self.base.0, ram_end);
        let end = pa.0.saturating_add(len).clamp(self.base.0, ram_end);
        (start - self.base.0) as usize..(end.max(start) - self.base.0) as usize
    }

    /// Sets the backed part of `[pa, pa + len)` to `byte`.
    pub fn fill(&mut self, pa: PhysAddr, len: u64, byte: u8) {
        let r = self.backed(pa, len);
        self.bytes[r].fill(byte);
    }

    /// Whether every byte of `[pa, pa + len)` is `byte`.
    ///
    /// # Panics
    /// If part of the range is not backed by the vector.
    pub fn all(&self, pa: PhysAddr, len: u64, byte: u8) -> bool {
        let r = self.backed(pa, len);
        assert_eq!(
            r.len() as u64,
            len,
            "[{pa:#x}, +{len:#x}) is not all fake RAM"
        );
        self.bytes[r].iter().all(|&b| b == byte)
    }

    /// Every `zero(pa, len)` call, in order.
    pub fn zeroed(&self) -> &[(PhysAddr, u64)] {
        &self.zeroed
    }

    /// Every `region_array(pa, cap)` call, in order (refused ones too).
    pub fn arrays(&self) -> &[(PhysAddr, usize)] {
        &self.arrays
    }

    /// Every physical range memblock wrote or asked to use, `[start, end)`:
    /// the zeroed ranges, then the region arrays' storage.
    pub fn written(&self) -> Vec<(PhysAddr, PhysAddr)> {
        let array_bytes = |cap: usize| (cap * core::mem::size_of::<MemblockRegion>()) as u64;
        self.zeroed
            .iter()
            .map(|&(pa, len)| (pa, pa + len))
            .chain(
                self.arrays
                    .iter()
                    .map(|&(pa, cap)| (pa, pa + array_bytes(cap))),
            )
            .collect()
    }
}

impl PhysMem for FakePhys {
    fn zero(&mut self, pa: PhysAddr, len: u64) {
        self.zeroed.push((pa, len));
        self.fill(pa, len, 0);
    }

    fn region_array(&mut self, pa: PhysAddr, cap: usize) -> &'static mut [MemblockRegion] {
        self.arrays.push((pa, cap));
        leak_regions(if self.refuse_arrays { 0 } else { cap })
    }
}

/// A region array of `cap` empty slots, leaked (it lives as long as the
/// test's `Memblock` needs it).
pub fn leak_regions(cap: usize) -> &'static mut [MemblockRegion] {
    std::boxed::Box::leak(std::vec![MemblockRegion::EMPTY; cap].into_boxed_slice())
}

/// An empty memblock over two leaked initial arrays of `cap` slots each.
pub fn memblock(cap: usize) -> Memblock {
    Memblock::new(leak_regions(cap), leak_regions(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_outside_the_vector_are_recorded_and_ignored() {
        let mut ram = FakePhys::new(PhysAddr(0x1000), 0x2000);
        ram.zero(PhysAddr(0x800), 0x1000); // half below the RAM
        ram.zero(PhysAddr(0x2800), 0x1000); // half above
        ram.zero(PhysAddr(0x10_0000), 0x1000); // all outside
        assert!(ram.all(PhysAddr(0x1000), 0x800, 0));
        assert!(ram.all(PhysAddr(0x1800), 0x1000, POISON));
        assert!(ram.all(PhysAddr(0x2800), 0x800, 0));
        assert_eq!(ram.zeroed().len(), 3);
        assert_eq!(ram.written()[2], (PhysAddr(0x10_0000), PhysAddr(0x10_1000)));
    }

    #[test]
    fn refused_arrays_are_empty_but_recorded() {
        let mut ram = FakePhys::empty().refusing_arrays();
        assert!(ram.region_array(PhysAddr(0x5000), 8).is_empty());
        let mut ok = FakePhys::empty();
        assert_eq!(ok.region_array(PhysAddr(0x5000), 8).len(), 8);
        assert_eq!(ram.arrays(), [(PhysAddr(0x5000), 8)]);
        assert_eq!(
            ram.written(),
            [(PhysAddr(0x5000), PhysAddr(0x5000 + 8 * 24))]
        );
    }

    #[test]
    #[should_panic(expected = "is not all fake RAM")]
    fn all_refuses_unbacked_ranges() {
        FakePhys::new(PhysAddr(0x1000), 0x1000).all(PhysAddr(0x1800), 0x1000, POISON);
    }
}
