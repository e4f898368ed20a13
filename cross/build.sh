#!/usr/bin/env bash
# Builds a static release binary of hl7edge for aarch64-unknown-linux-gnu with Debian's Rust.
#
# Usage: cross/build.sh [--no-install] [extra cargo args...]
#
#   --no-install   do not install missing Debian packages (fail instead)
#
# Environment:
#   CROSS_TARGET_DIR      target dir for the cross build (default: <repo>/target-aarch64)
#   CROSS_CARGO/RUSTC     toolchain (default: /usr/bin/cargo, /usr/bin/rustc from cargo-web/rustc-web)
#   CROSS_EXTRA_RUSTFLAGS appended to RUSTFLAGS (e.g. "-C target-cpu=cortex-a53")
#
# Output: the binary path and its size; the path is also written to $CROSS_TARGET_DIR/hl7edge.path.
set -euo pipefail

# shellcheck source=cross/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

install=1
if [[ "${1:-}" == "--no-install" ]]; then
    install=0
    shift
fi

# Debian packages the cross build and the qemu run need. `cargo-web` installs /usr/bin/cargo and
# `rustc-web` /usr/bin/rustc (Rust 1.96 on bookworm); `libstd-rust-web-dev:arm64` is the aarch64
# standard library, which the rustup toolchain here does not have.
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross rustc-web cargo-web libstd-rust-web-dev:arm64 qemu-user)

# Lists the packages that are not installed yet.
missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            echo "$pkg"
        fi
    done
}

# Installs what is missing (as root, or through sudo when available).
ensure_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        echo "all cross packages present"
        return
    fi
    ((install)) || die "missing packages: ${missing[*]} (run without --no-install, or apt-get install them)"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing packages ${missing[*]} and not root"
        sudo=(sudo)
    fi
    echo "installing: ${missing[*]}"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        "${sudo[@]}" dpkg --add-architecture arm64
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Fails early, with the reason, when the toolchain cannot build for the target.
check_toolchain() {
    [[ -x "$CROSS_CARGO" ]] || die "$CROSS_CARGO not found (package cargo-web)"
    [[ -x "$CROSS_RUSTC" ]] || die "$CROSS_RUSTC not found (package rustc-web)"
    command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc not found (package gcc-aarch64-linux-gnu)"
    local sysroot
    sysroot="$("$CROSS_RUSTC" --print sysroot)"
    [[ -d "$sysroot/lib/rustlib/$HL7EDGE_TARGET/lib" ]] ||
        die "no $HL7EDGE_TARGET standard library under $sysroot (package libstd-rust-web-dev:arm64)"
    echo "cargo: $("$CROSS_CARGO" --version)"
    echo "rustc: $("$CROSS_RUSTC" --version)"
    check_lockfile
}

# Cargo.lock `version = 4` needs cargo >= 1.78. Debian's cargo-web is 1.96 on bookworm, so this
# only trips on an older toolchain; say so instead of letting cargo fail with a parse error.
check_lockfile() {
    local lock="$HL7EDGE_REPO_ROOT/Cargo.lock" lockver minor
    [[ -f "$lock" ]] || return 0
    lockver="$(sed -n 's/^version = \([0-9]*\)$/\1/p' "$lock" | head -n1)"
    minor="$("$CROSS_CARGO" --version | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')"
    if [[ "$lockver" == 4 && -n "$minor" && "$minor" -lt 78 ]]; then
        die "Cargo.lock is version 4 but $CROSS_CARGO is 1.$minor (< 1.78); install a newer cargo-web"
    fi
}

step "packages"
ensure_packages
step "toolchain"
check_toolchain

step "cargo build --release -p hl7edge --target $HL7EDGE_TARGET (static)"
cd "$HL7EDGE_REPO_ROOT"
start=$SECONDS
cross_cargo build --locked --release -p hl7edge --bin hl7edge --target "$HL7EDGE_TARGET" "$@"
elapsed=$((SECONDS - start))

[[ -x "$HL7EDGE_AARCH64_BIN" ]] || die "build finished but $HL7EDGE_AARCH64_BIN is missing"
if file "$HL7EDGE_AARCH64_BIN" 2>/dev/null | grep -q 'dynamically linked'; then
    die "$HL7EDGE_AARCH64_BIN is dynamically linked; expected a static binary"
fi
echo "$HL7EDGE_AARCH64_BIN" >"$CROSS_TARGET_DIR/hl7edge.path"

step "result"
size=$(stat -c %s "$HL7EDGE_AARCH64_BIN")
echo "binary:   $HL7EDGE_AARCH64_BIN"
file "$HL7EDGE_AARCH64_BIN" 2>/dev/null || true
awk -v s="$size" 'BEGIN { printf "size:     %d bytes (%.2f MiB)\n", s, s / 1048576 }'
echo "built in: ${elapsed}s"
