#!/usr/bin/env bash
# Boot tests: boot build/kernel.elf for real (GRUB ISO or QEMU's Multiboot 1
# loader, in QEMU and in Bochs) and check the exit status and the serial log.
#
# Each case says how to boot, whether the kernel must succeed (KERNEL OK,
# QEMU status 33) or fail on purpose (one PANIC: line, status 35), and which
# extended regular expressions must (or, prefixed with !, must not) match a
# line of the log. Every line of every log must also have the documented
# shape: "[LEVEL] subsystem: message", "KERNEL OK" or "PANIC: reason".
#
# Usage: tests/boot/run-tests.sh [NAME-FILTER]   (run from the repository root
# after `make kernel`; `make test` does both). Logs: build/test/<case>.log.
# A full run starts from an empty build/test; a filtered run replaces only
# the logs of the cases it runs, so the docs test can be rerun after it.
set -uo pipefail
cd "$(dirname "$0")/../.."

ELF=build/kernel.elf
OUT=build/test
FILTER=${1:-}
[ -n "$FILTER" ] || rm -rf "$OUT"
mkdir -p "$OUT"
rm -f "$OUT"/iso-*.iso # ISOs hold a copy of the kernel: never reuse an old one
[ -f "$ELF" ] || { echo "run-tests.sh: $ELF missing: run 'make kernel' first" >&2; exit 2; }

have_bochs=0
command -v bochs >/dev/null 2>&1 && have_bochs=1

pass=0
failed=()

# An ISO for a command line, a default GRUB entry (0 Multiboot2,
# 1 Multiboot 1), GRUB commands to run first and modules, built once per
# combination.
iso_for() { # iso_for CMDLINE ENTRY PRELUDE MODULES
    local key iso
    key=$(printf '%s|%s|%s|%s' "$1" "$2" "$3" "$4" | md5sum | cut -c1-12)
    iso=$OUT/iso-$key.iso
    [ -f "$iso" ] || MKISO_PRELUDE=$3 MKISO_MODULES=$4 scripts/mkiso.sh "$ELF" "$iso" "$1" "$2" ||
        return 1
    echo "$iso"
}

# Two modules with known contents: the kernel logs their CRC-32 after memory
# initialisation, which must match what gzip computes here.
MODDIR=$OUT/modules
mkdir -p "$MODDIR"
seq 1 20000 >"$MODDIR/mod-a.txt"           # 108894 bytes: many pages
printf 'hello module\n' >"$MODDIR/mod-b.txt" # 13 bytes: a partial page
crc32_of() { gzip -c "$1" | tail -c8 | head -c4 | od -An -tx4 | tr -d ' \n'; }
CRC_A=$(crc32_of "$MODDIR/mod-a.txt")
CRC_B=$(crc32_of "$MODDIR/mod-b.txt")

LINE_FORMAT='^(\[(ERROR|WARN |INFO |DEBUG|TRACE)\] [a-z0-9_-]+: .*|KERNEL OK|PANIC: .+)$'

# boot NAME ok|panic [--cpu C] [--mem M] [--cmdline S] [--loader grub2|grub1|qemu-mb1|forge|bochs]
#      [--prelude "GRUB commands; ..."] [--modules "FILE..."] -- PATTERN...
#      (--modules for qemu-mb1: comma-separated, QEMU's -initrd)
boot() {
    local name=$1 expect=$2
    shift 2
    local cpu="" mem=128M cmdline="" loader=grub2 prelude="" modules=""
    while [ "$1" != "--" ]; do
        case $1 in
        --prelude) prelude=$2 ;;
        --modules) modules=$2 ;;
        --cpu) cpu=$2 ;;
        --mem) mem=$2 ;;
        --cmdline) cmdline=$2 ;;
        --loader) loader=$2 ;;
        esac
        shift 2
    done
    shift
    [ -n "$FILTER" ] && [[ $name != *$FILTER* ]] && return 0
    if [ "$loader" = bochs ] && [ $have_bochs -eq 0 ]; then
        echo "SKIP  $name (Bochs not installed)"
        return 0
    fi

    local log=$OUT/$name.log iso rc
    case $loader in
    grub2 | grub1 | bochs)
        local entry=0
        [ "$loader" = grub1 ] && entry=1
        iso=$(iso_for "$cmdline" "$entry" "$prelude" "$modules") || { failed+=("$name (ISO)"); return 0; }
        ;;
    esac
    case $loader in
    grub2 | grub1)
        MEM=$mem CPU=$cpu TIMEOUT=60 scripts/run-qemu.sh --iso "$iso" --log "$log" >/dev/null 2>"$log.err"
        rc=$? ;;
    qemu-mb1)
        local initrd=()
        [ -n "$modules" ] && initrd=(--initrd "$modules")
        MEM=$mem CPU=$cpu TIMEOUT=60 scripts/run-qemu.sh --kernel "$ELF" --append "$cmdline" \
            "${initrd[@]}" --log "$log" >/dev/null 2>"$log.err"
        rc=$? ;;
    forge) # cmdline: "SCENARIO -- KERNEL COMMAND LINE" (tests/forge/forge.c)
        MEM=$mem CPU=$cpu TIMEOUT=60 scripts/run-qemu.sh --kernel "$FORGE" --initrd "$ELF" \
            --append "$cmdline" --log "$log" >/dev/null 2>"$log.err"
        rc=$? ;;
    bochs) # --cpu: a Bochs model (`bochs -help cpu`), default pentium
        BOCHS_CPU=$cpu MEM=$mem TIMEOUT=300 BOCHS_OUT=$OUT/bochs-$name scripts/run-bochs.sh "$iso" >/dev/null 2>"$log.err"
        rc=$?
        tr -d '\r' <"$OUT/bochs-$name/serial.log" >"$log" ;;
    esac
    # Serial lines end in CR LF.
    sed -i 's/\r$//' "$log"

    local problems=()
    case $expect in
    ok)
        [ "$rc" -eq 0 ] || problems+=("expected KERNEL OK (runner status 0), got status $rc: $(tail -1 "$log.err")")
        grep -q '^PANIC: ' "$log" && problems+=("unexpected $(grep -m1 '^PANIC: ' "$log")")
        ;;
    panic)
        [ "$rc" -eq 1 ] || problems+=("expected a PANIC: exit (runner status 1, QEMU 35), got status $rc")
        [ "$(grep -c '^PANIC: ' "$log")" -eq 1 ] || problems+=("expected exactly one PANIC: line")
        grep -q '^KERNEL OK' "$log" && problems+=("KERNEL OK printed despite the failure")
        ;;
    esac
    local bad
    bad=$(grep -Evn "$LINE_FORMAT" "$log" | grep -v '^[0-9]*:$' | head -3)
    [ -n "$bad" ] && problems+=("lines not in the log format: $bad")
    local p
    for p in "$@"; do
        if [[ $p == !* ]]; then
            grep -Eq -- "${p#!}" "$log" && problems+=("must not match: ${p#!}")
        else
            grep -Eq -- "$p" "$log" || problems+=("no line matches: $p")
        fi
    done

    if [ ${#problems[@]} -eq 0 ]; then
        echo "PASS  $name"
        pass=$((pass + 1))
    else
        echo "FAIL  $name  ($log)"
        printf '        %s\n' "${problems[@]}"
        echo "        --- last lines of the log ---"
        tail -8 "$log" | sed 's/^/        | /'
        failed+=("$name")
    fi
}

HEX='0x[0-9a-f]{8}'

# ---- The binary itself: nothing a 386 cannot execute -----------------------
# No emulator offers a 386, so this is checked on the code: no instruction
# newer than the 386 may appear unguarded. cmpxchg/xadd/bswap (486),
# cmpxchg8b/rdtsc/rdmsr/wrmsr (Pentium), cmov (P6) are never allowed; CR4
# does not exist before the Pentium and the kernel does not touch it yet.
# (cpuid and invlpg do appear: they run only after the CPU checks in
# arch/x86/cpu.rs and tlb.rs.)
isa_check() {
    [ -n "$FILTER" ] && [[ isa-i386 != *$FILTER* ]] && return 0
    local bad
    # CR4 and the EFER MSR are touched only inside the never-inlined
    # accessors of src/arch/x86/cpu.rs, which run after CPUID reported the
    # feature (paging modes, issue 16); anywhere else they are a bug.
    bad=$(objdump -d -C --no-show-raw-insn "$ELF" |
        awk '/^[0-9a-f]+ <.*>:$/ { allowed = ($0 ~ /<kernel::arch::x86::cpu::(read_cr4|write_cr4|set_efer_nxe|switch_to_pae)>:$/) }
             !allowed' |
        grep -E $'\t(lock +)?(cmpxchg|xadd|bswap|rdtsc|rdmsr|wrmsr|cmov[a-z]*)\b|%cr4' | head -5)
    if [ -z "$bad" ]; then
        echo "PASS  isa-i386"
        pass=$((pass + 1))
    else
        echo "FAIL  isa-i386: instructions a 386 lacks:"
        printf '        %s\n' "$bad"
        failed+=(isa-i386)
    fi
}
isa_check

# The forging loader (tests/forge/forge.c): boot information that no real
# loader produces, handed to the real kernel. Built here, in a second.
FORGE=$OUT/forge.elf
gcc -m32 -march=i386 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
    -fno-asynchronous-unwind-tables -nostdlib -Os -Wall -Wextra -Werror \
    -c tests/forge/forge.c -o "$OUT/forge.o" &&
    ld.lld -m elf_i386 -T tests/forge/forge.ld -o "$FORGE" "$OUT/forge.o" ||
    { echo "FAIL  forge: tests/forge/forge.c does not build"; failed+=(forge-build); }

# Issue 13: hostile boot information. Each case is a defect that once gave
# phantom RAM, a minute of silence, a read of device registers or the wrong
# diagnosis; now a warning and a boot, or one PANIC line that names it.
boot forge-wrap-mmap ok --loader forge --cmdline "wrap-mmap -- selftest" -- \
    '^\[INFO \] forge: wrap-mmap: ' \
    '^\[WARN \] memmap:   dropped: \[mem 0x0000000000100000 \+0xfffffffffff7ffff\] \(end overflows 64 bits\) usable: a corrupt entry, ignored' \
    '^\[INFO \] buddy: zone Normal: managed 28640 = present 28640 - reserved 0' \
    '^\[INFO \] buddy: zone HighMem pfn \[0x07fe0, 0x07fe0\), 0 pages spanned \(empty\)$' \
    '!at or above 4 GiB ignored' 'self-tests passed$'
boot forge-huge-module panic --loader forge --cmdline "huge-module -- selftest" -- \
    '^PANIC: Multiboot2 boot information: module 0 \[0x00200000, 0xf0000000\) is not all RAM: \[0x07fe0000, 0x08000000\) is reserved in the memory map \(the kernel never reads such memory\)$'
boot forge-mmio-module panic --loader forge --cmdline "mmio-module -- selftest" -- \
    '^PANIC: Multiboot2 boot information: module 0 \[0xfebc0000, 0xfebc1000\) is not all RAM: \[0xfebc0000, 0xfebc1000\) is a hole in the memory map'
boot forge-overlap-module panic --loader forge --cmdline "overlap-module -- selftest" -- \
    '^PANIC: Multiboot2 boot information: module 0 \[0x00150000, 0x00200000\) overlaps the kernel image: \.[a-z]+ \[0x00[0-9a-f]{6}, 0x00[0-9a-f]{6}\)$' \
    '!stack overflow'
boot forge-junk-after-end panic --loader forge --cmdline "junk-after-end -- selftest" -- \
    '^PANIC: Multiboot2 boot information: Multiboot2 end tag at offset [0-9]+ is followed by 16 more bytes before total_size [0-9]+$'
boot forge-two-mmaps ok --loader forge --cmdline "two-mmaps -- selftest" -- \
    '^\[WARN \] memmap: 2 memory-map tags in the boot information: the first one \(above\) is used, the others ignored$' \
    '^\[INFO \] buddy: zone Normal: managed 28640 ' 'self-tests passed$'
boot forge-unterminated-module panic --loader forge --cmdline "unterminated-module -- selftest" -- \
    '^PANIC: Multiboot2 boot information: Multiboot2 module string tag has no NUL to end its string$'
boot forge-mb1-elf-huge panic --loader forge --cmdline "mb1-elf-huge -- selftest" -- \
    '^PANIC: Multiboot 1 boot information: ELF section headers of 18446744065119617025 bytes is larger than the 65536-byte limit$'

# ---- Successful boots ------------------------------------------------------
boot grub-multiboot2 ok -- \
    '^\[INFO \] boot: booted by GRUB .* via Multiboot2; boot information at \['"$HEX"', '"$HEX"'\), [0-9]+ bytes$' \
    '^\[INFO \] boot: basic meminfo: lower 639 KiB, upper [0-9]+ KiB \(128 MiB total\)$' \
    '^\[INFO \] cmdline: options: loglevel=info selftest=off tlb=auto memblock=off slub_debug=off mem=all paging=auto$' \
    '^\[INFO \] cpu: family [0-9]+ model [0-9]+ stepping [0-9]+ \(.*\), via CPUID$' \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto: the best this CPU offers\)$' \
    '^\[INFO \] tlb: invalidation by invlpg' \
    '^\[INFO \] paging: boot map: physical \[0x00001000, ' \
    '^\[INFO \] paging: boot stack .* guard page .* unmapped' \
    '^KERNEL OK$' '!selftest:' '!^\[(WARN |ERROR)\]'

boot memblock-debug ok --cmdline "memblock=debug" -- \
    '^\[INFO \] memmap: memory map from the boot loader, 6 entries:$' \
    '^\[INFO \] memmap:   received: \[mem 0x0000000000100000-0x0000000007fdffff\] usable$' \
    '^\[INFO \] memmap:   \[mem 0x00000000000f0000-0x00000000000fffff\] reserved$' \
    '^\[INFO \] memblock: reserve \[0x00000000-0x000fffff\] low memory' \
    '^\[INFO \] memblock: reserve \[0x00100000-0x00[0-9a-f]{6}\] kernel image$' \
    '^\[INFO \] memblock: reserve \['"$HEX"'-'"$HEX"'\] Multiboot2 information$' \
    '^\[INFO \] memblock: MEMBLOCK configuration:$' \
    '^\[INFO \] memblock:  memory size = 0x07f7f000 reserved size = 0x[0-9a-f]{8}$' \
    '^\[INFO \] memblock:  memory.cnt  = 0x2$' \
    $'^\\[INFO \\] memblock:  memory\\[0x0\\]\t\\[0x00000000-0x0009efff\\], 0x0009f000 bytes flags: 0x0$' \
    $'^\\[INFO \\] memblock:  memory\\[0x1\\]\t\\[0x00100000-0x07fdffff\\], 0x07ee0000 bytes flags: 0x0$' \
    '^\[INFO \] memblock:  reserved.cnt  = 0x' \
    '^\[INFO \] memblock: memory 2 regions 133689344 bytes, reserved [0-9]+ regions [0-9]+ bytes$' \
    '^\[INFO \] boot: boot information \(1 ranges\) and 0 modules intact after memory initialisation$'

boot grub-selftest ok --cmdline "selftest" -- \
    '^\[INFO \] selftest: paging is on with the boot page directory \.\.\. ok$' \
    '^\[INFO \] selftest: memblock top-down allocation is zeroed, reserved and freed \.\.\. ok$' \
    '^\[INFO \] selftest: memblock bottom-up allocation below 16 MiB \(DMA\) \.\.\. ok$' \
    '^\[INFO \] selftest: int3 reaches the IDT and returns \.\.\. ok$' \
    '^\[INFO \] selftest: all [0-9]+ self-tests passed$'

boot qemu-kernel-multiboot1 ok --loader qemu-mb1 --cmdline "selftest loglevel=debug" -- \
    '^\[INFO \] boot: booted by qemu via Multiboot 1; boot information at ' \
    '^\[INFO \] cmdline: options: loglevel=debug selftest=on ' \
    '^\[DEBUG\] paging: translate kernel_entry: va 0xc01[0-9a-f]{5}: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[0\] = 0x[0-9a-f]{16} \(P RW( A)?\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{16} \(P( A)? G \(read-only\)\) -> pa 0x001[0-9a-f]{5}$' \
    '^\[DEBUG\] paging: translate null page: va 0x00000000: PDPTE\[0\] = 0x0000000000000000 \(not present\) -> no page directory$' \
    '!unknown option' 'self-tests passed$'

boot grub-multiboot1 ok --loader grub1 --cmdline "selftest" -- \
    '^\[INFO \] boot: booted by GRUB .* via Multiboot 1; ' \
    '!unknown option' 'self-tests passed$'

boot cmdline-options ok --cmdline "quiet loglevel=loud mem=64M tlb=cr3 memblock=debug" -- \
    "^\[WARN \] cmdline: unknown option 'quiet' ignored$" \
    "^\[WARN \] cmdline: bad value in 'loglevel=loud' ignored \(expected error\|warn\|info\|debug\|trace\)$" \
    '^\[INFO \] cmdline: command line: "quiet loglevel=loud mem=64M tlb=cr3 memblock=debug"$' \
    '^\[INFO \] cmdline: options: loglevel=info selftest=off tlb=cr3 memblock=debug slub_debug=off mem=0x4000000 paging=auto$' \
    '^\[INFO \] tlb: invalidation by CR3 reload \(whole TLB\) \(forced on the command line\)'

boot loglevel-warn ok --cmdline "loglevel=warn nosuchoption" -- \
    "^\[WARN \] cmdline: unknown option 'nosuchoption' ignored$" '!^\[INFO ' '^KERNEL OK$'

# ---- Memory sizes, holes, modules ------------------------------------------
boot mem-3m-multiboot1 ok --loader qemu-mb1 --mem 3M --cmdline "selftest memblock=debug" -- \
    $'memory\\[0x1\\]\t\\[0x00100000-0x002dffff\\]' 'self-tests passed$'

boot mem-8m ok --mem 8M --cmdline "selftest memblock=debug" -- \
    '^\[INFO \] memmap:   \[mem 0x0000000000100000-0x00000000007dffff\] usable$' \
    $'memory\\[0x1\\]\t\\[0x00100000-0x007dffff\\]' 'self-tests passed$'

boot mem-897m ok --mem 897M --cmdline "selftest memblock=debug" -- \
    $'memory\\[0x1\\]\t\\[0x00100000-0x380dffff\\]' 'self-tests passed$'

boot mem-3g ok --mem 3G --cmdline "selftest" -- \
    '^\[INFO \] boot: basic meminfo: lower 639 KiB, upper [0-9]+ KiB' \
    '^\[INFO \] memmap:   \[mem 0x0000000000100000-0x00000000bffdffff\] usable$' 'self-tests passed$'

boot mem-4g ok --mem 4G --cmdline "selftest" -- \
    '^\[INFO \] memmap:   received: \[mem 0x0000000100000000-0x000000013fffffff\] usable$' \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto: the best this CPU offers\)$' \
    '^\[WARN \] memmap: 1024 MiB of RAM at or above 4 GiB ignored: this CPU.s physical addresses have 32 bits \(MAXPHYADDR 32: no CPUID leaf 0x80000008, no PSE-36\), so PAE entries cannot hold it either$' \
    'self-tests passed$'

boot mem-limit ok --cmdline "mem=64M memblock=debug" -- \
    '^\[INFO \] memblock: mem=0x4000000: [0-9]+ KiB of RAM at and above 0x04000000 removed$' \
    $'memory\\[0x1\\]\t\\[0x00100000-0x03ffffff\\]'

# A command-line byte that is not UTF-8 (0xff) is replaced and its word
# ignored with a warning; the boot goes on (it used to be refused). Through
# QEMU's Multiboot 1 loader and GRUB's Multiboot2.
for loader in qemu-mb1 grub2; do
    boot "cmdline-not-utf8-$loader" ok --loader "$loader" --cmdline $'selftest sel\xffx loglevel=info' -- \
        '^\[WARN \] cmdline: 1 byte sequences that are not UTF-8 replaced by U\+FFFD \(the words holding them match no option\)$' \
        "^\\[WARN \\] cmdline: unknown option 'sel.+x' ignored$" \
        '^\[INFO \] cmdline: options: .*selftest=on' 'self-tests passed$'
done

# RAM cut away from the end of the kernel image up: everything left is
# reserved. The boot stops with one clear line before any self-test (a
# memblock self-test used to fail first).
kernel_end_pa=$(printf '0x%x' $((0x$(nm "$ELF" | awk '$3 == "__kernel_end" { print $1 }') - 0xc0000000)))
boot no-free-memory panic --prelude "cutmem $kernel_end_pa 0x8000000" --cmdline "selftest" -- \
    '^PANIC: no free memory after reservations: 0 KiB free below 0x01000000, mem_map needs 4 KiB \([0-9]+ KiB of RAM, the rest reserved: the first MiB, the kernel image, boot data, modules\)$' \
    '!selftest: .* failed'

# A 24 MiB module: its checksum reads one page in two (at most 4096 pages
# per range). QEMU puts it right after the kernel, over the rest of the
# 16 MiB boot direct map where memblock must find mem_map, so the boot stops
# with the free-memory report rather than a failure further on.
head -c $((24 << 20)) /dev/zero | tr '\0' 'm' >"$MODDIR/big.bin"
boot big-module-sampled panic --loader qemu-mb1 --modules "$MODDIR/big.bin" --cmdline "selftest" -- \
    '^\[INFO \] boot: module 0 \[0x[0-9a-f]{8}, 0x[0-9a-f]{8}\): 24 MiB, its CRC-32 reads one page in 2 \(at most 4096 pages per range\)$' \
    '^\[INFO \] boot: CRC-32 of [0-9]+ loader ranges and 1 modules: [0-9]+ bytes, about 1228[0-9] KiB read$' \
    '^PANIC: no free memory after reservations: [0-9]+ KiB free below 0x01000000, mem_map needs 256 KiB '

# 149 holes cut by GRUB make a real memory map of 155 entries: the first 128
# are kept, the rest ignored with a warning, and the boot goes on (it used to
# be refused).
many_holes=$(for n in $(seq 2 150); do
    printf 'cutmem 0x%x 0x%x; ' $(((n << 20) + 0x80000)) $(((n << 20) + 0x81000))
done)
boot mmap-155-entries ok --mem 256M --prelude "$many_holes" --cmdline "selftest" -- \
    '^\[INFO \] memmap: memory map from the boot loader, 155 entries, the first 128 kept:$' \
    '^\[WARN \] memmap: 27 entries past the first 128 ignored \(Linux.s e820 table also drops what does not fit\)$' \
    'self-tests passed$'
boot cutmem-holes ok --prelude "cutmem 0x800800 0x800c00; cutmem 0xff0000 0x1010000" \
    --cmdline "memblock=debug selftest" -- \
    '^\[INFO \] memmap:   received: \[mem 0x0000000000800c00-0x0000000000feffff\] usable$' \
    '^\[INFO \] memmap: [0-9]+ bytes of RAM in partial pages ignored' \
    $'memory\\[0x1\\]\t\\[0x00100000-0x007fffff\\]' \
    $'memory\\[0x2\\]\t\\[0x00801000-0x00feffff\\]' \
    $'memory\\[0x3\\]\t\\[0x01010000-0x07fdffff\\]' 'self-tests passed$'

boot modules ok --modules "$MODDIR/mod-a.txt $MODDIR/mod-b.txt" --cmdline "selftest" -- \
    "^\[INFO \] memblock: reserve \[$HEX-$HEX\] module$" \
    "^\[INFO \] boot: module 0 'mod-a.txt' \[$HEX-$HEX\), 108894 bytes, crc32 0x$CRC_A: intact$" \
    "^\[INFO \] boot: module 1 'mod-b.txt' \[$HEX-$HEX\), 13 bytes, crc32 0x$CRC_B: intact$" \
    '^\[INFO \] boot: boot information \(1 ranges\) and 2 modules intact after memory initialisation$'

boot modules-multiboot1 ok --loader grub1 --modules "$MODDIR/mod-a.txt $MODDIR/mod-b.txt" -- \
    "^\[INFO \] boot: module 0 'mod-a.txt' \[$HEX-$HEX\), 108894 bytes, crc32 0x$CRC_A: intact$" \
    "^\[INFO \] boot: module 1 'mod-b.txt' \[$HEX-$HEX\), 13 bytes, crc32 0x$CRC_B: intact$"

# ---- The buddy allocator: zones after the hand-off -------------------------
# Zone page counts follow from QEMU's memory map: DMA holds 159 pages below
# 640 KiB and 3840 in [1 MiB, 16 MiB); Normal runs to min(RAM, 896 MiB);
# HighMem holds the rest (QEMU keeps the last 128 KiB below the RAM size
# reserved).
BUDDYINFO_LINE=' +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ $'
boot zones-128m ok --cmdline "selftest" -- \
    '^\[INFO \] buddy: mem_map: 32736 page descriptors of 8 bytes = 255 KiB at physical ' \
    '^\[INFO \] buddy: zone DMA: managed [0-9]+ = present 3999 - reserved [0-9]+ \(checked against memblock\)$' \
    '^\[INFO \] buddy: zone Normal: present=28640 managed=28640 free=[0-9]+ min=[0-9]+ low=[0-9]+ high=[0-9]+$' \
    "^\[INFO \] buddyinfo: Node 0, zone      DMA$BUDDYINFO_LINE" \
    "^\[INFO \] buddyinfo: Node 0, zone   Normal$BUDDYINFO_LINE" \
    '!zone  HighMem' \
    '^\[INFO \] selftest: the OSDev 12K example: a 16K block, 3 pages out, the 4th back \.\.\. ok$' \
    '^\[INFO \] selftest:   memory:   ###p\.+$' \
    '^\[INFO \] selftest: zone DMA exhaustion fails cleanly, then everything is freed \.\.\. ok$' \
    '^\[WARN \] buddy: BUG: Bad page state: pfn:[0-9a-f]+ order:2 .* reason: double free' \
    '^\[WARN \] buddy: page allocation failure: order:0, mode:0xcc1\(GFP_KERNEL\|GFP_DMA\)$' \
    '^\[INFO \] selftest: __GFP_ZERO pages come back zeroed, in every zone \.\.\. ok$'

boot zones-8m ok --mem 8M --cmdline "selftest" -- \
    '^\[INFO \] buddy: zone DMA: present=1919 managed=[0-9]+ ' \
    "^\[INFO \] buddyinfo: Node 0, zone      DMA$BUDDYINFO_LINE" '!zone   Normal' '!zone  HighMem' \
    'self-tests passed$'

boot zones-897m ok --mem 897M --cmdline "selftest loglevel=debug" -- \
    '^\[INFO \] buddy: zone Normal: present=225280 managed=225280 ' \
    '^\[INFO \] buddy: zone HighMem: present=224 managed=224 ' \
    "^\[INFO \] buddyinfo: Node 0, zone  HighMem$BUDDYINFO_LINE" \
    '^\[DEBUG\] zoneinfo: Node 0, zone  HighMem$' '^\[DEBUG\] vmstat: nr_free_pages [0-9]+$' \
    '^\[INFO \] selftest: zone HighMem: pfn 0x[0-9a-f]+ dirtied, freed, allocated again with __GFP_ZERO' \
    'self-tests passed$'

boot zones-1g ok --mem 1G --cmdline "selftest" -- \
    '^\[INFO \] buddy: zone DMA: present=3999 ' \
    '^\[INFO \] buddy: zone Normal: present=225280 managed=225280 ' \
    '^\[INFO \] buddy: zone HighMem: present=32736 managed=32736 ' 'self-tests passed$'

boot zones-3g ok --mem 3G --cmdline "selftest" -- \
    '^\[INFO \] buddy: mem_map: 786400 page descriptors of 8 bytes = 6143 KiB' \
    '^\[INFO \] buddy: zone HighMem: present=557024 managed=557024 ' 'self-tests passed$'

# ---- Final paging -----------------------------------------------------------
# The final page directory's story in the classic mode that chapter 5 of
# the book teaches (2-level, 4 KiB pages, no global pages: every i386 has
# it), with the translate walks of loglevel=debug. A plain boot takes the
# best mode the CPU offers (paging-mode-pae).
LEGACY_WORDS="paging=2level pse=off pge=off"
boot paging-final ok --cmdline "$LEGACY_WORDS loglevel=debug" -- \
    '^\[INFO \] paging: mode: 2-level, 4 KiB pages \(as the command line asks\)$' \
    '^\[DEBUG\] paging: translate kernel_entry: va 0xc01[0-9a-f]{5}: PDE\[768\] = 0x[0-9a-f]{8} \(P RW( A)?\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{8} \(P( A)? \(read-only\)\) -> pa 0x001[0-9a-f]{5}$' \
    '^\[DEBUG\] paging: translate null page: va 0x00000000: PDE\[0\] = 0x00000000 \(not present\) -> no page table$' \
    '^\[INFO \] paging: final page directory at physical '"$HEX"' \(from the buddy allocator\) loaded into CR3; the boot page directory and its identity map of \[0x1000, 0x1000000\) are gone$' \
    '^\[INFO \] paging: direct map: physical \[0x00000000, 0x07fe0000\) at \[0xc0000000, 0xc7fe0000\): 32734 pages mapped, [0-9]+ of them read-only \(\.boot \.text \.rodata\); page 0 and the boot stack guard left unmapped$' \
    '^\[INFO \] paging: CR0\.WP set: kernel writes to read-only pages fault$' \
    '^\[INFO \] layout:   direct map   \[0xc0000000, 0xf8000000\)  32734 pages  lowmem at PAGE_OFFSET \+ physical$' \
    '^\[INFO \] layout:   vmalloc      \[0xf8800000, 0xff3fe000\)      0 pages ' \
    '^\[INFO \] layout:   pkmap        \[0xff400000, 0xff800000\) ' \
    '^\[INFO \] layout:   fixmap       \[0xfffef000, 0xfffff000\) ' \
    '^\[INFO \] paging: page tables: 1 page directory \+ 34 page tables = 140 KiB from the buddy allocator' \
    '^\[INFO \] paging:   \[0xc0001000, 0xc0100000\) -> \[0x00001000, 0x00100000\)    255 pages  P RW$' \
    '^\[INFO \] paging:   \[0xc0100000, 0xc01[0-9a-f]{5}\) -> \[0x00100000, 0x001[0-9a-f]{5}\) +[0-9]+ pages  P \(read-only\)$' \
    '^\[INFO \] paging:   \[0xc01[0-9a-f]{5}, 0xc7fe0000\) -> \[0x001[0-9a-f]{5}, 0x07fe0000\)  [0-9]+ pages  P RW$' \
    '^\[INFO \] paging: early map window \[0xff800000, 0xffc00000\) unmapped: boot information no longer needed$' \
    '^\[INFO \] tlb: TLB flushes: [0-9]+ invlpg, [0-9]+ CR3 reloads \(method: invlpg\)$' \
    '^\[INFO \] kmap: 0 kmaps, 0 kunmaps, 0 refused kunmaps, 0 mappings still held$' \
    '^KERNEL OK$'

# The paging self-tests on each CPU model with each flush method: on a 486
# and a Pentium (no PGE: 2-level with PSE), the default CPU (PAE with
# global pages: a full flush toggles CR4.PGE) and the default CPU in the
# classic mode chapter 5 quotes, with invlpg and with CR3 reloads. The TLB
# lesson must see frame B after the flush; what the read before the flush
# saw is logged. The walks show the format of the mode.
WALKS_2LEVEL=(
    '^\[INFO \] selftest:     page-table walk: va 0x00101000: PDE\[0\] = 0x00000000 \(not present\) -> no page table$'
    '^\[INFO \] selftest:     page-table walk: va 0xc01[0-9a-f]{5}: PDE\[768\] = 0x[0-9a-f]{8} \(P RW A\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{8} \(P A \(read-only\)\) -> pa 0x001[0-9a-f]{5}$'
)
WALKS_PAE=(
    '^\[INFO \] selftest:     page-table walk: va 0x00101000: PDPTE\[0\] = 0x0000000000000000 \(not present\) -> no page directory$'
    '^\[INFO \] selftest:     page-table walk: va 0xc01[0-9a-f]{5}: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[0\] = 0x[0-9a-f]{16} \(P RW A\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{16} \(P A G \(read-only\)\) -> pa 0x001[0-9a-f]{5}$'
)
PAGING_SELFTESTS=(
    '^\[INFO \] selftest: final page directory: identity map gone, holes unmapped \.\.\. ok$'
    '^\[INFO \] selftest: write through a new mapping, read through the direct map \.\.\. ok$'
    '^\[INFO \] selftest: remap to another frame and read it \.\.\. ok$'
    '^\[INFO \] selftest:   PTE changed to B \('"$HEX"'\) without a flush: read 0x(aaaaaaaa \(A: the TLB still holds the old translation|bbbbbbbb \(B: this CPU/emulator refetched the PTE)\)$'
    '^\[INFO \] selftest: TLB lesson: a changed PTE is seen after the flush \.\.\. ok$'
    '^\[INFO \] selftest:   read after unmap: #PF at 0xf8800000: not-present read, supervisor access \(vmalloc: '
    '^\[INFO \] selftest: unmapped page faults \(not present\) \.\.\. ok$'
    '^\[INFO \] selftest:   \.text: #PF at 0xc01[0-9a-f]{5}: protection-violation write, supervisor access \(\.text: '
    '^\[INFO \] selftest: kernel text and rodata are read-only \.\.\. ok$'
    '^\[INFO \] selftest:   page tables: ([0-9]+) before, [0-9]+ after mapping 0xf9000000, [0-9]+ with a second page there, [0-9]+ after unmapping both$'
    '^\[INFO \] selftest: page tables allocated on demand and freed when empty \.\.\. ok$'
    '^\[INFO \] selftest: map errors: already mapped, not mapped, out of range, misaligned \.\.\. ok$'
    '^\[INFO \] selftest: kmap and kmap_local reach every frame \.\.\. ok$'
    'self-tests passed$' '^KERNEL OK$'
)
for cpu in default 486 pentium 2level; do
    cpu_opt=() words="" walks=("${WALKS_2LEVEL[@]}") full='CR3 reload' pge=''
    case $cpu in
        default) walks=("${WALKS_PAE[@]}") full='CR4\.PGE toggle'
            pge=', [0-9]+ CR4\.PGE toggles' ;;
        2level) words="$LEGACY_WORDS " ;;
        *) cpu_opt=(--cpu "$cpu") ;;
    esac
    boot "paging-$cpu-invlpg" ok "${cpu_opt[@]}" --cmdline "${words}selftest tlb=invlpg" -- \
        '^\[INFO \] tlb: invalidation by invlpg \(one page\) \(forced on the command line\)' \
        '^\[INFO \] selftest:   after the flush \(invlpg\): read 0xbbbbbbbb \(B\)$' \
        "^\[INFO \] tlb: TLB flushes: [0-9]+ invlpg, [0-9]+ CR3 reloads$pge \(method: invlpg" \
        "${walks[@]}" "${PAGING_SELFTESTS[@]}"
    boot "paging-$cpu-cr3" ok "${cpu_opt[@]}" --cmdline "${words}selftest tlb=cr3" -- \
        '^\[INFO \] tlb: invalidation by CR3 reload \(whole TLB\) \(forced on the command line\)' \
        "^\[INFO \] selftest:   after the flush \($full\): read 0xbbbbbbbb \(B\)$" \
        "^\[INFO \] tlb: TLB flushes: [0-9]+ invlpg, [0-9]+ CR3 reloads$pge \(method: CR3 reload" \
        "${walks[@]}" "${PAGING_SELFTESTS[@]}"
done
boot paging-486-family ok --cpu 486 --cmdline "selftest" -- \
    '^\[INFO \] cpu: family 4 ' 'features: invlpg yes .*PGE no PAE no' 'self-tests passed$'
boot paging-pentium-family ok --cpu pentium --cmdline "selftest" -- \
    '^\[INFO \] cpu: family 5 ' 'features: invlpg yes PSE yes PGE no PAE no' 'self-tests passed$'
# NX comes from CPUID leaf 0x80000001, read only when leaf 0x80000000 says
# it exists: a CPU with it, and the default model without it.
boot cpu-nx ok --cpu qemu32,+nx -- \
    '^\[INFO \] cpu: features: .* NX yes$' 'KERNEL OK'

# Issue 16: the paging modes, chosen at boot by paging=/pse=/pge=/nx= (a
# boot without one of them is paging=auto: grub-multiboot2 checks that).
# Each mode that a CPU model allows, with the self-tests (the global-page
# lesson among them); QEMU drops global entries on a CR3 reload (it does
# not model PGE), which the lesson reports.
boot paging-mode-pae ok --cmdline "selftest" -- \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto: the best this CPU offers\)$' \
    '^\[INFO \] paging: page tables: 1 PDPT \+ 1 page directory \+ [0-9]+ page tables' \
    '^\[INFO \] paging:   \[0xc0200000, 0xc7e00000\) -> \[0x00200000, 0x07e00000\)  31744 pages  P RW G  \(2 MiB pages\)$' \
    '^\[INFO \] selftest:   after the CR4.PGE toggle: read 0xb2b2b2b2 \(B\)$' \
    '^\[INFO \] paging: early map window \[0xff800000, 0xffc00000\) unmapped' 'self-tests passed$'
boot paging-mode-pae-nx ok --cpu qemu32,+nx --cmdline "selftest tlb=cr3" -- \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\), NX ' \
    'P RW G NX  \(2 MiB pages\)$' ' P G \(read-only\)$' 'self-tests passed$'
boot paging-mode-pse ok --cpu pentium --cmdline "selftest" -- \
    '^\[INFO \] paging: mode: 2-level, 4 MiB pages \(PSE\) \(paging=auto' \
    '^\[INFO \] paging: direct map: 30 large pages of 4 MiB' \
    '^\[INFO \] paging:   \[0xc0400000, 0xc7c00000\) -> \[0x00400000, 0x07c00000\)  30720 pages  P RW  \(4 MiB pages\)$' \
    '^\[INFO \] selftest:   no global pages in this mode' 'self-tests passed$'
# QEMU's 486 model reports PSE (a real 486 has none): it gets 4 MiB pages.
boot paging-mode-486-refused ok --cpu 486 --cmdline "paging=pae pse=on pge=on nx=on selftest tlb=cr3" -- \
    '^\[WARN \] paging: paging=pae refused: this CPU has no PAE' \
    '^\[WARN \] paging: pge=on refused' \
    '^\[WARN \] paging: nx=on refused: 2-level entries have no NX bit' \
    '^\[INFO \] paging: mode: 2-level, 4 MiB pages \(PSE\) \(as the command line asks\)$' 'self-tests passed$'
boot paging-mode-legacy-words ok --cpu pentium3 --cmdline "paging=2level pse=off pge=off" -- \
    '^\[INFO \] paging: mode: 2-level, 4 KiB pages \(as the command line asks\)$' \
    '^\[INFO \] paging: page tables: 1 page directory \+ 34 page tables = 140 KiB' 'KERNEL OK'
# PAE with RAM above 4 GiB: all 8 GiB managed (HighMem about 7.1 GiB), the
# boot direct map extended for the 18 MiB mem_map, a frame above 4 GiB
# reached through kmap. qemu32 has PAE but 32-bit physical addresses.
boot paging-pae-8g ok --cpu pentium3 --mem 8G --cmdline "selftest" -- \
    '^\[INFO \] paging: PAE: 64-bit entries, physical addresses of 36 bits \(MAXPHYADDR\) reach 64 GiB$' \
    '^\[INFO \] memblock: boot direct map extended from 0x01000000 to 0x02800000 for mem_map: 6 page tables from memblock' \
    '^\[INFO \] buddy: zone HighMem: managed 1867744 = present 1867744 - reserved 0' \
    '^\[INFO \] selftest:   pfn 0x100000 \(physical 0x100000000, above 4 GiB\) kmapped at 0xff4[0-9a-f]{5}: tag 0x4abc0000 written, read back 0x4abc0000' \
    '^\[INFO \] selftest:     the slot.s walk: va 0xff4[0-9a-f]{5}: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[50[67]\] = 0x[0-9a-f]{16} \(P RW( A)?\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x0000000100000[0-9a-f]{3} \(P RW( A)?( D)? G\) -> pa 0x100000000$' \
    'self-tests passed$'
boot paging-2level-8g ok --cpu pentium3 --mem 8G --cmdline "paging=2level" -- \
    '^\[WARN \] memmap: 5120 MiB of RAM at or above 4 GiB ignored: 32-bit paging without PAE cannot address it$' 'KERNEL OK'
boot paging-pae-phys32-8g ok --mem 8G -- \
    '^\[WARN \] memmap: 5120 MiB of RAM at or above 4 GiB ignored: this CPU.s physical addresses have 32 bits' 'KERNEL OK'
boot crash-nx panic --cpu qemu32,+nx --cmdline "crashtest=nx" -- \
    '^\[WARN \] crashtest: calling a `ret` in kmalloc.d data at 0xc' \
    '^\[ERROR\] trap:   error code means: protection-violation fetch, supervisor$' \
    '^PANIC: #PF page fault at EIP 0xc[0-9a-f]{7}: protection-violation fetch, supervisor access to 0xc[0-9a-f]{7} \(direct map\)$'
boot crash-nx-none panic --cpu pentium3 --cmdline "crashtest=nx" -- \
    '^PANIC: crashtest=nx: data at 0xc[0-9a-f]{7} executed: this paging mode has no NX'
# The fatal paths under PAE with global pages and NX (Pentium III-class
# CPU with NX): the walks print PDPTE, PDE and PTE with 64-bit values, a
# write to .text faults in a 4 KiB page of the split first 2 MiB, and the
# double-fault task switches to the PDPT (its CR3 loads the PDPTEs).
boot crash-pae-unmapped panic --cpu qemu32,+nx --cmdline "crashtest=unmapped" -- \
    '^\[ERROR\] trap:   page-table walk: va 0xf8800000: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[452\] = 0x0000000000000000 \(not present\) -> no page table$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0xf8800000 \(vmalloc\)$'
boot crash-pae-rodata panic --cpu qemu32,+nx --cmdline "crashtest=rodata" -- \
    '^\[ERROR\] trap:   page-table walk: va 0xc01[0-9a-f]{5}: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[0\] = 0x[0-9a-f]{16} \(P RW( A)?\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{16} \(P( A)? G \(read-only\)\) -> pa 0x001[0-9a-f]{5}$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: protection-violation write, supervisor access to 0xc01[0-9a-f]{5}'
boot crash-pae-stack-overflow panic --cpu qemu32,+nx --cmdline "crashtest=stack" -- \
    '^PANIC: #DF double fault at EIP 0xc0[0-9a-f]{6}: kernel stack overflow'

# HighMem reached through kmap (pkmap slots) and kmap_local (fixmap slots).
KMAP_SELFTESTS=(
    '^\[INFO \] selftest:   8 HighMem frames from pfn 0x[0-9a-f]+: kmap at 0xff4[0-9a-f]{5}\.\., tags read back through kmap_local slots 0xffffe000 and 0xffffd000 \(nested\)$'
    "^\[INFO \] selftest:   second kunmap refused: kunmap of pfn 0x[0-9a-f]+, which is not kmapped \(double kunmap\?\)$"
    '^\[INFO \] selftest: kmap and kmap_local reach every frame \.\.\. ok$'
    '^\[INFO \] kmap: 10 kmaps, 10 kunmaps, 1 refused kunmaps, 0 mappings still held$'
    'self-tests passed$' '^KERNEL OK$'
)
# 1 GiB in the classic mode: 226 page tables for the direct map (chapters
# 5 and 7 quote it).
boot kmap-1g ok --mem 1G --cmdline "$LEGACY_WORDS selftest" -- \
    '^\[INFO \] paging: direct map: physical \[0x00000000, 0x38000000\) at \[0xc0000000, 0xf8000000\): 229374 pages mapped' \
    '^\[INFO \] paging: page tables: 1 page directory \+ 226 page tables = 908 KiB' \
    "${KMAP_SELFTESTS[@]}"
boot kmap-3g-cr3 ok --mem 3G --cpu 486 --cmdline "selftest tlb=cr3" -- "${KMAP_SELFTESTS[@]}"
boot kmap-none-128m ok --cmdline "selftest" -- \
    '^\[INFO \] selftest:   no HighMem zone: kmap of lowmem frame 0x[0-9a-f]{8} returned its direct-map address 0xc[0-9a-f]{7}$'

# ---- kmalloc, Rust collections, vmalloc, demand paging ---------------------
# Every boot shows a few allocations with their caches, the collections, a
# vmalloc area and one demand fault, and ends with the kmalloc summary.
boot kmalloc-demo ok -- \
    '^\[INFO \] kmalloc: 13 caches kmalloc-8 \.\. kmalloc-8k .*; slub_debug off$' \
    '^\[INFO \] kmalloc: kmalloc\(13\) = 0xc[0-9a-f]{7} from kmalloc-16 \(ksize 16\)$' \
    '^\[INFO \] kmalloc: kmalloc\(100\) = 0xc[0-9a-f]{7} from kmalloc-128 \(ksize 128\)$' \
    '^\[INFO \] kmalloc: kmalloc\(5000\) = 0xc[0-9a-f]{4}000 from kmalloc-8k \(ksize 8192\)$' \
    '^\[INFO \] kmalloc: kmalloc\(20000\) = 0xc[0-9a-f]{4}000 from whole pages \(ksize 32768\)$' \
    '^\[INFO \] kmalloc: Rust collections on kmalloc: Vec of 1000 squares \(last 1000000, .*BTreeMap \{"DMA": "dma", "HighMem": "highmem", "Normal": "normal"\}$' \
    '^\[INFO \] vmalloc: vmalloc\(64 KiB\) = 0xf8800000: 16 pages mapped now' \
    '^\[INFO \] vmalloc: vmalloc_demand\(64 KiB\) = 0xf88[0-9a-f]{5}: nothing mapped; reading 0xf88[0-9a-f]{5} \(mapped before: false\) took 1 demand fault, mapped frame 0x[0-9a-f]{8}, read 0$' \
    '^\[INFO \] kmalloc: [0-9]+ objects in use in [0-9]+ slabs \([0-9]+ KiB\), 0 large allocations \(0 KiB\); [0-9]+ allocations, [0-9]+ frees since boot; 0 problems reported; slub_debug off$' \
    '^\[INFO \] kmalloc: size-class rounding since boot: caches [0-9]+ bytes requested, [0-9]+ handed out \([0-9]+\.[0-9]% lost\); large allocations 20000 bytes requested, 32768 handed out \(38\.9% lost\)$' \
    '^\[INFO \] vmalloc: 0 areas, 0 KiB reserved; 1 demand faults since boot$' \
    '!^\[(WARN |ERROR)\]' '^KERNEL OK$'

# The kmalloc self-tests (slub_debug forced on): the detections are logged
# as BUG lines, every test ends "... ok"; /proc/slabinfo under loglevel=debug.
KMEM_SELFTESTS=(
    '^\[INFO \] kmalloc: 13 caches .*; slub_debug on( \(for the self-tests\))?$'
    '^\[INFO \] selftest: kmalloc: sample allocations and their caches \.\.\. ok$'
    '^\[INFO \] selftest: kmalloc: every size 1\.\.8193, aligned and disjoint \.\.\. ok$'
    '^\[INFO \] selftest: kmalloc: 20000 random alloc/realloc/free with patterns \.\.\. ok$'
    '^\[INFO \] selftest: Box, Vec, String, BTreeMap on the kernel heap \.\.\. ok$'
    '^\[INFO \] selftest: Layout alignments up to a page \.\.\. ok$'
    '^\[ERROR\] kmalloc: BUG kmalloc-64: double free of object 0xc[0-9a-f]{7}$'
    '^\[ERROR\] kmalloc: BUG kmalloc-16: red zone overwritten at object 0xc[0-9a-f]{7}\+10 \(byte 0x00, expected 0xcc\); restored$'
    '^\[ERROR\] kmalloc: BUG kmalloc-32: red zone overwritten at object 0xc[0-9a-f]{7}\+32 '
    '^\[ERROR\] kmalloc: BUG kmalloc: free of 0xc[0-9a-f]{4}000, which kmalloc never returned '
    '^\[ERROR\] kmalloc: BUG kmalloc-128: free of 0xc[0-9a-f]{7}, which is not the start of an object$'
    '^\[ERROR\] kmalloc: BUG kmalloc-256: object 0xc[0-9a-f]{7} modified after free at offset 5 \(byte 0x42\); quarantined$'
    '^\[INFO \] selftest: slub_debug: double free, red zone, foreign pointer, use after free detected \.\.\. ok$'
    '^\[INFO \] selftest: vmalloc: up to 4 MiB virtually contiguous, scattered frames \.\.\. ok$'
    '^\[INFO \] vmalloc:   0xf88[0-9a-f]{5}-0xf8[0-9a-f]{6} +[0-9]+ demand pages=64 faults=16$'
    '^\[INFO \] vmalloc:   16 pages touched twice in scattered order \(11, 48, 21, \.\.\.\): 16 demand faults$'
    '^\[INFO \] selftest: demand paging: scattered first touches fault once each \.\.\. ok$'
    '^\[INFO \] selftest: everything freed: buddy free pages back to the start \.\.\. ok$'
    '^\[INFO \] kmalloc: [0-9]+ objects in use .* 6 problems reported; slub_debug on$'
    'self-tests passed$' '^KERNEL OK$'
)
boot kmalloc-selftest ok --cmdline "selftest loglevel=debug" -- \
    '^\[DEBUG\] slabinfo: # name +<active> <total> <size> <obj/slab> <pages/slab>$' \
    '^\[DEBUG\] slabinfo: kmalloc-8 +[0-9]+ +[0-9]+ +8 +[0-9]+ +[0-9]+ +stride 24 align 8$' \
    '^\[DEBUG\] slabinfo: kmalloc-2k +[0-9]+ +[0-9]+ +2048 +[0-9]+ +8$' \
    '^\[DEBUG\] slabinfo: kmalloc-4k +[0-9]+ +[0-9]+ +4096 +2 +8 +stride 12288 align 4096$' \
    '^\[DEBUG\] slabinfo: kmalloc-8k +[0-9]+ +[0-9]+ +8192 +1 +8 +stride 24576 align 8192$' \
    '^\[INFO \] vmalloc:   vmalloc\(4096 KiB\) = 0xf88[0-9a-f]{5}: 1024 pages, 0 from HighMem' \
    "${KMEM_SELFTESTS[@]}"
boot kmalloc-3g-highmem ok --mem 3G --cmdline "selftest slub_debug" -- \
    '^\[INFO \] vmalloc:   vmalloc\(4096 KiB\) = 0xf88[0-9a-f]{5}: 1024 pages, [1-9][0-9]* from HighMem' \
    '^\[INFO \] kmalloc: 13 caches .*; slub_debug on$' \
    "${KMEM_SELFTESTS[@]}"
boot kmalloc-3m ok --loader qemu-mb1 --mem 3M --cmdline "selftest" -- "${KMEM_SELFTESTS[@]}"

# ---- Deliberate failures: a decoded PANIC: line and status 35 --------------
# A plain boot runs the best mode of the CPU (PAE on the default model);
# the walks are PAE's. The same three in the classic mode follow.
boot crash-null panic --cmdline "crashtest=null" -- \
    '^\[ERROR\] trap: CPU exception 14 #PF \(page fault\), error code 0x00000000$' \
    '^\[ERROR\] trap:   error code means: not-present read, supervisor$' \
    '^\[ERROR\] trap:   CR2 0x00000000 lies in null page: a null pointer dereference$' \
    '^\[ERROR\] trap:   page-table walk: va 0x00000000: PDPTE\[0\] = 0x0000000000000000 \(not present\) -> no page directory$' \
    "^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0x00000000 \(null page\)$"

boot crash-null-486 panic --cpu 486 --cmdline "crashtest=null" -- \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0x00000000'

boot crash-unmapped panic --cmdline "crashtest=unmapped" -- \
    '^\[WARN \] crashtest: page 0xf8800000 mapped, unmapped and flushed; now reading it$' \
    '^\[ERROR\] trap:   CR2 0xf8800000 lies in vmalloc: virtually contiguous kernel mappings$' \
    '^\[ERROR\] trap:   page-table walk: va 0xf8800000: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[452\] = 0x0000000000000000 \(not present\) -> no page table$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0xf8800000 \(vmalloc\)$'

boot crash-unmapped-cr3 panic --cmdline "crashtest=unmapped tlb=cr3" -- \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0xf8800000 \(vmalloc\)$'

boot crash-rodata panic --cmdline "crashtest=rodata" -- \
    '^\[ERROR\] trap:   error code means: protection-violation write, supervisor$' \
    '^\[ERROR\] trap:   CR2 0xc01[0-9a-f]{5} lies in \.text: kernel code or constants, read-only$' \
    '^\[ERROR\] trap:   page-table walk: va 0xc01[0-9a-f]{5}: PDPTE\[3\] = 0x[0-9a-f]{16} \(P( A)?\) -> page directory 0x[0-9a-f]{8}; PDE\[0\] = 0x[0-9a-f]{16} \(P RW A\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{16} \(P A G \(read-only\)\) -> pa 0x001[0-9a-f]{5}$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: protection-violation write, supervisor access to 0xc01[0-9a-f]{5} \(\.text\)$'

# The classic mode (2-level, 4 KiB pages) that chapter 5 quotes.
boot crash-2level-null panic --cmdline "$LEGACY_WORDS crashtest=null" -- \
    '^\[ERROR\] trap:   page-table walk: va 0x00000000: PDE\[0\] = 0x00000000 \(not present\) -> no page table$' \
    "^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0x00000000 \(null page\)$"
boot crash-2level-unmapped panic --cmdline "$LEGACY_WORDS crashtest=unmapped" -- \
    '^\[ERROR\] trap:   page-table walk: va 0xf8800000: PDE\[994\] = 0x00000000 \(not present\) -> no page table$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0xf8800000 \(vmalloc\)$'
boot crash-2level-rodata panic --cmdline "$LEGACY_WORDS crashtest=rodata" -- \
    '^\[ERROR\] trap:   page-table walk: va 0xc01[0-9a-f]{5}: PDE\[768\] = 0x[0-9a-f]{8} \(P RW A\) -> page table 0x[0-9a-f]{8}; PTE\[[0-9]+\] = 0x[0-9a-f]{8} \(P A \(read-only\)\) -> pa 0x001[0-9a-f]{5}$' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: protection-violation write, supervisor access to 0xc01[0-9a-f]{5} \(\.text\)$'

boot crash-ud panic --cmdline "crashtest=ud" -- \
    '^\[ERROR\] trap: CPU exception 6 #UD' '^PANIC: #UD invalid opcode at EIP 0xc0[0-9a-f]{6}$'

boot crash-div0 panic --cmdline "crashtest=div0" -- \
    '^PANIC: #DE divide error at EIP 0xc0[0-9a-f]{6}$'

boot crash-gp panic --cmdline "crashtest=gp" -- \
    '^\[ERROR\] trap: CPU exception 13 #GP \(general protection\), error code 0x000001f8$' \
    '^PANIC: #GP general protection at EIP 0xc0[0-9a-f]{6}: error code 0x1f8 \(GDT selector 0x1f8 \(index 63\)\)$'

boot crash-stack-overflow panic --cmdline "crashtest=stack" -- \
    '^\[ERROR\] trap: CPU exception 8 #DF \(double fault\), handled by a task switch$' \
    "^PANIC: #DF double fault at EIP 0xc0[0-9a-f]{6}: kernel stack overflow, ESP $HEX reached the guard page \[$HEX, $HEX\)$"

boot crash-panic panic --cmdline "crashtest=panic" -- \
    '^PANIC: crashtest=panic: a deliberate Rust panic at src/main.rs:[0-9]+$'

boot crash-vmalloc-guard panic --cmdline "crashtest=vmalloc" -- \
    '^\[WARN \] crashtest: demand area at 0xf88[0-9a-f]{5} touched \([0-9]+ demand faults\); now reading its guard page 0xf88[0-9a-f]{5}$' \
    '^\[ERROR\] trap:   CR2 0xf88[0-9a-f]{5} lies in vmalloc: ' \
    '^PANIC: #PF page fault at EIP 0xc0[0-9a-f]{6}: not-present read, supervisor access to 0xf88[0-9a-f]{5} \(vmalloc\)$'

boot crash-oom panic --cmdline "crashtest=oom" -- \
    '^\[WARN \] crashtest: allocating a Vec of 1073741824 bytes' \
    '^\[ERROR\] kmalloc: global allocator: 1073741824 bytes aligned to 1 not available \([0-9]+ pages free; at most 4096 KiB in one block, order 10\)$' \
    '^PANIC: memory allocation of 1073741824 bytes failed'

boot crash-kfree panic --cmdline "crashtest=kfree" -- \
    '^\[ERROR\] kmalloc: BUG kmalloc: free of 0xc0[0-9a-f]{6}, which kmalloc never returned \(not a slab or large-kmalloc page\)$' \
    '^PANIC: crashtest=kfree: kfree reported: BUG kmalloc: free of 0xc0[0-9a-f]{6}, which kmalloc never returned'

# ---- Bochs: a Pentium that enforces CPUID features (no PGE, no PAE) --------
boot bochs-selftest ok --loader bochs --cmdline "selftest" -- \
    '^\[INFO \] boot: booted by GRUB .* via Multiboot2' \
    '^\[INFO \] cpu: family 5 ' 'features: invlpg yes PSE yes PGE no PAE no' \
    '^\[INFO \] paging: CR0\.WP set: kernel writes to read-only pages fault$' \
    "${PAGING_SELFTESTS[@]}" "${KMEM_SELFTESTS[@]}"

boot bochs-crash-stack-overflow panic --loader bochs --cmdline "crashtest=stack" -- \
    '^PANIC: #DF double fault at EIP 0xc0[0-9a-f]{6}: kernel stack overflow'

# Paging modes in Bochs (issue 16). Bochs enforces CPUID, so a mode the model
# lacks faults instead of silently working. Models: pentium (P54C: PSE, no
# PGE/PAE), p3_katmai (P6: PSE, PAE, PGE, no NX), core_duo_t2400_yonah (a
# 32-bit CPU with NX). A selftest boot takes ~40 s here, a plain boot ~5 s.
boot bochs-paging-pse ok --loader bochs --cmdline "selftest" -- \
    '^\[INFO \] cpu: family 5 ' \
    '^\[INFO \] paging: mode: 2-level, 4 MiB pages \(PSE\) \(paging=auto: the best this CPU offers\)$' \
    '^\[INFO \] paging: direct map: 30 large pages of 4 MiB' \
    '^\[INFO \] paging:   \[0xc0400000, 0xc7c00000\) -> \[0x00400000, 0x07c00000\)  30720 pages  P RW  \(4 MiB pages\)$' \
    '^\[INFO \] selftest:   no global pages in this mode \(pge off\)' \
    "${PAGING_SELFTESTS[@]}" 'self-tests passed$'
# The global-page lesson: Bochs keeps global TLB entries across a CR3 reload
# (SetCR3 calls TLB_flushNonGlobal when CR4.PGE is set) and drops them when
# CR4.PGE changes (SetCR4 calls TLB_flush): the stale A survives the reload.
boot bochs-paging-pae-pge ok --loader bochs --cpu p3_katmai --cmdline "selftest" -- \
    '^\[INFO \] cpu: family 6 model 7 ' 'features: invlpg yes PSE yes PGE yes PAE yes CR4 yes CR0\.WP yes NX no$' \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto: the best this CPU offers\)$' \
    '^\[INFO \] paging: page tables: 1 PDPT \+ 1 page directory \+ [0-9]+ page tables' \
    '^\[INFO \] paging:   \[0xc0200000, 0xc7e00000\) -> \[0x00200000, 0x07e00000\)  31744 pages  P RW G  \(2 MiB pages\)$' \
    '^\[INFO \] selftest:     page-table walk: va 0x00101000: PDPTE\[0\] = 0x0{16} \(not present\) -> no page directory$' \
    "^\[INFO \] selftest:   global map 0xf8800000 -> A \($HEX\): read 0xa1a1a1a1 \(A\)$" \
    "^\[INFO \] selftest:   PTE changed to B \($HEX\), then a CR3 reload: read 0xa1a1a1a1 \(A: the global entry survived the reload\)$" \
    '^\[INFO \] selftest:   after the CR4.PGE toggle: read 0xb2b2b2b2 \(B\)$' \
    '^\[INFO \] selftest: global-page lesson: a CR3 reload keeps global entries, a CR4.PGE toggle drops them \.\.\. ok$' \
    '^\[INFO \] paging: early map window \[0xff800000, 0xffc00000\) unmapped' \
    "${KMEM_SELFTESTS[@]}" 'self-tests passed$'
boot bochs-paging-pae-3g ok --loader bochs --cpu p3_katmai --mem 3G -- \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto' \
    '^\[INFO \] buddy: zone HighMem pfn \[0x38000, 0xbf[0-9a-f]{3}\), [0-9]+ pages spanned$' \
    '^\[INFO \] buddy: zone HighMem: managed [0-9]+ = present [0-9]+ - reserved 0 \(checked against memblock\)$' \
    '^KERNEL OK$'
# 8 GiB under PAE in an emulator that enforces reserved bits (about 85 s):
# the boot map extended for mem_map, a frame above 4 GiB kmapped; Bochs,
# unlike QEMU, leaves the PDPTE's bit 5 (reserved) clear.
boot bochs-paging-pae-8g ok --loader bochs --cpu p3_katmai --mem 8G --cmdline "selftest" -- \
    '^\[INFO \] paging: PAE: 64-bit entries, physical addresses of 36 bits \(MAXPHYADDR\) reach 64 GiB$' \
    '^\[INFO \] memblock: boot direct map extended from 0x01000000 to 0x0[0-9a-f]{7} for mem_map' \
    '^\[INFO \] selftest:   pfn 0x100000 \(physical 0x100000000, above 4 GiB\) kmapped at 0xff4[0-9a-f]{5}: tag 0x4abc0000 written, read back 0x4abc0000' \
    '^\[INFO \] selftest:     the slot.s walk: va 0xff4[0-9a-f]{5}: PDPTE\[3\] = 0x00000000[0-9a-f]{5}001 \(P\) -> ' \
    'self-tests passed$'
boot bochs-crash-nx panic --loader bochs --cpu core_duo_t2400_yonah --cmdline "crashtest=nx" -- \
    '^\[INFO \] cpu: features: .* NX yes$' \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\), NX \(paging=auto: the best this CPU offers\)$' \
    '^\[WARN \] crashtest: calling a `ret` in kmalloc.d data at 0xc' \
    '^\[ERROR\] trap: CPU exception 14 #PF \(page fault\), error code 0x00000011$' \
    '^\[ERROR\] trap:   error code means: protection-violation fetch, supervisor$' \
    '^\[ERROR\] trap:   page-table walk: va 0xc[0-9a-f]{7}: PDPTE\[3\] = .* PTE\[[0-9]+\] = 0x80000000[0-9a-f]{8} \(P RW A D G NX\) -> pa ' \
    '^PANIC: #PF page fault at EIP (0xc[0-9a-f]{7}): protection-violation fetch, supervisor access to \1 \(direct map\)$'
boot bochs-crash-nx-none panic --loader bochs --cpu p3_katmai --cmdline "crashtest=nx" -- \
    '^\[INFO \] paging: mode: PAE, 2 MiB pages, global \(PGE\) \(paging=auto' \
    '^PANIC: crashtest=nx: data at 0xc[0-9a-f]{7} executed: this paging mode has no NX'
boot bochs-paging-refused ok --loader bochs --cmdline "paging=pae pge=on nx=on" -- \
    '^\[WARN \] paging: paging=pae refused: this CPU has no PAE \(CPUID\.1:EDX bit 6\); using 2-level paging$' \
    '^\[WARN \] paging: pge=on refused: this CPU has no PGE \(CPUID\.1:EDX bit 13\); no global pages$' \
    '^\[WARN \] paging: nx=on refused: 2-level entries have no NX bit' \
    '^\[INFO \] paging: mode: 2-level, 4 MiB pages \(PSE\) \(as the command line asks\)$' \
    '^\[INFO \] paging: direct map: 30 large pages of 4 MiB' '^KERNEL OK$'

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "boot tests: all $pass passed"
    exit 0
fi
echo "boot tests: $pass passed, ${#failed[@]} failed: ${failed[*]}"
exit 1
