//! What every boot shows of kmalloc, the Rust collections and vmalloc, in a
//! few log lines, right after `kmem_init` (the self-tests in
//! `super::selftest` go much further).

use crate::addr::{PhysAddr, VirtAddr};
use crate::arch::x86::paging;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::paging::PTFlags;
use crate::runtime::{kmalloc, vmalloc};
use log::{info, warn};

/// kmalloc, the Rust collections and vmalloc at work, in a few log lines.
#[allow(
    unsafe_code,
    reason = "frees its samples and touches a demand-paged area"
)]
pub fn kmem_demo() {
    use alloc::{collections::BTreeMap, string::String, vec::Vec};
    let mut samples = [core::ptr::null_mut(); 5];
    for (slot, size) in samples.iter_mut().zip([13, 100, 700, 5000, 20000]) {
        *slot = kmalloc::kmalloc(size, GFP_KERNEL);
        let cache = crate::mm::slab::kmalloc_cache_name(size).unwrap_or("whole pages");
        let ksize = kmalloc::ksize(*slot).unwrap_or(0);
        info!(target: "kmalloc", "kmalloc({size}) = {:#010x} from {cache} (ksize {ksize})", *slot as u32);
    }
    for p in samples {
        // SAFETY: the samples are not used after this.
        let _ = unsafe { kmalloc::kfree(p) };
    }
    let squares: Vec<u32> = (1..=1000).map(|i| i * i).collect();
    let mut names = BTreeMap::new();
    for z in ["DMA", "Normal", "HighMem"] {
        names.insert(z, String::from(z).to_lowercase());
    }
    info!(target: "kmalloc", "Rust collections on kmalloc: Vec of {} squares (last {}, capacity {} bytes at {:#010x}), BTreeMap {:?}",
        squares.len(), squares[999], squares.capacity() * 4, squares.as_ptr() as u32, names);
    drop(squares);
    let Ok(p) = vmalloc::vmalloc(64 << 10) else {
        warn!(target: "vmalloc", "vmalloc(64 KiB) failed");
        return;
    };
    let frames = (0..16)
        .filter_map(|i| paging::translate(VirtAddr(p as u32 + i * PAGE_SIZE)).ok())
        .map(|(pa, _)| pa.pfn().0);
    let (first, last) = frames.fold((u32::MAX, 0), |(lo, hi), pfn| (lo.min(pfn), hi.max(pfn)));
    info!(target: "vmalloc", "vmalloc(64 KiB) = {:#010x}: 16 pages mapped now, frames pfn {first:#x}..{last:#x} (HighMem first when there is some)", p as u32);
    // SAFETY: the area is not touched after this.
    let _ = unsafe { vmalloc::vfree(p) };
    let Ok(d) = vmalloc::vmalloc_demand(16 * PAGE_SIZE as usize) else {
        warn!(target: "vmalloc", "vmalloc_demand(64 KiB) failed");
        return;
    };
    let faults = vmalloc::demand_faults();
    let va = VirtAddr(d as u32 + 5 * PAGE_SIZE);
    let mapped_before = paging::translate(va).is_ok();
    // SAFETY: inside the demand area just reserved: the first touch faults
    // and the handler maps a zeroed frame.
    let value = unsafe { core::ptr::read_volatile(va.as_ptr::<u32>()) };
    let (pa, _) = paging::translate(va).unwrap_or((PhysAddr(0), PTFlags::empty()));
    info!(target: "vmalloc", "vmalloc_demand(64 KiB) = {:#010x}: nothing mapped; reading {va:#010x} (mapped before: {mapped_before}) took {} demand fault, mapped frame {pa:#010x}, read {value}",
        d as u32, vmalloc::demand_faults() - faults);
    // SAFETY: as above.
    let _ = unsafe { vmalloc::vfree(d) };
}
