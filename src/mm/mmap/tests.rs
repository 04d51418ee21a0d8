//! Unit tests: each operation's worked cases and errors, the maps format.

use super::*;
use std::string::ToString;
use std::vec;

const P: u32 = PAGE_SIZE;
const RW: VmFlags = VmFlags::READ.union(VmFlags::WRITE);
const RX: VmFlags = VmFlags::READ.union(VmFlags::EXEC);
const R: VmFlags = VmFlags::READ;

fn va(x: u32) -> VirtAddr {
    VirtAddr(x)
}

fn area(start: u32, end: u32, flags: VmFlags, kind: VmKind) -> VmArea {
    VmArea::new(va(start), va(end), flags, kind)
}

/// `(start, end, flags, kind)` of every area.
fn spans(mm: &MmAreas) -> Vec<(u32, u32, VmFlags, VmKind)> {
    mm.check().unwrap();
    mm.areas()
        .iter()
        .map(|a| (a.start.0, a.end.0, a.flags, a.kind))
        .collect()
}

/// A program: text, data, bss, heap start at 0x0804_b800, a one-page stack.
fn program() -> MmAreas {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.insert(area(0x0804_8000, 0x0804_a000, RX, VmKind::Text))
        .unwrap();
    mm.insert(area(0x0804_a000, 0x0804_b000, RW, VmKind::Data))
        .unwrap();
    mm.insert(area(0x0804_b000, 0x0804_c000, RW, VmKind::Bss))
        .unwrap();
    mm.set_brk_start(va(0x0804_b800));
    mm.insert(area(
        STACK_TOP - P,
        STACK_TOP,
        RW | VmFlags::GROWSDOWN,
        VmKind::Stack,
    ))
    .unwrap();
    mm
}

#[test]
fn find_vma_finds_the_containing_area_only() {
    let mm = program();
    assert_eq!(mm.find_vma(va(0x0804_8000)).unwrap().kind, VmKind::Text);
    assert_eq!(mm.find_vma(va(0x0804_9fff)).unwrap().kind, VmKind::Text);
    assert_eq!(mm.find_vma(va(0x0804_a000)).unwrap().kind, VmKind::Data);
    assert_eq!(mm.find_vma(va(0)), None);
    assert_eq!(mm.find_vma(va(0x0804_c000)), None);
    assert_eq!(mm.find_vma(va(STACK_TOP - P - 1)), None);
    assert_eq!(
        mm.find_vma_from(va(STACK_TOP - P - 1)).unwrap().kind,
        VmKind::Stack
    );
    assert_eq!(mm.find_vma_from(va(STACK_TOP)), None);
    assert_eq!(mm.total_pages(), 5);
}

#[test]
fn insert_refuses_overlap_and_bad_areas_and_merges_alike() {
    let mut mm = program();
    let before = mm.clone();
    let table = [
        (
            area(0x0804_9000, 0x0804_d000, RW, VmKind::Anon),
            Errno::ENOMEM,
        ),
        (
            area(0x0804_7000, 0x0804_9000, RW, VmKind::Anon),
            Errno::ENOMEM,
        ),
        (
            area(0x1000_0000, 0x1000_0000, RW, VmKind::Anon),
            Errno::EINVAL,
        ),
        (
            area(0x1000_0010, 0x1000_1000, RW, VmKind::Anon),
            Errno::EINVAL,
        ),
        (area(0, P, RW, VmKind::Anon), Errno::EINVAL),
        (
            area(TASK_SIZE, TASK_SIZE + P, RW, VmKind::Anon),
            Errno::EINVAL,
        ),
    ];
    for (a, e) in table {
        assert_eq!(mm.insert(a), Err(e), "{a:?}");
        assert_eq!(mm, before);
    }
    // A like neighbour on both sides: one area.
    mm.insert(area(0x2000_0000, 0x2000_1000, RW, VmKind::Anon))
        .unwrap();
    mm.insert(area(0x2000_2000, 0x2000_3000, RW, VmKind::Anon))
        .unwrap();
    mm.insert(area(0x2000_1000, 0x2000_2000, RW, VmKind::Anon))
        .unwrap();
    assert!(spans(&mm).contains(&(0x2000_0000, 0x2000_3000, RW, VmKind::Anon)));
    // Data and bss touch but stay two areas: different kinds.
    assert_eq!(mm.areas().len(), 5);
}

#[test]
fn mmap_goes_top_down_below_mmap_base() {
    let mut mm = program();
    let a = mm.mmap_anon(None, 3 * P, RW).unwrap();
    assert_eq!(a, va(MMAP_BASE - 3 * P));
    // The next one right below, merged with it: same flags and kind.
    let b = mm.mmap_anon(None, 1, RW).unwrap();
    assert_eq!(b, va(MMAP_BASE - 4 * P));
    assert!(spans(&mm).contains(&(MMAP_BASE - 4 * P, MMAP_BASE, RW, VmKind::Anon)));
    // Other flags: a separate area below.
    let c = mm.mmap_anon(None, P, R).unwrap();
    assert_eq!(c, va(MMAP_BASE - 5 * P));
    assert_eq!(mm.areas().len(), 6);
    // A hole left by munmap is reused when it fits, the highest first.
    mm.munmap(va(MMAP_BASE - 3 * P), P).unwrap();
    assert_eq!(mm.mmap_anon(None, P, R).unwrap(), va(MMAP_BASE - 3 * P));
    assert_eq!(mm.mmap_anon(None, 2 * P, R).unwrap(), va(MMAP_BASE - 7 * P));
}

#[test]
fn mmap_takes_a_free_hint_rounded_up() {
    let mut mm = program();
    assert_eq!(
        mm.mmap_anon(Some(va(0x4000_0001)), P, RW).unwrap(),
        va(0x4000_1000)
    );
    // Taken: the search decides.
    assert_eq!(
        mm.mmap_anon(Some(va(0x4000_1000)), P, RW).unwrap(),
        va(MMAP_BASE - P)
    );
    // Inside the stack's guard gap: refused as a hint.
    assert_eq!(
        mm.mmap_anon(Some(va(STACK_TOP - 2 * P)), P, RW).unwrap(),
        va(MMAP_BASE - 2 * P)
    );
    // Below mmap_min_addr, or past TASK_SIZE: refused as a hint.
    assert_eq!(
        mm.mmap_anon(Some(va(0)), P, RW).unwrap(),
        va(MMAP_BASE - 3 * P)
    );
    assert_eq!(
        mm.mmap_anon(Some(va(TASK_SIZE - P)), 2 * P, RW).unwrap(),
        va(MMAP_BASE - 5 * P)
    );
}

#[test]
fn mmap_errors() {
    let mut mm = program();
    let before = mm.clone();
    assert_eq!(mm.mmap_anon(None, 0, RW), Err(Errno::EINVAL));
    assert_eq!(
        mm.mmap_anon(None, P, VmFlags::GROWSDOWN),
        Err(Errno::EINVAL)
    );
    assert_eq!(mm.mmap_anon(None, TASK_SIZE + 1, RW), Err(Errno::ENOMEM));
    assert_eq!(mm.mmap_anon(None, u32::MAX, RW), Err(Errno::ENOMEM));
    // Larger than everything free below mmap_base.
    assert_eq!(mm.mmap_anon(None, MMAP_BASE, RW), Err(Errno::ENOMEM));
    assert_eq!(mm, before);
}

#[test]
fn mmap_fills_the_address_space_then_fails_cleanly() {
    let mut mm = MmAreas::new(va(MMAP_MIN_ADDR + 4 * P));
    for i in 1..=4 {
        let flags = if i % 2 == 0 { R } else { RW };
        assert_eq!(
            mm.mmap_anon(None, P, flags).unwrap(),
            va(MMAP_MIN_ADDR + (4 - i) * P)
        );
    }
    assert_eq!(mm.mmap_anon(None, P, RW), Err(Errno::ENOMEM));
    assert_eq!(mm.areas().len(), 4);
}

#[test]
fn munmap_splits_and_returns_what_was_mapped() {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.insert(area(0x1000_0000, 0x1000_8000, RW, VmKind::Anon))
        .unwrap();
    mm.insert(area(0x1000_a000, 0x1000_c000, R, VmKind::Anon))
        .unwrap();
    // The middle of an area: two left.
    assert_eq!(
        mm.munmap(va(0x1000_2000), 2 * P).unwrap(),
        vec![(va(0x1000_2000), va(0x1000_4000))]
    );
    assert_eq!(
        spans(&mm),
        [
            (0x1000_0000, 0x1000_2000, RW, VmKind::Anon),
            (0x1000_4000, 0x1000_8000, RW, VmKind::Anon),
            (0x1000_a000, 0x1000_c000, R, VmKind::Anon),
        ]
    );
    // Across a hole and two areas, ending inside the second; len rounded up.
    assert_eq!(
        mm.munmap(va(0x1000_7000), 0x3001).unwrap(),
        vec![
            (va(0x1000_7000), va(0x1000_8000)),
            (va(0x1000_a000), va(0x1000_b000)),
        ]
    );
    assert_eq!(
        spans(&mm),
        [
            (0x1000_0000, 0x1000_2000, RW, VmKind::Anon),
            (0x1000_4000, 0x1000_7000, RW, VmKind::Anon),
            (0x1000_b000, 0x1000_c000, R, VmKind::Anon),
        ]
    );
    // A hole: fine, nothing to drop.
    assert_eq!(mm.munmap(va(0x2000_0000), P).unwrap(), vec![]);
    // Everything.
    assert_eq!(
        mm.munmap(va(MMAP_MIN_ADDR), TASK_SIZE - P).unwrap().len(),
        3
    );
    assert!(mm.areas().is_empty());
}

#[test]
fn munmap_errors() {
    let mut mm = program();
    let before = mm.clone();
    assert_eq!(mm.munmap(va(0x0804_8001), P), Err(Errno::EINVAL));
    assert_eq!(mm.munmap(va(0x0804_8000), 0), Err(Errno::EINVAL));
    assert_eq!(mm.munmap(va(TASK_SIZE - P), 2 * P), Err(Errno::EINVAL));
    assert_eq!(mm.munmap(va(0x0804_8000), u32::MAX), Err(Errno::EINVAL));
    assert_eq!(mm, before);
}

#[test]
fn mprotect_splits_and_merges() {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.insert(area(0x1000_0000, 0x1000_4000, RW, VmKind::Anon))
        .unwrap();
    mm.mprotect(va(0x1000_1000), 2 * P, R).unwrap();
    assert_eq!(
        spans(&mm),
        [
            (0x1000_0000, 0x1000_1000, RW, VmKind::Anon),
            (0x1000_1000, 0x1000_3000, R, VmKind::Anon),
            (0x1000_3000, 0x1000_4000, RW, VmKind::Anon),
        ]
    );
    // Back to RW: one area again.
    mm.mprotect(va(0x1000_1000), 2 * P, RW).unwrap();
    assert_eq!(spans(&mm), [(0x1000_0000, 0x1000_4000, RW, VmKind::Anon)]);
    // len 0: nothing, success.
    mm.mprotect(va(0x5000_0000), 0, R).unwrap();
    // PROT_NONE is an area too.
    mm.mprotect(va(0x1000_0000), 1, VmFlags::empty()).unwrap();
    assert_eq!(mm.areas()[0].flags, VmFlags::empty());
}

#[test]
fn mprotect_keeps_growsdown_and_kind_and_does_not_merge_kinds() {
    let mut mm = program();
    mm.mprotect(va(0x0804_a000), 2 * P, R).unwrap();
    assert_eq!(
        spans(&mm)[1..3],
        [
            (0x0804_a000, 0x0804_b000, R, VmKind::Data),
            (0x0804_b000, 0x0804_c000, R, VmKind::Bss),
        ]
    );
    mm.mprotect(va(STACK_TOP - P), P, R).unwrap();
    assert_eq!(mm.areas()[3].flags, R | VmFlags::GROWSDOWN);
}

#[test]
fn mprotect_errors_change_nothing() {
    let mut mm = program();
    let before = mm.clone();
    // The text and data touch, the bss follows, then a hole: ENOMEM.
    assert_eq!(mm.mprotect(va(0x0804_8000), 5 * P, R), Err(Errno::ENOMEM));
    assert_eq!(mm.mprotect(va(0x0804_7000), 2 * P, R), Err(Errno::ENOMEM));
    assert_eq!(mm.mprotect(va(0x3000_0000), P, R), Err(Errno::ENOMEM));
    assert_eq!(mm.mprotect(va(TASK_SIZE - P), 2 * P, R), Err(Errno::ENOMEM));
    assert_eq!(mm.mprotect(va(0x0804_8001), P, R), Err(Errno::EINVAL));
    assert_eq!(
        mm.mprotect(va(0x0804_8000), P, VmFlags::GROWSDOWN),
        Err(Errno::EINVAL)
    );
    assert_eq!(mm, before);
    // The whole image, no hole: fine.
    mm.mprotect(va(0x0804_8000), 4 * P, R).unwrap();
}

#[test]
fn from_prot_accepts_the_prot_bits_only() {
    assert_eq!(VmFlags::from_prot(0), Ok(VmFlags::empty()));
    assert_eq!(VmFlags::from_prot(7), Ok(RW | VmFlags::EXEC));
    assert_eq!(VmFlags::from_prot(8), Err(Errno::EINVAL));
    assert_eq!(VmFlags::from_prot(0x0100_0000), Err(Errno::EINVAL));
}

#[test]
fn brk_grows_and_shrinks_the_heap() {
    let mut mm = program();
    assert_eq!(mm.brk(), va(0x0804_b800));
    // Within the bss's last page: no heap area yet.
    assert_eq!(mm.brk_to(va(0x0804_bfff)).unwrap(), vec![]);
    assert_eq!(mm.areas().len(), 4);
    // Past it: the heap area starts at the next page.
    assert_eq!(mm.brk_to(va(0x0804_e001)).unwrap(), vec![]);
    assert_eq!(spans(&mm)[3], (0x0804_c000, 0x0804_f000, RW, VmKind::Heap));
    assert_eq!(mm.brk(), va(0x0804_e001));
    // Growing again extends the same area.
    mm.brk_to(va(0x0805_0000)).unwrap();
    assert_eq!(spans(&mm)[3], (0x0804_c000, 0x0805_0000, RW, VmKind::Heap));
    // Shrinking returns the pages to drop.
    assert_eq!(
        mm.brk_to(va(0x0804_d000)).unwrap(),
        vec![(va(0x0804_d000), va(0x0805_0000))]
    );
    // Back to the start: the heap area is gone.
    assert_eq!(
        mm.brk_to(va(0x0804_b800)).unwrap(),
        vec![(va(0x0804_c000), va(0x0804_d000))]
    );
    assert_eq!(mm.areas().len(), 4);
    assert_eq!(mm.brk(), va(0x0804_b800));
}

#[test]
fn brk_failures_keep_the_break() {
    let mut mm = program();
    mm.brk_to(va(0x0804_d000)).unwrap();
    let before = mm.clone();
    // brk(0): below the start, the current break stays (the syscall's
    // answer).
    assert_eq!(mm.brk_to(va(0)), Err(Errno::EINVAL));
    assert_eq!(mm.brk_to(va(0x0804_b7ff)), Err(Errno::EINVAL));
    assert_eq!(mm.brk_to(va(TASK_SIZE + 1)), Err(Errno::ENOMEM));
    // An area above: the heap stops a page below it.
    mm.insert(area(0x0805_0000, 0x0805_1000, RW, VmKind::Anon))
        .unwrap();
    let with_anon = mm.clone();
    assert_eq!(mm.brk_to(va(0x0805_0000)), Err(Errno::ENOMEM));
    assert_eq!(mm.brk_to(va(0x0804_f001)), Err(Errno::ENOMEM));
    assert_eq!(mm, with_anon);
    mm.brk_to(va(0x0804_f000)).unwrap();
    assert_eq!(mm.brk(), va(0x0804_f000));
    assert_eq!(before.brk(), va(0x0804_d000));
}

#[test]
fn brk_stops_at_a_stack_guard_gap() {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.set_brk_start(va(0x1000_0000));
    mm.insert(area(
        0x1000_4000,
        0x1000_8000,
        RW | VmFlags::GROWSDOWN,
        VmKind::Stack,
    ))
    .unwrap();
    // Stack at 0x1000_4000, gap start 0x1000_3000: the heap may end at
    // 0x1000_2000 (one page, then the gap).
    assert_eq!(mm.brk_to(va(0x1000_2001)), Err(Errno::ENOMEM));
    mm.brk_to(va(0x1000_2000)).unwrap();
}

#[test]
fn the_stack_grows_down_to_its_limit_and_keeps_a_gap() {
    let mut mm = program();
    // A fault 100 bytes below the stack: one more page.
    assert_eq!(
        mm.expand_stack(va(STACK_TOP - P - 100)).unwrap(),
        va(STACK_TOP - 2 * P)
    );
    assert_eq!(mm.areas()[3].start, va(STACK_TOP - 2 * P));
    // Exactly at the limit: fine; one byte below: ENOMEM.
    assert_eq!(
        mm.check_expand_stack(va(STACK_TOP - STACK_LIMIT)),
        Ok(va(STACK_TOP - STACK_LIMIT))
    );
    assert_eq!(
        mm.check_expand_stack(va(STACK_TOP - STACK_LIMIT - 1)),
        Err(Errno::ENOMEM)
    );
    mm.set_stack_limit(64 << 20);
    // In the text, not below a stack: EFAULT; inside the stack: EFAULT too
    // (no growth).
    assert_eq!(mm.check_expand_stack(va(0x0804_9000)), Err(Errno::EFAULT));
    assert_eq!(mm.check_expand_stack(va(STACK_TOP - 1)), Err(Errno::EFAULT));
    // An area below: the stack stays a guard page above its end.
    let below = STACK_TOP - 16 * P;
    mm.insert(area(below - P, below, RW, VmKind::Anon)).unwrap();
    assert_eq!(mm.check_expand_stack(va(below)), Err(Errno::ENOMEM));
    assert_eq!(mm.expand_stack(va(below + P)).unwrap(), va(below + P));
    let before = mm.clone();
    assert_eq!(mm.expand_stack(va(below)), Err(Errno::ENOMEM));
    assert_eq!(mm, before);
}

#[test]
fn the_stack_does_not_grow_into_the_null_page() {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.insert(area(2 * P, 3 * P, RW | VmFlags::GROWSDOWN, VmKind::Stack))
        .unwrap();
    assert_eq!(mm.check_expand_stack(va(P)), Ok(va(P)));
    assert_eq!(mm.check_expand_stack(va(10)), Err(Errno::EPERM));
}

#[test]
fn maps_lines_look_like_proc_pid_maps() {
    let mut mm = program();
    mm.brk_to(va(0x0804_d000)).unwrap();
    mm.mmap_anon(None, P, VmFlags::empty()).unwrap();
    let text = mm.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "08048000-0804a000 r-xp 00000000 00:00 0          [text]",
            "0804a000-0804b000 rw-p 00000000 00:00 0          [data]",
            "0804b000-0804c000 rw-p 00000000 00:00 0          [bss]",
            "0804c000-0804d000 rw-p 00000000 00:00 0          [heap]",
            "b7fff000-b8000000 ---p 00000000 00:00 0",
            "bffff000-c0000000 rw-p 00000000 00:00 0          [stack]",
        ]
    );
    // The name starts at column 50, as on 32-bit Linux.
    assert_eq!(lines[0].find('['), Some(49));
}

#[test]
fn clone_is_a_copy_for_fork() {
    let parent = program();
    let mut child = parent.clone();
    child.munmap(va(0x0804_a000), P).unwrap();
    assert_eq!(parent.areas().len(), 4);
    assert_eq!(child.areas().len(), 3);
}

#[test]
fn check_names_broken_invariants() {
    let mut mm = MmAreas::new(va(MMAP_BASE));
    mm.areas = vec![
        area(0x1000_0000, 0x1000_1000, RW, VmKind::Anon),
        area(0x1000_1000, 0x1000_2000, RW, VmKind::Anon),
    ];
    assert_eq!(mm.check().unwrap_err().0, "touching alike areas not merged");
    mm.areas[1].start = va(0x1000_0800);
    assert_eq!(mm.check().unwrap_err().0, "area not page-aligned");
    mm.areas[1] = area(0x0fff_f000, 0x1000_0000, R, VmKind::Anon);
    assert_eq!(
        mm.check().unwrap_err().0,
        "areas overlap or are out of order"
    );
    mm.areas = vec![area(0, P, R, VmKind::Anon)];
    assert_eq!(mm.check().unwrap_err().0, "area outside user space");
    mm.areas = vec![area(P, P, R, VmKind::Anon)];
    assert_eq!(mm.check().unwrap_err().0, "empty area");
}
