//! Architecture layer: the only code that executes privileged instructions,
//! does port I/O, touches control or descriptor registers, or writes the
//! live page tables (`tests/structure/check.sh` checks every file).
//!
//! Compiled only for the kernel target (`target_os = "none"`); everything it
//! decides is delegated to the pure modules, so this layer stays thin. Code
//! that needs no privileged instruction lives in `crate::runtime` (glue) or
//! `crate::init` (boot stages), which call down into this layer, never the
//! other way round.

pub mod x86;
