#!/usr/bin/env bash
# scripts/toolchain.sh [--host]: choose the Rust toolchain for the build, by
# what it can do, not by what happens to be installed.
#
# The kernel is built for a custom JSON target with -Zbuild-std, so a usable
# toolchain must
#   (a) be at least Cargo.toml's `rust-version` (the oldest compiler the
#       kernel and its locked crates build with), and
#   (b) have the standard-library source of that same compiler in its
#       sysroot (`lib/rustlib/src/rust/library`): rustup's `rust-src`
#       component, or Debian's `rust-web-src` of the same version as
#       `rustc-web`.
# `--host` (host unit tests, benchmarks) asks only for (a).
#
# Candidates, in this order:
#   1. KERNEL_TOOLCHAIN if set: `debian`, a rustup toolchain name
#      (`nightly`, `1.91`, ...) or a directory holding rustc and cargo.
#      It is checked like the others and never replaced by another one.
#   2. rustup's active toolchain (the one plain `cargo` runs here), then
#      rustup's other installed toolchains in `rustup toolchain list` order.
#   3. Debian's rustc-web/cargo-web (/usr/bin).
# Pass 1 takes the first candidate that is ready. Pass 2 adds `rust-src`
# (a download of seconds) to the first rustup candidate that is new enough.
# Pass 3, without rustup, installs Debian's rustc-web, cargo-web and
# rust-web-src if the version apt would install is new enough. Whole
# toolchains are never downloaded. If nothing works, one line on stderr says
# what to install, and the exit status is 1.
#
# On success, stdout holds shell assignments for scripts/kcargo:
#   KTC_DESC             what was chosen, for the log
#   KTC_BIN              directory of rustc, cargo, rustdoc (and clippy)
#   KTC_VERSION          rustc's version, e.g. 1.95.0
#   KTC_RUSTUP           the rustup toolchain name, empty for others
#   KTC_JSON_TARGET_SPEC 1 if this cargo wants -Zjson-target-spec for a
#                        .json target (newer cargo; older ones reject it)
#
# For tests: KTC_DEBIAN_PREFIX (default /usr) moves Debian's toolchain,
# KTC_CARGO_TOML names the manifest to read rust-version from.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
manifest=${KTC_CARGO_TOML:-$here/../Cargo.toml}
debian_prefix=${KTC_DEBIAN_PREFIX:-/usr}
debian_pkgs=(rustc-web cargo-web rust-web-src)
mode=kernel
[ "${1:-}" = --host ] && mode=host

msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$manifest")
[ -n "$msrv" ] || { echo "toolchain.sh: no rust-version in $manifest" >&2; exit 2; }

fail() {
    echo "kernel toolchain: $*" >&2
    exit 1
}

# version_ge A B: A >= B, comparing major.minor.patch numerically
# (a pre-release such as 1.97.0-nightly counts as 1.97.0).
version_ge() {
    local IFS=.- i a b
    read -ra a <<<"$1"
    read -ra b <<<"$2"
    for i in 0 1 2; do
        [ "${a[i]:-0}" -gt "${b[i]:-0}" ] && return 0
        [ "${a[i]:-0}" -lt "${b[i]:-0}" ] && return 1
    done
    return 0
}

# Set by probe: the candidate's state and, if it is not usable, why.
p_bin="" p_version="" p_src=0 why=""

# probe DESC BINDIR: look at one toolchain; returns 0 if it is new enough
# (p_src says whether the library source is there too).
probe() {
    local desc=$1 bin=$2 out sysroot
    p_bin=$bin p_version="" p_src=0 why=""
    if [ ! -x "$bin/rustc" ] || [ ! -x "$bin/cargo" ]; then
        why="$desc: no rustc and cargo in $bin"
        return 1
    fi
    out=$("$bin/rustc" --version 2>/dev/null) || {
        why="$desc: $bin/rustc --version failed"
        return 1
    }
    p_version=$(sed -n 's/^rustc \([0-9][0-9.]*[^ ]*\).*/\1/p' <<<"$out")
    if [ -z "$p_version" ]; then
        why="$desc: cannot read the version in '$out'"
        return 1
    fi
    if ! version_ge "$p_version" "$msrv"; then
        why="$desc is rustc $p_version, older than $msrv (Cargo.toml rust-version)"
        return 1
    fi
    sysroot=$("$bin/rustc" --print sysroot 2>/dev/null) || sysroot=""
    if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
        p_src=1
        source_matches "$bin/rustc" "$sysroot/lib/rustlib/src/rust/library/core" || p_src=0
    fi
    [ $p_src -eq 1 ] || [ -n "$why" ] || why="$desc (rustc $p_version) has no library source"
    return 0
}

# source_matches RUSTC SRC: where dpkg knows both files (Debian's packages),
# they must come from the same upstream version. rustup installs rust-src
# from the toolchain's own release, so it always matches.
source_matches() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local rpkg spkg rver sver
    rpkg=$(dpkg-query -S "$(readlink -f "$1")" 2>/dev/null | head -n1 | cut -d: -f1) || return 0
    spkg=$(dpkg-query -S "$2" 2>/dev/null | head -n1 | cut -d: -f1) || return 0
    [ -n "$rpkg" ] && [ -n "$spkg" ] || return 0
    rver=$(dpkg-query -W -f '${Version}' "$rpkg" 2>/dev/null | sed 's/^[0-9]*://; s/[+~-].*//')
    sver=$(dpkg-query -W -f '${Version}' "$spkg" 2>/dev/null | sed 's/^[0-9]*://; s/[+~-].*//')
    [ "$rver" = "$sver" ] && return 0
    why="library source ($spkg $sver) does not match rustc ($rpkg $rver)"
    return 1
}

have_rustup() { command -v rustup >/dev/null 2>&1; }

rustup_bin() { # rustup_bin TOOLCHAIN: its bin directory
    local sysroot
    sysroot=$(rustup run "$1" rustc --print sysroot 2>/dev/null) || return 1
    echo "$sysroot/bin"
}

# Candidates as "kind<TAB>name<TAB>description".
candidates=()
if [ -n "${KERNEL_TOOLCHAIN:-}" ]; then
    case $KERNEL_TOOLCHAIN in
    debian) candidates+=("debian	debian	Debian's rustc-web ($debian_prefix/bin)") ;;
    */*) candidates+=("dir	$KERNEL_TOOLCHAIN	the toolchain in $KERNEL_TOOLCHAIN") ;;
    *) candidates+=("rustup	$KERNEL_TOOLCHAIN	rustup toolchain '$KERNEL_TOOLCHAIN'") ;;
    esac
else
    if have_rustup; then
        active=$(rustup show active-toolchain 2>/dev/null | awk 'NR == 1 { print $1 }') || active=""
        [ -n "$active" ] && candidates+=("rustup	$active	rustup toolchain '$active'")
        while read -r name _; do
            [ -n "$name" ] && [ "$name" != "$active" ] &&
                candidates+=("rustup	$name	rustup toolchain '$name'")
        done < <(rustup toolchain list 2>/dev/null | grep -v '^no installed toolchains')
    fi
    [ -x "$debian_prefix/bin/rustc" ] && candidates+=("debian	debian	Debian's rustc-web ($debian_prefix/bin)")
fi

bindir_of() { # bindir_of KIND NAME
    case $1 in
    debian) echo "$debian_prefix/bin" ;;
    dir) echo "$2" ;;
    rustup) have_rustup && rustup_bin "$2" ;;
    esac
}

chosen() { # chosen KIND NAME DESC
    local json=0
    if [ $mode = kernel ] &&
        RUSTC_BOOTSTRAP=1 "$p_bin/cargo" -Z help 2>/dev/null | grep -q -- '-Z json-target-spec'; then
        json=1
    fi
    printf 'KTC_DESC=%q\nKTC_BIN=%q\nKTC_VERSION=%q\nKTC_RUSTUP=%q\nKTC_JSON_TARGET_SPEC=%q\n' \
        "$3 (rustc $p_version)" "$p_bin" "$p_version" "$([ "$1" = rustup ] && echo "$2")" "$json"
    exit 0
}

# Pass 1: a candidate that is ready as it is.
reasons=()
first_rustup=""
for c in "${candidates[@]}"; do
    IFS=$'\t' read -r kind name desc <<<"$c"
    if ! bin=$(bindir_of "$kind" "$name") || [ -z "$bin" ]; then
        reasons+=("$desc: not installed")
        continue
    fi
    if probe "$desc" "$bin"; then
        if [ $mode = host ] || [ $p_src -eq 1 ]; then
            chosen "$kind" "$name" "$desc"
        fi
        [ "$kind" = rustup ] && [ -z "$first_rustup" ] && first_rustup="$name	$desc	$bin"
    fi
    reasons+=("$why")
done

# Pass 2: add rust-src to the first rustup toolchain that is new enough.
if [ -n "$first_rustup" ]; then
    IFS=$'\t' read -r name desc bin <<<"$first_rustup"
    echo "toolchain.sh: $desc lacks rust-src; running: rustup component add rust-src --toolchain $name" >&2
    if rustup component add rust-src --toolchain "$name" >&2 && probe "$desc" "$bin" && [ $p_src -eq 1 ]; then
        chosen rustup "$name" "$desc"
    fi
    fail "'rustup component add rust-src --toolchain $name' did not give $desc its library source; run it by hand and look at its error"
fi

[ -n "${KERNEL_TOOLCHAIN:-}" ] && fail "KERNEL_TOOLCHAIN=$KERNEL_TOOLCHAIN is not usable: ${reasons[*]}"

# Pass 3: without rustup, Debian's packages, if apt would install a new
# enough version (bookworm has served 1.85 and 1.96 under the same names).
if ! have_rustup && command -v apt-cache >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    cand=$(apt-cache policy rustc-web 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9.]*\).*/\1/p')
    if [ -n "$cand" ] && version_ge "$cand" "$msrv"; then
        echo "toolchain.sh: no usable Rust; installing Debian's ${debian_pkgs[*]} $cand" >&2
        "$here/deps.sh" --install "${debian_pkgs[@]}" >&2 || fail "installing ${debian_pkgs[*]} failed"
        desc="Debian's rustc-web ($debian_prefix/bin)"
        if probe "$desc" "$debian_prefix/bin" && { [ $mode = host ] || [ $p_src -eq 1 ]; }; then
            chosen debian debian "$desc"
        fi
        reasons+=("$why")
    elif [ -n "$cand" ]; then
        reasons+=("apt would install Debian's rustc-web $cand, older than $msrv")
    fi
fi

hint="install rustup (https://rustup.rs; any toolchain >= $msrv, rust-src is added automatically)"
have_rustup && hint="run 'rustup update stable' (rustup has no toolchain >= $msrv)"
[ ${#reasons[@]} -gt 0 ] || fail "no Rust toolchain found; $hint"
fail "none usable ($(printf '%s; ' "${reasons[@]}" | sed 's/; $//')); $hint"
