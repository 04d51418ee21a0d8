//! Growing a region array (Linux `memblock_double_array()`).
//!
//! Both types start in arrays the caller provides (the kernel: two static
//! arrays of [`super::INIT_MEMBLOCK_REGIONS`]). When an edit needs more
//! slots than its array has, the array is doubled into memory memblock
//! allocates *from itself*: the new array is reserved, and the previous
//! one, unless it was the caller's initial array, is freed.
//!
//! ```text
//!  before:  memory.regions = initial[4]  (full)     reserved: [..]
//!  grow:    find 1 page free, below current_limit, not in the range
//!           being edited; copy the 4 regions; switch
//!  after:   memory.regions = [pa, pa + 4 KiB) (cap 8)
//!           reserved: [..] + [pa, pa + 4 KiB)
//! ```
//!
//! Reserving the new array is itself an edit of `reserved`, which may need
//! a slot: everything is planned (both addresses found, both arrays
//! obtained from [`PhysMem`]) before anything is switched, so a failure
//! leaves memblock untouched.

use super::{Kind, Memblock, MemblockError, MemblockRegion, MemblockType, PAGE_BYTES, PhysMem};
use super::{MEMBLOCK_NONE, allocate::align_up_checked, walk::Exclude};
use crate::addr::PhysAddr;
use core::mem::size_of;

/// Value: 2. Regions the reserved array may gain while an array is replaced:
/// freeing the old array can split one reserved region (+1) and reserving the
/// new one can add one (+1).
const BOOKKEEPING_REGIONS: usize = 2;

/// Value: 3. Extra slots a new *reserved* array gets beyond what the
/// operation asked for: its own bookkeeping ([`BOOKKEEPING_REGIONS`]), plus
/// one because freeing the old array can open one more gap inside the range
/// the caller is reserving.
const RESERVED_SLACK: usize = BOOKKEEPING_REGIONS + 1;

/// Where a bigger region array will go.
#[derive(Clone, Copy, Debug)]
struct ArrayPlan {
    pa: PhysAddr,
    bytes: u64,
    cap: usize,
}

impl Memblock {
    /// Grows `kind`'s array until `need(type)` slots fit. `range` is the
    /// range being added or removed, which a new array must not occupy.
    ///
    /// The loop runs once in practice: a new reserved array has
    /// [`RESERVED_SLACK`] spare slots for everything growing can change. It
    /// is bounded all the same, so a mistake in that reasoning shows up as an
    /// error rather than a hang.
    pub(super) fn make_room(
        &mut self,
        kind: Kind,
        range: (PhysAddr, PhysAddr),
        mem: &mut impl PhysMem,
        need: impl Fn(&MemblockType) -> usize,
    ) -> Result<(), MemblockError> {
        for _ in 0..4 {
            let t = self.ty(kind);
            let need = need(t);
            if need <= t.max() {
                return Ok(());
            }
            self.double_array(kind, need, range, mem)?;
        }
        debug_assert!(false, "memblock: growth did not make room");
        Err(MemblockError::ArrayFull {
            name: self.ty(kind).name,
        })
    }

    /// Replaces `kind`'s array with one of at least `need` slots (Linux:
    /// `memblock_double_array()`).
    ///
    /// Basic algorithm: double the capacity until it is enough, round the
    /// byte size up to whole pages, and find that much free memory below the
    /// current limit, honouring the allocation direction and avoiding
    /// `range` (whatever is being added or reserved must not end up under
    /// the array). Copy the regions over, switch to the new array, free the
    /// old one if memblock had allocated it, and reserve the new one.
    ///
    /// The reservations are edits of the `reserved` array, which needs
    /// [`BOOKKEEPING_REGIONS`] spare slots for them. If `memory` is growing
    /// and `reserved` lacks those, a bigger reserved array is planned too,
    /// away from both `range` and the new memory array. Every address is
    /// found and every array obtained before anything is switched, so a
    /// failure leaves memblock untouched.
    ///
    /// Differences from Linux: Linux excludes `range` only when growing the
    /// reserved array, so a memory array grown during `memblock_remove()`
    /// can land in the memory being removed; here `range` is always
    /// excluded. Linux `BUG()`s if recording the new array fails; here that
    /// case is planned for up front.
    fn double_array(
        &mut self,
        kind: Kind,
        need: usize,
        range: (PhysAddr, PhysAddr),
        mem: &mut impl PhysMem,
    ) -> Result<(), MemblockError> {
        let target = match kind {
            Kind::Memory => need,
            Kind::Reserved => need.saturating_add(RESERVED_SLACK),
        };
        let plan = self.plan_array(kind, target, [range, (PhysAddr(0), PhysAddr(0))])?;
        let reserved_plan = if kind == Kind::Memory
            && self.reserved.cnt + BOOKKEEPING_REGIONS > self.reserved.max()
        {
            let target = self.reserved.cnt + BOOKKEEPING_REGIONS + RESERVED_SLACK;
            let new_array = (plan.pa, plan.pa + plan.bytes);
            Some(self.plan_array(Kind::Reserved, target, [range, new_array])?)
        } else {
            None
        };

        let array = Self::take_array(mem, plan, self.ty(kind).name)?;
        let reserved_array = match reserved_plan {
            Some(p) => Some((p, Self::take_array(mem, p, self.reserved.name)?)),
            None => None,
        };

        if let Some((p, a)) = reserved_array {
            self.install_array(Kind::Reserved, p, a);
        }
        self.install_array(kind, plan, array);
        Ok(())
    }

    /// Chooses capacity and place of a new array for `kind` of at least
    /// `target` slots, avoiding `exclude`.
    fn plan_array(
        &self,
        kind: Kind,
        target: usize,
        exclude: Exclude,
    ) -> Result<ArrayPlan, MemblockError> {
        let t = self.ty(kind);
        let full = MemblockError::ArrayFull { name: t.name };
        let mut cap = t.max().max(1);
        while cap < target {
            cap = cap.checked_mul(2).ok_or(full)?;
        }
        let bytes = u64::try_from(cap)
            .ok()
            .and_then(|c| c.checked_mul(size_of::<MemblockRegion>() as u64))
            .and_then(|b| align_up_checked(b, PAGE_BYTES))
            .ok_or(full)?;
        let pa = self
            .find(bytes, PAGE_BYTES, PhysAddr(0), self.current_limit, exclude)
            .ok_or(full)?;
        Ok(ArrayPlan { pa, bytes, cap })
    }

    /// Asks `mem` for the storage of `plan`, trimmed to `plan.cap` slots; a
    /// shorter slice refuses the array.
    fn take_array(
        mem: &mut impl PhysMem,
        plan: ArrayPlan,
        name: &'static str,
    ) -> Result<&'static mut [MemblockRegion], MemblockError> {
        let array = mem.region_array(plan.pa, plan.cap);
        match array.get_mut(..plan.cap) {
            Some(array) => Ok(array),
            None => Err(MemblockError::ArrayFull { name }),
        }
    }

    /// Switches `kind` to `array` (planned as `plan`), then frees the old
    /// array if memblock allocated it and reserves the new one. Linux frees
    /// first too; the two ranges are disjoint, since the new one was free.
    fn install_array(&mut self, kind: Kind, plan: ArrayPlan, array: &'static mut [MemblockRegion]) {
        let t = self.ty_mut(kind);
        let cnt = t.cnt;
        array[..cnt].copy_from_slice(&t.regions[..cnt]);
        array[cnt..].fill(MemblockRegion::EMPTY);
        t.regions = array;
        let old = t.storage.replace((plan.pa, plan.bytes));
        if let Some((pa, bytes)) = old {
            self.reserved.remove_range(pa, pa + bytes);
        }
        self.reserved
            .add_range(plan.pa, plan.pa + plan.bytes, MEMBLOCK_NONE);
    }
}
