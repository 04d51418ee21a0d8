#!/usr/bin/env bash
# Structure test: the shape the README's Layout section promises.
#
# 1. src/main.rs stays under 300 lines: kernel_entry is the boot's table of
#    contents, stage logic lives in src/init and the modules that own it.
# 2. Every file under src/arch/ except a mod.rs touches the hardware: its
#    code (comments removed) contains at least one of
#      inline assembly     asm!( global_asm!(
#      port I/O            x86::io::  PioBackend (uart_16550's port backend)
#      system registers    x86::controlregs  read_cr0/2/3( write_cr3(
#                          set_cr0_wp( lgdt( lidt( load_tr( load_cs(
#      live page tables    impl PageTableMemory for  boot_early_map_table
#                          (a page table the MMU walks: the kernel's tables
#                          through the direct map or kmap, or the boot
#                          stub's early map table)
#    Code that needs none of these is kernel runtime glue (src/runtime) or a
#    boot stage (src/init).
# 3. The files under src/arch/ import each other without a cycle. An import
#    is any path `super::X` or `crate::arch::x86::X` in the code (use lines
#    and inline paths); X names a sibling file, or the directory's mod.rs
#    for its own items. A cycle is printed as a -> b -> ... -> a.
#
# Usage: tests/structure/check.sh [source root, default: the repository]
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
fail=0

lines=$(wc -l <"$root/src/main.rs")
if ((lines >= 300)); then
    echo "FAIL: src/main.rs has $lines lines (must stay under 300)"
    fail=1
else
    echo "ok: src/main.rs has $lines lines"
fi

hw_re='asm!\(|global_asm!\(|x86::io::|PioBackend|x86::controlregs|read_cr[023]\(|write_cr3\(|set_cr0_wp\(|lgdt\(|lidt\(|load_tr\(|load_cs\(|impl PageTableMemory for|boot_early_map_table|boot_page_directory_va'
# Code only: line comments (// ..., //! ..., /// ...) removed.
strip_comments() { sed -E 's#(^|[^:"])//.*$#\1#' "$1"; }

while IFS= read -r f; do
    rel=${f#"$root"/}
    [[ $(basename "$f") == mod.rs ]] && continue
    if strip_comments "$f" | grep -E "$hw_re" >/dev/null; then
        echo "ok: $rel touches the hardware"
    else
        echo "FAIL: $rel executes no privileged instruction (no inline assembly, port I/O, system register or live page table): move it to src/runtime or src/init"
        fail=1
    fi
done < <(find "$root/src/arch" -name '*.rs' | sort)

# Import graph among the files of each directory under src/arch.
cycle=$(
    find "$root/src/arch" -name '*.rs' | sort | perl -e '
        use strict; use warnings;
        my (%edges, %nodes);
        while (my $f = <STDIN>) {
            chomp $f;
            my ($dir, $base) = $f =~ m#^(.*)/([^/]+)\.rs$#;
            my $me = $base eq "mod" ? "$dir/mod" : "$dir/$base";
            $nodes{$me} = 1;
            open my $fh, "<", $f or die "$f: $!";
            my $code = join "", map { s#(^|[^:"])//.*$#$1#r } <$fh>;
            close $fh;
            # Paths through the parent module or the absolute arch path.
            # `super::x`, `super::{a, b::{c}, d}` (nested braces: only the
            # first segment of each top-level item names a file), `super::*`.
            while ($code =~ m#\b(?:super|crate::arch::x86)::(\{(?:[^{}]++|(?1))*\}|\w+|\*)#g) {
                my $t = $1;
                my @names;
                if ($t =~ /^\{/) {
                    my ($depth, $item) = (0, "");
                    for my $c (split //, substr($t, 1, -1) . ",") {
                        if ($c eq "{") { $depth++ } elsif ($c eq "}") { $depth-- }
                        if ($c eq "," && $depth == 0) {
                            push @names, $1 if $item =~ /^\s*(\w+|\*)/;
                            $item = "";
                        } else {
                            $item .= $c;
                        }
                    }
                } else {
                    @names = ($t);
                }
                for my $n (@names) {
                    next if $n eq "self";
                    my $target = $n ne "*" && -e "$dir/$n.rs" ? "$dir/$n" : "$dir/mod";
                    $edges{$me}{$target} = 1 unless $target eq $me;
                }
            }
        }
        # Depth-first search; a back edge closes a cycle.
        my (%state, @stack);
        sub visit {
            my ($n) = @_;
            $state{$n} = 1; push @stack, $n;
            for my $m (sort keys %{ $edges{$n} // {} }) {
                if (($state{$m} // 0) == 1) {
                    my @c = (@stack[(grep { $stack[$_] eq $m } 0..$#stack)[0] .. $#stack], $m);
                    print join(" -> ", @c), "\n";
                    exit 0;
                }
                visit($m) unless $state{$m};
            }
            $state{$n} = 2; pop @stack;
        }
        visit($_) for grep { !$state{$_} } sort keys %nodes;
    '
)
if [[ -n $cycle ]]; then
    echo "FAIL: import cycle among src/arch files: ${cycle//$root\/src\/arch\//}"
    fail=1
else
    echo "ok: no import cycle among src/arch files"
fi

if ((fail)); then
    echo "structure check FAILED"
    exit 1
fi
echo "structure check passed"
