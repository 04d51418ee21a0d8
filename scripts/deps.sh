#!/usr/bin/env bash
# scripts/deps.sh GROUP...: make sure the tools a build step needs are here.
#
# Groups:  kernel  a Rust toolchain that can build the kernel (chosen, and
#                  completed with rust-src, by scripts/toolchain.sh) + ld.lld
#          lint    clippy and rustfmt for that toolchain
#          host    a Rust toolchain for the host unit tests
#          iso     grub-mkrescue with the BIOS (i386-pc) GRUB, xorriso, mtools
#          isa     objdump, to check the kernel's instruction set
#          forge   gcc and ld.lld for the forging loader of the boot tests
#          qemu    qemu-system-i386
#          bochs   Bochs with its BIOS, VGA BIOS and the "term" display library
#          valgrind  valgrind (callgrind), for the benchmarks' instruction counts
# scripts/deps.sh --install PACKAGE...: install Debian packages (used by
# scripts/toolchain.sh for Debian's Rust).
#
# On Debian/Ubuntu, missing packages are installed with apt-get (as root, or
# through passwordless sudo). Elsewhere it stops with one line saying what to
# install. Checks are cheap, so every Makefile target calls this.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

missing_pkgs=()
missing_what=()
if [ "${1:-}" = --install ]; then
    shift
    missing_pkgs=("$@")
    missing_what=("$*")
    set --
fi
need() { # need PACKAGE WHAT TEST...
    local pkg=$1 what=$2
    shift 2
    if ! "$@" >/dev/null 2>&1; then
        missing_pkgs+=("$pkg")
        missing_what+=("$what")
    fi
}

for group in "$@"; do
    case $group in
    kernel)
        # Picks a toolchain and adds rust-src or installs Debian's Rust if
        # needed; one line says what to install if nothing works.
        "$here/toolchain.sh" >/dev/null
        need lld "ld.lld" command -v ld.lld
        ;;
    lint)
        choice=$("$here/toolchain.sh")
        eval "$choice"
        if [ ! -x "$KTC_BIN/clippy-driver" ] || [ ! -x "$KTC_BIN/rustfmt" ]; then
            if [ -n "$KTC_RUSTUP" ]; then
                rustup component add clippy rustfmt --toolchain "$KTC_RUSTUP" >&2
            else # Debian's toolchain has them as separate packages.
                need rust-web-clippy "clippy for Debian's Rust" test -x "$KTC_BIN/clippy-driver"
                need rustfmt-web "rustfmt for Debian's Rust" test -x "$KTC_BIN/rustfmt"
            fi
        fi
        ;;
    host)
        "$here/toolchain.sh" --host >/dev/null
        ;;
    iso)
        need grub-common "grub-mkrescue" command -v grub-mkrescue
        need grub-pc-bin "GRUB for BIOS (/usr/lib/grub/i386-pc)" test -d /usr/lib/grub/i386-pc
        need xorriso "xorriso" command -v xorriso
        need mtools "mtools (mformat)" command -v mformat
        need binutils "objcopy" command -v objcopy
        ;;
    isa)
        need binutils "objdump" command -v objdump
        ;;
    forge)
        need gcc "gcc (builds the forging loader, tests/forge/forge.c)" command -v gcc
        need lld "ld.lld" command -v ld.lld
        ;;
    qemu)
        need qemu-system-x86 "qemu-system-i386" command -v qemu-system-i386
        ;;
    bochs)
        need bochs "bochs" command -v bochs
        need bochsbios "Bochs BIOS" test -f /usr/share/bochs/BIOS-bochs-latest
        need vgabios "VGA BIOS" test -f /usr/share/vgabios/vgabios.bin
        need bochs-term "Bochs term display" sh -c 'ls /usr/lib/*/bochs/plugins/*term* >/dev/null 2>&1'
        need bsdutils "script(1)" command -v script
        ;;
    valgrind)
        need valgrind "valgrind (callgrind: make bench, make bench-ir)" command -v valgrind
        ;;
    *)
        echo "deps.sh: unknown group '$group'" >&2
        exit 2
        ;;
    esac
done

[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

# De-duplicate the package list.
mapfile -t pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
what=$(IFS=,; echo "${missing_what[*]}")

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "Missing: $what. Install with: sudo apt-get install ${pkgs[*]}" >&2
        exit 1
    fi
    echo "deps.sh: installing ${pkgs[*]} (for: $what)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
        "${sudo[@]}" apt-get update >&2
        "${sudo[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
    fi
    exit 0
fi

echo "Missing: $what. Install the equivalent of Debian's: ${pkgs[*]}" >&2
exit 1
