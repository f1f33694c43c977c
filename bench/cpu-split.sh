#!/usr/bin/env bash
# Where each proxy's CPU goes in bulk, kernel or user space: the gRPC
# line's r-proxy and s-proxy against the two hops of the tokio TCP splice
# (bench/tcp-splice) in front of the same mosquitto, each process sampled
# by `perf record -e cpu-clock` while `bench throughput` sends ROUNDS x
# MESSAGES QoS 0 messages through its line. Prints, per process, the
# samples in the kernel and in user space and what they come to per
# message, then the line's two proxies against the splice's two hops.
#
# Why samples and not /proc/PID/stat: the kernel charges each clock tick
# to the mode a process is in when it comes, and a process that sleeps and
# wakes a hundred thousand times a second is sampled badly that way (it
# put the s-proxy's excess in system time, where perf finds none:
# BENCHMARKS.md, "Where the bulk gap sits").
#
#   bash bench/cpu-split.sh
#   ROUNDS=5 MESSAGES=500000 bash bench/cpu-split.sh
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/cpu-split.sh   # another build
#   TOP=15 bash bench/cpu-split.sh                              # and each proxy's busiest user functions
#
# Needs perf (Debian: apt-get install linux-perf), besides what
# bench/compare.sh needs.
set -euo pipefail

ROUNDS=${ROUNDS:-3}          # bulk runs per line
MESSAGES=${MESSAGES:-200000} # messages per run (QoS 0, 16-byte payloads, 1 -> 1)
FREQUENCY=${FREQUENCY:-2999} # samples per second of each process's CPU time
TOP=${TOP:-0}                # user-space functions listed per proxy
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
command -v perf >/dev/null || { echo "cpu-split.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
lines_init "$PROFILE"

start_mosquitto
start_splice_line
start_grpc_line

# $1 line, $2 port, then "name pid" pairs: samples each process over the runs.
sample_line() {
    local line=$1 port=$2 recorders=() controls=() name pid round ctl ack
    shift 2
    "$BIN" bench throughput -L "tcp://127.0.0.1:$port" -n 20000 --json >/dev/null # warm
    while [ $# -gt 0 ]; do
        name=$1 pid=$2
        shift 2
        # Started with sampling off; on once it answers "enable" (attaching
        # to a process takes perf a while).
        ctl=$WORK/$line.$name.ctl ack=$WORK/$line.$name.ack
        mkfifo "$ctl" "$ack"
        perf record -q -D -1 --control "fifo:$ctl,$ack" -F "$FREQUENCY" -e cpu-clock \
            -o "$WORK/$line.$name.perf" -p "$pid" 2>/dev/null &
        recorders+=("$!")
        controls+=("$ctl" "$ack")
    done
    set -- "${controls[@]}"
    while [ $# -gt 0 ]; do
        echo enable >"$1"
        timeout 30 head -c 4 "$2" >/dev/null || { echo "cpu-split.sh: perf did not start sampling" >&2; exit 1; }
        shift 2
    done
    for round in $(seq "$ROUNDS"); do
        echo "$line: run $round of $ROUNDS..." >&2
        "$BIN" bench throughput -L "tcp://127.0.0.1:$port" -n "$MESSAGES" --json \
            >"$WORK/$line.$round.json"
    done
    kill -INT "${recorders[@]}"
    wait "${recorders[@]}" 2>/dev/null || true
}

sample_line grpc "$R_PORT" r-proxy "$R_PID" s-proxy "$S_PID"
sample_line splice "$SP_PORT" edge "$SP_EDGE_PID" cloud "$SP_CLOUD_PID"

for data in "$WORK"/*.perf; do
    perf report -i "$data" --no-children --sort sym -F sample,sym --stdio 2>/dev/null >"${data%.perf}.report"
done

python3 - "$WORK" "$ROUNDS" "$MESSAGES" "$FREQUENCY" "$TOP" <<'PY'
import json, os, re, sys

work, rounds, messages, frequency, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
total = rounds * messages

def split(name):
    kernel = user = 0
    functions = []
    for line in open(os.path.join(work, name + ".report")):
        m = re.match(r"\s*(\d+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        samples, mode, symbol = int(m.group(1)), m.group(2), m.group(3).strip()
        if mode == "k":
            kernel += samples
        else:
            user += samples
            functions.append((samples, symbol))
    return kernel, user, sorted(functions, reverse=True)

def per_message(samples):
    return samples / frequency / total * 1e6

def rate(line):
    rates = [json.load(open(os.path.join(work, f"{line}.{r}.json")))["delivery_rate"] for r in range(1, rounds + 1)]
    return sorted(rates)[len(rates) // 2]

print(f"## Kernel and user CPU in bulk ({rounds} x {messages:,} messages per line, perf at {frequency:.0f} Hz)")
print()
print("| process | kernel samples | user samples | kernel us/msg | user us/msg |")
print("| --- | ---: | ---: | ---: | ---: |")
sums = {}
for line, names in (("grpc", ("r-proxy", "s-proxy")), ("splice", ("edge", "cloud"))):
    sums[line] = [0, 0]
    for name in names:
        kernel, user, functions = split(f"{line}.{name}")
        sums[line][0] += kernel
        sums[line][1] += user
        title = name if line == "grpc" else f"splice {name}"
        print(f"| {title} | {kernel:,} | {user:,} | {per_message(kernel):.2f} | {per_message(user):.2f} |")
        if top and line == "grpc":
            for samples, symbol in functions[:top]:
                print(f"|   {symbol[:90]} | | {samples:,} | | {per_message(samples):.3f} |")
print()
(gk, gu), (sk, su) = sums["grpc"], sums["splice"]
print(f"Two proxies against two splice hops: kernel {gk:,} / {sk:,} samples ({gk / sk - 1:+.1%}), "
      f"user {gu:,} / {su:,} ({per_message(gu - su):+.2f} us per message). "
      f"Median delivery rate: gRPC line {rate('grpc'):,.0f}, splices {rate('splice'):,.0f} msg/s.")
PY
