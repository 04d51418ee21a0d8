//! One row per decision path of [`decide_fault`].

use super::*;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::mmap::{MMAP_BASE, STACK_LIMIT, STACK_TOP, VmArea};
use std::string::ToString;

const P: u32 = PAGE_SIZE;
const RW: VmFlags = VmFlags::READ.union(VmFlags::WRITE);
const RX: VmFlags = VmFlags::READ.union(VmFlags::EXEC);

// Error code bits (Intel SDM Figure 4-12).
const PRESENT: u32 = 1;
const WRITE: u32 = 2;
const USER: u32 = 4;
const RSVD: u32 = 8;
const FETCH: u32 = 16;

const TEXT: u32 = 0x0804_8000;
const DATA: u32 = 0x0804_a000;
const BSS: u32 = 0x0804_b000;
const HEAP: u32 = 0x0804_c000;
const ANON: u32 = 0x4000_0000;
const NONE: u32 = 0x4000_2000;
const RO: u32 = 0x4000_4000;
const STACK: u32 = STACK_TOP - 2 * P;

/// Text, data, bss, a heap page, an RW anon map, a PROT_NONE and a
/// read-only one, a two-page stack.
fn mm() -> MmAreas {
    let mut mm = MmAreas::new(VirtAddr(MMAP_BASE));
    let mut add = |s: u32, e: u32, f: VmFlags, k: VmKind| {
        mm.insert(VmArea::new(VirtAddr(s), VirtAddr(e), f, k))
            .unwrap();
    };
    add(TEXT, DATA, RX, VmKind::Text);
    add(DATA, BSS, RW, VmKind::Data);
    add(BSS, HEAP, RW, VmKind::Bss);
    add(ANON, ANON + P, RW, VmKind::Anon);
    add(NONE, NONE + P, VmFlags::empty(), VmKind::Anon);
    add(RO, RO + P, VmFlags::READ, VmKind::Anon);
    add(STACK, STACK_TOP, RW | VmFlags::GROWSDOWN, VmKind::Stack);
    mm.set_brk_start(VirtAddr(HEAP));
    mm.brk_to(VirtAddr(HEAP + P)).unwrap();
    mm
}

const RO_PTE: PteState = PteState::Present { writable: false };
const RW_PTE: PteState = PteState::Present { writable: true };

#[test]
fn every_row_of_the_decision_table() {
    use FaultDecision::*;
    use KillReason::*;
    let mm = mm();
    let u = USER;
    #[rustfmt::skip]
    let table: &[(&str, u32, u32, PteState, u32, FaultDecision)] = &[
        // Demand-zero: first touch of each zero-filled kind, read or write,
        // user or kernel (copy_to_user).
        ("bss read", BSS + 8, u, PteState::None, 0, DemandZero),
        ("bss write", BSS, u | WRITE, PteState::None, 0, DemandZero),
        ("heap write", HEAP + 0x10, u | WRITE, PteState::None, 0, DemandZero),
        ("anon read", ANON, u, PteState::None, 0, DemandZero),
        ("stack write", STACK, u | WRITE, PteState::None, 0, DemandZero),
        ("kernel copy_to_user", ANON, WRITE, PteState::None, 0, DemandZero),
        // Stack growth: just below the stack, and at the limit.
        ("push below stack", STACK - 4, u | WRITE, PteState::None, 0,
            StackGrow { new_start: VirtAddr(STACK - P) }),
        ("at the limit", STACK_TOP - STACK_LIMIT, u | WRITE, PteState::None, 0,
            StackGrow { new_start: VirtAddr(STACK_TOP - STACK_LIMIT) }),
        ("past the limit", STACK_TOP - STACK_LIMIT - 1, u | WRITE, PteState::None, 0,
            Kill(StackLimit)),
        // COW.
        ("cow shared", DATA, u | PRESENT | WRITE, RO_PTE, 2, CowCopy),
        ("cow shared by 3", ANON, u | PRESENT | WRITE, RO_PTE, 3, CowCopy),
        ("cow last owner", DATA, u | PRESENT | WRITE, RO_PTE, 1, CowReuse),
        ("cow from the kernel", BSS, PRESENT | WRITE, RO_PTE, 2, CowCopy),
        ("cow map count 0", DATA, u | PRESENT | WRITE, RO_PTE, 0,
            Kill(Unexpected("mapped page with map count 0"))),
        // Spurious: the PTE allows it already.
        ("stale write", ANON, u | PRESENT | WRITE, RW_PTE, 1, Spurious),
        ("stale read", ANON, u, RO_PTE, 1, Spurious),
        ("fetch of text", TEXT, u | FETCH, RO_PTE, 1, Spurious),
        // Kills.
        ("null read", 0, u, PteState::None, 0, Kill(NullPage)),
        ("null + 0xff8", 0xff8, u | WRITE, PteState::None, 0, Kill(NullPage)),
        ("no area", 0x2000_0000, u, PteState::None, 0, Kill(NoArea)),
        ("just past the heap", HEAP + P, u | WRITE, PteState::None, 0, Kill(NoArea)),
        ("write to text", TEXT, u | PRESENT | WRITE, RO_PTE, 1, Kill(WriteToReadOnly)),
        ("write to text, absent", TEXT + P, u | WRITE, PteState::None, 0,
            Kill(WriteToReadOnly)),
        ("write to read-only map", RO, u | WRITE, PteState::None, 0, Kill(WriteToReadOnly)),
        ("fetch from data (NX)", DATA, u | PRESENT | FETCH, RW_PTE, 1, Kill(ExecNotAllowed)),
        ("fetch from stack (NX)", STACK, u | FETCH, PteState::None, 0, Kill(ExecNotAllowed)),
        ("read PROT_NONE", NONE, u, PteState::None, 0, Kill(NoAccess)),
        ("user reads the kernel", 0xC000_0000, u | PRESENT, RW_PTE, 1, Kill(KernelAddress)),
        ("user writes the kernel", 0xC010_0000, u | WRITE, PteState::None, 0,
            Kill(KernelAddress)),
        ("reserved bit", ANON, u | PRESENT | RSVD, RW_PTE, 1, Kill(ReservedBit)),
        ("absent text page", TEXT, u, PteState::None, 0,
            Kill(Unexpected("no page in the text"))),
        ("absent data page", DATA, u, PteState::None, 0,
            Kill(Unexpected("no page in the data"))),
        ("read protection", ANON, u | PRESENT, RW_PTE, 1,
            Kill(Unexpected("read protection fault on a present page"))),
    ];
    for &(name, addr, code, pte, count, want) in table {
        let got = decide_fault(&mm, VirtAddr(addr), PageFaultError(code), pte, count);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn stack_growth_keeps_its_guard_gap_from_the_area_below() {
    let mut mm = mm();
    let below = STACK - 4 * P;
    mm.insert(VmArea::new(
        VirtAddr(below - P),
        VirtAddr(below),
        RW,
        VmKind::Anon,
    ))
    .unwrap();
    let write = PageFaultError(USER | WRITE);
    assert_eq!(
        decide_fault(&mm, VirtAddr(below + P), write, PteState::None, 0),
        FaultDecision::StackGrow {
            new_start: VirtAddr(below + P)
        }
    );
    assert_eq!(
        decide_fault(&mm, VirtAddr(below + 8), write, PteState::None, 0),
        FaultDecision::Kill(KillReason::StackLimit)
    );
}

#[test]
fn kill_reasons_read_as_a_report() {
    let cases = [
        (KillReason::NoArea, "no area (address not mapped)"),
        (KillReason::NullPage, "null pointer dereference (no area)"),
        (KillReason::WriteToReadOnly, "write to a read-only area"),
        (KillReason::KernelAddress, "user access to a kernel address"),
        (
            KillReason::Unexpected("no page in the text"),
            "unexpected protection fault (no page in the text)",
        ),
    ];
    for (r, text) in cases {
        assert_eq!(r.to_string(), text);
    }
}
