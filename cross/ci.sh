#!/usr/bin/env bash
# CI entry point for the appliance: static aarch64 build, the qemu test run, the systemd checks.
# Installs the Debian packages the cross build needs when they are missing (needs root or sudo).
#
# Usage: cross/ci.sh
# Environment: as cross/build.sh and cross/test.sh (CROSS_TARGET_DIR, CROSS_TEST_STRICT, ...).
set -euo pipefail

# shellcheck source=cross/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

timings=()
# Runs one phase and records its wall-clock time.
phase() {
    local name="$1" start=$SECONDS
    shift
    "$@"
    timings+=("$(printf '%-8s %4ds' "$name" $((SECONDS - start)))")
}

phase build "$HL7EDGE_CROSS_DIR/build.sh"
phase qemu "$HL7EDGE_CROSS_DIR/test.sh"
phase systemd "$HL7EDGE_REPO_ROOT/systemd/check.sh" --bin "$HL7EDGE_AARCH64_BIN"

step "appliance CI passed"
printf '%s\n' "${timings[@]}"
