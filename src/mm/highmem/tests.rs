//! Host tests of `mm::highmem`.

use super::*;
use crate::mm::layout::{PAGE_SIZE, PKMAP_END};
use std::boxed::Box;
use std::vec::Vec;

/// First HighMem frame (896 MiB).
const HIGH: Pfn = Pfn(0x38000);

/// Address of pkmap slot `slot`.
fn slot(slot: u32) -> VirtAddr {
    VirtAddr(PKMAP_BASE + slot * PAGE_SIZE)
}

/// A window with frames `HIGH..HIGH + n` kmapped once each, in slots
/// `0..n`.
fn with_frames(n: u32) -> Box<Pkmap> {
    let mut p = Box::new(Pkmap::new());
    for i in 0..n {
        assert_eq!(p.kmap(HIGH + i), Ok(Kmapped::New { va: slot(i) }));
    }
    p
}

fn held(p: &Pkmap) -> Vec<KmapHeld> {
    p.held().collect()
}

#[test]
fn kmap_of_a_new_frame_takes_a_slot_in_the_window() {
    let mut p = Box::new(Pkmap::default());
    assert_eq!(p.page_address(HIGH), None);
    let k = p.kmap(HIGH).unwrap();
    let Kmapped::New { va } = k else {
        panic!("{k:?}")
    };
    assert!((PKMAP_BASE..PKMAP_END).contains(&va.0), "{va:#x}");
    assert!(va.is_page_aligned());
    assert_eq!(k.va(), va);
    assert_eq!(p.page_address(HIGH), Some(va));
    assert_eq!(
        held(&p),
        [KmapHeld {
            va,
            pfn: HIGH,
            users: 1
        }]
    );
    assert_eq!(p.counts(), (1, 0));
}

#[test]
fn kmap_of_a_mapped_frame_shares_its_slot() {
    let mut p = with_frames(2);
    assert_eq!(p.kmap(HIGH + 1), Ok(Kmapped::Shared { va: slot(1) }));
    assert_eq!(Kmapped::Shared { va: slot(1) }.va(), slot(1));
    assert_eq!(
        held(&p),
        [
            KmapHeld {
                va: slot(0),
                pfn: HIGH,
                users: 1
            },
            KmapHeld {
                va: slot(1),
                pfn: HIGH + 1,
                users: 2
            },
        ]
    );
    assert_eq!(p.counts(), (3, 0));
}

#[test]
fn kunmap_gives_the_slot_back_only_at_the_last_user() {
    let mut p = with_frames(1);
    p.kmap(HIGH).unwrap();
    p.kmap(HIGH).unwrap();
    assert_eq!(p.kunmap(HIGH), Ok(None));
    assert_eq!(p.kunmap(HIGH), Ok(None));
    assert_eq!(p.page_address(HIGH), Some(slot(0)));
    assert_eq!(p.kunmap(HIGH), Ok(Some(slot(0))));
    assert_eq!(p.page_address(HIGH), None);
    assert!(held(&p).is_empty());
    assert_eq!(p.counts(), (3, 3));
}

#[test]
fn double_kunmap_is_refused_and_changes_nothing() {
    let mut p = with_frames(2);
    assert_eq!(p.kunmap(HIGH), Ok(Some(slot(0))));
    let (before_held, before_counts) = (held(&p), p.counts());
    assert_eq!(p.kunmap(HIGH), Err(KmapError::NotMapped { pfn: HIGH }));
    // Never kmapped at all.
    assert_eq!(
        p.kunmap(HIGH + 7),
        Err(KmapError::NotMapped { pfn: HIGH + 7 })
    );
    assert_eq!(held(&p), before_held);
    assert_eq!(p.counts(), before_counts);
    assert_eq!(p.page_address(HIGH + 1), Some(slot(1)));
}

#[test]
fn unused_slots_do_not_claim_frame_zero() {
    let mut p = Box::new(Pkmap::new());
    assert_eq!(p.page_address(Pfn(0)), None);
    assert_eq!(p.kunmap(Pfn(0)), Err(KmapError::NotMapped { pfn: Pfn(0) }));
    assert_eq!(p.kmap(Pfn(0)), Ok(Kmapped::New { va: slot(0) }));
    assert_eq!(p.kmap(Pfn(0)), Ok(Kmapped::Shared { va: slot(0) }));
}

#[test]
fn full_window_refuses_new_frames_but_shares_mapped_ones() {
    let mut p = with_frames(LAST_PKMAP);
    let counts = p.counts();
    assert_eq!(counts, (LAST_PKMAP, 0));
    assert_eq!(p.kmap(HIGH + LAST_PKMAP), Err(KmapError::Full));
    assert_eq!(p.counts(), counts);
    assert_eq!(p.page_address(HIGH + LAST_PKMAP), None);
    assert_eq!(
        p.kmap(HIGH + 9),
        Ok(Kmapped::Shared { va: slot(9) }),
        "a mapped frame needs no free slot"
    );
    // One last kunmap frees a slot, and the next new frame gets it.
    assert_eq!(p.kunmap(HIGH + 500), Ok(Some(slot(500))));
    assert_eq!(
        p.kmap(HIGH + LAST_PKMAP),
        Ok(Kmapped::New { va: slot(500) })
    );
    assert_eq!(p.kmap(HIGH + LAST_PKMAP + 1), Err(KmapError::Full));
    assert_eq!(held(&p).len(), LAST_PKMAP as usize);
}

#[test]
fn new_frames_take_slots_round_robin() {
    let mut p = with_frames(3);
    // Slot 0 is free again, but the search resumes after the last slot
    // taken (Linux last_pkmap_nr).
    assert_eq!(p.kunmap(HIGH), Ok(Some(slot(0))));
    assert_eq!(p.kmap(HIGH + 3), Ok(Kmapped::New { va: slot(3) }));
    // A frame kmapped again after its last kunmap is a new mapping, in
    // the next slot, not its old one.
    assert_eq!(p.kmap(HIGH), Ok(Kmapped::New { va: slot(4) }));
    assert_eq!(p.page_address(HIGH), Some(slot(4)));
    // The slot just freed is not the next one taken either.
    assert_eq!(p.kunmap(HIGH), Ok(Some(slot(4))));
    assert_eq!(p.kmap(HIGH + 5), Ok(Kmapped::New { va: slot(5) }));
}

#[test]
fn slot_search_wraps_round_the_window() {
    let mut p = with_frames(LAST_PKMAP);
    // The next search starts at slot 0 again; free slots 700 and 5.
    assert_eq!(p.kunmap(HIGH + 700), Ok(Some(slot(700))));
    assert_eq!(p.kunmap(HIGH + 5), Ok(Some(slot(5))));
    assert_eq!(p.kmap(Pfn(0x50000)), Ok(Kmapped::New { va: slot(5) }));
    assert_eq!(p.kmap(Pfn(0x50001)), Ok(Kmapped::New { va: slot(700) }));
    assert_eq!(p.kmap(Pfn(0x50002)), Err(KmapError::Full));
    // From slot 701 on, the search wraps round to slot 2.
    assert_eq!(p.kunmap(HIGH + 2), Ok(Some(slot(2))));
    assert_eq!(p.kunmap(HIGH + 1000), Ok(Some(slot(1000))));
    assert_eq!(p.kmap(Pfn(0x50003)), Ok(Kmapped::New { va: slot(1000) }));
    assert_eq!(p.kmap(Pfn(0x50004)), Ok(Kmapped::New { va: slot(2) }));
}

#[test]
fn held_lists_leaks_in_address_order_with_user_counts() {
    let mut p = with_frames(4);
    p.kmap(HIGH + 3).unwrap();
    p.kmap(HIGH + 3).unwrap();
    p.kunmap(HIGH + 1).unwrap();
    p.kunmap(HIGH).unwrap(); // HIGH had one user: its slot is free
    let leaks: Vec<(VirtAddr, Pfn, u16)> = p.held().map(|h| (h.va, h.pfn, h.users)).collect();
    assert_eq!(leaks, [(slot(2), HIGH + 2, 1), (slot(3), HIGH + 3, 3)]);
    assert_eq!(p.counts(), (6, 2));
}

#[test]
fn user_count_overflow_is_refused() {
    let mut p = Box::new(Pkmap::new());
    for _ in 0..u16::MAX {
        p.kmap(HIGH).unwrap();
    }
    assert_eq!(p.kmap(HIGH), Err(KmapError::TooManyUsers { pfn: HIGH }));
    assert_eq!(p.counts(), (u32::from(u16::MAX), 0));
    assert_eq!(held(&p)[0].users, u16::MAX);
    assert_eq!(p.kunmap(HIGH), Ok(None));
}

#[test]
fn kmap_error_display() {
    assert_eq!(
        KmapError::Full.to_string(),
        "all 1024 pkmap slots are in use"
    );
    assert_eq!(
        KmapError::NotMapped { pfn: HIGH }.to_string(),
        "kunmap of pfn 0x38000, which is not kmapped (double kunmap?)"
    );
    assert_eq!(
        KmapError::TooManyUsers { pfn: HIGH }.to_string(),
        "pfn 0x38000 kmapped 65535 times"
    );
}
