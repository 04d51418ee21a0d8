//! Host test support shared by every module's tests, compiled for `cargo
//! test` only:
//! - [`Rng`], the one seeded random generator;
//! - [`mmu`], the emulated i386 machine for page-table code (physical memory
//!   with 64-bit addresses, a frame source, and an MMU with every i386
//!   paging mode: control registers, PDPTE registers and a TLB);
//! - [`phys`], the fake physical memory for memblock (`PhysMem`).
//!
//! Random tests print nothing on success; on failure they name the seed, and
//! `Rng::new(seed)` replays the same sequence on any host.

pub mod mmu;
pub mod phys;

use rand::distr::uniform::SampleUniform;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;

/// A deterministic generator for randomised tests: xorshift128 (the
/// `rand_xorshift` crate), seeded from a `u64` through SplitMix64
/// (`SeedableRng::seed_from_u64`), so nearby seeds give unrelated streams.
pub struct Rng(XorShiftRng);

impl Rng {
    /// The sequence for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(XorShiftRng::seed_from_u64(seed))
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        rand::Rng::next_u64(&mut self.0)
    }

    /// 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(&mut self.0)
    }

    /// Uniform in `[0, n)`, for any integer type.
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below<T: SampleUniform + PartialOrd + From<u8>>(&mut self, n: T) -> T {
        self.0.random_range(T::from(0)..n)
    }

    /// Uniform in `[lo, hi)`.
    ///
    /// # Panics
    /// If the range is empty.
    pub fn range<T: SampleUniform + PartialOrd>(&mut self, lo: T, hi: T) -> T {
        self.0.random_range(lo..hi)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100u32) < percent
    }

    /// One element of `items`, uniformly.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        rand::Rng::fill_bytes(&mut self.0, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| a.below(10u32) < 10));
        assert!((0..1000).all(|_| (5..9).contains(&a.range(5u64, 9))));
    }
}
