#!/usr/bin/env bash
# Runs the README's commands word for word, so none of them can rot:
#   1. the first command of the README's first code block (the demo), which exits 0 only when
#      its own checks hold (every ACKed message reached the hub, the malformed one was refused
#      and kept, the resend was recognised);
#   2. the code block after the `<!-- ci: newcomer path ... -->` marker ("Your first hour"),
#      as one bash script with -e: inspect, the local gateway, send, tail, status, stop.
# The README's second command (the test suite) is checked to be the one .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The lines of the fenced code block that follows line $1 (a line number) of README.md.
block_after() {
    awk -v from="$1" 'NR > from && /^```/ { if (inside) exit; inside = 1; next } inside' README.md
}

first_block=$(block_after 0)
commands=$(printf '%s\n' "$first_block" | grep -v '^[[:space:]]*#' | grep -v '^[[:space:]]*$')
demo=$(printf '%s\n' "$commands" | sed -n 1p)
tests=$(printf '%s\n' "$commands" | sed -n 2p)
[[ "$demo" == "cargo run -p hl7edge --features demo -- demo" ]] ||
    { echo "readme: the first command is not the demo: $demo" >&2; exit 1; }
[[ "$tests" == "bash tests/run.sh" ]] ||
    { echo "readme: the second command is not the one .ci/run runs: $tests" >&2; exit 1; }
grep -q 'bash tests/run.sh)$' .ci/run ||
    { echo "readme: .ci/run does not run the README's test command" >&2; exit 1; }

echo "readme: \$ $demo"
eval "$demo"

marker=$(grep -n '^<!-- ci: newcomer path' README.md | cut -d: -f1)
[[ -n "$marker" ]] || { echo "readme: no newcomer-path marker in README.md" >&2; exit 1; }
script=$(block_after "$marker")
[[ -n "$script" ]] || { echo "readme: no code block after the newcomer-path marker" >&2; exit 1; }
echo "readme: the newcomer path:"
printf '%s\n' "$script" | sed 's/^/    /'
# Whatever happens, leave no gateway or broker running.
trap 'bash scripts/local-gateway.sh stop >/dev/null 2>&1 || true' EXIT
bash -euxo pipefail -c "$script"
echo "readme: every command ran"
