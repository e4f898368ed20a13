#!/usr/bin/env bash
# Installs hl7edge as a hardened systemd service. Idempotent: running it again updates the files
# and changes nothing else.
#
# Usage: systemd/install.sh [--bin PATH] [--prefix DIR] [--destdir DIR] [--no-activate]
#
#   --bin PATH      the hl7edge binary to install (default: the static aarch64 build from
#                   cross/build.sh if present, else target/release/hl7edge)
#   --prefix DIR    installation prefix (default /usr); the unit's ExecStart follows it
#   --destdir DIR   stage into DIR (for packaging); same as the DESTDIR environment variable.
#                   Nothing is activated when staging.
#   --no-activate   install files only: do not run systemd-sysusers, systemd-tmpfiles or
#                   systemctl daemon-reload
#
# Installed:
#   $PREFIX/bin/hl7edge                              the binary (0755)
#   $PREFIX/lib/systemd/system/hl7edge.service       the unit
#   $PREFIX/lib/sysusers.d/hl7edge.conf              the hl7edge system user and group
#   $PREFIX/lib/tmpfiles.d/hl7edge.conf              /etc/hl7edge (root:hl7edge 0750), /var/lib/hl7edge
#   $PREFIX/share/doc/hl7edge/                       configuration reference and example
#   /etc/hl7edge/hl7edge.toml.example                an example configuration (never hl7edge.toml:
#                                                    an existing configuration is never touched)
#
# The service is neither enabled nor started: it needs a real configuration and certificates first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

prefix=/usr
destdir="${DESTDIR:-}"
bin=""
activate=1

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

while (($#)); do
    case "$1" in
    --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --destdir) destdir="${2:?--destdir needs a directory}"; shift 2 ;;
    --no-activate) activate=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[[ "$prefix" == /* ]] || die "--prefix must be absolute: $prefix"
[[ -z "$destdir" ]] || destdir="$(mkdir -p "$destdir" && cd "$destdir" && pwd)"
if [[ -n "$destdir" ]]; then
    activate=0
fi

if [[ -z "$bin" ]]; then
    for candidate in \
        "${CROSS_TARGET_DIR:-$repo/target-aarch64}/aarch64-unknown-linux-gnu/release/hl7edge" \
        "${CARGO_TARGET_DIR:-$repo/target}/release/hl7edge"; do
        if [[ -x "$candidate" ]]; then
            bin="$candidate"
            break
        fi
    done
fi
[[ -n "$bin" && -x "$bin" ]] || die "no hl7edge binary found; build one (cross/build.sh or cargo build --release) or pass --bin"

if [[ -z "$destdir" && $EUID -ne 0 ]]; then
    die "installing into the running system needs root (or use --destdir to stage)"
fi

root="$destdir"
unitdir="$root$prefix/lib/systemd/system"
docdir="$root$prefix/share/doc/hl7edge"

echo "installing $bin"
install -D -m 0755 "$bin" "$root$prefix/bin/hl7edge"

# The unit names /usr/bin/hl7edge; rewrite it when installing under another prefix.
install -d -m 0755 "$unitdir"
sed -e "s|/usr/bin/hl7edge|$prefix/bin/hl7edge|g" \
    -e "s|/usr/share/doc/hl7edge|$prefix/share/doc/hl7edge|g" \
    "$here/hl7edge.service" >"$unitdir/hl7edge.service.tmp"
chmod 0644 "$unitdir/hl7edge.service.tmp"
mv -f "$unitdir/hl7edge.service.tmp" "$unitdir/hl7edge.service"

install -D -m 0644 "$here/hl7edge.sysusers" "$root$prefix/lib/sysusers.d/hl7edge.conf"
install -D -m 0644 "$here/hl7edge.tmpfiles" "$root$prefix/lib/tmpfiles.d/hl7edge.conf"

install -d -m 0755 "$docdir"
if [[ -f "$repo/docs/configuration.md" ]]; then
    install -m 0644 "$repo/docs/configuration.md" "$docdir/configuration.md"
    # The example is the ```toml block under "## Example" in the reference.
    awk '/^## Example/ { ex = 1 } ex && /^```toml/ { on = 1; next } on && /^```/ { exit } on { print }' \
        "$repo/docs/configuration.md" >"$docdir/hl7edge.toml.example"
    chmod 0644 "$docdir/hl7edge.toml.example"
fi

# /etc/hl7edge: root-owned, readable by the service group. When staging, the group does not exist
# yet: the tmpfiles entry fixes ownership when the package is installed.
install -d -m 0750 "$root/etc/hl7edge"
if [[ -s "$docdir/hl7edge.toml.example" ]]; then
    install -m 0640 "$docdir/hl7edge.toml.example" "$root/etc/hl7edge/hl7edge.toml.example"
fi

if ((activate)); then
    echo "creating the hl7edge user and directories"
    systemd-sysusers "$prefix/lib/sysusers.d/hl7edge.conf"
    systemd-tmpfiles --create "$prefix/lib/tmpfiles.d/hl7edge.conf"
    chgrp hl7edge "$root/etc/hl7edge/hl7edge.toml.example" 2>/dev/null || true
    if [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
    else
        echo "systemd is not running here: skipped systemctl daemon-reload"
    fi
fi

cat <<EOF

hl7edge installed${destdir:+ into $destdir}.
Next steps:
  1. Write /etc/hl7edge/hl7edge.toml: \`hl7edge provision\` where available, or start from
     /etc/hl7edge/hl7edge.toml.example (reference: $prefix/share/doc/hl7edge/configuration.md).
     Keep every file root:hl7edge 0640 (the device key too: the service reads it through
     its group, and only root can change it; \`hl7edge provision\` run as root writes it so).
  2. Check it:      sudo -u hl7edge $prefix/bin/hl7edge doctor --config /etc/hl7edge/hl7edge.toml
  3. Start it:      systemctl enable --now hl7edge
  4. Watch it:      systemctl status hl7edge; journalctl -u hl7edge -f
EOF
