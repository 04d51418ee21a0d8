#!/usr/bin/env bash
# scripts/run-qemu.sh [--iso ISO | --kernel ELF [--append CMDLINE] [--initrd FILES]] [--log FILE]
#
# --initrd: Multiboot 1 modules for --kernel, comma-separated (QEMU -initrd).
#
# Boots the kernel headless in qemu-system-i386, serial on stdout (and in the
# log file), and turns the outcome into an exit status:
#   0  the kernel printed KERNEL OK and left through isa-debug-exit (QEMU 33)
#   1  the kernel panicked (PANIC: line, QEMU 35)
#   2  anything else: a triple fault or reset (QEMU exits 0 with -no-reboot),
#      a hang (killed after TIMEOUT seconds), or QEMU failing to start
# Environment: MEM (default 128M), CPU (QEMU -cpu model, default QEMU's),
# TIMEOUT (seconds, default 120), QEMU_EXTRA (more QEMU arguments).
set -uo pipefail

mem=${MEM:-128M}
cpu=${CPU:-}
timeout=${TIMEOUT:-120}
log=build/serial.log
boot=()
while [ $# -gt 0 ]; do
    case $1 in
    --iso) boot=(-cdrom "$2" -boot d); shift 2 ;;
    --kernel) boot=(-kernel "$2"); shift 2 ;;
    --append) boot+=(-append "$2"); shift 2 ;;
    --initrd) boot+=(-initrd "$2"); shift 2 ;;
    --log) log=$2; shift 2 ;;
    *) echo "run-qemu.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#boot[@]} -gt 0 ] || { echo "run-qemu.sh: give --iso or --kernel" >&2; exit 2; }

args=(-m "$mem" -display none -serial stdio -monitor none -no-reboot
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${boot[@]}")
[ -n "$cpu" ] && args+=(-cpu "$cpu")
# shellcheck disable=SC2206 # QEMU_EXTRA is a list of words on purpose
[ -n "${QEMU_EXTRA:-}" ] && args+=(${QEMU_EXTRA})

mkdir -p "$(dirname "$log")"
echo "run-qemu.sh: qemu-system-i386 ${args[*]}" >&2
timeout --foreground "$timeout" qemu-system-i386 "${args[@]}" </dev/null | tee "$log"
status=${PIPESTATUS[0]}

if [ "$status" -eq 33 ] && grep -q '^KERNEL OK' "$log"; then
    exit 0
elif [ "$status" -eq 35 ]; then
    echo "run-qemu.sh: kernel panicked (QEMU status 35): $(grep -m1 '^PANIC: ' "$log")" >&2
    exit 1
elif [ "$status" -eq 124 ]; then
    echo "run-qemu.sh: no exit after ${timeout}s: the kernel hangs (see $log)" >&2
elif [ "$status" -eq 0 ]; then
    echo "run-qemu.sh: QEMU stopped without isa-debug-exit: triple fault or reset (see $log)" >&2
else
    echo "run-qemu.sh: QEMU exited with status $status without KERNEL OK (see $log)" >&2
fi
exit 2
