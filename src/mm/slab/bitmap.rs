//! The bitmap slab: a slab's on-slab header (magic, list links, counts and
//! the free bitmap), its three lists, and the object index by reciprocal.
//!
//! # Slabs
//!
//! A slab is a naturally aligned block of `1 << order` lowmem pages from the
//! buddy allocator, reached through the direct map (never HighMem: an
//! object must have a permanent address). It starts with a small header
//! followed by the object slots:
//!
//! ```text
//! slab (1 << order pages)
//! +--------------------------------+--------+--------+-----+--------+-------+
//! | header: magic, next, prev,     | slot 0 | slot 1 | ... | slot n | waste |
//! | inuse, list, hint, free bitmap |        |        |     |        |       |
//! +--------------------------------+--------+--------+-----+--------+-------+
//!   first slot at round_up(header, align); slots are `stride` bytes apart
//! ```
//!
//! Every header word is a `u32` (`WORD` = 4 bytes), on the i386 kernel and in
//! the host tests alike, so the tests check the very layout the kernel
//! uses: `(6 + w) * 4` bytes for `w` bitmap words (`header_bytes`).
//!
//! Free objects are tracked by a **bitmap in the slab header** (bit set =
//! free), not by pointers inside the free objects as SLUB does: like the
//! buddy allocator's lists in `mem_map`, a stray write into a free object
//! cannot corrupt the allocator, a double free is caught without any debug
//! option (the bit is already set), and poisoning can cover the whole
//! object. The cost is a scan for a set bit, kept short by a hint (the
//! first bitmap word that may have one).
//!
//! # Lists
//!
//! Each cache keeps its slabs on three lists (Linux `kmem_cache_node`),
//! linked through the slab headers: `partial` (some objects free,
//! allocations come from here), `full` and `empty`.
//!
//! # Object index
//!
//! `kfree(ptr)` finds the object's number from its offset in the slab
//! without a divide: a multiply by the reciprocal of the stride (Linux
//! `obj_to_index()`), exact for every offset in a slab.

use super::SlabMemory;
use crate::addr::VirtAddr;

/// Value: 0x51AB_C0DE. Slab header magic, xor-ed with the cache index.
pub(super) const SLAB_MAGIC: u32 = 0x51AB_C0DE;
/// Value: 4. Bytes of one slab-header word (a `u32`: the header holds
/// 32-bit addresses and bitmap words).
pub(super) const WORD: u32 = 4;
/// Value: 32. Objects one bitmap word tracks.
pub(super) const BITS_PER_WORD: u32 = u32::BITS;
/// Header words before the bitmap: magic, next, prev, inuse, list, hint.
const HDR_MAGIC: u32 = 0;
const HDR_NEXT: u32 = 1;
const HDR_PREV: u32 = 2;
const HDR_INUSE: u32 = 3;
const HDR_LIST: u32 = 4;
const HDR_HINT: u32 = 5;
const HDR_BITMAP: u32 = 6;

/// Bytes of a slab header holding a bitmap of `words` words: `(6 + words)
/// * 4`.
pub(super) const fn header_bytes(words: u32) -> u32 {
    (HDR_BITMAP + words) * WORD
}

/// `ceil(2^32 / stride)`: multiplying an offset in a slab by it and
/// keeping the high 32 bits divides by `stride` ([`obj_to_index`]).
pub(super) const fn reciprocal(stride: u32) -> u64 {
    (1u64 << 32).div_ceil(stride as u64)
}

/// `offset / stride` as a multiply (Linux `obj_to_index()` with
/// `reciprocal_divide()`), for `reciprocal` = [`reciprocal`]`(stride)`:
/// exact for offsets below `2^32 / stride` (the tests check every offset
/// of every slab).
#[inline]
pub(super) const fn obj_to_index(offset: u32, reciprocal: u64) -> u32 {
    ((offset as u64 * reciprocal) >> 32) as u32
}

/// Which list a slab is on (stored in its header's `list` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum ListId {
    Partial = 1,
    Full = 2,
    Empty = 3,
}

impl ListId {
    /// The three lists, in the order of [`KmemCache::lists`](super::KmemCache).
    pub(super) const ALL: [ListId; 3] = [ListId::Partial, ListId::Full, ListId::Empty];

    /// The list's slot in a cache's `lists`.
    pub(super) const fn slot(self) -> usize {
        self as usize - 1
    }
}

/// One of the three slab lists of a cache: slabs linked through their
/// headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SlabList {
    /// The first slab, `None` when the list is empty (a 0 `next`/`prev`
    /// word in the headers).
    pub(super) head: Option<Slab>,
    /// Slabs on the list.
    pub(super) len: u32,
}

/// A slab, named by its address (the start of its first page, where the
/// header is); a handle to read and write the header through a
/// [`SlabMemory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(super) struct Slab(pub(super) VirtAddr);

impl Slab {
    /// The slab a header link names (0 = none).
    const fn from_link(link: u32) -> Option<Slab> {
        match link {
            0 => None,
            a => Some(Slab(VirtAddr(a))),
        }
    }

    /// The header link naming `slab` (0 = none).
    const fn link(slab: Option<Slab>) -> u32 {
        match slab {
            Some(Slab(VirtAddr(a))) => a,
            None => 0,
        }
    }

    /// The slab's address.
    pub(super) const fn addr(self) -> VirtAddr {
        self.0
    }

    #[inline]
    fn word(self, mem: &impl SlabMemory, word: u32) -> u32 {
        mem.read_u32(self.0 + word * WORD)
    }

    #[inline]
    fn set_word(self, mem: &mut impl SlabMemory, word: u32, value: u32) {
        mem.write_u32(self.0 + word * WORD, value);
    }

    /// The header magic (`SLAB_MAGIC ^ cache index` while the slab is in
    /// use, 0 once it is given back).
    pub(super) fn magic(self, mem: &impl SlabMemory) -> u32 {
        self.word(mem, HDR_MAGIC)
    }

    /// Sets the header magic.
    pub(super) fn set_magic(self, mem: &mut impl SlabMemory, magic: u32) {
        self.set_word(mem, HDR_MAGIC, magic);
    }

    /// Objects in use.
    pub(super) fn inuse(self, mem: &impl SlabMemory) -> u32 {
        self.word(mem, HDR_INUSE)
    }

    /// The list word: a [`ListId`] as `u32`, 0 on no list.
    pub(super) fn list(self, mem: &impl SlabMemory) -> u32 {
        self.word(mem, HDR_LIST)
    }

    /// The next slab on its list.
    pub(super) fn next(self, mem: &impl SlabMemory) -> Option<Slab> {
        Slab::from_link(self.word(mem, HDR_NEXT))
    }

    /// The previous slab on its list.
    pub(super) fn prev(self, mem: &impl SlabMemory) -> Option<Slab> {
        Slab::from_link(self.word(mem, HDR_PREV))
    }

    /// Bitmap word `w`.
    fn bitmap(self, mem: &impl SlabMemory, w: u32) -> u32 {
        self.word(mem, HDR_BITMAP + w)
    }

    /// Writes a fresh header (Linux `allocate_slab()`'s part): `magic`,
    /// nothing in use, every one of `objects` free in `words` bitmap words.
    /// The list words are set by [`list_add`].
    pub(super) fn init(self, mem: &mut impl SlabMemory, magic: u32, objects: u32, words: u32) {
        self.set_word(mem, HDR_MAGIC, magic);
        self.set_word(mem, HDR_INUSE, 0);
        self.set_word(mem, HDR_HINT, 0);
        for w in 0..words {
            let left = objects - w * BITS_PER_WORD;
            let bits = if left >= BITS_PER_WORD {
                u32::MAX
            } else {
                (1u32 << left) - 1
            };
            self.set_word(mem, HDR_BITMAP + w, bits);
        }
    }

    /// Whether object `obj`'s free bit is set.
    #[inline]
    pub(super) fn is_free(self, mem: &impl SlabMemory, obj: u32) -> bool {
        self.bitmap(mem, obj / BITS_PER_WORD) & 1 << (obj % BITS_PER_WORD) != 0
    }

    /// Free objects: the set bits of its `words` bitmap words.
    pub(super) fn nr_free(self, mem: &impl SlabMemory, words: u32) -> u32 {
        (0..words).map(|w| self.bitmap(mem, w).count_ones()).sum()
    }

    /// Takes the first free object: clears its bit, moves the hint, counts
    /// it in `inuse`. Returns `(object, inuse after)`, or `None` if none of
    /// the `words` bitmap words from the hint on has a set bit (possible
    /// only if the header was overwritten: a slab on the partial list has
    /// a free object).
    #[inline]
    pub(super) fn take_free(self, mem: &mut impl SlabMemory, words: u32) -> Option<(u32, u32)> {
        let mut w = self.word(mem, HDR_HINT);
        let obj = loop {
            if w >= words {
                return None;
            }
            let bits = self.bitmap(mem, w);
            if bits != 0 {
                self.set_word(mem, HDR_BITMAP + w, bits & (bits - 1));
                break w * BITS_PER_WORD + bits.trailing_zeros();
            }
            w += 1;
        };
        self.set_word(mem, HDR_HINT, w);
        let inuse = self.inuse(mem) + 1;
        self.set_word(mem, HDR_INUSE, inuse);
        Some((obj, inuse))
    }

    /// Gives object `obj` back (its bit must be clear): sets its bit, moves
    /// the hint back if needed, uncounts it. Returns `inuse` after.
    #[inline]
    pub(super) fn release(self, mem: &mut impl SlabMemory, obj: u32) -> u32 {
        let w = obj / BITS_PER_WORD;
        let bits = self.bitmap(mem, w);
        self.set_word(mem, HDR_BITMAP + w, bits | 1 << (obj % BITS_PER_WORD));
        if w < self.word(mem, HDR_HINT) {
            self.set_word(mem, HDR_HINT, w);
        }
        let inuse = self.inuse(mem) - 1;
        self.set_word(mem, HDR_INUSE, inuse);
        inuse
    }
}

/// Pushes `slab` on the front of `list`, whose id is `id` (Linux
/// `list_add()`).
#[inline]
pub(super) fn list_add(mem: &mut impl SlabMemory, list: &mut SlabList, id: ListId, slab: Slab) {
    let head = list.head;
    slab.set_word(mem, HDR_NEXT, Slab::link(head));
    slab.set_word(mem, HDR_PREV, 0);
    slab.set_word(mem, HDR_LIST, id as u32);
    if let Some(head) = head {
        head.set_word(mem, HDR_PREV, Slab::link(Some(slab)));
    }
    list.head = Some(slab);
    list.len += 1;
}

/// Unlinks `slab` from `list` (Linux `list_del()`); it is then on no list.
#[inline]
pub(super) fn list_del(mem: &mut impl SlabMemory, list: &mut SlabList, slab: Slab) {
    let next = slab.next(mem);
    let prev = slab.prev(mem);
    if let Some(next) = next {
        next.set_word(mem, HDR_PREV, Slab::link(prev));
    }
    match prev {
        Some(prev) => prev.set_word(mem, HDR_NEXT, Slab::link(next)),
        None => list.head = next,
    }
    list.len -= 1;
    slab.set_word(mem, HDR_LIST, 0);
}
