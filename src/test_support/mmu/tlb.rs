//! The TLB of the emulated MMU (Intel SDM Vol. 3A §4.10.2 "Translation
//! Lookaside Buffers"): one entry per page, of the page's size, holding what
//! §4.10.2.2 says an entry holds: the frame, the rights combined over the
//! levels (AND of R/W and U/S, OR of XD), the dirty flag of the leaf, and
//! whether the page is global.

use std::collections::BTreeMap;

/// The size of a page a translation maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// A 4 KiB page, mapped by a PTE.
    Size4K,
    /// A 2 MiB page, mapped by a PAE PDE with PS set.
    Size2M,
    /// A 4 MiB page, mapped by a 32-bit PDE with PS set (CR4.PSE).
    Size4M,
}

impl PageSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u32 {
        match self {
            PageSize::Size4K => 4 << 10,
            PageSize::Size2M => 2 << 20,
            PageSize::Size4M => 4 << 20,
        }
    }

    /// The first virtual address of the page of this size holding `va`.
    pub const fn base_of(self, va: u32) -> u32 {
        va & !(self.bytes() - 1)
    }
}

/// One cached translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Physical address of the first byte of the page (size-aligned).
    pub page: u64,
    /// The page size.
    pub size: PageSize,
    /// R/W of every level (PAE PDPTEs have none).
    pub rw: bool,
    /// U/S of every level.
    pub us: bool,
    /// XD (bit 63) of some level, with EFER.NXE on; always false otherwise.
    pub nx: bool,
    /// G of the leaf, with CR4.PGE on: survives a CR3 load.
    pub global: bool,
    /// D of the leaf, as the walk left it, or set by a later write through
    /// this entry (§4.8).
    pub dirty: bool,
    /// Physical address of the leaf entry (PTE, or PDE with PS).
    pub leaf_pa: u64,
    /// Bits 11:0 of the leaf entry with R/W and U/S replaced by the combined
    /// rights and A (and D) as the walk set them.
    pub flags: u32,
}

impl TlbEntry {
    /// The physical address of `va` through this entry.
    pub fn pa(&self, va: u32) -> u64 {
        self.page + u64::from(va & (self.size.bytes() - 1))
    }
}

/// The TLB: entries keyed by (first virtual address of the page, size).
///
/// Two entries may cover one address (a 4 KiB entry cached before the page
/// directory entry became a large page, say); a lookup prefers the smallest.
/// The SDM leaves the choice open (§4.10.2.4); software that flushes as it
/// must never meets the case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tlb {
    entries: BTreeMap<(u32, PageSize), TlbEntry>,
}

const SIZES: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size4M];

impl Tlb {
    /// Whether no translation is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of cached translations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry that translates `va`, if any.
    pub fn lookup(&self, va: u32) -> Option<&TlbEntry> {
        SIZES
            .iter()
            .find_map(|&s| self.entries.get(&(s.base_of(va), s)))
    }

    /// Every entry, as `(first virtual address of the page, entry)`.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &TlbEntry)> {
        self.entries.iter().map(|(&(va, _), e)| (va, e))
    }

    /// Caches `e` for the page of its size holding `va`.
    pub fn insert(&mut self, va: u32, e: TlbEntry) {
        self.entries.insert((e.size.base_of(va), e.size), e);
    }

    /// Drops every entry whose page holds `va`, global or not (`invlpg`).
    pub fn invalidate(&mut self, va: u32) {
        for s in SIZES {
            self.entries.remove(&(s.base_of(va), s));
        }
    }

    /// Drops every entry but the global ones (a CR3 load).
    pub fn flush_non_global(&mut self) {
        self.entries.retain(|_, e| e.global);
    }

    /// Drops every entry (a CR4.PGE toggle).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
