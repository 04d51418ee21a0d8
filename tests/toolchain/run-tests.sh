#!/usr/bin/env bash
# Toolchain selection tests: scripts/toolchain.sh and scripts/kcargo against
# stub rustc, cargo, rustup, apt-cache, apt-get and dpkg-query programs.
#
# Each case builds a fake machine in a temporary directory (rustup's
# toolchains, a Debian prefix standing for /usr, apt's candidate version)
# and runs the scripts with PATH holding only the stubs and the basic tools
# they use, so what is installed on the build machine cannot leak in. The
# rust-version read is Cargo.toml's, so the cases follow it.
#
# Usage: tests/toolchain/run-tests.sh   (`make test` runs it)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
root=$PWD

msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
IFS=. read -r msrv_major msrv_minor _ <<<"$msrv"
new="$msrv_major.$((msrv_minor + 4)).0"    # new enough (e.g. 1.95.0)
newer="$msrv_major.$((msrv_minor + 6)).0-nightly"
old="$msrv_major.$((msrv_minor - 6)).0"    # too old (e.g. 1.85.0)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Basic tools the scripts may run, linked into a directory of their own.
sysbin=$tmp/sysbin
mkdir -p "$sysbin"
for t in bash sh env sed awk grep head cut readlink dirname basename sort mkdir cat cp tr wc; do
    p=$(command -v "$t") || { echo "run-tests.sh: $t not found" >&2; exit 2; }
    ln -s "$p" "$sysbin/$t"
done

# make_toolchain DIR VERSION SRC(yes|no) JSON(yes|no): a sysroot with
# bin/rustc and bin/cargo; cargo records how it was called in DIR/cargo.args.
make_toolchain() {
    local dir=$1 version=$2 src=$3 json=$4
    mkdir -p "$dir/bin"
    cat >"$dir/bin/rustc" <<EOF
#!/usr/bin/env bash
case "\$*" in
"--version") echo "rustc $version (0123456789 2026-01-01)" ;;
"--print sysroot") echo "$dir" ;;
*) exit 1 ;;
esac
EOF
    cat >"$dir/bin/cargo" <<EOF
#!/usr/bin/env bash
if [ "\$*" = "-Z help" ]; then
    echo "    -Z build-std                   Enable Cargo to compile the standard library"
    [ $json = yes ] && echo "    -Z json-target-spec            Enable \\\`.json\\\` target spec files"
    exit 0
fi
echo "RUSTC_BOOTSTRAP=\${RUSTC_BOOTSTRAP:-} RUSTC=\${RUSTC:-} ARGS=\$*" >"$dir/cargo.args"
EOF
    chmod +x "$dir/bin/rustc" "$dir/bin/cargo"
    [ "$src" = yes ] && mkdir -p "$dir/lib/rustlib/src/rust/library/core"
    return 0
}

# A fake machine: $m/stubs (on PATH), $m/rustup/<toolchain>, $m/usr (Debian).
new_machine() {
    m=$tmp/m$((++machines))
    mkdir -p "$m/stubs" "$m/rustup" "$m/usr"
    : >"$m/log"
}
machines=0

# add_rustup NAME VERSION SRC JSON [default]
add_rustup() {
    make_toolchain "$m/rustup/$1" "$2" "$3" "$4"
    [ "${5:-}" = default ] && echo "$1" >"$m/rustup/.default"
    cat >"$m/stubs/rustup" <<EOF
#!/usr/bin/env bash
R=$m/rustup
default=\$(cat \$R/.default 2>/dev/null)
case "\$1 \${2:-}" in
"toolchain list")
    for d in \$R/*/; do n=\$(basename "\$d"); [ "\$n" = "\$default" ] && echo "\$n (active, default)" || echo "\$n"; done ;;
"show active-toolchain") [ -n "\$default" ] && echo "\$default (default)" ;;
"run "*) t=\$2; shift 3; [ -d "\$R/\$t" ] || exit 1; exec "\$R/\$t/bin/rustc" "\$@" ;;
"component add")
    echo "rustup \$*" >>$m/log
    t=\${!#}; [ -d "\$R/\$t" ] || exit 1
    mkdir -p "\$R/\$t/lib/rustlib/src/rust/library/core" ;;
*) exit 1 ;;
esac
EOF
    chmod +x "$m/stubs/rustup"
}

add_debian() { make_toolchain "$m/usr" "$1" "$2" "$3"; }

# add_apt CANDIDATE: apt would install Debian's Rust of this version.
add_apt() {
    cat >"$m/stubs/apt-cache" <<EOF
#!/usr/bin/env bash
printf 'rustc-web:\n  Installed: (none)\n  Candidate: %s+dfsg1-1~deb12u1\n' "$1"
EOF
    cat >"$m/stubs/apt-get" <<EOF
#!/usr/bin/env bash
echo "apt-get \$*" >>$m/log
[ "\$1" = install ] && cp -r $m/apt-payload/. $m/usr/
EOF
    make_toolchain "$m/apt-payload" "$1" yes no
    sed -i "s|$m/apt-payload|$m/usr|g" "$m/apt-payload/bin/rustc" "$m/apt-payload/bin/cargo"
    printf '#!/bin/sh\necho 0\n' >"$m/stubs/id"
    chmod +x "$m/stubs/apt-cache" "$m/stubs/apt-get" "$m/stubs/id"
}

pass=0
failed=()

# run_select [VAR=VALUE...] -- ARGS...: runs toolchain.sh ARGS on the
# current machine; sets out, err, rc.
run_select() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    out=$(env -i HOME="$m" PATH="$m/stubs:$sysbin" KTC_DEBIAN_PREFIX="$m/usr" "${envs[@]}" \
        bash "$root/scripts/toolchain.sh" "$@" 2>"$m/err")
    rc=$?
    err=$(cat "$m/err")
}

check() { # check NAME CONDITION-DESCRIPTION COMMAND...
    local name=$1 what=$2
    shift 2
    if "$@"; then
        return 0
    fi
    echo "FAIL  $name: $what"
    echo "      rc=$rc stdout: $(tr '\n' ' ' <<<"$out")"
    echo "      stderr: $err"
    echo "      log: $(tr '\n' ' ' <"$m/log")"
    failed+=("$name")
    return 1
}

chose() { grep -qx "KTC_BIN=$(printf %q "$1")" <<<"$out" && [ "$rc" -eq 0 ]; }
logged() { grep -q -- "$1" "$m/log"; }
not_logged() { ! grep -q -- "$1" "$m/log"; }
one_line_error() { [ "$rc" -eq 1 ] && [ -z "$out" ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "$1" <<<"$err"; }
done_case() { [ "${#failed[@]}" -eq "$1" ] && { echo "PASS  $2"; pass=$((pass + 1)); }; }


# 1. The issue's machine: rustup nightly without rust-src, Debian's old
#    rustc-web with its source. Must pick rustup and add rust-src.
new_machine; f=${#failed[@]}
add_rustup nightly "$newer" no yes default
add_debian "$old" yes no
run_select -- 
check rustup-over-old-debian "picks rustup's nightly" chose "$m/rustup/nightly/bin" &&
    check rustup-over-old-debian "adds rust-src" logged "rustup component add rust-src --toolchain nightly" &&
    check rustup-over-old-debian "src now there" test -d "$m/rustup/nightly/lib/rustlib/src/rust/library/core" &&
    check rustup-over-old-debian "json flag" grep -qx KTC_JSON_TARGET_SPEC=1 <<<"$out"
done_case "$f" rustup-over-old-debian

# 2. Only a new-enough Debian toolchain: pick it, install nothing.
new_machine; f=${#failed[@]}
add_debian "$new" yes no
add_apt "$new"
run_select --
check debian-new "picks Debian" chose "$m/usr/bin" &&
    check debian-new "installs nothing" not_logged apt-get &&
    check debian-new "no json flag for an older cargo" grep -qx KTC_JSON_TARGET_SPEC=0 <<<"$out"
done_case "$f" debian-new

# 3. Only an old Debian toolchain, and apt would serve the same: one line, no install.
new_machine; f=${#failed[@]}
add_debian "$old" yes no
add_apt "$old"
run_select --
check debian-old "one-line error naming the version and rustup" one_line_error "rustc $old, older than $msrv.*install rustup" &&
    check debian-old "installs nothing" not_logged apt-get
done_case "$f" debian-old

# 4. Nothing at all (no rustup, no Debian Rust, no apt).
new_machine; f=${#failed[@]}
run_select --
check nothing "one-line error" one_line_error "no Rust toolchain found; install rustup"
done_case "$f" nothing

# 5. Nothing installed, but apt serves a new-enough Debian Rust: install it, pick it.
new_machine; f=${#failed[@]}
add_apt "$new"
run_select --
check apt-installs-new-debian "installs Debian's packages" logged "apt-get install -y --no-install-recommends cargo-web rust-web-src rustc-web" &&
    check apt-installs-new-debian "picks Debian" chose "$m/usr/bin"
done_case "$f" apt-installs-new-debian

# 6. A ready toolchain wins over one that would need rust-src; the active one first.
new_machine; f=${#failed[@]}
add_rustup stable "$new" yes yes default
add_rustup nightly "$newer" no yes
run_select --
check ready-first "picks stable as it is" chose "$m/rustup/stable/bin" &&
    check ready-first "adds nothing" not_logged "component add"
new_machine
add_rustup nightly "$newer" yes yes
add_rustup stable "$new" no yes default
run_select --
check ready-first "picks the ready nightly over the active stable without source" chose "$m/rustup/nightly/bin" &&
    check ready-first "adds nothing" not_logged "component add"
done_case "$f" ready-first

# 7. rustup with only too-old toolchains (and an old one that lacks source): no download.
new_machine; f=${#failed[@]}
add_rustup stable "$old" no yes default
run_select --
check rustup-old "one-line error suggesting rustup update" one_line_error "rustc $old, older than $msrv.*rustup update stable" &&
    check rustup-old "adds nothing" not_logged "component add"
done_case "$f" rustup-old

# 8. KERNEL_TOOLCHAIN is checked and never replaced by another toolchain.
new_machine; f=${#failed[@]}
add_rustup stable "$new" yes yes default
add_debian "$old" yes no
run_select KERNEL_TOOLCHAIN=debian --
check forced-debian-old "refused, not replaced" one_line_error "KERNEL_TOOLCHAIN=debian is not usable.*older than $msrv"
run_select KERNEL_TOOLCHAIN="$m/rustup/stable/bin" --
check forced-dir "a directory is accepted" chose "$m/rustup/stable/bin"
run_select KERNEL_TOOLCHAIN=stable --
check forced-rustup "a rustup name is accepted" chose "$m/rustup/stable/bin"
done_case "$f" kernel-toolchain-override

# 9. --host needs no library source: nothing is added.
new_machine; f=${#failed[@]}
add_rustup stable "$new" no yes default
run_select -- --host
check host "picks stable without source" chose "$m/rustup/stable/bin" &&
    check host "adds nothing" not_logged "component add"
done_case "$f" host-mode

# 10. Debian's rustc and library source from different versions (dpkg says so).
new_machine; f=${#failed[@]}
add_debian "$new" yes no
cat >"$m/stubs/dpkg-query" <<EOF
#!/usr/bin/env bash
case "\$1" in
-S) case "\$2" in *rustlib/src*) echo "rust-web-src: \$2" ;; *) echo "rustc-web: \$2" ;; esac ;;
-W) case "\$4" in rust-web-src) printf '%s' "$old+dfsg1-1" ;; *) printf '%s' "$new+dfsg1-1" ;; esac ;;
esac
EOF
chmod +x "$m/stubs/dpkg-query"
run_select --
check debian-mismatch "refused with the reason" one_line_error "library source (rust-web-src $old) does not match rustc (rustc-web $new)"
done_case "$f" debian-source-mismatch

# 11. kcargo: -Zjson-target-spec after the subcommand only where cargo knows
#     it, RUSTC_BOOTSTRAP and RUSTC for the kernel, neither for --host.
new_machine; f=${#failed[@]}
add_rustup stable "$new" yes yes default
kc() { env -i HOME="$m" PATH="$m/stubs:$sysbin" KTC_DEBIAN_PREFIX="$m/usr" bash "$root/scripts/kcargo" "$@" 2>"$m/err"; }
kc build --release
args=$(cat "$m/rustup/stable/cargo.args" 2>/dev/null)
out=$args rc=0 err=$(cat "$m/err")
check kcargo "kernel call" test "$args" = "RUSTC_BOOTSTRAP=1 RUSTC=$m/rustup/stable/bin/rustc ARGS=build -Zjson-target-spec --release" &&
    check kcargo "names the toolchain" grep -q "kcargo: rustup toolchain 'stable' (rustc $new)" <<<"$err"
kc --host test
args=$(cat "$m/rustup/stable/cargo.args" 2>/dev/null)
out=$args
check kcargo "host call" test "$args" = "RUSTC_BOOTSTRAP= RUSTC=$m/rustup/stable/bin/rustc ARGS=test"
new_machine
add_debian "$new" yes no
kc build --release
args=$(cat "$m/usr/cargo.args" 2>/dev/null)
out=$args
check kcargo "no json flag where cargo lacks it" test "$args" = "RUSTC_BOOTSTRAP=1 RUSTC=$m/usr/bin/rustc ARGS=build --release"
done_case "$f" kcargo

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "toolchain: all $pass selection tests passed"
    exit 0
fi
echo "toolchain: ${#failed[@]} checks failed: ${failed[*]}"
exit 1
