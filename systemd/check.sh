#!/usr/bin/env bash
# Checks the systemd packaging without a running systemd (CI runs this):
#   1. install.sh stages binary, unit, sysusers and tmpfiles into a throwaway root;
#   2. `systemd-analyze verify --root` passes with no output at all (unknown keys and other
#      warnings only print, so any output counts as a failure);
#   3. systemd-sysusers and systemd-tmpfiles apply to the throwaway root: the hl7edge user exists,
#      /etc/hl7edge is root:hl7edge 0750 and /var/lib/hl7edge is hl7edge 0700;
#   4. `systemd-analyze security --offline=true` exposure is at most 1.5 (systemd's "OK").
#
# Usage: systemd/check.sh [--bin PATH]
#   The binary is only checked for being executable at the unit's ExecStart path; any build
#   (host or aarch64) will do. Default: the one install.sh finds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
max_exposure=15 # tenths: 1.5
bin_args=()
if [[ "${1:-}" == "--bin" ]]; then
    bin_args=(--bin "${2:?--bin needs a path}")
fi

tools=(systemd-analyze systemd-sysusers systemd-tmpfiles)

# Lists the tools that are not on PATH.
missing_tools() {
    local tool
    for tool in "${tools[@]}"; do
        command -v "$tool" >/dev/null || echo "$tool"
    done
}

# A fresh Debian (a CI machine, a container) may lack them: install Debian's systemd package,
# which provides all three and needs no running systemd. Root or sudo is needed for that.
if [[ -n "$(missing_tools)" ]]; then
    echo "==> installing the systemd package (for: $(missing_tools | xargs))"
    sudo=()
    if ((EUID != 0)) && command -v sudo >/dev/null; then
        sudo=(sudo)
    fi
    if ((EUID != 0)) && ((${#sudo[@]} == 0)); then
        echo "check.sh: FAILED: $(missing_tools | xargs) not found and not root: apt-get install systemd" >&2
        exit 1
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd
    if [[ -n "$(missing_tools)" ]]; then
        echo "check.sh: FAILED: still missing after installing systemd: $(missing_tools | xargs)" >&2
        exit 1
    fi
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

echo "==> install into a throwaway root"
"$here/install.sh" --destdir "$root" "${bin_args[@]}" >/dev/null
# verify resolves the unit's dependencies (sysinit.target, ...) inside the root.
mkdir -p "$root/usr/lib/systemd/system"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"

echo "==> systemd-analyze verify"
if ! out="$(systemd-analyze verify --root="$root" hl7edge.service 2>&1)" || [[ -n "$out" ]]; then
    fail "systemd-analyze verify: ${out:-non-zero exit}"
else
    echo "ok"
fi

echo "==> sysusers and tmpfiles"
systemd-sysusers --root="$root" hl7edge.conf >/dev/null 2>&1 || fail "systemd-sysusers"
systemd-tmpfiles --root="$root" --create hl7edge.conf >/dev/null 2>&1 || fail "systemd-tmpfiles"
uid="$(awk -F: '$1 == "hl7edge" { print $3 }' "$root/etc/passwd" 2>/dev/null)"
gid="$(awk -F: '$1 == "hl7edge" { print $3 }' "$root/etc/group" 2>/dev/null)"
[[ -n "$uid" && -n "$gid" ]] || fail "no hl7edge user/group after systemd-sysusers"
[[ "$(stat -c '%a %u %g' "$root/etc/hl7edge")" == "750 0 $gid" ]] ||
    fail "/etc/hl7edge is $(stat -c '%a %u:%g' "$root/etc/hl7edge"), expected 750 0:$gid"
[[ "$(stat -c '%a %u %g' "$root/var/lib/hl7edge")" == "700 $uid $gid" ]] ||
    fail "/var/lib/hl7edge is $(stat -c '%a %u:%g' "$root/var/lib/hl7edge"), expected 700 $uid:$gid"
((failures)) || echo "ok (hl7edge uid $uid gid $gid)"

echo "==> systemd-analyze security (threshold ${max_exposure:0:1}.${max_exposure:1})"
report="$(systemd-analyze security --offline=true --threshold="$max_exposure" \
    "$root/usr/lib/systemd/system/hl7edge.service" 2>&1)" || fail "exposure above threshold"
grep -E '^✗' <<<"$report" || true
grep 'Overall exposure level' <<<"$report" || fail "no exposure level in the report"

if ((failures)); then
    echo "systemd checks: $failures failure(s)" >&2
    exit 1
fi
echo "systemd checks: all passed"
