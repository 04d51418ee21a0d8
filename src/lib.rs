//! A 32-bit i386 Multiboot kernel that brings up memory the way Linux did.
//!
//! This library holds everything except the entry point, the panic handler
//! and the boot assembly (those are in `src/main.rs` and `boot/`). Modules
//! other than [`arch`] are pure Rust: they build on the host (`std` in tests)
//! and are unit-tested there with `cargo test`. [`arch`] is the only place
//! with instructions, port I/O and control registers, and is compiled only for
//! the kernel target.
//!
//! Boot order (see `kernel_entry` in `src/main.rs`):
//! serial → GDT/IDT → CPU identification → boot information ([`boot_info`],
//! through [`mm::early_map`]) → command line ([`cmdline`]) → logger
//! ([`klog`]) → memory map and memblock ([`mm::setup`], [`mm::memblock`]) →
//! mem_map, zones and the hand-off to the buddy allocator ([`mm::buddy`]) →
//! final paging ([`mm::paging`]) → kmalloc and vmalloc ([`mm::slab`],
//! [`mm::vmalloc`]) → self-tests → boot data checked intact → `KERNEL OK`.

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
