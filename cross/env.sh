# shellcheck shell=bash
# Shared settings for the aarch64 cross build and its qemu test run. Sourced by build.sh and test.sh.
#
# The rustup toolchain on the build machines has no aarch64 standard library, so the cross build
# uses Debian's Rust (packages rustc-web / cargo-web / libstd-rust-web-dev:arm64) from /usr/bin.
# Everything here is exported only inside the calling script: a normal host `cargo build` is
# unaffected (no .cargo/config.toml is involved).

HL7EDGE_CROSS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HL7EDGE_REPO_ROOT="$(cd "$HL7EDGE_CROSS_DIR/.." && pwd)"
export HL7EDGE_CROSS_DIR HL7EDGE_REPO_ROOT

# The Rust target triple of the gateway boxes.
HL7EDGE_TARGET="aarch64-unknown-linux-gnu"
export HL7EDGE_TARGET

# Debian's toolchain, not rustup's. Overridable for machines that have an aarch64 std elsewhere.
CROSS_CARGO="${CROSS_CARGO:-/usr/bin/cargo}"
CROSS_RUSTC="${CROSS_RUSTC:-/usr/bin/rustc}"
export CROSS_CARGO CROSS_RUSTC

# A target dir of its own, so host builds (rustup toolchain) and cross builds (Debian toolchain,
# a different rustc version) never invalidate each other's artifacts.
CROSS_TARGET_DIR="${CROSS_TARGET_DIR:-$HL7EDGE_REPO_ROOT/target-aarch64}"
export CROSS_TARGET_DIR

# Where build.sh leaves the finished binary and test.sh picks it up.
HL7EDGE_AARCH64_BIN="${HL7EDGE_AARCH64_BIN:-$CROSS_TARGET_DIR/$HL7EDGE_TARGET/release/hl7edge}"
export HL7EDGE_AARCH64_BIN

# Runs Debian's cargo with the cross environment.
# - /usr/bin comes first on PATH so cargo's own sub-invocations resolve to Debian's binaries, never
#   to ~/.cargo/bin (rustup's proxies).
# - RUSTFLAGS links glibc statically: a dynamically linked aarch64 binary hangs at its first thread
#   under qemu-user on these machines, and a static binary is simpler to deploy anyway. Because a
#   --target is set, RUSTFLAGS applies to target artifacts only; build scripts and proc macros stay
#   ordinary host code. CARGO_ENCODED_RUSTFLAGS would override it, so it is removed.
cross_cargo() {
    env -u CARGO_ENCODED_RUSTFLAGS -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER \
        PATH="/usr/bin:/bin:/usr/sbin:/sbin:$PATH" \
        RUSTC="$CROSS_RUSTC" \
        RUSTDOC="${CROSS_RUSTDOC:-/usr/bin/rustdoc}" \
        CARGO_TARGET_DIR="$CROSS_TARGET_DIR" \
        CARGO_BUILD_TARGET="$HL7EDGE_TARGET" \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${HL7EDGE_RUNNER:-qemu-aarch64}" \
        RUSTFLAGS="-C target-feature=+crt-static${CROSS_EXTRA_RUSTFLAGS:+ $CROSS_EXTRA_RUSTFLAGS}" \
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
        AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
        "$CROSS_CARGO" "$@"
}

# Prints a message to stderr and exits non-zero.
die() {
    echo "error: $*" >&2
    exit 1
}

# Prints a section heading, so a CI log is easy to scan.
step() {
    printf '\n==> %s\n' "$*"
}
