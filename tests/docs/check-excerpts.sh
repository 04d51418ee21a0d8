#!/usr/bin/env bash
# Docs test: every log excerpt quoted in README.md and docs/*.md must still
# appear in the log of the boot test it comes from.
#
# An excerpt is a fenced block right after a marker line naming the boot
# test case (tests/boot/run-tests.sh) whose log it quotes:
#
#   <!-- log: kmalloc-demo -->            lines must appear exactly
#   <!-- log: kmalloc-demo masked -->     numbers may differ (see below)
#   ```text
#   [INFO ] kmalloc: kmalloc(13) = 0xc7f84040 from kmalloc-16 (ksize 16)
#   ...
#   ```
#
# Each line of the block must be a whole line of build/test/<case>.log; a
# line `...` stands for lines left out. In a `masked` block every number
# matches any other, on both sides: a hex number with 0x, a bare hex word
# with a digit in it (pfn:007d8, a commit hash), any other run of digits.
# The Accessed and Dirty flags in a page-table flag list, "(P RW A D)", are
# dropped too: the CPU sets them as code runs, so they follow the code's
# layout, like the entry's hex value that already hides them. So
# addresses, counters, A/D and the compiler's commit (in /rustc/<commit>/...
# panic locations) that move with the build do not break the docs, while
# the wording, the order of fields and the structure are still checked. A fenced block that looks like kernel log (a line starting
# "[INFO ] " or another level, "PANIC: " or "KERNEL OK") without a marker
# fails the test: every quoted log line is checked.
#
# Usage: tests/docs/check-excerpts.sh [FILE...]  (default README.md
# docs/*.md; run after tests/boot/run-tests.sh, which writes the logs;
# `make test` does both).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

LOGS=build/test
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md docs/*.md)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# file <TAB> line number <TAB> case <TAB> mode <TAB> text, one per quoted
# line; "UNMARKED" records for log-like blocks without a marker.
awk '
    function flush_unmarked() {
        if (looks_like_log && !marked) printf "%s\t%d\tUNMARKED\t-\t\n", FILENAME, start
    }
    FNR == 1 { inblock = 0; pending = "" }
    /^<!-- log: [A-Za-z0-9_.-]+( masked)? -->$/ {
        pending = $3; pmode = ($4 == "masked") ? "masked" : "exact"; next
    }
    /^```/ {
        if (!inblock) {
            inblock = 1; start = FNR; looks_like_log = 0
            marked = (pending != ""); cs = pending; mode = pmode; pending = ""
        } else {
            flush_unmarked(); inblock = 0
        }
        next
    }
    inblock {
        if ($0 ~ /^(\[(ERROR|WARN |INFO |DEBUG|TRACE)\] |PANIC: |KERNEL OK$)/) looks_like_log = 1
        if (marked && $0 != "..." && $0 != "") printf "%s\t%d\t%s\t%s\t%s\n", FILENAME, FNR, cs, mode, $0
        next
    }
    NF { pending = "" }
' "${files[@]}" >"$tmp/quoted"

mask() {
    sed -E 's/0x[0-9a-fA-F]+/0x#/g; s/\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b/#/g; s/[0-9]+/#/g
        :ad; s/(\([A-Z ]*) [AD]([ )])/\1\2/; t ad'
}

blocks=0 lines=0 bad=0
declare -A seen_case
while IFS=$'\t' read -r file lineno case mode text; do
    if [ "$case" = UNMARKED ]; then
        echo "FAIL  $file:$lineno: a log excerpt without a '<!-- log: CASE -->' marker"
        bad=$((bad + 1))
        continue
    fi
    log=$LOGS/$case.log
    if [ ! -f "$log" ]; then
        echo "FAIL  $file:$lineno: $log missing (unknown boot case '$case', or run tests/boot/run-tests.sh first)"
        bad=$((bad + 1))
        continue
    fi
    if [ -z "${seen_case[$case]:-}" ]; then
        seen_case[$case]=1
        blocks=$((blocks + 1))
    fi
    [ -f "$tmp/$case.masked" ] || mask <"$log" >"$tmp/$case.masked"
    lines=$((lines + 1))
    if [ "$mode" = masked ]; then
        printf '%s\n' "$text" | mask | grep -Fxq -f - "$tmp/$case.masked" && continue
    else
        grep -Fxq -- "$text" "$log" && continue
    fi
    echo "FAIL  $file:$lineno: not in $log ($mode): $text"
    bad=$((bad + 1))
done <"$tmp/quoted"

echo
if [ "$bad" -eq 0 ]; then
    echo "docs: all $lines quoted log lines found (quoting $blocks boot logs, in ${#files[@]} files)"
    exit 0
fi
echo "docs: $bad problems in $lines quoted log lines (refresh the excerpts from build/test/*.log)"
exit 1
