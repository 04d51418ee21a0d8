//! A user address space's areas (Linux `mm_struct`'s list of
//! `vm_area_struct`s): `mmap`, `munmap`, `mprotect`, `brk` and stack growth
//! on the area list, pure and host-tested. Page tables are the caller's:
//! every operation that removes pages returns the ranges whose PTEs must be
//! dropped.
//!
//! User address space (i386, 3 GiB user / 1 GiB kernel, no randomization):
//!
//! ```text
//! 0xffffffff +------------------------+
//!            |  kernel (shared PDEs)  |
//! 0xc0000000 +------------------------+ TASK_SIZE = PAGE_OFFSET = STACK_TOP
//!            |  stack, grows down     |   at most STACK_LIMIT (8 MiB)
//!            |  ...                   |
//! 0xb8000000 +------------------------+ MMAP_BASE = TASK_SIZE - 128 MiB
//!            |  mmap areas, top-down  |
//!            |  ...                   |
//!            |  heap (brk), grows up  |
//!            |  bss, data, text       |   ELF image, from 0x08048000 usually
//! 0x00001000 +------------------------+ MMAP_MIN_ADDR
//!            |  null page: no area    |
//! 0x00000000 +------------------------+
//! ```
//!
//! Invariants of [`MmAreas`] ([`MmAreas::check`]): areas are sorted by
//! address, page-aligned, non-empty, non-overlapping, inside
//! `[MMAP_MIN_ADDR, TASK_SIZE)`, and two touching areas never have equal
//! flags and kind (they would have been merged, Linux `vma_merge()`).
//!
//! Errors are [`Errno`]s with Linux's choices (`EINVAL` for bad arguments,
//! `ENOMEM` for no room or an unmapped part of a range).
//!
//! # References
//! - Linux: `mm/mmap.c` (`do_brk_flags`, `sys_brk`, `unmapped_area_topdown`,
//!   `do_vmi_munmap`, `expand_downwards`, `acct_stack_growth`),
//!   `mm/mprotect.c` (`do_mprotect_pkey`, `mprotect_fixup`), `mm/util.c`
//!   (`mmap_base`), `include/linux/mm_types.h`, `include/linux/mm.h`
//!   (`VM_*`, `vm_start_gap`), `fs/proc/task_mmu.c` (`show_map_vma`).

#![forbid(unsafe_code)]

use super::errno::Errno;
use super::layout::{PAGE_OFFSET, PAGE_SIZE};
use crate::addr::VirtAddr;
use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// Value: 0xC000_0000. The end of user space (Linux i386 `TASK_SIZE` =
/// `PAGE_OFFSET`): every user area lies below it, and a user access at or
/// above it is a fault.
pub const TASK_SIZE: u32 = PAGE_OFFSET;

/// Value: 0xC000_0000. Top of the initial stack (Linux `STACK_TOP` without
/// randomization: `TASK_SIZE`).
pub const STACK_TOP: u32 = TASK_SIZE;

/// Value: 8 MiB. The most a stack area grows to (Linux `RLIMIT_STACK`'s
/// default `_STK_LIM`), initial pages included.
pub const STACK_LIMIT: u32 = 8 << 20;

/// Value: 4 KiB. The gap kept between a stack area and the area below it,
/// and between the heap and a stack above it (Linux `stack_guard_gap`, 256
/// pages there; one page here).
pub const STACK_GUARD_GAP: u32 = PAGE_SIZE;

/// Value: 0xB800_0000. Where top-down `mmap` starts searching (Linux
/// `mmap_base()`: `TASK_SIZE - gap`, the gap being `RLIMIT_STACK` clamped
/// to at least `MIN_GAP` = 128 MiB, without randomization).
pub const MMAP_BASE: u32 = TASK_SIZE - (128 << 20);

/// Value: 4 KiB. No area starts below it, so that a null pointer
/// dereference always faults (Linux `mmap_min_addr`, its Kconfig default).
pub const MMAP_MIN_ADDR: u32 = PAGE_SIZE;

bitflags! {
    /// An area's access rights and behaviour (Linux `vm_flags_t`; same bit
    /// values). The low three are the `PROT_*` bits of `mmap`/`mprotect`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct VmFlags: u32 {
        /// Readable (`PROT_READ`).
        const READ = 0x1;
        /// Writable (`PROT_WRITE`); private, so writes to shared pages copy
        /// them (COW).
        const WRITE = 0x2;
        /// Executable (`PROT_EXEC`); enforced only under NX (PAE).
        const EXEC = 0x4;
        /// A stack: a fault just below it grows it (Linux `VM_GROWSDOWN`).
        const GROWSDOWN = 0x100;
    }
}

/// The `PROT_*` bits `mmap` and `mprotect` accept.
pub const PROT_MASK: u32 = 0x7;

impl VmFlags {
    /// The access bits of a `prot` argument (`PROT_READ` 1, `PROT_WRITE` 2,
    /// `PROT_EXEC` 4; `PROT_NONE` 0).
    ///
    /// # Errors
    /// `EINVAL` for any other bit (Linux `mprotect`; Linux `mmap` ignores
    /// them, the kernel's `mmap` refuses them too).
    pub const fn from_prot(prot: u32) -> Result<VmFlags, Errno> {
        if prot & !PROT_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(VmFlags::from_bits_truncate(prot))
    }

    /// The access bits only (`READ | WRITE | EXEC`).
    pub const fn prot(self) -> VmFlags {
        self.intersection(VmFlags::from_bits_truncate(PROT_MASK))
    }
}

/// What an area holds, for the maps dump and the fault decisions (an
/// absent page in a `Text` or `Data` area is not demand-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmKind {
    /// The program's code, mapped from its ELF file.
    Text,
    /// The program's initialized data, mapped from its ELF file.
    Data,
    /// Its zero-initialized data (the part of the data segment past the
    /// file's bytes): demand-zero.
    Bss,
    /// The `brk` heap: demand-zero.
    Heap,
    /// The stack: demand-zero, grows down.
    Stack,
    /// An anonymous `mmap`: demand-zero.
    Anon,
}

impl VmKind {
    /// The name column of the maps dump: `[text]`, `[data]`, `[bss]`,
    /// `[heap]`, `[stack]`, empty for anonymous maps (as Linux prints them).
    pub const fn name(self) -> &'static str {
        match self {
            VmKind::Text => "[text]",
            VmKind::Data => "[data]",
            VmKind::Bss => "[bss]",
            VmKind::Heap => "[heap]",
            VmKind::Stack => "[stack]",
            VmKind::Anon => "",
        }
    }

    /// Whether an absent page is filled with zeros on first touch.
    pub const fn is_demand_zero(self) -> bool {
        !matches!(self, VmKind::Text | VmKind::Data)
    }
}

/// One area of a user address space (Linux `vm_area_struct`): the pages
/// `[start, end)`, both page-aligned, `start < end <= TASK_SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmArea {
    /// First byte (page-aligned).
    pub start: VirtAddr,
    /// One past the last byte (page-aligned, exclusive).
    pub end: VirtAddr,
    /// Access rights and behaviour.
    pub flags: VmFlags,
    /// What it holds.
    pub kind: VmKind,
}

impl VmArea {
    /// An area of `[start, end)`.
    pub const fn new(start: VirtAddr, end: VirtAddr, flags: VmFlags, kind: VmKind) -> VmArea {
        VmArea {
            start,
            end,
            flags,
            kind,
        }
    }

    /// Whether `va` lies in the area.
    pub const fn contains(&self, va: VirtAddr) -> bool {
        self.start.0 <= va.0 && va.0 < self.end.0
    }

    /// Size in bytes.
    pub const fn len(&self) -> u32 {
        self.end.0 - self.start.0
    }

    /// Whether the area is empty (never, for an area of an [`MmAreas`]).
    pub const fn is_empty(&self) -> bool {
        self.start.0 >= self.end.0
    }

    /// Size in pages.
    pub const fn pages(&self) -> u32 {
        self.len() / PAGE_SIZE
    }

    /// The lowest address another area may end at: the start, less the
    /// guard gap for a stack (Linux `vm_start_gap()`).
    pub const fn start_gap(&self) -> u32 {
        if self.flags.contains(VmFlags::GROWSDOWN) {
            self.start.0.saturating_sub(STACK_GUARD_GAP)
        } else {
            self.start.0
        }
    }

    /// Whether `other` can continue this area as one (Linux
    /// `is_mergeable_vma()`): same flags and kind.
    const fn same_kind(&self, other: &VmArea) -> bool {
        self.flags.bits() == other.flags.bits() && self.kind as u8 == other.kind as u8
    }
}

/// One line of `/proc/<pid>/maps` (Linux `show_map_vma()`), for example
/// `08048000-08049000 r-xp 00000000 00:00 0          [text]`.
///
/// Columns: range, permissions (`r`, `w`, `x` or `-`, then `p`: every area
/// is private), offset, device, inode. Without files the last three are
/// always `00000000 00:00 0`. The name, if any, starts at column 50 as on
/// 32-bit Linux (the prefix padded to 48 characters, then a space); an
/// anonymous area has no name and no trailing spaces.
impl fmt::Display for VmArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |flag, c| if self.flags.contains(flag) { c } else { '-' };
        // The prefix is always 39 characters wide.
        write!(
            f,
            "{:08x}-{:08x} {}{}{}p 00000000 00:00 0",
            self.start.0,
            self.end.0,
            bit(VmFlags::READ, 'r'),
            bit(VmFlags::WRITE, 'w'),
            bit(VmFlags::EXEC, 'x'),
        )?;
        match self.kind.name() {
            "" => Ok(()),
            name => write!(f, "{:9} {name}", ""),
        }
    }
}

/// A user address space's areas (Linux `mm_struct`: the area list, `brk`
/// and `mmap_base`). `Clone` copies the list, as `fork()`'s `dup_mmap()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmAreas {
    areas: Vec<VmArea>,
    mmap_base: u32,
    start_brk: u32,
    brk: u32,
    stack_limit: u32,
}

/// A page-aligned range `[start, end)` whose pages were unmapped: the caller
/// drops their PTEs (and the pages' map counts).
pub type Range = (VirtAddr, VirtAddr);

const fn page_align_up(x: u32) -> Option<u32> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

impl MmAreas {
    /// An empty address space whose `mmap` searches top-down below
    /// `mmap_base` (usually [`MMAP_BASE`]), stacks growing to
    /// [`STACK_LIMIT`], no heap yet (`brk` 0 until
    /// [`set_brk_start`](Self::set_brk_start)).
    ///
    /// # Panics
    /// If `mmap_base` is not page-aligned or above [`TASK_SIZE`].
    pub fn new(mmap_base: VirtAddr) -> MmAreas {
        assert!(
            mmap_base.is_page_aligned() && mmap_base.0 <= TASK_SIZE,
            "mmap_base {mmap_base:#x}"
        );
        MmAreas {
            areas: Vec::new(),
            mmap_base: mmap_base.0,
            start_brk: 0,
            brk: 0,
            stack_limit: STACK_LIMIT,
        }
    }

    /// Sets the stack size limit in bytes (Linux `setrlimit(RLIMIT_STACK)`).
    pub fn set_stack_limit(&mut self, bytes: u32) {
        self.stack_limit = bytes;
    }

    /// The areas, sorted by address.
    pub fn areas(&self) -> &[VmArea] {
        &self.areas
    }

    /// Mapped pages over all areas (Linux `mm->total_vm`).
    pub fn total_pages(&self) -> u32 {
        self.areas.iter().map(VmArea::pages).sum()
    }

    /// The area containing `va`, if any.
    pub fn find_vma(&self, va: VirtAddr) -> Option<&VmArea> {
        let i = self.areas.partition_point(|a| a.end.0 <= va.0);
        self.areas.get(i).filter(|a| a.contains(va))
    }

    /// The first area ending above `va`, which contains `va` or lies above
    /// it (Linux `find_vma()`'s own meaning): for a fault just below a
    /// stack, the stack.
    pub fn find_vma_from(&self, va: VirtAddr) -> Option<&VmArea> {
        let i = self.areas.partition_point(|a| a.end.0 <= va.0);
        self.areas.get(i)
    }

    /// Index of the first area ending above `va`.
    fn index_from(&self, va: u32) -> usize {
        self.areas.partition_point(|a| a.end.0 <= va)
    }

    /// Adds `area` (Linux `insert_vm_struct()`), merged with a touching
    /// neighbour of the same flags and kind.
    ///
    /// # Errors
    /// `EINVAL` if it is empty, not page-aligned, below [`MMAP_MIN_ADDR`]
    /// or past [`TASK_SIZE`]; `ENOMEM` if it overlaps an area. Nothing
    /// changes on error.
    pub fn insert(&mut self, area: VmArea) -> Result<(), Errno> {
        let (start, end) = (area.start.0, area.end.0);
        if start >= end
            || !area.start.is_page_aligned()
            || !area.end.is_page_aligned()
            || start < MMAP_MIN_ADDR
            || end > TASK_SIZE
        {
            return Err(Errno::EINVAL);
        }
        let i = self.index_from(start);
        if self.areas.get(i).is_some_and(|a| a.start.0 < end) {
            return Err(Errno::ENOMEM);
        }
        self.areas.insert(i, area);
        self.merge_around(i);
        Ok(())
    }

    /// Merges the area at `i` with its neighbours where they touch and are
    /// alike (Linux `vma_merge()`).
    fn merge_around(&mut self, i: usize) {
        let mut i = i;
        if i > 0 {
            let (prev, cur) = (self.areas[i - 1], self.areas[i]);
            if prev.end == cur.start && prev.same_kind(&cur) {
                self.areas[i - 1].end = cur.end;
                self.areas.remove(i);
                i -= 1;
            }
        }
        if let Some(&next) = self.areas.get(i + 1) {
            let cur = self.areas[i];
            if cur.end == next.start && cur.same_kind(&next) {
                self.areas[i].end = next.end;
                self.areas.remove(i + 1);
            }
        }
    }

    /// Whether `[start, end)` is free, leaving the guard gaps of the areas
    /// around it (the test of Linux `arch_get_unmapped_area_topdown()` for
    /// a hint).
    fn range_is_free(&self, start: u32, end: u32) -> bool {
        if start < MMAP_MIN_ADDR || end > TASK_SIZE || start >= end {
            return false;
        }
        // Areas before the first one ending above `start` end at or below
        // it; a stack needs its gap below it, not above.
        let i = self.index_from(start);
        self.areas.get(i).is_none_or(|n| end <= n.start_gap())
    }

    /// Creates an anonymous private area of `len` bytes (rounded up to
    /// pages) with `flags` (Linux `mmap(hint, len, prot, MAP_PRIVATE |
    /// MAP_ANONYMOUS)`), merged with a like neighbour. Returns its start.
    ///
    /// Placement (Linux `arch_get_unmapped_area_topdown()`): `hint` rounded
    /// up to a page, if given and the range there is free (guard gaps
    /// kept); otherwise the highest free range below `mmap_base` and at or
    /// above [`MMAP_MIN_ADDR`]. (Linux then tries bottom-up above
    /// `mmap_base`; this kernel does not.)
    ///
    /// # Errors
    /// `EINVAL` if `len` is 0 or `flags` has bits other than the access
    /// bits; `ENOMEM` if `len` exceeds [`TASK_SIZE`] or no range is free.
    pub fn mmap_anon(
        &mut self,
        hint: Option<VirtAddr>,
        len: u32,
        flags: VmFlags,
    ) -> Result<VirtAddr, Errno> {
        if len == 0 || flags != flags.prot() {
            return Err(Errno::EINVAL);
        }
        let len = page_align_up(len)
            .filter(|&l| l <= TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        let hinted = hint
            .and_then(|h| page_align_up(h.0))
            .filter(|&h| h.checked_add(len).is_some_and(|e| self.range_is_free(h, e)));
        let start = match hinted {
            Some(h) => h,
            None => self.unmapped_area_topdown(len).ok_or(Errno::ENOMEM)?,
        };
        let area = VmArea::new(VirtAddr(start), VirtAddr(start + len), flags, VmKind::Anon);
        self.insert(area)?;
        Ok(VirtAddr(start))
    }

    /// The highest start of a free `len`-byte range in
    /// `[MMAP_MIN_ADDR, mmap_base)` (Linux `unmapped_area_topdown()`).
    fn unmapped_area_topdown(&self, len: u32) -> Option<u32> {
        let mut high = self.mmap_base;
        // Walk the gaps from the top: below each area (down from its gap
        // start), above the one before it.
        let i = self.index_from(self.mmap_base);
        if let Some(n) = self.areas.get(i) {
            high = high.min(n.start_gap());
        }
        for j in (0..=i).rev() {
            let low = if j == 0 {
                MMAP_MIN_ADDR
            } else {
                self.areas[j - 1].end.0.max(MMAP_MIN_ADDR)
            };
            if high >= low && high - low >= len {
                return Some(high - len);
            }
            if j > 0 {
                high = high.min(self.areas[j - 1].start_gap());
            }
        }
        None
    }

    /// Removes `[start, start + len)` (`len` rounded up to pages) from every
    /// area it touches, splitting areas at its ends (Linux `munmap()`,
    /// `do_vmi_munmap()`). Unmapping a hole is no error. Returns the ranges
    /// that were mapped, in address order, for the caller to drop their
    /// PTEs.
    ///
    /// # Errors
    /// `EINVAL` if `start` is not page-aligned, `len` is 0, or the range
    /// passes [`TASK_SIZE`]. Nothing changes on error.
    pub fn munmap(&mut self, start: VirtAddr, len: u32) -> Result<Vec<Range>, Errno> {
        let end = self.checked_range(start, len, Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(self.remove_range(start.0, end))
    }

    /// `[start, start + len rounded up)`, checked.
    fn checked_range(&self, start: VirtAddr, len: u32, past_end: Errno) -> Result<u32, Errno> {
        if !start.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        page_align_up(len)
            .and_then(|l| start.0.checked_add(l))
            .filter(|&e| e <= TASK_SIZE)
            .ok_or(past_end)
    }

    /// Cuts `[start, end)` out of the areas; returns what was mapped.
    fn remove_range(&mut self, start: u32, end: u32) -> Vec<Range> {
        let mut removed = Vec::new();
        let mut i = self.index_from(start);
        while let Some(&a) = self.areas.get(i) {
            if a.start.0 >= end {
                break;
            }
            let (lo, hi) = (a.start.0.max(start), a.end.0.min(end));
            removed.push((VirtAddr(lo), VirtAddr(hi)));
            let below = (a.start.0 < lo).then_some(VmArea {
                end: VirtAddr(lo),
                ..a
            });
            let above = (hi < a.end.0).then_some(VmArea {
                start: VirtAddr(hi),
                ..a
            });
            match (below, above) {
                (Some(b), Some(c)) => {
                    self.areas[i] = b;
                    self.areas.insert(i + 1, c);
                    i += 2;
                }
                (Some(b), None) => {
                    self.areas[i] = b;
                    i += 1;
                }
                (None, Some(c)) => {
                    self.areas[i] = c;
                    i += 1;
                }
                (None, None) => {
                    self.areas.remove(i);
                }
            }
        }
        removed
    }

    /// Sets the access bits of every page of `[start, start + len)` (`len`
    /// rounded up to pages) to `prot`, splitting areas at the range's ends
    /// and merging like neighbours afterwards (Linux `mprotect()`,
    /// `mprotect_fixup()`). `GROWSDOWN` and the kind stay as they were. The
    /// caller then rewrites the range's present PTEs (a writable private
    /// page shared after `fork()` stays read-only: its map count says so).
    ///
    /// # Errors
    /// `EINVAL` if `start` is not page-aligned or `prot` has bits other
    /// than the access bits; `ENOMEM` if the range passes [`TASK_SIZE`] or
    /// any page of it is unmapped. Nothing changes on error (Linux changes
    /// the areas before the first hole, then returns `ENOMEM`). A `len` of
    /// 0 succeeds and changes nothing.
    pub fn mprotect(&mut self, start: VirtAddr, len: u32, prot: VmFlags) -> Result<(), Errno> {
        if prot != prot.prot() {
            return Err(Errno::EINVAL);
        }
        let end = self.checked_range(start, len, Errno::ENOMEM)?;
        let start = start.0;
        if start == end {
            return Ok(());
        }
        // Every page mapped: the areas from the first one touching the range
        // follow each other without a gap up to `end`.
        let first = self.index_from(start);
        let mut covered = start;
        for a in &self.areas[first..] {
            if covered >= end {
                break;
            }
            if a.start.0 > covered {
                return Err(Errno::ENOMEM);
            }
            covered = a.end.0;
        }
        if covered < end {
            return Err(Errno::ENOMEM);
        }
        // Split at both ends, then rewrite the flags of the areas inside.
        self.split_at(start);
        self.split_at(end);
        let mut i = self.index_from(start);
        while let Some(a) = self.areas.get_mut(i) {
            if a.start.0 >= end {
                break;
            }
            a.flags = (a.flags - VmFlags::from_bits_truncate(PROT_MASK)) | prot;
            i += 1;
        }
        self.merge_all();
        Ok(())
    }

    /// Splits the area containing `va` (if `va` is inside, not at its
    /// start) into two at `va` (Linux `split_vma()`).
    fn split_at(&mut self, va: u32) {
        let i = self.index_from(va);
        if let Some(&a) = self.areas.get(i)
            && a.start.0 < va
        {
            self.areas[i].end = VirtAddr(va);
            self.areas.insert(
                i + 1,
                VmArea {
                    start: VirtAddr(va),
                    ..a
                },
            );
        }
    }

    /// Merges every pair of touching, alike areas.
    fn merge_all(&mut self) {
        self.areas.dedup_by(|next, prev| {
            if prev.end == next.start && prev.same_kind(next) {
                prev.end = next.end;
                true
            } else {
                false
            }
        });
    }

    /// Sets where the heap starts, usually the end of the bss (Linux
    /// `mm->start_brk = mm->brk`, set by the ELF loader). The heap area
    /// begins at the next page boundary.
    ///
    /// # Panics
    /// If `start_brk` is at or above [`TASK_SIZE`].
    pub fn set_brk_start(&mut self, start_brk: VirtAddr) {
        assert!(start_brk.0 < TASK_SIZE, "start_brk {start_brk:#x}");
        self.start_brk = start_brk.0;
        self.brk = start_brk.0;
    }

    /// The current program break (byte-granular; the heap area ends at it
    /// rounded up to a page).
    pub fn brk(&self) -> VirtAddr {
        VirtAddr(self.brk)
    }

    /// Where the heap starts.
    pub fn start_brk(&self) -> VirtAddr {
        VirtAddr(self.start_brk)
    }

    /// Moves the program break to `new_brk` (Linux `sys_brk()`): the heap
    /// area (kind [`VmKind::Heap`], read-write) grows or shrinks to
    /// `[page_align_up(start_brk), page_align_up(new_brk))`. On success
    /// returns the ranges that shrinking unmapped (their PTEs to drop; none
    /// when growing).
    /// The system call returns [`brk`](Self::brk) whether or not this
    /// succeeded: the new break, or the old one on failure (so `brk(0)`
    /// asks for the current break).
    ///
    /// # Errors
    /// `EINVAL` below the start of the heap; `ENOMEM` past [`TASK_SIZE`] or
    /// where the heap would meet the next area (with one page between them,
    /// and a stack's guard gap, Linux's `newbrk + PAGE_SIZE >
    /// vm_start_gap(next)` test). Nothing changes on error.
    pub fn brk_to(&mut self, new_brk: VirtAddr) -> Result<Vec<Range>, Errno> {
        if new_brk.0 < self.start_brk {
            return Err(Errno::EINVAL);
        }
        let new_end = page_align_up(new_brk.0)
            .filter(|&e| e <= TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        // `brk < TASK_SIZE`: cannot overflow.
        let old_end = page_align_up(self.brk).ok_or(Errno::ENOMEM)?;
        let mut released = Vec::new();
        if new_end < old_end {
            released = self.remove_range(new_end, old_end);
        } else if new_end > old_end {
            let next = self.find_vma_from(VirtAddr(old_end));
            if next.is_some_and(|n| new_end.saturating_add(PAGE_SIZE) > n.start_gap()) {
                return Err(Errno::ENOMEM);
            }
            let area = VmArea::new(
                VirtAddr(old_end),
                VirtAddr(new_end),
                VmFlags::READ | VmFlags::WRITE,
                VmKind::Heap,
            );
            self.insert(area)?;
        }
        self.brk = new_brk.0;
        Ok(released)
    }

    /// What growing the stack down to `va` would make its new start (the
    /// checks of Linux `expand_downwards()` and `acct_stack_growth()`,
    /// nothing changed). `va` must lie below a [`VmFlags::GROWSDOWN`] area
    /// (the first area above it).
    ///
    /// # Errors
    /// `EFAULT` if the first area above `va` is not a stack (or there is
    /// none); `ENOMEM` if the stack would exceed its limit
    /// ([`STACK_LIMIT`] by default) or come within [`STACK_GUARD_GAP`] of
    /// the area below; `EPERM` below [`MMAP_MIN_ADDR`].
    pub fn check_expand_stack(&self, va: VirtAddr) -> Result<VirtAddr, Errno> {
        let i = self.index_from(va.0);
        let stack = self
            .areas
            .get(i)
            .filter(|a| a.flags.contains(VmFlags::GROWSDOWN) && va.0 < a.start.0)
            .ok_or(Errno::EFAULT)?;
        let new_start = va.page_align_down().0;
        if new_start < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if stack.end.0 - new_start > self.stack_limit {
            return Err(Errno::ENOMEM);
        }
        if i > 0 && self.areas[i - 1].end.0.saturating_add(STACK_GUARD_GAP) > new_start {
            return Err(Errno::ENOMEM);
        }
        Ok(VirtAddr(new_start))
    }

    /// Grows the stack area above `va` down to `va`'s page (Linux
    /// `expand_stack()`/`expand_downwards()`); returns the new start.
    ///
    /// # Errors
    /// As [`check_expand_stack`](Self::check_expand_stack); nothing changes
    /// on error.
    pub fn expand_stack(&mut self, va: VirtAddr) -> Result<VirtAddr, Errno> {
        let new_start = self.check_expand_stack(va)?;
        let i = self.index_from(va.0);
        self.areas[i].start = new_start;
        Ok(new_start)
    }

    /// Checks the invariants listed in the module documentation.
    ///
    /// # Errors
    /// The first broken one, in words, with the area.
    pub fn check(&self) -> Result<(), (&'static str, VmArea)> {
        let mut prev: Option<&VmArea> = None;
        for a in &self.areas {
            if !a.start.is_page_aligned() || !a.end.is_page_aligned() {
                return Err(("area not page-aligned", *a));
            }
            if a.start >= a.end {
                return Err(("empty area", *a));
            }
            if a.start.0 < MMAP_MIN_ADDR || a.end.0 > TASK_SIZE {
                return Err(("area outside user space", *a));
            }
            if let Some(p) = prev {
                if p.end > a.start {
                    return Err(("areas overlap or are out of order", *a));
                }
                if p.end == a.start && p.same_kind(a) {
                    return Err(("touching alike areas not merged", *a));
                }
            }
            prev = Some(a);
        }
        Ok(())
    }
}

/// The maps dump: one [`VmArea`] line per area, each ending in a newline.
impl fmt::Display for MmAreas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.areas {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}
