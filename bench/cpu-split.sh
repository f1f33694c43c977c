#!/usr/bin/env bash
# Where each process's CPU goes, kernel or user space: the gRPC line's
# r-proxy and s-proxy against the two hops of the tokio TCP splice
# (bench/tcp-splice) and two HAProxy hops in front of the same mosquitto,
# and mosquitto behind each line and alone (direct). Each process is
# sampled by `perf record -e cpu-clock` while `bench throughput` sends
# ROUNDS x MESSAGES QoS 0 messages through its line (bulk), or with RATE
# set, while 100 publishers send RATE msg/s in all to one subscriber for
# SECONDS each round (the load of bench/compare.sh). The load generator's
# own CPU is counted whole by `perf stat`. Prints, per process, the samples
# in the kernel and in user space and what they come to per delivered
# message, the line's two proxies against each pair of hops, and every
# process's CPU per message with each line's median delivery rate.
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
#   RATE=10000 QOS=0 bash bench/cpu-split.sh                    # under compare.sh's load instead of bulk
#   CPUS=0 bash bench/cpu-split.sh                              # every process on CPU 0 (see bench/rounds.sh)
#
# Needs perf (Debian: apt-get install linux-perf), besides what
# bench/compare.sh needs.
set -euo pipefail

ROUNDS=${ROUNDS:-3}          # runs per line
MESSAGES=${MESSAGES:-200000} # bulk: messages per run (QoS 0, 16-byte payloads, 1 -> 1)
RATE=${RATE:-}               # load instead: total msg/s of 100 publishers -> 1 subscriber
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10} # load: seconds per run
QOS=${QOS:-0}                # load: the publishers' and the subscriber's QoS
CPUS=${CPUS:-}               # the CPUs every process may run on (taskset's list); empty: all
FREQUENCY=${FREQUENCY:-2999} # samples per second of each process's CPU time
TOP=${TOP:-0}                # user-space functions listed per proxy
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
command -v perf >/dev/null || { echo "cpu-split.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
lines_init "$PROFILE"

if [ -n "$RATE" ]; then
    WORKLOAD=(-p 100 -s 1 -q "$QOS" --rate "$((RATE / 100))" -d "$SECONDS_PER_RUN")
    WORKLOAD_TITLE="$ROUNDS x $SECONDS_PER_RUN s of 100 publishers -> 1 subscriber at $RATE msg/s, QoS $QOS"
else
    WORKLOAD=(-n "$MESSAGES")
    WORKLOAD_TITLE="bulk, $ROUNDS x $MESSAGES QoS 0 messages 1 -> 1"
fi

start_mosquitto
start_splice_line
start_haproxy_line
start_grpc_line
RUN=()
if [ -n "$CPUS" ]; then
    command -v taskset >/dev/null || { echo "cpu-split.sh: taskset not found (apt-get install util-linux)" >&2; exit 1; }
    for pid in "${PIDS[@]}"; do
        taskset -a -p -c "$CPUS" "$pid" >/dev/null
    done
    RUN=(taskset -c "$CPUS")
    WORKLOAD_TITLE="$WORKLOAD_TITLE, every process on CPUs $CPUS"
fi

# $1 line, $2 port, then "name pid" pairs: samples each process over the runs.
sample_line() {
    local line=$1 port=$2 recorders=() controls=() name pid round ctl ack
    shift 2
    "${RUN[@]}" "$BIN" bench throughput -L "tcp://127.0.0.1:$port" -n 20000 --json >/dev/null # warm
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
        # The load generator's CPU, counted whole (it is one process).
        perf stat -x, -e task-clock -o "$WORK/$line.$round.client" \
            "${RUN[@]}" "$BIN" bench throughput -L "tcp://127.0.0.1:$port" "${WORKLOAD[@]}" --json \
            >"$WORK/$line.$round.json"
    done
    kill -INT "${recorders[@]}"
    wait "${recorders[@]}" 2>/dev/null || true
}

sample_line direct "$MQTT_PORT" mosquitto "$MOSQUITTO_PID"
sample_line grpc "$R_PORT" r-proxy "$R_PID" s-proxy "$S_PID" mosquitto "$MOSQUITTO_PID"
sample_line splice "$SP_PORT" edge "$SP_EDGE_PID" cloud "$SP_CLOUD_PID" mosquitto "$MOSQUITTO_PID"
sample_line haproxy "$H_PORT" edge "$H_EDGE_PID" cloud "$H_CLOUD_PID" mosquitto "$MOSQUITTO_PID"

for data in "$WORK"/*.perf; do
    perf report -i "$data" --no-children --sort sym -F sample,sym --stdio 2>/dev/null >"${data%.perf}.report"
done

python3 - "$WORK" "$ROUNDS" "$FREQUENCY" "$TOP" "$WORKLOAD_TITLE" <<'PY'
import json, os, re, sys

work, rounds, frequency, top, title = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def report(line, r):
    return json.load(open(os.path.join(work, f"{line}.{r}.json")))

# Messages delivered through each line over its runs.
delivered = {line: sum(report(line, r)["received"] for r in range(1, rounds + 1))
             for line in ("direct", "grpc", "splice", "haproxy")}

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

def per_message(samples, line):
    return samples / frequency / delivered[line] * 1e6

def rate(line):
    rates = [report(line, r)["delivery_rate"] for r in range(1, rounds + 1)]
    return sorted(rates)[len(rates) // 2]

def client_us(line):
    """The load generator's CPU per message, from perf stat's task-clock (ms)."""
    ms = 0.0
    for r in range(1, rounds + 1):
        for row in open(os.path.join(work, f"{line}.{r}.client")):
            fields = row.split(",")
            if len(fields) > 2 and fields[2].startswith("task-clock"):
                ms += float(fields[0])
    return ms * 1000 / delivered[line]

LINES = (
    ("direct", "direct", ()),
    ("grpc", "gRPC line", ("r-proxy", "s-proxy")),
    ("splice", "two tokio splices", ("edge", "cloud")),
    ("haproxy", "two HAProxy hops", ("edge", "cloud")),
)

print(f"## Kernel and user CPU ({title}; perf at {frequency:.0f} Hz)")
print()
print("| process | kernel samples | user samples | kernel us/msg | user us/msg |")
print("| --- | ---: | ---: | ---: | ---: |")
sums, broker = {}, {}
for line, _, names in LINES:
    sums[line] = [0, 0]
    for name in names:
        kernel, user, functions = split(f"{line}.{name}")
        sums[line][0] += kernel
        sums[line][1] += user
        title = name if line == "grpc" else f"{line} {name}"
        print(f"| {title} | {kernel:,} | {user:,} | {per_message(kernel, line):.2f} | {per_message(user, line):.2f} |")
        if top and line == "grpc":
            for samples, symbol in functions[:top]:
                print(f"|   {symbol[:90]} | | {samples:,} | | {per_message(samples, line):.3f} |")
    kernel, user, _ = split(f"{line}.mosquitto")
    broker[line] = kernel + user
    print(f"| mosquitto behind {line} | {kernel:,} | {user:,} | {per_message(kernel, line):.2f} | {per_message(user, line):.2f} |")
print()
gk, gu = sums["grpc"]
for line, hops in (("splice", "two splice hops"), ("haproxy", "two HAProxy hops")):
    k, u = sums[line]
    print(f"Two proxies against {hops}: kernel {per_message(gk, 'grpc') - per_message(k, line):+.2f} us per message "
          f"({per_message(gk, 'grpc') / per_message(k, line) - 1:+.1%}), "
          f"user {per_message(gu, 'grpc') - per_message(u, line):+.2f} us per message.")
print()
print("Every process's CPU per delivered message (us), each hop's against mosquitto's behind it, and the median delivery rate:")
print()
print("| line | hops | hops / mosquitto | mosquitto | load generator | all | msg/s |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
for line, title, names in LINES:
    proxies = per_message(sum(sums[line]), line)
    mosquitto = per_message(broker[line], line)
    client = client_us(line)
    ratios = ", ".join(f"{sum(split(f'{line}.{name}')[:2]) / broker[line]:.2f}x" for name in names) or "-"
    print(f"| {title} | {proxies:.2f} | {ratios} | {mosquitto:.2f} | {client:.2f} | "
          f"{proxies + mosquitto + client:.2f} | {rate(line):,.0f} |")
PY
