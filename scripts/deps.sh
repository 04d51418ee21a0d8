#!/usr/bin/env bash
# scripts/deps.sh GROUP...: make sure the tools a build step needs are here.
#
# Groups:  kernel  Rust with the standard-library source (for -Zbuild-std) + ld.lld
#          lint    clippy for the kernel target (Debian's rust-web-clippy)
#          host    cargo for the host unit tests
#          iso     grub-mkrescue with the BIOS (i386-pc) GRUB, xorriso, mtools
#          isa     objdump, to check the kernel's instruction set
#          qemu    qemu-system-i386
#          bochs   Bochs with its BIOS, VGA BIOS and the "term" display library
#
# On Debian/Ubuntu, missing packages are installed with apt-get (as root, or
# through passwordless sudo). Elsewhere it stops with one line saying what to
# install. Checks are cheap, so every Makefile target calls this.
set -euo pipefail

debian_rust_ok() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] &&
        [ -d /usr/lib/rustlib/src/rust/library/core ]
}

nightly_rust_ok() {
    command -v rustup >/dev/null 2>&1 || return 1
    local sysroot
    sysroot=$(rustup run nightly rustc --print sysroot 2>/dev/null) || return 1
    [ -d "$sysroot/lib/rustlib/src/rust/library/core" ]
}

missing_pkgs=()
missing_what=()
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
        if ! debian_rust_ok && ! nightly_rust_ok; then
            missing_pkgs+=(rustc-web cargo-web rust-web-src)
            missing_what+=("Rust with library source (Debian rustc-web/cargo-web/rust-web-src, or rustup nightly + rust-src)")
        fi
        need lld "ld.lld" command -v ld.lld
        ;;
    lint)
        # Debian's toolchain has clippy and rustfmt as separate packages.
        if debian_rust_ok; then
            need rust-web-clippy "clippy for Debian's Rust" test -x /usr/bin/clippy-driver
            need rustfmt-web "rustfmt for Debian's Rust" test -x /usr/bin/rustfmt
        fi
        ;;
    host)
        if ! command -v cargo >/dev/null 2>&1 && ! [ -x /usr/bin/cargo ]; then
            missing_pkgs+=(cargo-web rustc-web)
            missing_what+=("cargo")
        fi
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
