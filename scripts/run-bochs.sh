#!/usr/bin/env bash
# scripts/run-bochs.sh ISO: boots the kernel ISO in Bochs (scripts/bochsrc.txt),
# prints the kernel's serial log and exits like run-qemu.sh:
#   0 KERNEL OK, 1 PANIC:, 2 anything else (timeout, Bochs error).
# Environment: MEM (default 128M; Bochs takes whole MiB), TIMEOUT (seconds,
# default 120), BOCHS_OUT (directory for the logs, default build/bochs),
# BOCHS_CPU (a Bochs CPU model, default pentium; `bochs -help cpu` lists them:
# pentium has PSE only, p3_katmai adds PAE and global pages, the 32-bit
# core_duo_t2400_yonah adds NX).
#
# How it stops: the kernel writes "Shutdown" to port 0x8900 on both the
# success and the fatal path, which ends the Bochs process. Debian's Bochs is
# built with its debugger, which would stop at the first instruction: the rc
# file answers it with "c" (continue) and "quit". The term display needs a
# terminal, which script(1) provides even without one (CI).
set -uo pipefail

iso=$1
mem=${MEM:-128M}
timeout=${TIMEOUT:-120}
out=${BOCHS_OUT:-build/bochs}
cpu=${BOCHS_CPU:-pentium}
here=$(cd "$(dirname "$0")" && pwd)

case $mem in
*G) megs=$(( ${mem%G} * 1024 )) ;;
*M) megs=${mem%M} ;;
*) megs=$mem ;;
esac

# Bochs allocates at most 2048 MiB of host memory for the guest; the guest's
# blocks beyond that live in a temporary overflow file, so MEM=3G or 8G
# works (MEM=3G boots in ~10 s, MEM=8G in ~100 s).
host_megs=$(( megs < 2048 ? megs : 2048 ))

mkdir -p "$out"
export BOCHS_CPU_MODEL=$cpu BOCHS_MEGS=$megs BOCHS_HOST_MEGS=$host_megs
export BOCHS_ISO=$iso BOCHS_SERIAL=$out/serial.log BOCHS_LOG=$out/bochs.log
rm -f "$BOCHS_SERIAL" "$BOCHS_LOG"
printf 'c\nquit\n' >"$out/debugger.rc"

# Show the serial log while Bochs runs.
touch "$BOCHS_SERIAL"
tail -n +1 -f "$BOCHS_SERIAL" &
tail_pid=$!
echo "run-bochs.sh: bochs -q -f $here/bochsrc.txt (cpu $cpu, $megs MiB, ISO $iso)" >&2
# The term display library refuses to start without a terminal type, and
# script(1) provides a terminal but not TERM (unset under CI).
export TERM=${TERM:-xterm}
timeout "$timeout" script -qfec \
    "bochs -q -f '$here/bochsrc.txt' -rc '$out/debugger.rc'" /dev/null \
    </dev/null >"$out/terminal.log" 2>&1
status=$?
sleep 0.2
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null

if grep -q '^KERNEL OK' "$BOCHS_SERIAL"; then
    exit 0
elif grep -q '^PANIC: ' "$BOCHS_SERIAL"; then
    echo "run-bochs.sh: kernel panicked: $(grep -m1 '^PANIC: ' "$BOCHS_SERIAL")" >&2
    exit 1
elif [ "$status" -eq 124 ]; then
    echo "run-bochs.sh: no shutdown after ${timeout}s (see $out/)" >&2
else
    echo "run-bochs.sh: Bochs exited ($status) without KERNEL OK; see $BOCHS_LOG" >&2
    tail -5 "$BOCHS_LOG" >&2
fi
exit 2
