//! Architecture layer: the only code that executes privileged instructions.
//!
//! Compiled only for the kernel target (`target_os = "none"`); everything it
//! decides is delegated to the pure modules, so this layer stays thin.

pub mod x86;
