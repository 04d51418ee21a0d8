//! Host test support shared by every module's tests: one seeded random
//! generator ([`Rng`]) and the emulated i386 machine for page-table code
//! ([`mmu`]). Compiled for `cargo test` only.
//!
//! Random tests print nothing on success; on failure they name the seed, and
//! `Rng::new(seed)` replays the same sequence on any host.

pub mod mmu;

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

    /// Uniform in `[0, n)`.
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.random_range(lo..hi)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// One element of `items`, uniformly.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
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
        assert!((0..1000).all(|_| a.below(10) < 10));
        assert!((0..1000).all(|_| (5..9).contains(&a.range(5, 9))));
    }
}
