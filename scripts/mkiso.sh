#!/usr/bin/env bash
# scripts/mkiso.sh KERNEL_ELF OUTPUT_ISO [CMDLINE] [ENTRY]
#
# Builds a BIOS-bootable GRUB rescue ISO holding the kernel, with
# grub/grub.cfg's @CMDLINE@ replaced by CMDLINE. ENTRY selects the default
# menu entry: 0 = Multiboot2 (default), 1 = Multiboot 1.
set -euo pipefail

elf=$1
iso=$2
cmdline=${3:-}
entry=${4:-0}
here=$(cd "$(dirname "$0")/.." && pwd)

case $cmdline in
*[\;\$\`\\\"\'\{\}\&\|]* | *$'\n'*)
    echo "mkiso.sh: CMDLINE may not contain ; \$ \` \\ quotes braces & | or newlines (GRUB or sed would interpret them): '$cmdline'" >&2
    exit 2
    ;;
esac

staging=$(mktemp -d "${iso%.iso}.XXXXXX")
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/boot/grub"
cp "$elf" "$staging/boot/kernel.elf"
sed -e "s|@CMDLINE@|$cmdline|" -e "s|^set default=0|set default=$entry|" \
    "$here/grub/grub.cfg" >"$staging/boot/grub/grub.cfg"
# Only the BIOS platform: this is an i386 kernel, and one platform halves the
# build time and the ISO size.
if ! grub-mkrescue -d /usr/lib/grub/i386-pc -o "$iso.tmp" "$staging" >"$staging.log" 2>&1; then
    cat "$staging.log" >&2
    rm -f "$staging.log"
    echo "mkiso.sh: grub-mkrescue failed" >&2
    exit 1
fi
rm -f "$staging.log"
mv "$iso.tmp" "$iso"
