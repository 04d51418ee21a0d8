#!/usr/bin/env bash
# tests/data/capture.sh: captures real boot information from GRUB and QEMU
# into fixture files for the host tests (tests/boot_info_fixtures.rs).
#
# How: boot build/kernel.elf in QEMU halted (-s -S), let GDB stop at _start
# (the first instruction: paging is still off, so GDB reads physical memory),
# and dump the memory EBX points to. Run from the repository root after
# `make kernel`; needs qemu-system-i386, gdb and the GRUB tools.
#
#   Multiboot2 (GRUB):    NAME.mbi = [EBX, EBX + total_size)
#   Multiboot 1 (QEMU):   NAME-0xADDR.bin = 4 KiB pages holding the info
#                         structure, its memory map and its strings
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/data
entry=$(nm build/kernel.elf | awk '$3 == "_start" { print "0x" $1 }')

run_gdb() { # run_gdb GDB-COMMANDS... (QEMU must be started already)
    timeout 60 gdb -q -batch -ex "set architecture i386" -ex "target remote :1234" \
        -ex "hbreak *$entry" -ex "continue" "$@" -ex "kill" >/dev/null 2>&1 || true
}

capture_grub() { # capture_grub NAME MEM [GRUB-PRELUDE]
    local name=$1 mem=$2 iso=build/capture.iso
    MKISO_PRELUDE=${3:-} scripts/mkiso.sh build/kernel.elf "$iso" ""
    # timeout: QEMU waits halted (-S) forever if GDB never attaches.
    timeout 60 qemu-system-i386 -m "$mem" -display none -serial null -no-reboot -cdrom "$iso" -boot d -s -S &
    sleep 1
    run_gdb -ex "dump binary memory $out/$name.mbi \$ebx \$ebx + *(unsigned int *)\$ebx"
    wait
    echo "$name.mbi: $(stat -c %s "$out/$name.mbi") bytes"
}

capture_qemu_mb1() { # capture_qemu_mb1 NAME MEM PAGE...
    local name=$1 mem=$2 page cmds=()
    shift 2
    for page in "$@"; do
        cmds+=(-ex "dump binary memory $out/$name-$page.bin $page $page + 4096")
    done
    timeout 60 qemu-system-i386 -m "$mem" -display none -serial null -no-reboot \
        -kernel build/kernel.elf -append "selftest" -s -S &
    sleep 1
    run_gdb -ex "printf \"info %#x\\n\", \$ebx" "${cmds[@]}"
    wait
    ls "$out/$name"-*.bin
}

capture_grub grub-mb2-8M 8M
capture_grub grub-mb2-128M 128M
capture_grub grub-mb2-3G 3G
capture_grub grub-mb2-4G 4G
capture_grub grub-mb2-128M-cutmem 128M "cutmem 0x800800 0x800c00; cutmem 0xff0000 0x1010000"
# QEMU's Multiboot 1 loader puts the info at 0x9500 and the memory map at
# 0x9000, the command line and loader name right after the kernel image.
end_page=$(printf '0x%08x' $(( ($(nm build/kernel.elf | awk '$3 == "__kernel_end" { print "0x" $1 }') - 0xC0000000) )))
capture_qemu_mb1 qemu-mb1-128M 128M 0x00009000 "$end_page"
