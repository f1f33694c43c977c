#!/usr/bin/env bash
# Same-run comparison: starts mosquitto and every line on this machine, sends
# the same load straight to mosquitto (the baseline) and through each line,
# and prints each figure with its ratio to the baseline, as Markdown tables
# ready for BENCHMARKS.md. Also measures what an idle connection costs each
# proxy process in RSS.
#
#   bash bench/compare.sh                 # defaults below
#   MESSAGES=500000 CONNECTIONS=10000 bash bench/compare.sh
#
# Needs mosquitto and python3 (scripts/install-deps.sh installs both).
set -euo pipefail

MESSAGES=${MESSAGES:-200000}        # throughput: QoS 0, 16-byte payloads, 1 -> 1
LATENCY_COUNT=${LATENCY_COUNT:-5000} # latency: sequential messages
CONNECTIONS=${CONNECTIONS:-10000}   # idle connections held per line
PROFILE=${PROFILE:-perf}            # cargo profile (perf: release + fat LTO)
OUT=${OUT:-bench/results.md}

cd "$(dirname "$0")/.."
command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
command -v mosquitto >/dev/null || { echo "compare.sh: mosquitto not found (bash scripts/install-deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "compare.sh: python3 not found (bash scripts/install-deps.sh)" >&2; exit 1; }

echo "building (profile $PROFILE)..." >&2
cargo build --locked --profile "$PROFILE" --bin mqttbridge >&2
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/$PROFILE/mqttbridge
[ "$PROFILE" = dev ] && BIN=$TARGET_DIR/debug/mqttbridge

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

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
sys.exit(f"compare.sh: no '{message}' in {path} after 30 s:\n" + open(path).read()[-2000:])
PY
}

start() { # $1 name, rest: mqttbridge arguments; sets LAST_PID
    local name=$1; shift
    RUST_LOG=info "$BIN" --log-format json "$@" 2>"$WORK/$name.log" >"$WORK/$name.out" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

MQTT_PORT=$(free_port tcp)
cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 0
max_connections -1
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
MOSQUITTO_PID=$!
PIDS+=("$MOSQUITTO_PID")

S_PORT=$(free_port tcp)
start s-proxy s-proxy --listen "127.0.0.1:$S_PORT" --broker "127.0.0.1:$MQTT_PORT"
S_PID=$LAST_PID
R_PORT=$(free_port tcp)
start r-proxy r-proxy --listen "127.0.0.1:$R_PORT" --upstream "http://127.0.0.1:$S_PORT"
R_PID=$LAST_PID
"$BIN" certs --out "$WORK/certs" --name localhost >/dev/null
TLS=(--cafile "$WORK/certs/ca.pem" --server-name localhost)
Q_PORT=$(free_port udp)
start quic scion-quic --transport quic --listen "127.0.0.1:$Q_PORT" --broker "127.0.0.1:$MQTT_PORT" \
    --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key"
Q_PID=$LAST_PID
start pocketscion pocketscion --topology minimal --snap-token-file "$WORK/snap.token"
wait_log "$WORK/r-proxy.log" "r-proxy serving" listen >/dev/null
wait_log "$WORK/s-proxy.log" "s-proxy serving" listen >/dev/null
wait_log "$WORK/quic.log" "scion-quic serving" listen >/dev/null
for _ in $(seq 300); do [ "$(wc -l <"$WORK/pocketscion.out")" -ge 2 ] && break; sleep 0.1; done
API_CLIENT=$(awk '$2=="1-ff00:0:132"{print $3}' "$WORK/pocketscion.out")
API_SERVER=$(awk '$2=="2-ff00:0:212"{print $3}' "$WORK/pocketscion.out")
[ -n "$API_CLIENT" ] && [ -n "$API_SERVER" ] || { echo "compare.sh: pocketscion printed no endhost APIs" >&2; exit 1; }
SCION_CLIENT=(--endhost-api "$API_CLIENT" --snap-token-file "$WORK/snap.token")
start scion-quic scion-quic --transport scion --endhost-api "$API_SERVER" --snap-token-file "$WORK/snap.token" \
    --broker "127.0.0.1:$MQTT_PORT" --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key"
SQ_PID=$LAST_PID
SQ_ADDR=$(wait_log "$WORK/scion-quic.log" "scion-quic serving" listen)

measure() { # $1 line name, $2 URL, rest: client flags
    local name=$1 url=$2; shift 2
    echo "measuring $name ($url)..." >&2
    "$BIN" bench throughput -L "$url" "$@" -n "$MESSAGES" --json >"$WORK/$name.throughput.json"
    "$BIN" bench latency -L "$url" "$@" -n "$LATENCY_COUNT" --json >"$WORK/$name.latency.json"
}
measure direct "tcp://127.0.0.1:$MQTT_PORT"
measure grpc "tcp://127.0.0.1:$R_PORT"
measure quic "quic://127.0.0.1:$Q_PORT" "${TLS[@]}"
measure scion-quic "scion-quic://$SQ_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"

# scion-udp in front of the quic listener. One SCION stack per AS on this
# host: the scion-quic server leaves IA 2-ff00:0:212 first.
kill "$SQ_PID"; wait "$SQ_PID" 2>/dev/null || true
start scion-udp scion-udp --endhost-api "$API_SERVER" --snap-token-file "$WORK/snap.token" \
    --broker "127.0.0.1:$Q_PORT"
RELAY_ADDR=$(wait_log "$WORK/scion-udp.log" "scion-udp relaying" listen)
measure scion-udp "scion-quic://$RELAY_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"
# The same SCION path without the relay: scion-quic in IA 2-ff00:0:212 again.
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
start scion-quic-2 scion-quic --transport scion --endhost-api "$API_SERVER" --snap-token-file "$WORK/snap.token" \
    --broker "127.0.0.1:$MQTT_PORT" --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key"
SQ_ADDR=$(wait_log "$WORK/scion-quic-2.log" "scion-quic serving" listen)
echo "measuring scion-quic again, as the scion-udp reference..." >&2
"$BIN" bench latency -L "scion-quic://$SQ_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}" -n "$LATENCY_COUNT" --json \
    >"$WORK/scion-reference.latency.json"

hold() { # $1 name, $2 URL, then client flags and --watch NAME=PID
    local name=$1 url=$2; shift 2
    echo "holding $CONNECTIONS idle connections: $name..." >&2
    "$BIN" bench connections -L "$url" -n "$CONNECTIONS" --rate 2000 --hold 3 "$@" --json \
        >"$WORK/$name.connections.json"
}
hold direct "tcp://127.0.0.1:$MQTT_PORT" --watch "mosquitto=$MOSQUITTO_PID"
hold grpc "tcp://127.0.0.1:$R_PORT" --watch "r-proxy=$R_PID" --watch "s-proxy=$S_PID" \
    --watch "mosquitto=$MOSQUITTO_PID"
hold quic "quic://127.0.0.1:$Q_PORT" "${TLS[@]}" --watch "scion-quic (quic)=$Q_PID"

python3 - "$WORK" "$MESSAGES" "$LATENCY_COUNT" "$CONNECTIONS" <<'PY' | tee "$OUT"
import json, os, platform, subprocess, sys
work, messages, latency_count, connections = sys.argv[1:5]
load = lambda name: json.load(open(os.path.join(work, name)))
lines = [("direct mosquitto", "direct"), ("gRPC line (r-proxy + s-proxy)", "grpc"),
         ("QUIC (scion-quic, UDP/IP)", "quic"), ("QUIC over SCION (scion-quic)", "scion-quic"),
         ("QUIC over SCION via scion-udp", "scion-udp")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
      f"{subprocess.run(['mosquitto', '-h'], capture_output=True, text=True).stdout.splitlines()[0]}")
print()
print(f"### Throughput ({messages} messages, QoS 0, 16-byte payloads, 1 publisher -> 1 subscriber)")
print()
print("| line | delivered msg/s | ratio to direct | lost |")
print("| --- | ---: | ---: | ---: |")
base = load("direct.throughput.json")["delivery_rate"]
for title, key in lines:
    r = load(f"{key}.throughput.json")
    print(f"| {title} | {r['delivery_rate']:,.0f} | {r['delivery_rate'] / base:.3f} | {r['lost']} |")
print()
print(f"### Latency ({latency_count} sequential messages, QoS 0, publish -> delivery, microseconds)")
print()
print("| line | p50 | p90 | p99 | p99.9 | max | p50 added | p99 added |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
d = load("direct.latency.json")["latency"]
for title, key in lines:
    l = load(f"{key}.latency.json")["latency"]
    print(f"| {title} | {l['p50_us']:.0f} | {l['p90_us']:.0f} | {l['p99_us']:.0f} | {l['p999_us']:.0f} "
          f"| {l['max_us']:.0f} | {l['p50_us'] - d['p50_us']:+.0f} | {l['p99_us'] - d['p99_us']:+.0f} |")
ref = load("scion-reference.latency.json")["latency"]
relay = load("scion-udp.latency.json")["latency"]
print()
print("scion-udp per datagram: (p50 through the relay - p50 of scion-quic on the same SCION path) / 2 "
      f"datagrams per delivery = ({relay['p50_us']:.0f} - {ref['p50_us']:.0f}) / 2 = "
      f"{(relay['p50_us'] - ref['p50_us']) / 2:+.0f} us")
print()
print(f"### Idle connections ({connections} held through each line)")
print()
print("| line | process | opened | RSS before (KiB) | RSS holding (KiB) | per connection |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for title, key in [("direct mosquitto", "direct"), ("gRPC line", "grpc"), ("QUIC", "quic")]:
    r = load(f"{key}.connections.json")
    for m in r["memory"]:
        print(f"| {title} | {m['name']} | {r['opened']} | {m['rss_before_kib']:,} | {m['rss_after_kib']:,} "
              f"| {m['per_connection_bytes'] / 1024:.2f} KiB |")
PY
echo "written to $OUT" >&2
