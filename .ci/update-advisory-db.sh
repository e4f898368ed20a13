#!/usr/bin/env bash
# Refreshes the RustSec advisory database snapshot in .ci/advisory-db/ (see its README.md) from
# GitHub. Run it on a machine that reaches github.com, then commit the two changed files.
set -euo pipefail
cd "$(dirname "$0")/advisory-db"
url=https://github.com/rustsec/advisory-db
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --depth 1 "$url" "$work/db"
commit=$(git -C "$work/db" rev-parse HEAD)
date=$(git -C "$work/db" show -s --format=%cI HEAD)
tar -cJf crates.tar.xz -C "$work/db" crates
printf 'source=%s\ncommit=%s\ndate=%s\n' "$url" "$commit" "$date" >SNAPSHOT
echo "advisory-db snapshot: $commit of $date"
