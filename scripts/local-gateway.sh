#!/usr/bin/env bash
# A real gateway on this machine, set up the way a box is in the field, against a local mosquitto
# broker with mutual TLS:
#
#   1. central IT: a CA (openssl), the broker's server certificate, a hub client certificate;
#   2. the box: `hl7edge provision` makes the device key and a CSR and writes the configuration;
#   3. central IT signs the CSR (openssl, a v3 certificate for client authentication);
#   4. the box: `hl7edge provision --install-cert`, then `hl7edge run`, then `hl7edge doctor`.
#
# Usage: scripts/local-gateway.sh start|stop
#
# `start` makes a fresh setup in ./local-gateway/ (or $HL7EDGE_LOCAL_DIR): the broker listens on
# 127.0.0.1:18883, the gateway's MLLP listener `lab` on 127.0.0.1:12575. It also registers the
# hub-side session `local-hub` with the broker, so `hl7edge-hub tail --client-id local-hub` sees
# every record sent from then on. `stop` ends the gateway and the broker. Needs mosquitto and
# openssl (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${HL7EDGE_LOCAL_DIR:-local-gateway}"
mqtt_port=18883
mllp_port=12575

die() {
    echo "local-gateway: $*" >&2
    exit 1
}

running() {
    [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop() {
    for pid_file in "$dir/box/agent.pid" "$dir/broker/mosquitto.pid"; do
        if running "$pid_file"; then
            kill "$(cat "$pid_file")"
            for _ in $(seq 50); do running "$pid_file" || break; sleep 0.1; done
        fi
        rm -f "$pid_file"
    done
    echo "local-gateway: stopped (files kept in $dir/)"
}

# Waits until something accepts TCP connections on 127.0.0.1:$1, or fails naming $2's log.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1 after 10 s; see $2"
}

need_tools() {
    local missing=()
    command -v openssl >/dev/null || missing+=(openssl)
    [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
    ((${#missing[@]} == 0)) && return 0
    [[ "$(id -u)" -eq 0 ]] || die "missing ${missing[*]}: sudo apt-get install -y ${missing[*]}"
    echo "local-gateway: installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    systemctl stop mosquitto >/dev/null 2>&1 || true
}

# Central IT signs a CSR: $1 csr, $2 certificate out, $3 extensions (one per line).
sign() {
    printf '%b\n' "$3" >"$2.ext"
    openssl x509 -req -in "$1" -CA "$dir/ca/ca.pem" -CAkey "$dir/ca/ca.key" -CAcreateserial \
        -days 365 -sha256 -extfile "$2.ext" -out "$2" 2>/dev/null
}

# A key and a certificate signed by the CA: $1 folder/name, $2 subject, $3 extensions.
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -subj "$2" -out "$1.csr" 2>/dev/null
    chmod 600 "$1.key"
    sign "$1.csr" "$1.pem" "$3"
}

start() {
    if running "$dir/box/agent.pid"; then
        echo "local-gateway: already running (stop it first: scripts/local-gateway.sh stop)"
        return 0
    fi
    need_tools
    stop >/dev/null
    rm -rf "$dir"
    mkdir -p "$dir/ca" "$dir/broker" "$dir/hub" "$dir/box"
    echo "local-gateway: building hl7edge and hl7edge-hub"
    cargo build -q -p hl7edge -p hl7edge-hub
    local bin="${CARGO_TARGET_DIR:-target}/debug"

    echo "local-gateway: central IT's CA, the broker's and the hub's certificates (openssl)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -keyout "$dir/ca/ca.key" -out "$dir/ca/ca.pem" -subj "/O=local-try/CN=local hub CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    chmod 600 "$dir/ca/ca.key"
    issue "$dir/broker/broker" "/O=local-try/CN=localhost" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    issue "$dir/hub/hub" "/O=local-try/CN=local-hub" "extendedKeyUsage=clientAuth"

    local conf="$dir/broker/mosquitto.conf"
    {
        echo "listener $mqtt_port 127.0.0.1"
        echo "cafile $dir/ca/ca.pem"
        echo "certfile $dir/broker/broker.pem"
        echo "keyfile $dir/broker/broker.key"
        echo "require_certificate true"
        echo "use_identity_as_username true"
        echo "persistence true"
        echo "persistence_location $dir/broker/"
        echo "log_dest file $PWD/$dir/broker/mosquitto.log"
        # As root, mosquitto would drop to its own user and lose access to the 0600 key.
        [[ "$(id -u)" -eq 0 ]] && echo "user root"
    } >"$conf"
    /usr/sbin/mosquitto -c "$conf" >/dev/null 2>&1 &
    echo $! >"$dir/broker/mosquitto.pid"
    wait_port "$mqtt_port" "$dir/broker/mosquitto.log"

    echo "local-gateway: the box: hl7edge provision (device key, CSR, configuration)"
    "$bin/hl7edge" provision --config "$dir/box/hl7edge.toml" --dir "$dir/box" \
        --org local --site try --gateway gw-1 --hub "mqtts://localhost:$mqtt_port" \
        --ca "$dir/ca/ca.pem" --listener "lab=127.0.0.1:$mllp_port" --allow 127.0.0.1 \
        --storage "$dir/box/queue.db" >/dev/null
    echo "local-gateway: central IT signs the CSR (v3, extendedKeyUsage = clientAuth)"
    sign "$dir/box/device.csr" "$dir/box/signed.pem" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
    "$bin/hl7edge" provision --config "$dir/box/hl7edge.toml" --install-cert "$dir/box/signed.pem" >/dev/null

    "$bin/hl7edge-hub" tail --url "mqtts://localhost:$mqtt_port" --ca "$dir/ca/ca.pem" \
        --cert "$dir/hub/hub.pem" --key "$dir/hub/hub.key" --client-id local-hub --count 0 \
        2>"$dir/hub/register.log" || die "could not register the hub session; see $dir/hub/register.log"

    "$bin/hl7edge" run --config "$dir/box/hl7edge.toml" >"$dir/box/agent.log" 2>&1 &
    echo $! >"$dir/box/agent.pid"
    wait_port "$mllp_port" "$dir/box/agent.log"
    echo "local-gateway: the gateway runs; hl7edge doctor says:"
    "$bin/hl7edge" doctor --config "$dir/box/hl7edge.toml" | sed 's/^/  /' ||
        die "doctor found a problem (above); the gateway's log: $dir/box/agent.log"
    cat <<TXT

The gateway listens for HL7 (MLLP) on 127.0.0.1:$mllp_port; its files are in $dir/box/.
Next (see the README): send messages with \`hl7edge send\`, read them at the hub with
\`hl7edge-hub tail --client-id local-hub ...\`, check the box with \`hl7edge status\`.
Stop: scripts/local-gateway.sh stop
TXT
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: scripts/local-gateway.sh start|stop" ;;
esac
