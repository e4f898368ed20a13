#!/usr/bin/env bash
# The project's test command: installs what the end-to-end tests need (a mosquitto broker, a
# PostgreSQL server, easy-rsa, the test-only Python tools) when missing, then runs every test of the
# workspace. Extra arguments go to `cargo test`
# (for example a test name filter after `--`).
#
# Works on a fresh Debian 12 with rustup's stable toolchain; needs root (or sudo) only to install
# packages. The tests start their own brokers and PostgreSQL servers on free ports (PostgreSQL as
# the unprivileged `postgres` user when run as root), so the services the packages start are
# stopped to keep the machine quiet (they listen on 1883 and 5432, which the tests never use).
set -euo pipefail
cd "$(dirname "$0")/.."

MOSQUITTO=/usr/sbin/mosquitto
POSTGRESQL_LIB=/usr/lib/postgresql

# Runs a command as root: directly when root, through sudo when available, else fails.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 1
    fi
}

if [ ! -x "$MOSQUITTO" ] && ! command -v mosquitto >/dev/null 2>&1; then
    echo "==> mosquitto is missing; installing it (apt-get install -y mosquitto)"
    if ! as_root apt-get update || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto; then
        echo "error: could not install mosquitto. Run as root or with sudo, or install it yourself:" >&2
        echo "       apt-get update && apt-get install -y mosquitto" >&2
        exit 1
    fi
fi
if [ ! -x "$MOSQUITTO" ]; then
    echo "error: the end-to-end tests expect the broker at $MOSQUITTO (Debian's mosquitto package)" >&2
    exit 1
fi

if ! ls "$POSTGRESQL_LIB"/*/bin/postgres >/dev/null 2>&1; then
    echo "==> PostgreSQL is missing; installing it (apt-get install -y postgresql)"
    if ! as_root apt-get update || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; then
        echo "error: could not install postgresql. Run as root or with sudo, or install it yourself:" >&2
        echo "       apt-get update && apt-get install -y postgresql" >&2
        exit 1
    fi
fi
if ! ls "$POSTGRESQL_LIB"/*/bin/postgres >/dev/null 2>&1; then
    echo "error: the ingest tests expect PostgreSQL under $POSTGRESQL_LIB/VERSION/bin (Debian's postgresql package)" >&2
    exit 1
fi

# easy-rsa: central IT's signing step as the README shows it (tests/tests/provision.rs runs it).
if [ ! -x /usr/share/easy-rsa/easyrsa ]; then
    echo "==> easy-rsa is missing; installing it (apt-get install -y easy-rsa)"
    if ! as_root apt-get update || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y easy-rsa; then
        echo "error: could not install easy-rsa. Run as root or with sudo, or install it yourself:" >&2
        echo "       apt-get update && apt-get install -y easy-rsa" >&2
        exit 1
    fi
fi

# openssl: central IT's key and signing commands as the README shows them (tests/tests/push.rs,
# the README's newcomer path).
if ! command -v openssl >/dev/null 2>&1; then
    echo "==> openssl is missing; installing it (apt-get install -y openssl)"
    if ! as_root apt-get update || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl; then
        echo "error: could not install openssl. Run as root or with sudo, or install it yourself:" >&2
        echo "       apt-get update && apt-get install -y openssl" >&2
        exit 1
    fi
fi

# The packages may start a system broker and database; the tests don't need them.
as_root systemctl stop mosquitto >/dev/null 2>&1 || true
as_root systemctl stop postgresql >/dev/null 2>&1 || true

# Test-only Python tools (tests/python/requirements.txt) in a virtual environment of their own;
# the tests find it through HL7EDGE_PYTOOLS. Debian's python3 needs python3-venv for this.
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$(pwd)/$target_dir"
PYTOOLS="$target_dir/pytools"
requirements=tests/python/requirements.txt
if ! cmp -s "$requirements" "$PYTOOLS/requirements.txt" 2>/dev/null; then
    echo "==> installing the test-only Python tools into $PYTOOLS"
    rm -rf "$PYTOOLS"
    if ! python3 -m venv "$PYTOOLS" 2>/dev/null; then
        rm -rf "$PYTOOLS"
        echo "==> python3 venv is missing; installing it (apt-get install -y python3-venv python3-pip)"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv python3-pip
        python3 -m venv "$PYTOOLS"
    fi
    "$PYTOOLS/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$PYTOOLS/requirements.txt"
fi
export HL7EDGE_PYTOOLS="$PYTOOLS/bin"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs), stable toolchain" >&2
    exit 1
fi

# Not --all-targets: that would also run the benchmark programs (harness = false),
# which are measured with `cargo bench`, not run as tests. clippy --all-targets
# in .ci/run still compiles them.
echo "==> cargo test --workspace $*"
cargo test --workspace "$@"
