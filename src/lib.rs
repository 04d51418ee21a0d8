//! A 32-bit i386 Multiboot kernel that brings up memory the way Linux did.
//!
//! This library holds everything except the entry point, the panic handler
//! and the boot assembly (those are in `src/main.rs` and `boot/`). Where a
//! file goes:
//! - pure logic ([`boot_info`], [`cmdline`], [`cpu_info`], [`klog`], [`mm`],
//!   [`process`], [`trap`], [`addr`]): builds on the host (`std` in tests) and is
//!   unit-tested there with `cargo test`;
//! - `arch`: the only code that executes instructions, port I/O, control
//!   registers or writes the live page tables;
//! - `runtime`: kernel runtime glue, the pure allocators wired to the
//!   running kernel's memory and locks (kmalloc, vmalloc, memblock's window);
//! - `init`: the boot stages `kernel_entry` calls, their reports, the demo,
//!   the self-tests and the crash tests.
//!
//! `arch`, `runtime` and `init` are compiled only for the kernel target.
//! `unsafe` is denied at the crate root and allowed on `arch` and on the few
//! items elsewhere that need it, each with its reason.
//!
//! Boot order (see `kernel_entry` in `src/main.rs`, stages in `init`):
//! serial → GDT/IDT → CPU identification → boot information ([`boot_info`],
//! through [`mm::early_map`]) → command line ([`cmdline`]) → logger
//! ([`klog`]) → memory map and memblock ([`mm::setup`], [`mm::memblock`]) →
//! mem_map ([`mm::setup::alloc_mem_map`]), zones and the hand-off to the
//! buddy allocator ([`mm::buddy`]) → final paging (built by
//! [`mm::paging::kernel_space::build_kernel_space`], loaded by
//! `arch::x86::paging::paging_init`) →
//! kmalloc and vmalloc ([`mm::slab`], [`mm::vmalloc`]) → self-tests → boot
//! data checked intact → early map window retired → `KERNEL OK`.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

extern crate alloc;

pub mod addr;
pub mod boot_info;
pub mod cmdline;
pub mod cpu_info;
pub mod klog;
pub mod mm;
pub mod process;
pub mod trap;

#[cfg(test)]
pub mod test_support;

#[cfg(all(target_arch = "x86", target_os = "none"))]
#[allow(
    unsafe_code,
    reason = "the hardware layer: inline assembly, port I/O, registers, page tables"
)]
pub mod arch;
#[cfg(all(target_arch = "x86", target_os = "none"))]
pub mod init;
#[cfg(all(target_arch = "x86", target_os = "none"))]
pub mod runtime;
