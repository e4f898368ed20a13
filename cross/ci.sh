#!/usr/bin/env bash
# CI entry point for the appliance: static aarch64 build, the qemu test run, the systemd checks.
# Installs the Debian packages the cross build needs when they are missing (needs root or sudo).
#
# Usage: cross/ci.sh
# Environment: as cross/build.sh and cross/test.sh (CROSS_TARGET_DIR, CROSS_TEST_STRICT, ...), and
#   CROSS_CI_HOST_COMPARE=0   skip the host build that test.sh compares `inspect` output with
#                             (default: build it with the host toolchain into CARGO_TARGET_DIR,
#                             a no-op when an earlier CI step already built it)
set -euo pipefail

# shellcheck source=cross/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

timings=()
# Runs one phase and records its wall-clock time; a failing phase ends the script, naming it.
phase() {
    local name="$1" start=$SECONDS rc=0
    shift
    "$@" || rc=$?
    if ((rc != 0)); then
        printf '\n!!!!! cross/ci.sh FAILED in phase %s (exit %d after %ds): %s\n' \
            "$name" "$rc" $((SECONDS - start)) "$*" >&2
        printf '%s\n' "${timings[@]}" >&2
        exit "$rc"
    fi
    timings+=("$(printf '%-8s %4ds' "$name" $((SECONDS - start)))")
}

phase build "$HL7EDGE_CROSS_DIR/build.sh"
if [[ -z "${HL7EDGE_HOST_BIN:-}" && "${CROSS_CI_HOST_COMPARE:-1}" != 0 ]]; then
    step "host build for the cross-architecture comparison"
    phase host cargo build --locked --quiet --manifest-path "$HL7EDGE_REPO_ROOT/Cargo.toml" -p hl7edge --bin hl7edge
    HL7EDGE_HOST_BIN="${CARGO_TARGET_DIR:-$HL7EDGE_REPO_ROOT/target}/debug/hl7edge"
    export HL7EDGE_HOST_BIN
fi
phase qemu "$HL7EDGE_CROSS_DIR/test.sh"
phase systemd "$HL7EDGE_REPO_ROOT/systemd/check.sh" --bin "$HL7EDGE_AARCH64_BIN"

step "appliance CI passed"
printf '%s\n' "${timings[@]}"
