//! Statically allocated pages with checked volatile access.

use core::cell::UnsafeCell;

/// Size of a page (i386).
pub const PAGE_SIZE: usize = 4096;

/// `N` page-aligned pages in the program image: in `.bss` (demand-zero) as
/// a zero-initialised static, which is what the tests want.
///
/// Access is by byte or word, volatile (the compiler may not merge, drop or
/// move an access across a system call or a fault the test counts on), and
/// bounds-checked. A process is single-threaded, so `&Pages` being shared
/// is sound: after `fork` the child has its own copy.
#[repr(C, align(4096))]
pub struct Pages<const N: usize>(UnsafeCell<[[u8; PAGE_SIZE]; N]>);

// SAFETY: processes are single-threaded (no threads exist in this runtime),
// so no two accesses can race; `fork` gives the child a copy, not a share.
unsafe impl<const N: usize> Sync for Pages<N> {}

impl<const N: usize> Pages<N> {
    /// Zeroed pages (put in `.bss` when used for a `static`).
    pub const fn zeroed() -> Pages<N> {
        Pages(UnsafeCell::new([[0; PAGE_SIZE]; N]))
    }

    /// Number of pages.
    pub const fn pages(&self) -> usize {
        N
    }

    /// Address of the first byte.
    pub fn addr(&self) -> usize {
        self.0.get() as usize
    }

    fn byte_ptr(&self, page: usize, offset: usize) -> *mut u8 {
        assert!(
            page < N && offset < PAGE_SIZE,
            "Pages access out of bounds: page {page}, offset {offset}"
        );
        // In bounds: checked above.
        self.0
            .get()
            .cast::<u8>()
            .wrapping_add(page * PAGE_SIZE + offset)
    }

    /// Reads byte `offset` of page `page`.
    ///
    /// # Panics
    /// If `page >= N` or `offset >= PAGE_SIZE`.
    pub fn read(&self, page: usize, offset: usize) -> u8 {
        let p = self.byte_ptr(page, offset);
        // SAFETY: `p` is in bounds of the static; single-threaded (see the
        // `Sync` impl), so no other access overlaps.
        unsafe { p.read_volatile() }
    }

    /// Writes byte `offset` of page `page`.
    ///
    /// # Panics
    /// If `page >= N` or `offset >= PAGE_SIZE`.
    pub fn write(&self, page: usize, offset: usize, value: u8) {
        let p = self.byte_ptr(page, offset);
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) }
    }
}
