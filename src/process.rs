//! User processes: their programs, address spaces and system calls.
//!
//! - [`elf`]: checks a user program (a static ELF32 i386 executable,
//!   loaded by GRUB as a Multiboot module) and describes the segments to
//!   map (pure, host-tested).

pub mod elf;
