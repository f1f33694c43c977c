#!/usr/bin/env bash
# Same-run comparison: starts mosquitto and every line on this machine, sends
# the same load straight to mosquitto (the baseline) and through each line,
# and prints each figure with its ratio to the baseline, as Markdown tables
# ready for BENCHMARKS.md: throughput and sequential latency (1 -> 1), the
# latency and CPU time per message of each process under a steady load of
# 100 publishers -> 1 subscriber, and what an idle connection costs each
# proxy process in RSS; then bench/rounds.sh: throughput and sequential
# latency of the TCP lines in paired rounds (latency on all CPUs and with
# every process on one CPU).
#
#   bash bench/compare.sh                 # defaults below
#   LOAD_FLAGS=--aligned bash bench/compare.sh   # the load in bursts (all publishers at once)
#   MESSAGES=500000 CONNECTIONS=10000 bash bench/compare.sh
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/compare.sh   # another build
#
# Needs mosquitto and python3 (scripts/install-deps.sh installs both) and
# haproxy (apt-get install haproxy: two HAProxy TCP hops are the reference
# for what two plain proxies cost, and two tokio TCP splices, bench/tcp-splice
# built here on first use, for the least two hops on the proxies' runtime
# cost); the processes are started by bench/lines.sh. scion-quic's reference is the same hop on quinn and rustls
# (bench/quinn-forward, built here on first use).
set -euo pipefail

MESSAGES=${MESSAGES:-200000}        # throughput: QoS 0, 16-byte payloads, 1 -> 1
LATENCY_COUNT=${LATENCY_COUNT:-5000} # latency: sequential messages
CONNECTIONS=${CONNECTIONS:-10000}   # idle connections held per line
PROFILE=${PROFILE:-release}         # cargo profile (release: fat LTO, one codegen unit)
OUT=${OUT:-bench/results.md}
LOAD_RATES=${LOAD_RATES:-10000 30000} # load: total msg/s of 100 publishers -> 1 subscriber
LOAD_SECONDS=${LOAD_SECONDS:-10}    # load: seconds per rate and QoS
LOAD_FLAGS=${LOAD_FLAGS:-}          # load: more bench flags (e.g. --aligned)

cd "$(dirname "$0")/.."
source bench/lines.sh
lines_init "$PROFILE"

start_mosquitto
start_grpc_line
start_haproxy_line
start_splice_line
make_certs
start_quic quic
Q_PID=$LAST_PID
Q_PORT=$QUIC_PORT
start_quinn_forward quinn
QF_PID=$LAST_PID
QF_PORT=$QUIC_PORT
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

# CPU time (user + system, clock ticks) of each NAME=PID in $WATCH, one
# "NAME TICKS" line each.
cpu_ticks() {
    local entry
    for entry in $WATCH; do
        # Fields 14 and 15 of /proc/PID/stat; the command name holds no blank.
        echo "${entry%%=*} $(awk '{print $14 + $15}' "/proc/${entry#*=}/stat")"
    done
}
# 100 publishers -> 1 subscriber at each of LOAD_RATES in total, QoS 0 and
# 1, with the CPU time each process in $WATCH spent meanwhile.
load() { # $1 line name, $2 URL, rest: client flags
    local name=$1 url=$2 rate qos; shift 2
    for rate in $LOAD_RATES; do
        for qos in 0 1; do
            echo "loading $name: $rate msg/s, QoS $qos..." >&2
            cpu_ticks >"$WORK/$name.load-$rate-$qos.cpu-before"
            # A run that fails is a row saying so, not the end of the comparison.
            # shellcheck disable=SC2086
            "$BIN" bench throughput -L "$url" "$@" -p 100 -s 1 -q "$qos" --rate "$((rate / 100))" \
                -d "$LOAD_SECONDS" $LOAD_FLAGS --json >"$WORK/$name.load-$rate-$qos.json" ||
                echo '{"failed": true}' >"$WORK/$name.load-$rate-$qos.json"
            cpu_ticks >"$WORK/$name.load-$rate-$qos.cpu-after"
        done
    done
}

measure direct "tcp://127.0.0.1:$MQTT_PORT"
WATCH="mosquitto=$MOSQUITTO_PID" load direct "tcp://127.0.0.1:$MQTT_PORT"
measure haproxy "tcp://127.0.0.1:$H_PORT"
WATCH="mosquitto=$MOSQUITTO_PID haproxy-edge=$H_EDGE_PID haproxy-cloud=$H_CLOUD_PID" \
    load haproxy "tcp://127.0.0.1:$H_PORT"
measure splice "tcp://127.0.0.1:$SP_PORT"
WATCH="mosquitto=$MOSQUITTO_PID splice-edge=$SP_EDGE_PID splice-cloud=$SP_CLOUD_PID" \
    load splice "tcp://127.0.0.1:$SP_PORT"
measure grpc "tcp://127.0.0.1:$R_PORT"
WATCH="mosquitto=$MOSQUITTO_PID r-proxy=$R_PID s-proxy=$S_PID" load grpc "tcp://127.0.0.1:$R_PORT"
measure quic "quic://127.0.0.1:$Q_PORT" "${TLS[@]}"
WATCH="mosquitto=$MOSQUITTO_PID scion-quic=$Q_PID" load quic "quic://127.0.0.1:$Q_PORT" "${TLS[@]}"
measure quinn "quic://127.0.0.1:$QF_PORT" "${TLS[@]}"
WATCH="mosquitto=$MOSQUITTO_PID quinn-forward=$QF_PID" load quinn "quic://127.0.0.1:$QF_PORT" "${TLS[@]}"
measure scion-quic "scion-quic://$SQ_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"

# scion-udp in front of the quic listener, in IA 2-ff00:0:212 where the
# scion-quic server was (stopped first: its CPU is not the relay's).
kill "$SQ_PID"; wait "$SQ_PID" 2>/dev/null || true
start_scion_udp scion-udp "$Q_PORT"
RELAY_ADDR=$SCION_ADDR
measure scion-udp "scion-quic://$RELAY_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"
WATCH="mosquitto=$MOSQUITTO_PID scion-quic=$Q_PID scion-udp=$LAST_PID" \
    load scion-udp "scion-quic://$RELAY_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}"
# The same SCION path without the relay: scion-quic in IA 2-ff00:0:212 again.
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
start_scion_quic scion-quic-2
SQ_ADDR=$SCION_ADDR
echo "measuring scion-quic again, as the scion-udp reference..." >&2
# A reference run that fails leaves the estimate missing, not the whole
# comparison.
"$BIN" bench latency -L "scion-quic://$SQ_ADDR" "${TLS[@]}" "${SCION_CLIENT[@]}" -n "$LATENCY_COUNT" --json \
    >"$WORK/scion-reference.latency.json" ||
    echo '{"failed": true}' >"$WORK/scion-reference.latency.json"

hold() { # $1 name, $2 URL, then client flags and --watch NAME=PID
    local name=$1 url=$2; shift 2
    echo "holding $CONNECTIONS idle connections: $name..." >&2
    "$BIN" bench connections -L "$url" -n "$CONNECTIONS" --rate 2000 --hold 3 "$@" --json \
        >"$WORK/$name.connections.json"
}
hold direct "tcp://127.0.0.1:$MQTT_PORT" --watch "mosquitto=$MOSQUITTO_PID"
CONNECTIONS=$((CONNECTIONS < HAPROXY_MAXCONN ? CONNECTIONS : HAPROXY_MAXCONN)) \
    hold haproxy "tcp://127.0.0.1:$H_PORT" --watch "haproxy-edge=$H_EDGE_PID" \
    --watch "haproxy-cloud=$H_CLOUD_PID" --watch "mosquitto=$MOSQUITTO_PID"
hold grpc "tcp://127.0.0.1:$R_PORT" --watch "r-proxy=$R_PID" --watch "s-proxy=$S_PID" \
    --watch "mosquitto=$MOSQUITTO_PID"
hold quic "quic://127.0.0.1:$Q_PORT" "${TLS[@]}" --watch "scion-quic (quic)=$Q_PID"
hold quinn "quic://127.0.0.1:$QF_PORT" "${TLS[@]}" --watch "quinn-forward=$QF_PID"

python3 - "$WORK" "$MESSAGES" "$LATENCY_COUNT" "$CONNECTIONS" "$LOAD_RATES" "$LOAD_SECONDS" "$(getconf CLK_TCK)" \
    "$BIN" <<'PY' | tee "$OUT"
import json, os, platform, subprocess, sys
work, messages, latency_count, connections, load_rates, load_seconds, clk_tck, binary = sys.argv[1:9]
load = lambda name: json.load(open(os.path.join(work, name)))
lines = [("direct mosquitto", "direct"), ("two HAProxy TCP hops", "haproxy"),
         ("two tokio TCP splices", "splice"), ("gRPC line (r-proxy + s-proxy)", "grpc"),
         ("QUIC (scion-quic, UDP/IP)", "quic"), ("QUIC on quinn (quinn-forward, UDP/IP)", "quinn"),
         ("QUIC over SCION (scion-quic)", "scion-quic"),
         ("QUIC over SCION via scion-udp", "scion-udp")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
      f"{subprocess.run(['mosquitto', '-h'], capture_output=True, text=True).stdout.splitlines()[0]}")
print()
print(f"Measured: {binary} (`MQTTBRIDGE_BIN`, or the `PROFILE` build)")
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
ref = load("scion-reference.latency.json").get("latency")
relay = load("scion-udp.latency.json")["latency"]
print()
if ref is None:
    print("scion-udp per datagram: not measured; scion-quic on the same SCION path failed after the "
          "scion-udp loads (the run's log says why)")
else:
    print("scion-udp per datagram: (p50 through the relay - p50 of scion-quic on the same SCION path) / 2 "
          f"datagrams per delivery = ({relay['p50_us']:.0f} - {ref['p50_us']:.0f}) / 2 = "
          f"{(relay['p50_us'] - ref['p50_us']) / 2:+.0f} us")
print()
print(f"### Under load (100 publishers -> 1 subscriber, {load_seconds} s per row, publish -> delivery)")
print()
print("CPU is user + system time per million delivered messages, each process's, and in brackets "
      "its ratio to mosquitto's in the same row.")
print()
print("| line | msg/s | QoS | delivered | lost | p50 (us) | p99 (us) | p50 added | p99 added | CPU s / 1M messages |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
ticks = lambda path: {n: int(t) for n, t in (l.split() for l in open(path))}
load_lines = [("direct mosquitto", "direct"), ("two HAProxy TCP hops", "haproxy"),
              ("two tokio TCP splices", "splice"), ("gRPC line", "grpc"), ("QUIC (UDP/IP)", "quic"),
              ("QUIC on quinn (UDP/IP)", "quinn"), ("QUIC over SCION via scion-udp", "scion-udp")]
for rate in load_rates.split():
    for qos in ("0", "1"):
        base = load(f"direct.load-{rate}-{qos}.json")["latency"]
        for title, key in load_lines:
            stem = os.path.join(work, f"{key}.load-{rate}-{qos}")
            r = load(f"{key}.load-{rate}-{qos}.json")
            if r.get("failed"):
                print(f"| {title} | {int(rate):,} | {qos} | failed (see the log) | | | | | | |")
                continue
            l = r["latency"]
            before, after = ticks(stem + ".cpu-before"), ticks(stem + ".cpu-after")
            per_million = {n: (after[n] - before[n]) / int(clk_tck) / max(r["received"], 1) * 1e6 for n in after}
            cpu = ", ".join(f"{n} {v:.1f}" + ("" if n == "mosquitto" else f" ({v / max(per_million['mosquitto'], 1e-9):.2f}x)")
                            for n, v in per_million.items())
            print(f"| {title} | {int(rate):,} | {qos} | {r['received']:,} | {r['lost']} | {l['p50_us']:.0f} "
                  f"| {l['p99_us']:.0f} | {l['p50_us'] - base['p50_us']:+.0f} | {l['p99_us'] - base['p99_us']:+.0f} | {cpu} |")
print()
print(f"### Idle connections ({connections} held through each line)")
print()
print("Per connection: RSS growth over all connections. Marginal: growth from when a tenth were open, over "
      "the connections opened since (what one more idle connection costs, without one-time costs and "
      "without heap that the loads before left free).")
print()
print("| line | process | opened | RSS before (KiB) | RSS holding (KiB) | per connection | marginal |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for title, key in [("direct mosquitto", "direct"), ("two HAProxy TCP hops", "haproxy"), ("gRPC line", "grpc"),
                   ("QUIC", "quic"), ("QUIC on quinn", "quinn")]:
    r = load(f"{key}.connections.json")
    for m in r["memory"]:
        print(f"| {title} | {m['name']} | {r['opened']} | {m['rss_before_kib']:,} | {m['rss_after_kib']:,} "
              f"| {m['per_connection_bytes'] / 1024:.2f} KiB "
              f"| {m['marginal_bytes'] / 1024 if m['marginal_bytes'] is not None else float('nan'):.2f} KiB |")
PY
echo >>"$OUT"
MQTTBRIDGE_BIN=$BIN TCP_SPLICE_BIN=$TCP_SPLICE_BIN bash bench/rounds.sh | tee -a "$OUT"
echo "written to $OUT" >&2
