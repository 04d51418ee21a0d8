//! Memory management: the address-space layout, the early map window,
//! memblock, the buddy allocator, final paging and kmap, kmalloc and
//! vmalloc.
//!
//! Boot order (the same sequence as `kernel_entry`'s stages in `init`):
//! 1. `boot/entry.S`: temporary page directory mapping physical
//!    `[0x1000, BOOT_MAP_LIMIT)` at identity and at `PAGE_OFFSET`, paging on,
//!    higher half.
//! 2. [`early_map`]: a window through which early code reads any physical
//!    page (the boot information, modules), like Linux's `early_memremap()`.
//! 3. [`setup::memblock_setup`]: the memory map, logged and sanitized
//!    (`crate::boot_info::memmap`), becomes [`memblock`]'s `memory`; the first
//!    MiB, the kernel image, the boot information and the modules become its
//!    `reserved`; `mem=` trims. From here on memblock serves every
//!    allocation, below its `current_limit` (the boot direct map).
//! 4. [`buddy`]: `mem_map` ([`page::Page`], 8 bytes per frame, one per pfn
//!    below [`setup::max_pfn`]) is allocated from memblock
//!    ([`setup::alloc_mem_map`]), the [`zone`]s are laid out, and
//!    [`setup::buddy_handoff`] releases memblock's free memory to the buddy
//!    allocator (Linux `memblock_free_all()`), checks `managed = present -
//!    reserved` per zone, and computes the watermarks. memblock retires;
//!    pages now come from `alloc_pages(gfp, order)` ([`gfp`]).
//! 5. [`paging`]: the final page directory, built from buddy pages by
//!    [`paging::kernel_space::build_kernel_space`] (the direct map of low
//!    memory at `PAGE_OFFSET`, read-only kernel text, the pkmap and fixmap
//!    tables), replaces the boot one: `arch::x86::paging::paging_init`
//!    gathers the linker's facts for it, loads CR3 and sets CR0.WP, and
//!    `init::memory::paging_init` finishes the switch (the double-fault
//!    TSS's CR3 and `arch::x86::highmem::init`); every later mapping change goes through
//!    [`paging::AddressSpace`] and returns a TLB flush token. HighMem frames
//!    are reached through [`highmem`]'s kmap slots.
//! 6. [`slab`]: kmalloc. Thirteen size-class caches (8 B to 8 KiB) carve
//!    slabs out of buddy pages (reached through the direct map), larger
//!    requests get whole
//!    pages; Rust's global allocator sits on top (`runtime::kmalloc`).
//!    [`vmalloc`] hands out ranges of the vmalloc region, mapped at once or
//!    on first touch (`runtime::vmalloc`).

pub mod buddy;
pub mod early_map;
pub mod errno;
pub mod gfp;
pub mod highmem;
pub mod layout;
pub mod memblock;
pub mod memory;
pub mod mmap;
pub mod page;
pub mod paging;
pub mod setup;
pub mod slab;
pub mod tlb;
pub mod vmalloc;
pub mod zone;
