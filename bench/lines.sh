# Starts mosquitto and mqttbridge's lines as processes on this machine, for
# bench/compare.sh and scripts/soak.sh (source it; it defines functions and
# starts nothing by itself). Every process is stopped on exit.
#
#   lines_init PROFILE         build (cargo profile, "dev" for the debug build), set BIN, WORK
#                              (MQTTBRIDGE_BIN=path: use that binary, e.g. an older build)
#   start_mosquitto            MQTT_PORT, MOSQUITTO_PID
#   start_grpc_line [ARGS]     R_PORT, R_PID (r-proxy), S_PID (s-proxy); ARGS go to both
#                              (GRPC_LINE_NAME=NAME GRPC_LINE_BIN=PATH: another build's line)
#   start_haproxy_line         two HAProxy TCP hops in front of mosquitto, the gRPC line's
#                              shape without MQTT or gRPC: H_PORT, H_EDGE_PID, H_CLOUD_PID
#   start_splice_line          two tokio TCP splices (bench/tcp-splice, built on first use) in
#                              front of mosquitto, the least two user-space hops do:
#                              SP_PORT, SP_EDGE_PID, SP_CLOUD_PID
#   make_certs                 TLS=(client flags trusting the proxies' certificate)
#   start_quic NAME            scion-quic on UDP/IP: QUIC_PORT, LAST_PID
#   start_quinn_forward NAME   bench/quinn-forward on UDP/IP, the same hop on quinn and rustls
#                              (scion-quic's reference; built on first use): QUIC_PORT, LAST_PID
#   start_pocketscion NAME     a SCION network: API_CLIENT, API_SERVER, SCION_CLIENT=(client flags)
#   start_scion_quic NAME      scion-quic in $API_SERVER's AS: SCION_ADDR, LAST_PID
#   start_scion_udp NAME PORT [ARGS]  scion-udp in $API_SERVER's AS to QUIC on PORT: SCION_ADDR, LAST_PID

command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
command -v mosquitto >/dev/null || { echo "lines.sh: mosquitto not found (bash scripts/install-deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "lines.sh: python3 not found (bash scripts/install-deps.sh)" >&2; exit 1; }

PIDS=()
lines_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

lines_init() { # $1 cargo profile; MQTTBRIDGE_BIN=path measures that binary instead
    local profile=$1
    if [ -n "${MQTTBRIDGE_BIN:-}" ]; then
        BIN=$MQTTBRIDGE_BIN
        echo "measuring $BIN (not built)" >&2
    else
        echo "building (profile $profile)..." >&2
        cargo build --locked --profile "$profile" --bin mqttbridge >&2
        local target_dir
        target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
        BIN=$target_dir/$profile/mqttbridge
        [ "$profile" = dev ] && BIN=$target_dir/debug/mqttbridge
    fi
    WORK=$(mktemp -d)
    trap lines_cleanup EXIT
}

free_port() { # $1: tcp or udp
    python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1]=='tcp' else socket.SOCK_DGRAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}

# Waits (30 s at most) for a JSON log line with this message; prints the
# value of FIELD from it.
wait_log() { # $1 log file, $2 message, $3 field
    python3 - "$@" <<'PY'
import json, sys, time
path, message, field = sys.argv[1:4]
deadline = time.time() + 30
while time.time() < deadline:
    try:
        for line in open(path):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            fields = entry.get("fields", {})
            if fields.get("message") == message:
                print(fields.get(field, ""))
                sys.exit(0)
    except FileNotFoundError:
        pass
    time.sleep(0.1)
sys.exit(f"lines.sh: no '{message}' in {path} after 30 s:\n" + open(path).read()[-2000:])
PY
}

start() { # $1 name, rest: mqttbridge arguments; sets LAST_PID
    local name=$1; shift
    RUST_LOG=info "$BIN" --log-format json "$@" 2>"$WORK/$name.log" >"$WORK/$name.out" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# mosquitto without queue limits (no drops of its own) and without an
# in-flight window: with its default window of 20 a subscriber that falls
# behind gets QoS 1/2 messages out of order (the soak saw it on the direct
# line too; the mosquitto manual promises order only with a window of 1).
start_mosquitto() {
    MQTT_PORT=$(free_port tcp)
    cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 0
max_inflight_messages 0
max_connections -1
CONF
    mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    MOSQUITTO_PID=$!
    PIDS+=("$MOSQUITTO_PID")
}

start_grpc_line() { # rest: more arguments for both proxies
    local s_port name=${GRPC_LINE_NAME:-} bin=$BIN
    # GRPC_LINE_NAME=NAME GRPC_LINE_BIN=PATH: a second line, from another
    # build, its logs named NAME-r-proxy and NAME-s-proxy.
    BIN=${GRPC_LINE_BIN:-$BIN}
    s_port=$(free_port tcp)
    start "${name:+$name-}s-proxy" s-proxy --listen "127.0.0.1:$s_port" --broker "127.0.0.1:$MQTT_PORT" "$@"
    S_PID=$LAST_PID
    R_PORT=$(free_port tcp)
    start "${name:+$name-}r-proxy" r-proxy --listen "127.0.0.1:$R_PORT" --upstream "http://127.0.0.1:$s_port" "$@"
    R_PID=$LAST_PID
    BIN=$bin
    wait_log "$WORK/${name:+$name-}r-proxy.log" "r-proxy serving" listen >/dev/null
    wait_log "$WORK/${name:+$name-}s-proxy.log" "s-proxy serving" listen >/dev/null
}

# HAProxy in TCP mode, one thread, as plain byte-forwarding proxies: what
# two hops cost when nothing is parsed or framed (the floor for the gRPC
# line, which also has two). Needs haproxy (Debian: apt-get install haproxy).
# HAProxy sizes its file-descriptor limit to two per connection, so it
# holds at most HAPROXY_MAXCONN connections under the process's limit.
start_haproxy_hop() { # $1 name, $2 listen port, $3 upstream port; sets LAST_PID
    cat >"$WORK/$1.cfg" <<CFG
global
    nbthread 1
    maxconn $HAPROXY_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen hop
    bind 127.0.0.1:$2
    server upstream 127.0.0.1:$3
CFG
    haproxy -q -f "$WORK/$1.cfg" >"$WORK/$1.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# Two hops chained in front of mosquitto, the gRPC line's shape: NAME-cloud
# next to the broker, NAME-edge in front of it. Sets HOPS_PORT (the edge's),
# HOPS_MIDDLE_PORT (the cloud's), HOPS_CLOUD_PID and HOPS_EDGE_PID.
start_two_hops() { # $1 function starting one hop (name, listen port, upstream port), $2 NAME
    HOPS_MIDDLE_PORT=$(free_port tcp)
    "$1" "$2-cloud" "$HOPS_MIDDLE_PORT" "$MQTT_PORT"
    HOPS_CLOUD_PID=$LAST_PID
    HOPS_PORT=$(free_port tcp)
    "$1" "$2-edge" "$HOPS_PORT" "$HOPS_MIDDLE_PORT"
    HOPS_EDGE_PID=$LAST_PID
}

start_haproxy_line() {
    command -v haproxy >/dev/null || PATH=$PATH:/usr/sbin
    command -v haproxy >/dev/null || { echo "lines.sh: haproxy not found (apt-get install haproxy)" >&2; exit 1; }
    HAPROXY_MAXCONN=$((($(ulimit -Hn) - 200) / 2))
    start_two_hops start_haproxy_hop haproxy
    H_PORT=$HOPS_PORT H_CLOUD_PID=$HOPS_CLOUD_PID H_EDGE_PID=$HOPS_EDGE_PID
    python3 - "$H_PORT" "$HOPS_MIDDLE_PORT" <<'PY'
import socket, sys, time
deadline = time.time() + 30
for port in map(int, sys.argv[1:]):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit(f"lines.sh: haproxy does not listen on {port}")
            time.sleep(0.05)
PY
}

# A plain TCP splice on tokio (copy_bidirectional, one thread): each hop
# does the least a user-space proxy on the proxies' runtime can do.
start_splice_hop() { # $1 name, $2 listen port, $3 upstream port; sets LAST_PID
    "$TCP_SPLICE_BIN" "127.0.0.1:$2" "127.0.0.1:$3" 2>"$WORK/$1.log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_log "$WORK/$1.log" "tcp-splice serving" listen >/dev/null
}

# Sets TCP_SPLICE_BIN, building bench/tcp-splice unless it is set already.
build_splice() {
    if [ -z "${TCP_SPLICE_BIN:-}" ]; then
        echo "building bench/tcp-splice..." >&2
        cargo build --locked --release --manifest-path bench/tcp-splice/Cargo.toml \
            --target-dir target/tcp-splice >&2
        TCP_SPLICE_BIN=$PWD/target/tcp-splice/release/tcp-splice
    fi
}

start_splice_line() {
    build_splice
    start_two_hops start_splice_hop splice
    SP_PORT=$HOPS_PORT SP_CLOUD_PID=$HOPS_CLOUD_PID SP_EDGE_PID=$HOPS_EDGE_PID
}

make_certs() {
    "$BIN" certs --out "$WORK/certs" --name localhost >/dev/null
    TLS=(--cafile "$WORK/certs/ca.pem" --server-name localhost)
}

start_quic() { # $1 name
    QUIC_PORT=$(free_port udp)
    # Room above the 10,000 connections held idle: the connections of a
    # load run whose client failed live on until their idle timeout.
    start "$1" scion-quic --transport quic --listen "127.0.0.1:$QUIC_PORT" --broker "127.0.0.1:$MQTT_PORT" \
        --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key" --max-connections 20000
    wait_log "$WORK/$1.log" "scion-quic serving" listen >/dev/null
}

# The same hop as start_quic on the other Rust QUIC stack: what quinn and
# rustls cost where scion-quic runs quiche and BoringSSL (needs make_certs).
start_quinn_forward() { # $1 name
    if [ -z "${QUINN_FORWARD_BIN:-}" ]; then
        echo "building bench/quinn-forward..." >&2
        cargo build --locked --release --manifest-path bench/quinn-forward/Cargo.toml \
            --target-dir target/quinn-forward >&2
        QUINN_FORWARD_BIN=$PWD/target/quinn-forward/release/quinn-forward
    fi
    QUIC_PORT=$(free_port udp)
    "$QUINN_FORWARD_BIN" "127.0.0.1:$QUIC_PORT" "127.0.0.1:$MQTT_PORT" \
        "$WORK/certs/server.pem" "$WORK/certs/server.key" 2>"$WORK/$1.log" >"$WORK/$1.out" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_log "$WORK/$1.log" "quinn-forward serving" listen >/dev/null
}

start_pocketscion() { # $1 name
    local out=$WORK/$1.out
    start "$1" pocketscion --topology minimal --snap-token-file "$WORK/$1.token"
    for _ in $(seq 300); do [ "$(wc -l <"$out")" -ge 2 ] && break; sleep 0.1; done
    API_CLIENT=$(awk '$2=="1-ff00:0:132"{print $3}' "$out")
    API_SERVER=$(awk '$2=="2-ff00:0:212"{print $3}' "$out")
    [ -n "$API_CLIENT" ] && [ -n "$API_SERVER" ] || { echo "lines.sh: pocketscion printed no endhost APIs" >&2; exit 1; }
    SCION_TOKEN=$WORK/$1.token
    SCION_CLIENT=(--endhost-api "$API_CLIENT" --snap-token-file "$SCION_TOKEN")
}

start_scion_quic() { # $1 name
    start "$1" scion-quic --transport scion --endhost-api "$API_SERVER" --snap-token-file "$SCION_TOKEN" \
        --broker "127.0.0.1:$MQTT_PORT" --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key"
    SCION_ADDR=$(wait_log "$WORK/$1.log" "scion-quic serving" listen)
}

start_scion_udp() { # $1 name, $2 UDP port of the QUIC listener behind it, rest: more arguments
    local name=$1 port=$2; shift 2
    start "$name" scion-udp --endhost-api "$API_SERVER" --snap-token-file "$SCION_TOKEN" \
        --broker "127.0.0.1:$port" "$@"
    SCION_ADDR=$(wait_log "$WORK/$name.log" "scion-udp relaying" listen)
}
