//! System-call error numbers (Linux `include/uapi/asm-generic/errno-base.h`
//! and, for `ENOSYS`, `errno.h`: the numbers i386 Linux returns).
//!
//! A system call returns `-errno` in EAX on failure ([`Errno::as_neg`]); the
//! user runtime turns values in `-4095..=-1` back into an error, as glibc
//! does.

#![forbid(unsafe_code)]

use core::fmt;

/// An error number, with Linux i386's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Errno {
    /// 1: operation not permitted (for example a mapping below
    /// `mmap_min_addr`).
    EPERM = 1,
    /// 2: no such file or directory (no such program).
    ENOENT = 2,
    /// 3: no such process.
    ESRCH = 3,
    /// 7: argument list too long.
    E2BIG = 7,
    /// 8: exec format error (a bad ELF file).
    ENOEXEC = 8,
    /// 9: bad file number.
    EBADF = 9,
    /// 10: no child processes (`waitpid`).
    ECHILD = 10,
    /// 11: try again (a process limit reached by `fork`).
    EAGAIN = 11,
    /// 12: out of memory, or no room in the address space, or part of a
    /// range is not mapped (`mprotect`).
    ENOMEM = 12,
    /// 13: permission denied.
    EACCES = 13,
    /// 14: bad address (a user pointer outside the process's areas).
    EFAULT = 14,
    /// 17: file exists.
    EEXIST = 17,
    /// 22: invalid argument (unaligned address, zero length, unknown bits).
    EINVAL = 22,
    /// 38: function not implemented (an unknown system call number).
    ENOSYS = 38,
}

impl Errno {
    /// The positive error number.
    pub const fn number(self) -> i32 {
        self as i32
    }

    /// The value a failing system call returns in EAX: `-errno`.
    pub const fn as_neg(self) -> i32 {
        -(self as i32)
    }

    /// The C name, such as `"ENOMEM"`.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ESRCH => "ESRCH",
            Errno::E2BIG => "E2BIG",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::EBADF => "EBADF",
            Errno::ECHILD => "ECHILD",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSYS => "ENOSYS",
        }
    }
}

/// The name and number, such as `ENOMEM (12)`.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_linux_i386() {
        let table = [
            (Errno::EPERM, 1),
            (Errno::ENOENT, 2),
            (Errno::ESRCH, 3),
            (Errno::E2BIG, 7),
            (Errno::ENOEXEC, 8),
            (Errno::EBADF, 9),
            (Errno::ECHILD, 10),
            (Errno::EAGAIN, 11),
            (Errno::ENOMEM, 12),
            (Errno::EACCES, 13),
            (Errno::EFAULT, 14),
            (Errno::EEXIST, 17),
            (Errno::EINVAL, 22),
            (Errno::ENOSYS, 38),
        ];
        for (e, n) in table {
            assert_eq!(e.number(), n);
            assert_eq!(e.as_neg(), -n);
        }
        assert_eq!(Errno::ENOMEM.to_string(), "ENOMEM (12)");
    }
}
