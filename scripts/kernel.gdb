# GDB script for `make debug`: load the kernel's symbols, attach to QEMU's
# GDB stub (port 1234) and stop at the Rust entry point.
#
#   gdb -x scripts/kernel.gdb        (from the repository root)
#
# A hardware breakpoint (hbreak): the CPU compares linear addresses, so
# nothing is written into guest memory, and it fires once paging maps the
# kernel at 0xC01xxxxx. (QEMU's emulator also honours a software `break`
# there, since its GDB stub never writes an int3; a stub that does, such as
# QEMU under KVM, could not before the boot stub has mapped the address.)
set architecture i386
file build/kernel.elf
target remote localhost:1234
# '*kernel_entry': the first instruction, before the prologue moves the stack.
hbreak *kernel_entry
continue
# Now at kernel_entry(magic, info_pa), called by boot/entry.S. GDB is in
# Rust mode here; for the C-style casts below, first: set language c
# Then try:
#   info registers cr0 cr3                     paging on (PG), the boot page directory
#   x/3xw $esp                                 return address, magic, info_pa
#   x/xw (char *)&boot_page_directory + 768*4  the PDE that maps 0xC0000000
#   stepi / next / bt                          and on into Rust
