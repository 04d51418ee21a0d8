//! Helpers shared by the integration tests that read boot-information
//! fixtures (`tests/boot_info_fixtures.rs`, `tests/boot_info_props.rs`).
//!
//! (The library's own tests use `src/test_support`, which is compiled only
//! with `cfg(test)` of the library and so is out of these files' reach;
//! [`FakeMem`] is the integration tests' one fake physical memory.)

use kernel::addr::PhysAddr;
use kernel::mm::memblock::{MemblockRegion, PhysMem};

/// A fake physical memory for memblock: nothing is stored, zeroing is
/// recorded (`[pa, pa + len)` in bytes), region arrays are leaked boxes.
#[derive(Default)]
pub struct FakeMem {
    /// Every `zero` call, in order.
    pub zeroed: Vec<(PhysAddr, u64)>,
}

impl PhysMem for FakeMem {
    fn zero(&mut self, pa: PhysAddr, len: u64) {
        self.zeroed.push((pa, len));
    }
    fn region_array(&mut self, _pa: PhysAddr, cap: usize) -> &'static mut [MemblockRegion] {
        Box::leak(vec![MemblockRegion::default(); cap].into_boxed_slice())
    }
}

/// 8-byte aligned copy of Multiboot2 bytes, as a loader would place them.
pub fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    for (i, b) in bytes.iter().enumerate() {
        words[i / 8] |= u64::from(*b) << (8 * (i % 8));
    }
    words
}

/// The first `len` bytes of `words`.
pub fn as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: any u64 memory is valid as bytes; u8 has alignment 1.
    let (_, body, _) = unsafe { words.align_to::<u8>() };
    &body[..len]
}
