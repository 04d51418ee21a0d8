//! Typed addresses: [`Pfn`], [`PhysAddr`], [`VirtAddr`].
//!
//! Three kinds of number describe memory, and mixing them up is the classic
//! memory-management bug: a page frame number where a byte address was
//! meant, a physical address dereferenced as if it were virtual. Each kind
//! gets its own `#[repr(transparent)]` wrapper, and every interface between
//! modules takes and returns these types, never a bare integer. Converting
//! is explicit and named after Linux's helpers (`PFN_PHYS`, `PHYS_PFN`,
//! `__pa`, `__va`):
//!
//! ```text
//!  Pfn ──phys()──> PhysAddr ──phys_to_virt()──> VirtAddr   (lowmem only)
//!  Pfn <──pfn()─── PhysAddr <──virt_to_phys()── VirtAddr   (direct map only)
//! ```
//!
//! Widths:
//! - [`Pfn`]: 32 bits. With 4 KiB pages it numbers frames up to 2^44 bytes.
//! - [`VirtAddr`]: 32 bits, the i386 linear address.
//! - [`PhysAddr`]: 64 bits, like Linux's `phys_addr_t` under
//!   `CONFIG_PHYS_ADDR_T_64BIT`. The memory map describes RAM above 4 GiB,
//!   memblock's ranges end *at* 4 GiB (a 33-bit number), and PAE paging
//!   addresses 36 bits. A two-level page-table entry holds a frame below
//!   4 GiB; the page-table code takes a [`Pfn`] or checks.
//!
//! The inner integer is public: arithmetic on it is sometimes the clearest
//! way to say what happens, and the wrapper's job is to make the kind of
//! number visible at every boundary, not to hide it.

use crate::mm::layout::{PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE};
use core::fmt;
use core::ops::{Add, Sub};

/// A page frame number: physical address `>> PAGE_SHIFT`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Pfn(pub u32);

/// A physical address in bytes (64-bit: see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

/// A 32-bit virtual (linear) address in bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(pub u32);

impl Pfn {
    /// The frame's first byte (Linux `PFN_PHYS`).
    pub const fn phys(self) -> PhysAddr {
        PhysAddr((self.0 as u64) << PAGE_SHIFT)
    }

    /// The frame `n` frames further on.
    ///
    /// # Panics
    /// On overflow of the 32-bit frame number.
    pub const fn add(self, n: u32) -> Pfn {
        match self.0.checked_add(n) {
            Some(p) => Pfn(p),
            None => panic!("pfn overflow"),
        }
    }

    /// Frames from `self` up to (not including) `end`: `[self, end)`.
    pub fn range_to(self, end: Pfn) -> impl DoubleEndedIterator<Item = Pfn> + ExactSizeIterator {
        (self.0..end.0).map(Pfn)
    }

    /// Whether the frame number is a multiple of `1 << order`, i.e. the
    /// frame can head a block of that order.
    pub const fn is_aligned(self, order: u32) -> bool {
        self.0 & ((1 << order) - 1) == 0
    }
}

impl PhysAddr {
    /// A 32-bit physical address (from a two-level entry, CR3, a Multiboot
    /// field), widened.
    pub const fn from_u32(pa: u32) -> PhysAddr {
        PhysAddr(pa as u64)
    }

    /// The frame holding this address (Linux `PHYS_PFN`, rounds down).
    ///
    /// # Panics
    /// Above 2^44 bytes, where a 32-bit pfn ends.
    pub const fn pfn(self) -> Pfn {
        let pfn = self.0 >> PAGE_SHIFT;
        assert!(pfn <= u32::MAX as u64, "physical address beyond 2^44");
        Pfn(pfn as u32)
    }

    /// The first frame at or above this address (Linux `PFN_UP`).
    pub const fn pfn_up(self) -> Pfn {
        PhysAddr(self.0 + (PAGE_SIZE as u64 - 1)).pfn()
    }

    /// Byte offset inside its page.
    pub const fn page_offset(self) -> u32 {
        (self.0 & (PAGE_SIZE as u64 - 1)) as u32
    }

    /// Whether the address is page-aligned.
    pub const fn is_page_aligned(self) -> bool {
        self.page_offset() == 0
    }

    /// The address as 32 bits, for a two-level page-table entry or a
    /// direct-map address.
    ///
    /// # Panics
    /// At or above 4 GiB.
    pub const fn as_u32(self) -> u32 {
        assert!(
            self.0 <= u32::MAX as u64,
            "physical address at or above 4 GiB"
        );
        self.0 as u32
    }
}

impl VirtAddr {
    /// Index of the page-directory entry that maps it (`va >> 22`).
    pub const fn pdx(self) -> u32 {
        crate::mm::layout::pdx(self.0)
    }

    /// Index of the page-table entry that maps it (`(va >> 12) & 1023`).
    pub const fn ptx(self) -> u32 {
        crate::mm::layout::ptx(self.0)
    }

    /// Byte offset inside its page.
    pub const fn page_offset(self) -> u32 {
        self.0 & (PAGE_SIZE - 1)
    }

    /// The start of its page.
    pub const fn page_align_down(self) -> VirtAddr {
        VirtAddr(self.0 & !(PAGE_SIZE - 1))
    }

    /// Whether the address is page-aligned.
    pub const fn is_page_aligned(self) -> bool {
        self.page_offset() == 0
    }

    /// Whether it lies in the kernel half (`>= PAGE_OFFSET`).
    pub const fn is_kernel(self) -> bool {
        self.0 >= PAGE_OFFSET
    }

    /// The address as a raw pointer (for the kernel, or a host test's
    /// emulated memory).
    pub const fn as_ptr<T>(self) -> *const T {
        self.0 as usize as *const T
    }

    /// The address as a raw mutable pointer.
    pub const fn as_mut_ptr<T>(self) -> *mut T {
        self.0 as usize as *mut T
    }
}

/// `Pfn + frames`.
impl Add<u32> for Pfn {
    type Output = Pfn;
    fn add(self, n: u32) -> Pfn {
        Pfn::add(self, n)
    }
}

/// `Pfn - Pfn`: the number of frames between them.
impl Sub for Pfn {
    type Output = u32;
    fn sub(self, rhs: Pfn) -> u32 {
        self.0 - rhs.0
    }
}

/// `PhysAddr + bytes`.
impl Add<u64> for PhysAddr {
    type Output = PhysAddr;
    fn add(self, n: u64) -> PhysAddr {
        PhysAddr(self.0 + n)
    }
}

/// `PhysAddr - PhysAddr`: bytes between them.
impl Sub for PhysAddr {
    type Output = u64;
    fn sub(self, rhs: PhysAddr) -> u64 {
        self.0 - rhs.0
    }
}

/// `VirtAddr + bytes`.
impl Add<u32> for VirtAddr {
    type Output = VirtAddr;
    fn add(self, n: u32) -> VirtAddr {
        VirtAddr(self.0 + n)
    }
}

/// `VirtAddr - VirtAddr`: bytes between them.
impl Sub for VirtAddr {
    type Output = u32;
    fn sub(self, rhs: VirtAddr) -> u32 {
        self.0 - rhs.0
    }
}

impl From<Pfn> for PhysAddr {
    fn from(p: Pfn) -> PhysAddr {
        p.phys()
    }
}

/// The formats print the bare number, so log lines read as before:
/// `{:#010x}` of a `PhysAddr` is `0x00100000`; `{}` of a `Pfn` is decimal.
macro_rules! number_formats {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x})", stringify!($t), self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::LowerHex for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
        impl fmt::UpperHex for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::UpperHex::fmt(&self.0, f)
            }
        }
    )*};
}
number_formats!(Pfn, PhysAddr, VirtAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(Pfn(0x100).phys(), PhysAddr(0x10_0000));
        assert_eq!(PhysAddr(0x10_0fff).pfn(), Pfn(0x100));
        assert_eq!(PhysAddr(0x10_0001).pfn_up(), Pfn(0x101));
        assert_eq!(PhysAddr(0x10_0000).pfn_up(), Pfn(0x100));
        // A pfn past 4 GiB is fine; its 32-bit physical address is not.
        assert_eq!(Pfn(0x10_0000).phys(), PhysAddr(1 << 32));
        assert_eq!(VirtAddr(0xc010_1234).pdx(), 0x300);
        assert_eq!(VirtAddr(0xc010_1234).ptx(), 0x101);
        assert_eq!(VirtAddr(0xc010_1234).page_offset(), 0x234);
        assert_eq!(Pfn(3) + 4, Pfn(7));
        assert_eq!(Pfn(7) - Pfn(3), 4);
        assert_eq!(
            Pfn(8).range_to(Pfn(11)).collect::<Vec<_>>(),
            [Pfn(8), Pfn(9), Pfn(10)]
        );
        assert!(Pfn(16).is_aligned(4) && !Pfn(24).is_aligned(4));
    }

    #[test]
    fn formats_print_the_number() {
        assert_eq!(format!("{:#010x}", PhysAddr(0x1000)), "0x00001000");
        assert_eq!(format!("{}", Pfn(42)), "42");
        assert_eq!(format!("{:#x}", VirtAddr(0xc000_0000)), "0xc0000000");
        assert_eq!(format!("{:?}", Pfn(16)), "Pfn(0x10)");
    }

    #[test]
    #[should_panic(expected = "at or above 4 GiB")]
    fn as_u32_refuses_4_gib() {
        let _ = PhysAddr(1 << 32).as_u32();
    }

    #[test]
    fn wrappers_are_transparent() {
        assert_eq!(core::mem::size_of::<Pfn>(), 4);
        assert_eq!(core::mem::size_of::<VirtAddr>(), 4);
        assert_eq!(core::mem::size_of::<PhysAddr>(), 8);
    }
}
