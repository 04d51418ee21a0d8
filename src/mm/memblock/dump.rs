//! Reporting: the `memblock=debug` dump in Linux's format
//! ([`Memblock::dump`], Linux `__memblock_dump_all()`) and the one-line
//! summary the boot log prints (`Display`).

use super::Memblock;
use core::fmt;

impl Memblock {
    /// Prints both types the way Linux's `__memblock_dump_all()` does, one
    /// call of `line` per line, without newlines:
    ///
    /// ```text
    /// MEMBLOCK configuration:
    ///  memory size = 0x07f9e000 reserved size = 0x00134000
    ///  memory.cnt  = 0x2
    ///  memory[0x0]<TAB>[0x00001000-0x0009efff], 0x0009e000 bytes flags: 0x0
    ///  memory[0x1]<TAB>[0x00100000-0x07ffffff], 0x07f00000 bytes flags: 0x0
    ///  reserved.cnt  = 0x2
    ///  ...
    /// ```
    ///
    /// Addresses and sizes look like `%pa` on i386 without PAE (`0x` and at
    /// least 8 digits); the range's second number is its last byte, as Linux
    /// prints it; counts, indices and flags look like the kernel's `%#x`
    /// ("0x0" for zero). `<TAB>` above stands for the tab Linux prints. Unlike Linux, an
    /// empty type prints `cnt = 0x0` and no lines (Linux keeps one dummy
    /// region).
    pub fn dump(&self, mut line: impl FnMut(fmt::Arguments<'_>)) {
        line(format_args!("MEMBLOCK configuration:"));
        line(format_args!(
            " memory size = {:#010x} reserved size = {:#010x}",
            self.memory.total_size, self.reserved.total_size
        ));
        for t in [&self.memory, &self.reserved] {
            line(format_args!(" {}.cnt  = {:#x}", t.name, t.cnt));
            for (idx, r) in t.regions().iter().enumerate() {
                let last = r.base.0.wrapping_add(r.size).wrapping_sub(1);
                line(format_args!(
                    " {}[{:#x}]\t[{:#010x}-{:#010x}], {:#010x} bytes flags: {:#x}",
                    t.name, idx, r.base, last, r.size, r.flags
                ));
            }
        }
    }
}

/// One line: `memory 3 regions 133685248 bytes, reserved 5 regions 1310720
/// bytes` (decimal).
impl fmt::Display for Memblock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory {} regions {} bytes, reserved {} regions {} bytes",
            self.memory.cnt, self.memory.total_size, self.reserved.cnt, self.reserved.total_size
        )
    }
}
