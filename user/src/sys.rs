//! System calls: Linux i386 ABI and numbers.
//!
//! `int 0x80` with the number in `EAX` and up to six arguments in `EBX`,
//! `ECX`, `EDX`, `ESI`, `EDI`, `EBP`; the result comes back in `EAX`, and a
//! value in `[-4095, -1]` is `-errno` (Linux's `IS_ERR_VALUE`; an address
//! returned by `mmap2` may be above 2 GiB, so only that range is an error).
//! The numbers are Linux's `arch/x86/entry/syscalls/syscall_32.tbl`.
//!
//! `mmap` is Linux's `mmap2` (192: six register arguments, the offset in
//! pages), used only for anonymous private mappings ([`mmap_anon`]); the old
//! `mmap` (90, one pointer to an argument block) is not used.
//!
//! Register constraints: the target keeps frame pointers, so `EBP` cannot be
//! an operand of `asm!`, and LLVM reserves `ESI` on i686 as its base
//! pointer. Calls with four or more arguments therefore pass `ESI`, `EDI`
//! and `EBP` in a small array whose address is in `EDI`, and the assembly
//! saves `ESI` and `EBP`, loads the three registers, traps, and restores
//! them.

use core::arch::asm;
use core::ffi::{CStr, c_char};
use core::fmt;

/// Linux i386 system call numbers used here.
pub mod nr {
    /// `exit(status)`.
    pub const EXIT: u32 = 1;
    /// `fork()`.
    pub const FORK: u32 = 2;
    /// `write(fd, buf, count)`.
    pub const WRITE: u32 = 4;
    /// `waitpid(pid, *status, options)`.
    pub const WAITPID: u32 = 7;
    /// `execve(path, argv, envp)`.
    pub const EXECVE: u32 = 11;
    /// `getpid()`.
    pub const GETPID: u32 = 20;
    /// `brk(addr)`.
    pub const BRK: u32 = 45;
    /// `munmap(addr, len)`.
    pub const MUNMAP: u32 = 91;
    /// `mprotect(addr, len, prot)`.
    pub const MPROTECT: u32 = 125;
    /// `sched_yield()`.
    pub const SCHED_YIELD: u32 = 158;
    /// `mmap2(addr, len, prot, flags, fd, pgoff)`.
    pub const MMAP2: u32 = 192;
}

/// `PROT_*` and `MAP_*` values (Linux, x86).
pub mod mman {
    /// No access.
    pub const PROT_NONE: u32 = 0;
    /// Pages may be read.
    pub const PROT_READ: u32 = 1;
    /// Pages may be written.
    pub const PROT_WRITE: u32 = 2;
    /// Pages may be executed.
    pub const PROT_EXEC: u32 = 4;
    /// Changes are private to the process (copy-on-write after `fork`).
    pub const MAP_PRIVATE: u32 = 0x02;
    /// Place the mapping exactly at `addr`.
    pub const MAP_FIXED: u32 = 0x10;
    /// Not backed by a file: zero-filled on demand.
    pub const MAP_ANONYMOUS: u32 = 0x20;
}

/// A Linux error number (positive, as in `errno.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub u32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// No such process.
    pub const ESRCH: Errno = Errno(3);
    /// Interrupted system call.
    pub const EINTR: Errno = Errno(4);
    /// Argument list too long.
    pub const E2BIG: Errno = Errno(7);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(9);
    /// No child processes.
    pub const ECHILD: Errno = Errno(10);
    /// Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// Function not implemented.
    pub const ENOSYS: Errno = Errno(38);

    /// The symbolic name, or `None` for a number not listed here.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ESRCH => "ESRCH",
            Errno::EINTR => "EINTR",
            Errno::E2BIG => "E2BIG",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::EBADF => "EBADF",
            Errno::ECHILD => "ECHILD",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSYS => "ENOSYS",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// Largest errno a system call returns (Linux `MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

/// Splits a raw result into a value or an [`Errno`] (Linux `IS_ERR_VALUE`).
pub fn check(ret: u32) -> Result<u32, Errno> {
    if ret > u32::MAX - MAX_ERRNO {
        Err(Errno(ret.wrapping_neg()))
    } else {
        Ok(ret)
    }
}

/// Raw system call without arguments.
///
/// # Safety
/// The call must not break the program's memory safety (e.g. unmap memory
/// that Rust references point into).
#[inline]
pub unsafe fn syscall0(n: u32) -> u32 {
    let ret: u32;
    // SAFETY: `int 0x80` changes only EAX; the caller answers for the call.
    unsafe { asm!("int 0x80", inlateout("eax") n => ret, options(nostack)) };
    ret
}

/// Raw system call with one argument (`EBX`).
///
/// # Safety
/// As [`syscall0`]; pointer arguments must be valid for what the call does.
#[inline]
pub unsafe fn syscall1(n: u32, a1: u32) -> u32 {
    let ret: u32;
    // SAFETY: `int 0x80` changes only EAX; the caller answers for the call.
    unsafe { asm!("int 0x80", inlateout("eax") n => ret, in("ebx") a1, options(nostack)) };
    ret
}

/// Raw system call with two arguments (`EBX`, `ECX`).
///
/// # Safety
/// As [`syscall1`].
#[inline]
pub unsafe fn syscall2(n: u32, a1: u32, a2: u32) -> u32 {
    let ret: u32;
    // SAFETY: `int 0x80` changes only EAX; the caller answers for the call.
    unsafe {
        asm!("int 0x80", inlateout("eax") n => ret, in("ebx") a1, in("ecx") a2, options(nostack))
    };
    ret
}

/// Raw system call with three arguments (`EBX`, `ECX`, `EDX`).
///
/// # Safety
/// As [`syscall1`].
#[inline]
pub unsafe fn syscall3(n: u32, a1: u32, a2: u32, a3: u32) -> u32 {
    let ret: u32;
    // SAFETY: `int 0x80` changes only EAX; the caller answers for the call.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("eax") n => ret,
            in("ebx") a1,
            in("ecx") a2,
            in("edx") a3,
            options(nostack),
        )
    };
    ret
}

/// Raw system call with six arguments (`EBX`, `ECX`, `EDX`, `ESI`, `EDI`,
/// `EBP`); also serves calls with four or five (pass 0 for the rest).
///
/// # Safety
/// As [`syscall1`].
#[inline]
pub unsafe fn syscall6(n: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32, a6: u32) -> u32 {
    let ret: u32;
    let rest = [a4, a5, a6];
    // SAFETY: ESI and EBP are saved on the stack and restored before the
    // asm ends; EDI is declared clobbered; `rest` lives across the asm.
    // `int 0x80` changes only EAX; the caller answers for the call.
    unsafe {
        asm!(
            "push ebp",
            "push esi",
            "mov esi, [edi]",
            "mov ebp, [edi + 8]",
            "mov edi, [edi + 4]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") n => ret,
            in("ebx") a1,
            in("ecx") a2,
            in("edx") a3,
            inout("edi") rest.as_ptr() => _,
        )
    };
    ret
}

/// Linux `exit(status)`: ends the process; only the low 8 bits of `status`
/// reach the parent.
pub fn exit(status: i32) -> ! {
    // SAFETY: exit takes no pointer and does not return.
    unsafe { syscall1(nr::EXIT, status as u32) };
    // A kernel that returns from exit is broken; stop here all the same.
    // SAFETY: `ud2` raises #UD, which kills the process.
    unsafe { asm!("ud2", options(nomem, nostack, noreturn)) }
}

/// Linux `fork()`: `Ok(0)` in the child, `Ok(child pid)` in the parent.
///
/// # Errors
/// `EAGAIN` (process limit), `ENOMEM`.
pub fn fork() -> Result<u32, Errno> {
    // SAFETY: fork takes no pointer; the child's memory is a copy.
    check(unsafe { syscall0(nr::FORK) })
}

/// Linux `write(fd, buf, count)`: the number of bytes written.
///
/// # Errors
/// `EFAULT` (buffer not readable), `EBADF`.
pub fn write(fd: u32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is readable for its length.
    let ret = unsafe { syscall3(nr::WRITE, fd, buf.as_ptr() as u32, buf.len() as u32) };
    check(ret).map(|n| n as usize)
}

/// Linux `write(fd, buf, count)` with an unchecked address, for tests that
/// expect the kernel to refuse it (`-EFAULT`) rather than fault.
///
/// # Errors
/// As [`write`].
pub fn write_raw(fd: u32, addr: usize, count: usize) -> Result<usize, Errno> {
    // SAFETY: write only reads user memory; the kernel checks the range.
    let ret = unsafe { syscall3(nr::WRITE, fd, addr as u32, count as u32) };
    check(ret).map(|n| n as usize)
}

/// How a child ended, decoded from `waitpid`'s status word (Linux's
/// `WIFEXITED`/`WEXITSTATUS`, `WIFSIGNALED`/`WTERMSIG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// `exit(code)`: the low 8 bits of the code.
    Exited(u8),
    /// Killed by the kernel (a fault): the signal number (`SIGSEGV` = 11).
    Signaled(u8),
    /// Anything else (stopped, or a status this decoder does not know).
    Other(u32),
}

impl WaitStatus {
    /// Decodes a raw status word.
    pub fn from_raw(status: u32) -> WaitStatus {
        let sig = status & 0x7f;
        if sig == 0 {
            WaitStatus::Exited(((status >> 8) & 0xff) as u8)
        } else if sig != 0x7f && status & 0xff00 == 0 {
            WaitStatus::Signaled(sig as u8)
        } else {
            WaitStatus::Other(status)
        }
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitStatus::Exited(code) => write!(f, "exited with status {code}"),
            WaitStatus::Signaled(11) => write!(f, "killed by signal 11 (SIGSEGV)"),
            WaitStatus::Signaled(sig) => write!(f, "killed by signal {sig}"),
            WaitStatus::Other(raw) => write!(f, "status {raw:#x}"),
        }
    }
}

/// `SIGSEGV`, the signal of a process killed for a bad memory access.
pub const SIGSEGV: u8 = 11;

/// Linux `waitpid(pid, &status, 0)`: waits for child `pid` (or any child
/// for `pid == -1`); returns its pid and how it ended.
///
/// # Errors
/// `ECHILD` (no such child).
pub fn waitpid(pid: i32) -> Result<(u32, WaitStatus), Errno> {
    let mut status: u32 = 0;
    // SAFETY: `status` is writable for 4 bytes.
    let ret = unsafe { syscall3(nr::WAITPID, pid as u32, (&raw mut status) as u32, 0) };
    check(ret).map(|pid| (pid, WaitStatus::from_raw(status)))
}

/// Linux `getpid()`.
pub fn getpid() -> u32 {
    // SAFETY: getpid takes no pointer.
    unsafe { syscall0(nr::GETPID) }
}

/// Linux `sched_yield()`.
pub fn sched_yield() {
    // SAFETY: sched_yield takes no pointer. It cannot fail on Linux.
    unsafe { syscall0(nr::SCHED_YIELD) };
}

/// Linux `brk(addr)`, the raw call: returns the new break, or the current
/// one if `addr` is 0, below the start of the heap, or cannot be had (Linux's
/// `brk` never returns `-errno`; the C library's `brk()` compares).
///
/// # Safety
/// Lowering the break unmaps memory: nothing may still point above it.
pub unsafe fn brk(addr: usize) -> usize {
    // SAFETY: the caller answers for memory above the new break.
    unsafe { syscall1(nr::BRK, addr as u32) as usize }
}

/// Linux `mmap2(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)`: a new
/// zero-filled private mapping at an address the kernel chooses.
///
/// # Errors
/// `EINVAL` (`len` 0), `ENOMEM` (no room).
pub fn mmap_anon(len: usize, prot: u32) -> Result<usize, Errno> {
    mmap2(0, len, prot, mman::MAP_PRIVATE | mman::MAP_ANONYMOUS, -1, 0)
}

/// Linux `mmap2(addr, len, prot, flags, fd, pgoff)`, the raw call.
///
/// # Errors
/// As Linux: `EINVAL`, `ENOMEM`, `EBADF`, ...
pub fn mmap2(
    addr: usize,
    len: usize,
    prot: u32,
    flags: u32,
    fd: i32,
    pgoff: u32,
) -> Result<usize, Errno> {
    // SAFETY: without MAP_FIXED a new mapping never replaces memory that
    // the program uses; with it, the caller has picked the address.
    let ret = unsafe {
        syscall6(
            nr::MMAP2,
            addr as u32,
            len as u32,
            prot,
            flags,
            fd as u32,
            pgoff,
        )
    };
    check(ret).map(|a| a as usize)
}

/// Linux `munmap(addr, len)`.
///
/// # Errors
/// `EINVAL` (`addr` not page-aligned, `len` 0).
///
/// # Safety
/// Nothing may still point into the range.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller guarantees nothing points into the range.
    check(unsafe { syscall2(nr::MUNMAP, addr as u32, len as u32) }).map(|_| ())
}

/// Linux `mprotect(addr, len, prot)`.
///
/// # Errors
/// `EINVAL` (`addr` not page-aligned), `ENOMEM` (part of the range is not
/// mapped), `EACCES`.
///
/// # Safety
/// Removing access from memory that Rust code still uses kills the process
/// at its next access (memory-safe, but the caller should mean it).
pub unsafe fn mprotect(addr: usize, len: usize, prot: u32) -> Result<(), Errno> {
    // SAFETY: mprotect changes protections only; the caller means it.
    check(unsafe { syscall3(nr::MPROTECT, addr as u32, len as u32, prot) }).map(|_| ())
}

/// Most arguments [`execve`] passes (plus the terminating null).
pub const EXECVE_MAX_ARGS: usize = 15;

/// Linux `execve(path, argv, envp)` with an empty environment: replaces the
/// process image; returns only on failure.
///
/// # Errors
/// `E2BIG` (more than [`EXECVE_MAX_ARGS`] arguments, checked here),
/// `ENOENT` (no such program), `ENOEXEC` (refused by the ELF checks),
/// `EFAULT`, `ENOMEM`.
pub fn execve(path: &CStr, argv: &[&CStr]) -> Errno {
    if argv.len() > EXECVE_MAX_ARGS {
        return Errno::E2BIG;
    }
    let mut ptrs: [*const c_char; EXECVE_MAX_ARGS + 1] = [core::ptr::null(); EXECVE_MAX_ARGS + 1];
    for (p, a) in ptrs.iter_mut().zip(argv) {
        *p = a.as_ptr();
    }
    let envp: [*const c_char; 1] = [core::ptr::null()];
    // SAFETY: `path` and every `argv` string are NUL-terminated; both
    // pointer arrays end with a null and live across the call.
    let ret = unsafe {
        syscall3(
            nr::EXECVE,
            path.as_ptr() as u32,
            ptrs.as_ptr() as u32,
            envp.as_ptr() as u32,
        )
    };
    match check(ret) {
        Err(e) => e,
        // A successful execve does not return; a kernel that returns 0 has
        // not replaced the image.
        Ok(_) => Errno::EINVAL,
    }
}
