#!/usr/bin/env bash
# Licenses, banned/duplicate crates, crate sources and security advisories of the dependency
# tree (cargo-deny, configured in deny.toml). Installs cargo-deny from crates.io when it is
# missing (a cold `cargo install` compiles for many minutes on a small machine; cache
# ~/.cargo/bin between runs).
#
# Fails closed: every check that cannot run fails the stage. Advisories need the RustSec
# database, fetched fresh from GitHub on every run (`cargo deny fetch db`); when it cannot be
# fetched the stage FAILS, because a check against nothing (or against a stale copy) says
# nothing. A network outage is therefore a CI failure: rerun when the network is back. A site
# whose CI cannot reach GitHub sets HL7EDGE_ADVISORY_DB to a directory laid out as
# `cargo deny fetch db` leaves its `db-path` (an `advisory-db-*` git checkout inside), which it
# keeps current itself; the newest commit in it must be less than
# HL7EDGE_ADVISORY_DB_MAX_AGE_DAYS (default 7) days old, or the stage fails.
#
# Every run lists the advisories deny.toml ignores, with their reasons (an ignored advisory and
# the unmaintained crates are reported, not hidden).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    printf '\n' >&2
    printf '!!! deny: %s\n' "$@" >&2
    exit 1
}

if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny: installing cargo-deny from crates.io"
    # Its release profile is fat LTO with one codegen unit (about 25 min on 2 busy cores). A CI
    # tool needs none of that: a plain optimised build compiles several times faster.
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install cargo-deny --locked
fi
cargo deny --version >/dev/null 2>&1 || fail "cargo-deny is not installed and could not be installed"

echo "deny: licenses, bans (duplicates, wildcards), sources (crates.io only)"
cargo deny --log-level warn check licenses bans sources

echo "deny: advisories"
if [[ -n "${HL7EDGE_ADVISORY_DB:-}" ]]; then
    db="$HL7EDGE_ADVISORY_DB"
    checkout=$(compgen -G "$db/advisory-db-*/" | head -n 1) ||
        fail "HL7EDGE_ADVISORY_DB=$db holds no advisory-db-* checkout (the layout of cargo deny's db-path)"
    max_days="${HL7EDGE_ADVISORY_DB_MAX_AGE_DAYS:-7}"
    newest=$(git -C "$checkout" log -1 --format=%ct 2>/dev/null) ||
        fail "$checkout is not a git checkout; its age cannot be told"
    age_days=$((($(date +%s) - newest) / 86400))
    ((age_days <= max_days)) ||
        fail "the advisory database in $checkout is $age_days days old (limit $max_days): update it"
    echo "deny: advisory database $checkout, $age_days day(s) old"
    config=$(mktemp)
    trap 'rm -f "$config"' EXIT
    # The same deny.toml, reading the given database instead of fetching one.
    sed "s|^db-urls = |db-path = \"$db\"\ndb-urls = |" deny.toml >"$config"
    cargo deny --offline --log-level info --config "$config" check advisories
else
    cargo deny fetch db ||
        fail "ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched" \
            "(see the error above). This is a CI failure on purpose: rerun once GitHub is" \
            "reachable, or set HL7EDGE_ADVISORY_DB to a current copy of the database."
    cargo deny --offline --log-level info check advisories
fi
