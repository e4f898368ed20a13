#!/usr/bin/env bash
# Builds and runs every fuzz target for a bounded time (seconds, default 60).
# Needs the nightly toolchain; installs cargo-fuzz from crates.io if missing.
# The repository's HL7 corpus (protocol/tests/corpus) seeds the parser target read-only; new
# inputs go to fuzz/corpus/.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."   # protocol/

# cargo fuzz needs nightly (sanitizer flags). A machine without it tries to fetch it; when that is
# not possible either, the run says so loudly and ends without fuzzing (exit 0), unless
# FUZZ_REQUIRE_NIGHTLY=1. The parser and frame decoder property tests run in every `cargo test`.
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is missing; trying: rustup toolchain install nightly --profile minimal"
    if ! rustup toolchain install nightly --profile minimal; then
        echo "!!! fuzz: NOT RUN: no nightly toolchain on this machine and it could not be installed." >&2
        echo "!!! Install it (rustup toolchain install nightly) to fuzz; the property tests still ran." >&2
        [ "${FUZZ_REQUIRE_NIGHTLY:-0}" = 1 ] && exit 1
        exit 0
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

samples="tests/corpus"
[ -d "$samples" ] || { echo "fuzz: the HL7 corpus $samples is missing" >&2; exit 1; }
for target in mllp_decoder hl7_parse wire_decode mapping_parse; do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    seeds=("fuzz/corpus/$target" "fuzz/seeds/$target")
    if [ "$target" = hl7_parse ]; then
        seeds+=("tests/data" "$samples")
    fi
    echo "fuzz: $target for ${seconds}s"
    cargo +nightly fuzz run "$target" "${seeds[@]}" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -n 5
    # tail hides the exit status of cargo; check it explicitly.
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "fuzz: $target FAILED (crash input in protocol/fuzz/artifacts/$target)" >&2
        exit 1
    fi
done
