#!/usr/bin/env bash
# Soak: mixed-QoS clients through every line at once for a while (the gRPC
# line, scion-quic on UDP/IP, scion-quic over SCION, scion-udp), each proxy
# its own process, recording every proxy's RSS and open file descriptors
# every few seconds. Fails when a message is lost or comes out of order,
# when memory keeps growing instead of levelling off, or when file
# descriptors do not return to where they started once the clients leave.
#
#   bash scripts/soak.sh                          # 60 s, the defaults below
#   DURATION=3600 RATE=500 bash scripts/soak.sh   # an hour
#   PROFILE=release SAMPLES=soak.csv bash scripts/soak.sh
#
# Needs mosquitto and python3 (scripts/install-deps.sh installs both).
set -euo pipefail

DURATION=${DURATION:-60}      # seconds of load
RATE=${RATE:-300}             # messages per second per publisher
PUBLISHERS=${PUBLISHERS:-3}   # per line; QoS 0, 1, 2 round-robin
SUBSCRIBERS=${SUBSCRIBERS:-2} # per line; each gets every message of its line
INTERVAL=${INTERVAL:-2}       # seconds between samples
PROFILE=${PROFILE:-dev}       # cargo profile of the binary under test
SAMPLES=${SAMPLES:-}          # also keep the samples here (CSV)

cd "$(dirname "$0")/.."
source bench/lines.sh
lines_init "$PROFILE"

start_mosquitto
start_grpc_line
make_certs
start_quic quic
QUIC_PID=$LAST_PID
# Two SCION networks, one per SCION line: each line's server and client
# side in ASes of their own.
start_pocketscion scion-a
start_scion_quic scion-quic
SQ_PID=$LAST_PID
SQ_URL=scion-quic://$SCION_ADDR
SQ_CLIENT=("${SCION_CLIENT[@]}")
start_pocketscion scion-b
# The relay cannot see a QUIC connection close (it is encrypted end to end);
# a client's socket goes when its mapping has been idle this long.
echo "idle_timeout_ms = 5000" >"$WORK/scion-udp.toml"
start_scion_udp scion-udp "$QUIC_PORT" --config "$WORK/scion-udp.toml"
SU_PID=$LAST_PID
SU_URL=scion-quic://$SCION_ADDR
SU_CLIENT=("${SCION_CLIENT[@]}")

# "direct" is the same load straight to mosquitto: the baseline for what
# the broker itself does.
LINES=(direct grpc quic scion-quic scion-udp)
declare -A URL=([direct]="tcp://127.0.0.1:$MQTT_PORT" [grpc]="tcp://127.0.0.1:$R_PORT" [quic]="quic://127.0.0.1:$QUIC_PORT" [scion-quic]="$SQ_URL" [scion-udp]="$SU_URL")
flags() { # $1 line: client flags
    case $1 in
        direct | grpc) ;;
        quic) printf '%s\n' "${TLS[@]}" ;;
        scion-quic) printf '%s\n' "${TLS[@]}" "${SQ_CLIENT[@]}" ;;
        scion-udp) printf '%s\n' "${TLS[@]}" "${SU_CLIENT[@]}" ;;
    esac
}
PROCESSES=("r-proxy=$R_PID" "s-proxy=$S_PID" "scion-quic (quic)=$QUIC_PID" "scion-quic (scion)=$SQ_PID" "scion-udp=$SU_PID")

sample() { # $1 phase: one CSV row per process
    local now entry name pid rss fds
    now=$(date +%s.%N)
    for entry in "${PROCESSES[@]}"; do
        name=${entry%=*} pid=${entry##*=}
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        echo "$now,$1,$name,$rss,$fds" >>"$WORK/samples.csv"
    done
}

# A few messages through every line first, so the connections that stay
# (r-proxy to s-proxy) are part of the baseline.
for line in "${LINES[@]}"; do
    mapfile -t f < <(flags "$line")
    "$BIN" bench throughput -L "${URL[$line]}" "${f[@]}" -q 1 -n 20 --json >/dev/null
done
echo "time,phase,process,rss_kib,fds" >"$WORK/samples.csv"
sample baseline

echo "soak: $DURATION s, per line $PUBLISHERS publishers (QoS 0,1,2) at $RATE msg/s -> $SUBSCRIBERS subscribers" >&2
BENCH_PIDS=()
for line in "${LINES[@]}"; do
    mapfile -t f < <(flags "$line")
    "$BIN" bench throughput -L "${URL[$line]}" "${f[@]}" -i "soak-$line" -q 0,1,2 \
        -p "$PUBLISHERS" -s "$SUBSCRIBERS" -d "$DURATION" --rate "$RATE" --json \
        >"$WORK/$line.json" 2>"$WORK/$line.bench.log" &
    BENCH_PIDS+=($!)
done
running() { for pid in "${BENCH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
while running; do
    sleep "$INTERVAL"
    sample load
done
failed=0
for i in "${!LINES[@]}"; do
    wait "${BENCH_PIDS[$i]}" || { echo "soak: bench through ${LINES[$i]} failed:" >&2; tail -5 "$WORK/${LINES[$i]}.bench.log" >&2; failed=1; }
done
# The clients are gone: wait (30 s at most) for every proxy's descriptors
# to come back to the baseline.
for _ in $(seq 60); do
    sample after
    python3 - "$WORK/samples.csv" <<'PY' && break
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
base = {r["process"]: int(r["fds"]) for r in rows if r["phase"] == "baseline"}
last = {r["process"]: int(r["fds"]) for r in rows if r["phase"] == "after"}
sys.exit(0 if all(last[p] <= base[p] for p in base) else 1)
PY
    sleep 0.5
done
[ -z "$SAMPLES" ] || cp "$WORK/samples.csv" "$SAMPLES"
[ "$failed" -eq 0 ] || exit 1

python3 - "$WORK" "${LINES[@]}" <<'PY'
import csv, json, os, sys
work, lines = sys.argv[1], sys.argv[2:]
ok = True
print("| line | sent | delivered | lost | duplicates | out of order | delivered msg/s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for line in lines:
    r = json.load(open(os.path.join(work, f"{line}.json")))
    print(f"| {line} | {r['sent']:,} | {r['received']:,} | {r['lost']} | {r['duplicates']} "
          f"| {r['out_of_order']} | {r['delivery_rate']:,.0f} |")
    if r["lost"] or r["out_of_order"]:
        ok = False
        print(f"soak: {line} lost {r['lost']} and reordered {r['out_of_order']} messages", file=sys.stderr)
rows = list(csv.DictReader(open(os.path.join(work, "samples.csv"))))
print()
print("| process | RSS baseline | RSS peak | RSS max, middle third | RSS max, last third | RSS after "
      "| fds baseline | fds peak | fds after | memory |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for process in dict.fromkeys(r["process"] for r in rows):
    mine = [r for r in rows if r["process"] == process]
    phase = lambda p: [r for r in mine if r["phase"] == p]
    load = phase("load")
    rss = lambda rs: [int(r["rss_kib"]) for r in rs]
    third = max(len(load) // 3, 1)
    middle, last = rss(load[third:2 * third]) or rss(load), rss(load[-third:])
    # Levelled off: the last third peaks no higher than the middle third
    # plus 5 % and 1 MiB (allocator noise), i.e. no steady growth.
    level = max(last) <= max(middle) * 1.05 + 1024
    base, after = phase("baseline")[0], phase("after")[-1]
    fds_back = int(after["fds"]) <= int(base["fds"])
    print(f"| {process} | {int(base['rss_kib']):,} KiB | {max(rss(load)):,} KiB | {max(middle):,} KiB "
          f"| {max(last):,} KiB | {int(after['rss_kib']):,} KiB | {base['fds']} "
          f"| {max(int(r['fds']) for r in load)} | {after['fds']} "
          f"| {'levels off' if level else 'GROWING'} |")
    if not level:
        ok = False
        print(f"soak: {process} RSS still growing: middle third {max(middle)} KiB, last third {max(last)} KiB", file=sys.stderr)
    if not fds_back:
        ok = False
        print(f"soak: {process} holds {after['fds']} descriptors, {base['fds']} before the load", file=sys.stderr)
print()
print("soak: ok" if ok else "soak: FAILED")
sys.exit(0 if ok else 1)
PY
