#!/usr/bin/env bash
# Same-run comparison: starts mosquitto and every line on this machine, sends
# the same load straight to mosquitto (the baseline) and through each line,
# and prints each figure with its ratio to the baseline, as Markdown tables
# ready for BENCHMARKS.md. Also measures what an idle connection costs each
# proxy process in RSS.
#
#   bash bench/compare.sh                 # defaults below
#   MESSAGES=500000 CONNECTIONS=10000 bash bench/compare.sh
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/compare.sh   # another build
#
# Needs mosquitto and python3 (scripts/install-deps.sh installs both); the
# processes are started by bench/lines.sh.
set -euo pipefail

MESSAGES=${MESSAGES:-200000}        # throughput: QoS 0, 16-byte payloads, 1 -> 1
LATENCY_COUNT=${LATENCY_COUNT:-5000} # latency: sequential messages
CONNECTIONS=${CONNECTIONS:-10000}   # idle connections held per line
PROFILE=${PROFILE:-perf}            # cargo profile (perf: release + fat LTO)
OUT=${OUT:-bench/results.md}

cd "$(dirname "$0")/.."
source bench/lines.sh
lines_init "$PROFILE"

start_mosquitto
start_grpc_line
make_certs
start_quic quic
Q_PID=$LAST_PID
Q_PORT=$QUIC_PORT
start_pocketscion pocketscion
start_scion_quic scion-quic
SQ_PID=$LAST_PID
SQ_ADDR=$SCION_ADDR

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
start_scion_udp scion-udp "$Q_PORT"
RELAY_ADDR=$SCION_ADDR
measure scion-udp "scion-quic://$RELAY_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"
# The same SCION path without the relay: scion-quic in IA 2-ff00:0:212 again.
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
start_scion_quic scion-quic-2
SQ_ADDR=$SCION_ADDR
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
