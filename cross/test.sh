#!/usr/bin/env bash
# Runs the static aarch64 build under qemu-user: the binary itself, `inspect` over the HL7
# corpus, the end-to-end smoke test against a native mosquitto, and the protocol crate's test
# suite compiled for aarch64.
#
# Usage: cross/test.sh [--skip-protocol]
#
# Environment:
#   HL7EDGE_AARCH64_BIN  the binary to test (default: what cross/build.sh produced)
#   HL7EDGE_HOST_BIN     optional host build of the same commit: `inspect --json` output of both
#                        must be identical (catches endianness/word-size/float differences)
#   HL7EDGE_CORPUS       HL7 corpus (default: the repository's protocol/tests/corpus)
#   CROSS_TEST_STRICT=1  fail when any step was skipped (for when the agent is complete)
#
# A step whose prerequisite does not exist yet on this branch (a CLI, the inspect subcommand, the
# e2e smoke test) is skipped with a loud SKIPPED line and listed at the end; a step that runs and
# fails makes the script fail.
set -euo pipefail

# shellcheck source=cross/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

run_protocol=1
if [[ "${1:-}" == "--skip-protocol" ]]; then
    run_protocol=0
fi

bin="$HL7EDGE_AARCH64_BIN"
corpus="${HL7EDGE_CORPUS:-$HL7EDGE_REPO_ROOT/protocol/tests/corpus}"
runner="${HL7EDGE_RUNNER:-qemu-aarch64}"
skipped=()
passed=()

skip() {
    printf '\n!!!!! SKIPPED: %s\n' "$*" >&2
    skipped+=("$*")
}

# Runs the aarch64 binary under qemu with a time limit (a hang is a failure, not a stuck CI job).
emu() {
    timeout --kill-after=5s 120s "$runner" "$bin" "$@"
}

[[ -x "$bin" ]] || die "no aarch64 binary at $bin (run cross/build.sh first)"
command -v "$runner" >/dev/null || die "$runner not found (package qemu-user)"
if file "$bin" | grep -q 'dynamically linked'; then
    die "$bin is dynamically linked; qemu-user hangs at the first thread of dynamic aarch64 binaries here"
fi

step "binary runs under $runner"
help="$(emu --help 2>&1)" || die "\`hl7edge --help\` failed under $runner: $help"
if [[ -z "$help" ]]; then
    skip "the binary has no command line yet (--help prints nothing): only checked that it executes"
else
    version="$(emu --version)" || die "\`hl7edge --version\` failed under $runner"
    expected="$(sed -n 's/^version = "\(.*\)"/\1/p' "$HL7EDGE_REPO_ROOT/Cargo.toml" | head -n1)"
    [[ "$version" == "hl7edge $expected" ]] || die "--version printed '$version', expected 'hl7edge $expected'"
    echo "$version"
    passed+=("--version")
fi

step "inspect over the corpus ($corpus)"
if ! grep -qE '^\s+inspect\b' <<<"$help"; then
    skip "the binary has no \`inspect\` subcommand yet"
elif [[ ! -d "$corpus" ]]; then
    skip "no HL7 corpus at $corpus (set HL7EDGE_CORPUS)"
else
    mapfile -t files < <(find "$corpus" -name '*.hl7' -type f | LC_ALL=C sort)
    ((${#files[@]} > 0)) || die "no .hl7 files under $corpus"
    out="$(mktemp)"
    trap 'rm -f "$out" "$out.host"' EXIT
    # Exit 1 means "some message would be rejected" (the corpus has malformed ones on purpose);
    # anything else (a crash, a signal, a timeout) is a failure.
    rc=0
    day_before="$(date -u +%Y%m%d)"
    emu inspect --json --time-zone UTC "${files[@]}" >"$out" || rc=$?
    ((rc == 0 || rc == 1)) || die "inspect exited with $rc under $runner"
    lines=$(wc -l <"$out")
    ((lines >= ${#files[@]})) || die "inspect reported $lines messages for ${#files[@]} files"
    echo "inspect: ${#files[@]} files, $lines messages, exit $rc"
    if [[ -n "${HL7EDGE_HOST_BIN:-}" ]]; then
        "$HL7EDGE_HOST_BIN" inspect --json --time-zone UTC "${files[@]}" >"$out.host" || true
        # ACKs carry the current time (MSH-7); mask today's timestamps before comparing.
        mask="s/($day_before|$(date -u +%Y%m%d))[0-9]{6}[+-][0-9]{4}/<now>/g"
        if ! diff -q <(sed -E "$mask" "$out.host") <(sed -E "$mask" "$out") >/dev/null; then
            cp "$out" "$CROSS_TARGET_DIR/inspect-aarch64.jsonl"
            cp "$out.host" "$CROSS_TARGET_DIR/inspect-host.jsonl"
            die "aarch64 and host inspect output differ: see $CROSS_TARGET_DIR/inspect-{aarch64,host}.jsonl"
        fi
        echo "inspect: identical to the host build ($HL7EDGE_HOST_BIN)"
    fi
    passed+=("inspect over ${#files[@]} corpus files")
fi

step "end-to-end smoke test (aarch64 agent under $runner, native mosquitto with TLS)"
smoke="$HL7EDGE_REPO_ROOT/tests/tests/qemu_smoke.rs"
if [[ ! -f "$smoke" ]]; then
    skip "tests/tests/qemu_smoke.rs does not exist yet: the aarch64 end-to-end run was NOT tested"
else
    # The harness runs natively (host toolchain); only the agent runs under emulation.
    (cd "$HL7EDGE_REPO_ROOT" &&
        HL7EDGE_BIN="$bin" HL7EDGE_RUNNER="$runner" cargo test -p hl7edge-e2e --test qemu_smoke -- --ignored)
    passed+=("e2e qemu_smoke")
fi

step "protocol test suite for $HL7EDGE_TARGET under $runner"
if ((run_protocol)); then
    (cd "$HL7EDGE_REPO_ROOT" && cross_cargo test --locked -p hl7edge-protocol --target "$HL7EDGE_TARGET")
    passed+=("hl7edge-protocol tests on $HL7EDGE_TARGET")
else
    skip "protocol tests (--skip-protocol)"
fi

step "summary"
for p in "${passed[@]}"; do echo "passed:  $p"; done
for s in "${skipped[@]}"; do echo "SKIPPED: $s"; done
if [[ "${CROSS_TEST_STRICT:-0}" == 1 ]] && ((${#skipped[@]} > 0)); then
    die "${#skipped[@]} step(s) skipped and CROSS_TEST_STRICT=1"
fi
