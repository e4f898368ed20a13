#!/usr/bin/env bash
# Licenses, banned/duplicate crates, crate sources and security advisories of the dependency
# tree (cargo-deny, configured in deny.toml). Installs cargo-deny from crates.io when it is
# missing (a cold `cargo install` compiles for many minutes on a small machine; cache
# ~/.cargo/bin between runs).
#
# Fails closed: every check that cannot run fails the stage. Advisories need the RustSec
# database. The order of preference:
#   1. HL7EDGE_ADVISORY_DB: a site-kept copy laid out as `cargo deny fetch db` leaves its
#      `db-path` (an `advisory-db-*` git checkout inside), whose newest commit is at most
#      HL7EDGE_ADVISORY_DB_MAX_AGE_DAYS (default 7) days old;
#   2. a fresh copy fetched from GitHub (`cargo deny fetch db`);
#   3. when GitHub cannot be reached (build machines without access to it), the snapshot kept in
#      the repository (.ci/advisory-db/, see its README.md), with a banner naming its date and
#      age. A snapshot older than HL7EDGE_ADVISORY_SNAPSHOT_MAX_AGE_DAYS (default 180) days
#      fails the stage: refresh it with .ci/update-advisory-db.sh.
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
# Checks against the database under $1 (a db-path holding one advisory-db-* git checkout).
check_with_db() {
    local config
    config=$(mktemp)
    # The same deny.toml, reading the given database instead of fetching one.
    sed "s|^db-urls = |db-path = \"$1\"\ndb-urls = |" deny.toml >"$config"
    cargo deny --offline --log-level info --config "$config" check advisories
    rm -f "$config"
}

# Days since the newest commit of the git checkout $1.
age_days() {
    local newest
    newest=$(git -C "$1" log -1 --format=%ct 2>/dev/null) || fail "$1 is not a git checkout; its age cannot be told"
    echo $((($(date +%s) - newest) / 86400))
}

if [[ -n "${HL7EDGE_ADVISORY_DB:-}" ]]; then
    db="$HL7EDGE_ADVISORY_DB"
    checkout=$(compgen -G "$db/advisory-db-*/" | head -n 1) ||
        fail "HL7EDGE_ADVISORY_DB=$db holds no advisory-db-* checkout (the layout of cargo deny's db-path)"
    max_days="${HL7EDGE_ADVISORY_DB_MAX_AGE_DAYS:-7}"
    age=$(age_days "$checkout")
    ((age <= max_days)) ||
        fail "the advisory database in $checkout is $age days old (limit $max_days): update it"
    echo "deny: advisory database $checkout, $age day(s) old"
    check_with_db "$db"
elif cargo deny fetch db; then
    echo "deny: advisory database fetched from GitHub just now"
    cargo deny --offline --log-level info check advisories
else
    snapshot=.ci/advisory-db
    [[ -f "$snapshot/crates.tar.xz" && -f "$snapshot/SNAPSHOT" ]] ||
        fail "ADVISORIES NOT CHECKED: GitHub is unreachable and $snapshot has no snapshot"
    date=$(sed -n 's/^date=//p' "$snapshot/SNAPSHOT")
    commit=$(sed -n 's/^commit=//p' "$snapshot/SNAPSHOT")
    db=$(mktemp -d)
    trap 'rm -rf "$db"' EXIT
    # cargo-deny names the checkout after a hash of the URL and reads its HEAD commit's date.
    checkout="$db/advisory-db-3157b0e258782691"
    mkdir -p "$checkout"
    tar -xJf "$snapshot/crates.tar.xz" -C "$checkout"
    git -C "$checkout" init -q
    git -C "$checkout" add -A
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -C "$checkout" \
        -c user.name=snapshot -c user.email=snapshot@invalid commit -qm "advisory-db $commit"
    age=$(age_days "$checkout")
    max_days="${HL7EDGE_ADVISORY_SNAPSHOT_MAX_AGE_DAYS:-180}"
    printf '\n!!! deny: GitHub is unreachable: checking against the repository snapshot of the advisory\n' >&2
    printf '!!! database, commit %s of %s (%d days old; limit %d).\n\n' "$commit" "$date" "$age" "$max_days" >&2
    ((age <= max_days)) ||
        fail "the advisory snapshot is $age days old (limit $max_days): run .ci/update-advisory-db.sh"
    check_with_db "$db"
fi
