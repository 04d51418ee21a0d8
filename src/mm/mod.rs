//! Memory management: the address-space layout and, as later stages land,
//! memblock, the buddy allocator, final paging and kmalloc.
//!
//! Boot order (the same sequence of calls as in `kernel_entry`):
//! 1. `boot/entry.S`: temporary page directory, paging on, higher half.
//! 2. [`early_map`]: a window through which early code reads any physical
//!    page (the boot information), like Linux's `early_memremap()`.

pub mod early_map;
pub mod layout;
pub mod memblock;
pub mod setup;
