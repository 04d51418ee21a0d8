#!/usr/bin/env bash
# Reproducibility test: the kernel built from a second checkout folder (a
# copy of this working tree at another path, with its own target directory)
# must have the same bytes in every loaded section (.boot, .text, .rodata,
# .data) as build/kernel.elf, and no path of the build machine may be among
# its strings (the sysroot, rustup's or cargo's homes, the checkout).
#
# Usage: tests/repro/check.sh   (after `make kernel`; `make test` runs it).
# The second build takes about as long as the first one.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
here=$PWD

ELF=build/kernel.elf
[ -f "$ELF" ] || { echo "repro: $ELF missing: run 'make kernel' first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A different path of a different length, with the same files as here
# (tracked and untracked, without what .gitignore leaves out).
other=$tmp/another/place/for/the/kernel
mkdir -p "$other"
git ls-files -z --cached --others --exclude-standard |
    (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
    xargs -0 cp --parents -t "$other"
echo "repro: building a second kernel in $other"
if ! make -C "$other" --no-print-directory kernel >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log"
    echo "repro: FAIL: the second build failed"
    exit 1
fi

bad=0
for section in .boot .text .rodata .data; do
    objcopy -O binary -j "$section" "$ELF" "$tmp/a$section"
    objcopy -O binary -j "$section" "$other/$ELF" "$tmp/b$section"
    size=$(wc -c <"$tmp/a$section")
    if cmp -s "$tmp/a$section" "$tmp/b$section"; then
        echo "PASS  $section: $size bytes, the same from both folders"
    else
        echo "FAIL  $section differs between $here and $other ($(cmp "$tmp/a$section" "$tmp/b$section" | head -n1))"
        bad=$((bad + 1))
    fi
done

sysroots=()
for d in "${RUSTUP_HOME:-$HOME/.rustup}" "${CARGO_HOME:-$HOME/.cargo}"; do sysroots+=(-e "$d"); done
for elf in "$ELF" "$other/$ELF"; do
    leaks=$(strings -a "$elf" -n 4 -d 2>/dev/null |
        grep -e /rustlib/ -e /.rustup/ -e /.cargo/ "${sysroots[@]}" -e "$here" -e "$other" | sort -u)
    if [ -n "$leaks" ]; then
        echo "FAIL  build-machine paths in the loaded sections of $elf:"
        sed 's/^/      /' <<<"$leaks" | head -n 10
        bad=$((bad + 1))
    else
        echo "PASS  no build-machine path in the loaded sections of $elf"
    fi
done

echo
if [ $bad -eq 0 ]; then
    echo "repro: the kernel is the same from two checkout folders"
    exit 0
fi
echo "repro: $bad problems"
exit 1
