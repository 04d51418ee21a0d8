#!/usr/bin/env bash
# scripts/mkiso.sh KERNEL_ELF OUTPUT_ISO [CMDLINE] [ENTRY]
#
# Builds a BIOS-bootable GRUB rescue ISO holding the kernel, from
# grub/grub.cfg with its placeholders filled in:
#   CMDLINE        the kernel command line (@CMDLINE@)
#   ENTRY          default menu entry: 0 = Multiboot2 (default), 1 = Multiboot 1
#   MKISO_PRELUDE  GRUB commands run before loading, separated by ';'
#                  (e.g. "cutmem 0x800800 0x800c00"), for @PRELUDE@
#   MKISO_MODULES  files to load as modules, separated by spaces; each is
#                  copied to /boot/modules/ and passed with its file name as
#                  its string (@MODULES2@, @MODULES1@)
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # '&' stays literal below

elf=$1
iso=$2
cmdline=${3:-}
entry=${4:-0}
here=$(cd "$(dirname "$0")/.." && pwd)

case $cmdline in
*[\;\$\`\\\"\'\{\}\&\|]* | *$'\n'*)
    echo "mkiso.sh: CMDLINE may not contain ; \$ \` \\ quotes braces & | or newlines (GRUB would interpret them): '$cmdline'" >&2
    exit 2
    ;;
esac

staging=$(mktemp -d "${iso%.iso}.XXXXXX")
trap 'rm -rf "$staging" "$staging.log"' EXIT
mkdir -p "$staging/boot/grub" "$staging/boot/modules"
# GRUB reads the whole file into RAM before loading it: without the DWARF
# debug information (kept in $elf for GDB) it is a tenth of the size, which
# lets GRUB boot it in 8 MiB of RAM.
objcopy --strip-debug "$elf" "$staging/boot/kernel.elf"

prelude="" modules2="" modules1=""
IFS=';' read -ra commands <<<"${MKISO_PRELUDE:-}"
for c in "${commands[@]}"; do
    prelude+="${c# }"$'\n    '
done
for m in ${MKISO_MODULES:-}; do
    name=$(basename "$m")
    cp "$m" "$staging/boot/modules/$name"
    modules2+="module2 /boot/modules/$name $name"$'\n    '
    modules1+="module /boot/modules/$name $name"$'\n    '
done

cfg=$(<"$here/grub/grub.cfg")
cfg=${cfg//@CMDLINE@/$cmdline}
cfg=${cfg//@PRELUDE@/$prelude}
cfg=${cfg//@MODULES2@/$modules2}
cfg=${cfg//@MODULES1@/$modules1}
cfg=${cfg/set default=0/set default=$entry}
printf '%s\n' "$cfg" >"$staging/boot/grub/grub.cfg"

# Only the BIOS platform: this is an i386 kernel, and one platform halves the
# build time and the ISO size.
if ! grub-mkrescue -d /usr/lib/grub/i386-pc -o "$iso.tmp" "$staging" >"$staging.log" 2>&1; then
    cat "$staging.log" >&2
    echo "mkiso.sh: grub-mkrescue failed" >&2
    exit 1
fi
mv "$iso.tmp" "$iso"
