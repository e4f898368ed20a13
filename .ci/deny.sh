#!/usr/bin/env bash
# Licenses and security advisories of the dependency tree (cargo-deny, configured in deny.toml).
# Installs cargo-deny from crates.io when it is missing (a cold `cargo install` compiles for
# many minutes on a small machine; cache ~/.cargo/bin between runs).
#
# A license not allowed in deny.toml always fails the stage (no network needed). Advisories
# need the RustSec database from GitHub: when it cannot be fetched, the check runs against the
# copy fetched last time if there is one, and otherwise is NOT done; either way a loud banner
# says so and the stage does not fail (a network outage is not a finding). A vulnerable or
# yanked dependency found in the database always fails.
set -euo pipefail
cd "$(dirname "$0")/.."

banner() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    printf '!!! %s\n' "$@" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}

if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny: installing cargo-deny from crates.io"
    # Its release profile is fat LTO with one codegen unit (about 25 min on 2 busy cores). A CI
    # tool needs none of that: a plain optimised build compiles several times faster.
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install cargo-deny --locked
fi

echo "deny: licenses"
cargo deny --log-level warn check licenses

echo "deny: advisories"
cached="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if cargo deny fetch db; then
    cargo deny --offline check advisories
elif compgen -G "$cached/advisory-db-*/" >/dev/null; then
    banner "ADVISORY DATABASE NOT FETCHED (see the error above)." \
        "Checking against the copy fetched earlier, which may miss recent advisories."
    cargo deny --offline check advisories
else
    banner "ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched" \
        "(see the error above) and there is no earlier copy in $cached." \
        "Check access to github.com; licenses were checked."
fi
