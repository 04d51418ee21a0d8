//! The GDT: flat 4 GiB code and data segments, and two task-state segments,
//! one for the running kernel and one for the double-fault task.
//!
//! ```text
//! selector  descriptor
//! 0x00      null (required)
//! 0x08      kernel code: base 0, limit 4 GiB, execute/read, 32-bit, DPL 0
//! 0x10      kernel data: base 0, limit 4 GiB, read/write,   32-bit, DPL 0
//! 0x18      TSS of the kernel task (the CPU saves its state here when a
//!           double fault switches tasks)
//! 0x20      TSS of the double-fault task (own stack, see idt.rs)
//! ```
//!
//! The loader's GDT may lie anywhere, even in memory we are about to reuse
//! (Multiboot2 spec §3.3: the OS must set up its own GDT before loading any
//! segment register), so this one is loaded first thing in `kernel_entry`.
//!
//! # References
//! - Intel SDM Vol. 3A, §3.4.5 "Segment Descriptors", §7.2 "Task Management
//!   Data Structures" (TSS, TSS descriptor, task gate).

use spin::Once;
use x86::Ring;
use x86::bits32::task::TaskStateSegment;
use x86::dtables::{DescriptorTablePointer, lgdt};
use x86::segmentation::{
    BuildDescriptor, CodeSegmentType, DataSegmentType, Descriptor, DescriptorBuilder,
    GateDescriptorBuilder, SegmentDescriptorBuilder, SegmentSelector,
};

/// Kernel code segment selector.
pub const KERNEL_CS: SegmentSelector = SegmentSelector::new(1, Ring::Ring0);
/// Kernel data segment selector.
pub const KERNEL_DS: SegmentSelector = SegmentSelector::new(2, Ring::Ring0);
/// The kernel task's TSS selector.
pub const KERNEL_TSS: SegmentSelector = SegmentSelector::new(3, Ring::Ring0);
/// The double-fault task's TSS selector.
pub const DOUBLE_FAULT_TSS: SegmentSelector = SegmentSelector::new(4, Ring::Ring0);

/// A TSS the CPU writes to during task switches, so it lives in a static
/// that Rust never forms references to except through [`TssCell::get`].
#[repr(transparent)]
pub struct TssCell(core::cell::UnsafeCell<TaskStateSegment>);

// SAFETY: single CPU; the CPU is the only other writer and only during a task
// switch, after which the kernel reads the saved state once (fatal path).
unsafe impl Sync for TssCell {}

impl TssCell {
    const fn new() -> Self {
        TssCell(core::cell::UnsafeCell::new(TaskStateSegment::new()))
    }

    /// Raw pointer to the TSS.
    pub fn get(&self) -> *mut TaskStateSegment {
        self.0.get()
    }
}

/// The kernel task's TSS.
pub static KERNEL_TASK: TssCell = TssCell::new();
/// The double-fault task's TSS.
pub static DOUBLE_FAULT_TASK: TssCell = TssCell::new();

static GDT: Once<[Descriptor; 5]> = Once::new();

fn tss_descriptor(tss: &TssCell) -> Descriptor {
    let base = tss.get() as u64;
    let limit = (core::mem::size_of::<TaskStateSegment>() - 1) as u64;
    <DescriptorBuilder as GateDescriptorBuilder<u32>>::tss_descriptor(base, limit, true)
        .present()
        .dpl(Ring::Ring0)
        .finish()
}

/// Loads the GDT, reloads every segment register from it and loads the task
/// register with the kernel task's TSS.
///
/// # Safety
/// - Call once, at boot, with interrupts disabled.
/// - The double-fault TSS must be filled in (see `idt::init`) before a double
///   fault can happen; until then a double fault is a triple fault.
pub unsafe fn init() {
    let gdt = GDT.call_once(|| {
        let code = DescriptorBuilder::code_descriptor(0, 0xF_FFFF, CodeSegmentType::ExecuteRead)
            .present()
            .dpl(Ring::Ring0)
            .limit_granularity_4kb()
            .db()
            .finish();
        let data = DescriptorBuilder::data_descriptor(0, 0xF_FFFF, DataSegmentType::ReadWrite)
            .present()
            .dpl(Ring::Ring0)
            .limit_granularity_4kb()
            .db()
            .finish();
        [
            Descriptor::NULL,
            code,
            data,
            tss_descriptor(&KERNEL_TASK),
            tss_descriptor(&DOUBLE_FAULT_TASK),
        ]
    });
    let pointer = DescriptorTablePointer::new_from_slice(gdt);
    // SAFETY:
    // - `gdt` is 'static (spin::Once) and never changes after this point.
    // - The code and data descriptors are flat, so reloading CS/DS/ES/FS/GS/SS
    //   with them changes no address the running code uses.
    // - The kernel TSS descriptor is available (not busy) and points at a
    //   'static TSS; `ltr` marks it busy, as the CPU expects for the running task.
    unsafe {
        lgdt(&pointer);
        x86::bits32::segmentation::load_cs(KERNEL_CS);
        x86::segmentation::load_ds(KERNEL_DS);
        x86::segmentation::load_es(KERNEL_DS);
        x86::segmentation::load_fs(KERNEL_DS);
        x86::segmentation::load_gs(KERNEL_DS);
        x86::segmentation::load_ss(KERNEL_DS);
        x86::task::load_tr(KERNEL_TSS);
    }
}
