//! Kernel runtime glue: the pure allocators of `crate::mm` wired to the
//! running kernel's memory and locks, without executing a privileged
//! instruction themselves (those are `crate::arch::x86`'s).
//!
//! - [`direct_map`]: the boot direct map as memblock's `PhysMem`, the
//!   initial region arrays, `mem_map` as a slice, the buddy allocator's
//!   zeroing hook;
//! - [`kmalloc`]: the mm lock over the buddy allocator and the slab caches,
//!   the slab's direct-map memory, Rust's `#[global_allocator]`;
//! - [`vmalloc`]: vmalloc and its demand-paging fault handler.
//!
//! Compiled only for the kernel target.

#[allow(
    unsafe_code,
    reason = "memblock's window writes through the boot direct map"
)]
pub mod direct_map;
pub mod kmalloc;
pub mod vmalloc;
