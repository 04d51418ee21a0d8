//! The IDT: a handler for each of the 32 CPU exceptions.
//!
//! Vectors 0..32 except 8 use interrupt gates to an entry stub (below, in
//! `global_asm!`). Each stub makes the stack look the same for every vector,
//! pushing a 0 where the CPU pushes no error code, then the vector, and jumps
//! to `trap_common`, which saves the registers and calls [`trap_handler`]
//! with a pointer to the [`TrapFrame`]:
//!
//! ```text
//!  higher addresses
//!  | EFLAGS      |  pushed by the CPU (no SS:ESP: no privilege change)
//!  | CS          |
//!  | EIP         |  the faulting instruction (#PF, #GP, #UD...) or the next one (#BP)
//!  | error code  |  by the CPU, or 0 by the stub
//!  | vector      |  by the stub
//!  | EAX ... EDI |  pushal
//!  | DS ES FS GS |  trap_common
//!  +-------------+ <- &TrapFrame
//! ```
//!
//! The double fault (vector 8) uses a **task gate** instead: the CPU switches
//! to a separate task with its own stack. A double fault is usually a fault
//! while delivering another one, typically a kernel stack overflow: the push
//! of the #PF frame hits the guard page again. An interrupt gate would push
//! onto that same broken stack and triple-fault (the machine resets); the task
//! switch saves the broken state in the kernel TSS and runs
//! [`double_fault_task`] on a good stack, which reports it.
//!
//! Every exception is fatal (the `PANIC:` line, exit status 35), except a
//! breakpoint the self-test announced with [`expect_breakpoint`], a page
//! fault of a memory probe (`super::probe`), and a page fault that a handler
//! registered for its region resolves ([`register_page_fault_handler`]). A
//! fatal page fault is reported with the region the address lies in and the
//! page-table walk for it (PDE and PTE with their flags).
//!
//! # References
//! - Intel SDM Vol. 3A, §6.10 "Interrupt Descriptor Table", §6.11 "IDT
//!   Descriptors", §6.12.1 "Exception- or Interrupt-Handler Procedures"
//!   (the stack frame), §6.12.2 "Interrupt Tasks" (task gates), §6.15
//!   "Exception and Interrupt Reference" (#DF, #PF).

use super::{boot_stack, cpu, exit, gdt, paging, probe, serial};
use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::layout::{Region, region_of};
use crate::trap::{self, NR_EXCEPTIONS, PageFaultError};
use core::fmt;
use portable_atomic::{AtomicBool, AtomicU32, Ordering};
use spin::Mutex;
use spin::Once;
use x86::Ring;
use x86::dtables::{DescriptorTablePointer, lidt};
use x86::segmentation::{
    BuildDescriptor, Descriptor, DescriptorBuilder, GateDescriptorBuilder,
    TaskGateDescriptorBuilder,
};

core::arch::global_asm!(
    r#"
    .macro TRAP_NOERR vec
    .section .text.traps, "ax"
    trap_stub_\vec:
        pushl $0
        pushl $\vec
        jmp trap_common
    .section .rodata.trap_stubs, "a"
    .long trap_stub_\vec
    .endm

    .macro TRAP_ERR vec
    .section .text.traps, "ax"
    trap_stub_\vec:
        pushl $\vec
        jmp trap_common
    .section .rodata.trap_stubs, "a"
    .long trap_stub_\vec
    .endm

    .section .rodata.trap_stubs, "a"
    .balign 4
    .globl trap_stub_table
    trap_stub_table:
    TRAP_NOERR 0
    TRAP_NOERR 1
    TRAP_NOERR 2
    TRAP_NOERR 3
    TRAP_NOERR 4
    TRAP_NOERR 5
    TRAP_NOERR 6
    TRAP_NOERR 7
    TRAP_ERR   8
    TRAP_NOERR 9
    TRAP_ERR   10
    TRAP_ERR   11
    TRAP_ERR   12
    TRAP_ERR   13
    TRAP_ERR   14
    TRAP_NOERR 15
    TRAP_NOERR 16
    TRAP_ERR   17
    TRAP_NOERR 18
    TRAP_NOERR 19
    TRAP_NOERR 20
    TRAP_ERR   21
    TRAP_NOERR 22
    TRAP_NOERR 23
    TRAP_NOERR 24
    TRAP_NOERR 25
    TRAP_NOERR 26
    TRAP_NOERR 27
    TRAP_NOERR 28
    TRAP_ERR   29
    TRAP_ERR   30
    TRAP_NOERR 31

    .section .text.traps, "ax"
    trap_common:
        /* Save the interrupted code's registers; together with the CPU's and
         * the stub's pushes they form a TrapFrame. */
        pushal
        pushl %ds
        pushl %es
        pushl %fs
        pushl %gs
        /* Rust code expects DF = 0 and a 16-byte aligned stack at the call
         * (i386 System V ABI). EBX is callee-saved, so it keeps the frame
         * pointer across the call. */
        cld
        movl %esp, %ebx
        andl $-16, %esp
        subl $12, %esp
        pushl %ebx
        call trap_handler
        movl %ebx, %esp
        popl %gs
        popl %fs
        popl %es
        popl %ds
        popal
        addl $8, %esp       /* vector and error code */
        iret
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    /// Addresses of the 32 entry stubs, in vector order.
    static trap_stub_table: [u32; NR_EXCEPTIONS];
}

/// The saved state of the interrupted code, as `trap_common` lays it out.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// Segment registers, pushed by `trap_common`.
    pub gs: u32,
    /// See `gs`.
    pub fs: u32,
    /// See `gs`.
    pub es: u32,
    /// See `gs`.
    pub ds: u32,
    /// General registers, in `pushal` order (last pushed first).
    pub edi: u32,
    /// See `edi`.
    pub esi: u32,
    /// See `edi`.
    pub ebp: u32,
    /// ESP as `pushal` saw it (inside the frame); see [`TrapFrame::faulting_esp`].
    pub esp_in_frame: u32,
    /// See `edi`.
    pub ebx: u32,
    /// See `edi`.
    pub edx: u32,
    /// See `edi`.
    pub ecx: u32,
    /// See `edi`.
    pub eax: u32,
    /// Exception vector, pushed by the stub.
    pub vector: u32,
    /// Error code, pushed by the CPU or (0) by the stub.
    pub error_code: u32,
    /// Instruction pointer, pushed by the CPU.
    pub eip: u32,
    /// Code segment, pushed by the CPU.
    pub cs: u32,
    /// Flags, pushed by the CPU.
    pub eflags: u32,
}

impl TrapFrame {
    /// ESP of the interrupted code: just above the CPU-pushed EFLAGS.
    pub fn faulting_esp(&self) -> u32 {
        core::ptr::addr_of!(self.eflags) as u32 + 4
    }
}

static IDT: Once<[Descriptor; NR_EXCEPTIONS]> = Once::new();

#[repr(C, align(16))]
struct DoubleFaultStack([u8; 8192]);

/// The double-fault task's stack.
static mut DOUBLE_FAULT_STACK: DoubleFaultStack = DoubleFaultStack([0; 8192]);

static EXPECT_BREAKPOINT: AtomicBool = AtomicBool::new(false);
/// CR2 of the page fault being reported.
static FAULT_CR2: AtomicU32 = AtomicU32::new(0);
static BREAKPOINTS_CAUGHT: AtomicU32 = AtomicU32::new(0);

/// Fills the double-fault TSS, builds the IDT and loads it.
///
/// # Safety
/// - Call once, at boot, after `gdt::init` and with interrupts disabled.
/// - CR3 must hold the page directory that stays in use: the double-fault
///   task loads the CR3 saved here (a later CR3 switch must update it).
pub unsafe fn init() {
    let stack_top = core::ptr::addr_of!(DOUBLE_FAULT_STACK) as u32 + 8192;
    // SAFETY: nothing else refers to the double-fault TSS yet (no double fault
    // can be delivered before `lidt` below), and the CPU only reads it.
    let tss = unsafe { &mut *gdt::DOUBLE_FAULT_TASK.get() };
    let ds = gdt::KERNEL_DS.bits();
    tss.cr3 = cpu::read_cr3();
    tss.eip = double_fault_task as *const () as u32;
    tss.esp = stack_top;
    tss.esp0 = stack_top;
    tss.ss0 = ds;
    tss.eflags = 0x2; // bit 1 is always 1; IF = 0
    tss.cs = gdt::KERNEL_CS.bits();
    tss.ss = ds;
    tss.ds = ds;
    tss.es = ds;
    tss.fs = ds;
    tss.gs = ds;

    let idt = IDT.call_once(|| {
        // SAFETY: trap_stub_table is a read-only table emitted above.
        let stubs = unsafe { &trap_stub_table };
        core::array::from_fn(|vector| {
            if vector == usize::from(trap::DOUBLE_FAULT_VECTOR) {
                DescriptorBuilder::task_gate_descriptor(gdt::DOUBLE_FAULT_TSS)
                    .present()
                    .dpl(Ring::Ring0)
                    .finish()
            } else {
                <DescriptorBuilder as GateDescriptorBuilder<u32>>::interrupt_descriptor(
                    gdt::KERNEL_CS,
                    stubs[vector],
                )
                .present()
                .dpl(Ring::Ring0)
                .finish()
            }
        })
    });
    // SAFETY: the IDT is 'static and complete: every gate points at a stub in
    // .text or at the double-fault TSS filled in above.
    unsafe { lidt(&DescriptorTablePointer::new_from_slice(idt)) };
}

/// Makes the double-fault task switch to page directory `pgd` (called when
/// the final page directory replaces the boot one).
///
/// # Safety
/// `pgd` must be the page directory that stays in use; interrupts disabled.
///
/// # Panics
/// If `pgd` lies at or above 4 GiB (CR3 holds 32 bits).
pub unsafe fn set_double_fault_cr3(pgd: PhysAddr) {
    let cr3 = pgd.as_u32();
    // SAFETY: the CPU reads the double-fault TSS only during a double fault,
    // which cannot happen during this single aligned store.
    unsafe { (*gdt::DOUBLE_FAULT_TASK.get()).cr3 = cr3 };
}

/// Makes the next `#BP` return instead of being fatal (self-test only).
pub fn expect_breakpoint() {
    EXPECT_BREAKPOINT.store(true, Ordering::SeqCst);
}

/// Breakpoints caught so far.
pub fn breakpoints_caught() -> u32 {
    BREAKPOINTS_CAUGHT.load(Ordering::SeqCst)
}

/// Writes one `[ERROR] trap: ...` line without the serial lock (the fault
/// may have struck while it was held).
fn report(args: fmt::Arguments<'_>) {
    serial::write_fmt_unlocked(format_args!("[ERROR] trap: {args}\n"));
}

/// The region of the kernel's address space `addr` lies in, for fault
/// reports (see `crate::mm::layout::region_of`).
pub fn describe_address(addr: VirtAddr) -> Region {
    region_of(addr, &paging::kernel_layout())
}

/// A handler for page faults in one region (the demand paging of
/// vmalloc): returns `true` if it resolved the fault (the instruction is
/// retried), `false` to let the fault be fatal.
pub type PageFaultHandler = fn(cr2: VirtAddr, error: PageFaultError) -> bool;

static PAGE_FAULT_HANDLERS: Mutex<heapless::Vec<(Region, PageFaultHandler), 4>> =
    Mutex::new(heapless::Vec::new());

/// Routes page faults in `region` to `handler` before they are fatal.
///
/// # Panics
/// If more than 4 handlers are registered.
pub fn register_page_fault_handler(region: Region, handler: PageFaultHandler) {
    let mut handlers = PAGE_FAULT_HANDLERS.lock();
    handlers.retain(|(r, _)| *r != region);
    assert!(
        handlers.push((region, handler)).is_ok(),
        "too many page-fault handlers"
    );
}

/// The registered handler for `region`, if any (never blocks: a fault while
/// the list is being changed finds none).
fn page_fault_handler(region: Region) -> Option<PageFaultHandler> {
    let handlers = PAGE_FAULT_HANDLERS.try_lock()?;
    handlers.iter().find(|(r, _)| *r == region).map(|&(_, h)| h)
}

/// Rust side of every exception except the double fault.
///
/// Returns only for an announced breakpoint; everything else is reported and
/// ends on the fatal path.
#[unsafe(no_mangle)]
extern "C" fn trap_handler(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == trap::BREAKPOINT_VECTOR && EXPECT_BREAKPOINT.swap(false, Ordering::SeqCst) {
        BREAKPOINTS_CAUGHT.fetch_add(1, Ordering::SeqCst);
        return; // EIP already points past int3
    }
    if vector == trap::PAGE_FAULT_VECTOR {
        let cr2 = VirtAddr(cpu::read_cr2());
        // As Linux's do_page_fault: first let the region resolve the fault
        // (demand paging), then the exception fixup (a probe), else fatal.
        if let Some(handler) = page_fault_handler(describe_address(cr2))
            && handler(cr2, PageFaultError(frame.error_code))
        {
            return; // resolved (e.g. demand paging): retry the instruction
        }
        if let Some(resume) = probe::fixup(frame.eip, frame.error_code, cr2) {
            frame.eip = resume.eip;
            frame.eax = resume.eax;
            return; // a probe's expected fault: it returns "faulted"
        }
        FAULT_CR2.store(cr2.0, Ordering::SeqCst);
    }
    let (mnemonic, name) = trap::exception_name(vector);
    report(format_args!(
        "CPU exception {vector} {mnemonic} ({name}), error code {:#010x}",
        frame.error_code
    ));
    if let Some(text) = trap::describe_error_code(vector, frame.error_code) {
        report(format_args!("  error code means: {text}"));
    }
    report(format_args!(
        "  EIP {:#010x}  CS {:#06x}  EFLAGS {:#010x}  ESP {:#010x}",
        frame.eip,
        // The upper half of a pushed selector is undefined on some CPUs.
        frame.cs & 0xffff,
        frame.eflags,
        frame.faulting_esp()
    ));
    report(format_args!(
        "  EAX {:#010x}  EBX {:#010x}  ECX {:#010x}  EDX {:#010x}",
        frame.eax, frame.ebx, frame.ecx, frame.edx
    ));
    report(format_args!(
        "  ESI {:#010x}  EDI {:#010x}  EBP {:#010x}  CR3 {:#010x}",
        frame.esi,
        frame.edi,
        frame.ebp,
        cpu::read_cr3()
    ));
    if vector == trap::PAGE_FAULT_VECTOR {
        // CR2 as read on entry (a fault inside a region handler would have
        // changed the register since).
        let cr2 = VirtAddr(FAULT_CR2.load(Ordering::SeqCst));
        let code = trap::PageFaultError(frame.error_code);
        let region = describe_address(cr2);
        report(format_args!("  CR2 {cr2:#010x} lies in {region}"));
        match paging::walk_current(cr2) {
            Some(walk) => report(format_args!("  page-table walk: {walk}")),
            None => report(format_args!(
                "  page-table walk: the page tables lie outside the direct map"
            )),
        }
        exit::fatal(format_args!(
            "{mnemonic} {name} at EIP {:#010x}: {code} access to {cr2:#010x} ({})",
            frame.eip,
            region.name()
        ));
    }
    match trap::describe_error_code(vector, frame.error_code) {
        Some(text) => exit::fatal(format_args!(
            "{mnemonic} {name} at EIP {:#010x}: error code {:#x} ({text})",
            frame.eip, frame.error_code
        )),
        None => exit::fatal(format_args!("{mnemonic} {name} at EIP {:#010x}", frame.eip)),
    }
}

/// Entry point of the double-fault task (reached through the task gate, on
/// its own stack; the CPU pushed the error code, always 0, where a return
/// address would be, so this function must never return).
extern "C" fn double_fault_task() -> ! {
    // SAFETY: the task switch has saved the faulting state into the kernel
    // TSS; nothing else writes it, and we only read a copy.
    let saved = unsafe { core::ptr::read(gdt::KERNEL_TASK.get()) };
    let (eip, esp, ebp) = (saved.eip, saved.esp, saved.ebp);
    let cr2 = VirtAddr(cpu::read_cr2());
    report(format_args!(
        "CPU exception 8 #DF (double fault), handled by a task switch"
    ));
    report(format_args!(
        "  faulting task: EIP {eip:#010x}  ESP {esp:#010x}  EBP {ebp:#010x}  CR2 {cr2:#010x}"
    ));
    let (guard, bottom, _) = boot_stack();
    if (guard..bottom + 64).contains(&VirtAddr(esp)) || (guard..bottom).contains(&cr2) {
        exit::fatal(format_args!(
            "#DF double fault at EIP {eip:#010x}: kernel stack overflow, ESP {esp:#010x} \
             reached the guard page [{guard:#010x}, {bottom:#010x})"
        ));
    }
    exit::fatal(format_args!(
        "#DF double fault at EIP {eip:#010x}, ESP {esp:#010x}, CR2 {cr2:#010x}"
    ))
}
