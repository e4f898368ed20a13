#!/usr/bin/env bash
# Builds and runs every fuzz target for a bounded time (seconds, default 60).
# Needs the nightly toolchain and cargo-fuzz; installs whichever is missing, and fails when it
# cannot (never passes without fuzzing).
# The repository's HL7 corpus (protocol/tests/corpus) seeds the parser target read-only; new
# inputs go to fuzz/corpus/.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."   # protocol/

# cargo fuzz needs nightly (sanitizer flags). A machine without it installs it with rustup;
# when that fails (no network, say) the stage FAILS: fuzzing that did not run is not a pass.
# A network outage is therefore a CI failure: rerun once the toolchain can be fetched.
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is missing; installing: rustup toolchain install nightly --profile minimal"
    if ! rustup toolchain install nightly --profile minimal; then
        echo "!!! fuzz: FAILED: no nightly toolchain on this machine and it could not be installed." >&2
        echo "!!! Install it (rustup toolchain install nightly --profile minimal) and rerun." >&2
        exit 1
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked || { echo "!!! fuzz: FAILED: cargo-fuzz could not be installed" >&2; exit 1; }
fi

samples="tests/corpus"
[ -d "$samples" ] || { echo "fuzz: the HL7 corpus $samples is missing" >&2; exit 1; }
for target in mllp_decoder hl7_parse wire_decode mapping_parse cert_fields enroll_decode; do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    seeds=("fuzz/corpus/$target" "fuzz/seeds/$target")
    if [ "$target" = hl7_parse ]; then
        seeds+=("tests/data" "$samples")
    fi
    # Inputs up to 1 MiB (libFuzzer's default is 4 KiB): a count claimed by a payload can only
    # reserve as much as the input is long, and a frame of tens of thousands of segments only
    # shows a quadratic step at that size. One allocation over 256 MiB is a failure.
    max_len=1048576
    [ "$target" = mllp_decoder ] && max_len=65536
    echo "fuzz: $target for ${seconds}s (inputs up to $max_len bytes)"
    log="fuzz/artifacts/$target.log"
    mkdir -p fuzz/artifacts
    if ! cargo +nightly fuzz run "$target" "${seeds[@]}" -- -max_total_time="$seconds" \
        -max_len="$max_len" -rss_limit_mb=2048 -malloc_limit_mb=256 >"$log" 2>&1; then
        # The panic message and the input are what a reader needs; the backtrace is in the log.
        grep -E "panicked at|^(left|right|  left|  right):|Test unit written|SUMMARY|ERROR:|out-of-memory|Base64:" \
            "$log" | head -n 20 >&2 || true
        tail -n 5 "$log" >&2
        echo "fuzz: $target FAILED (crash input in protocol/fuzz/artifacts/$target, full log $log)" >&2
        exit 1
    fi
    tail -n 2 "$log"
done
