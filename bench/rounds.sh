#!/usr/bin/env bash
# Paired rounds of mosquitto direct, two HAProxy TCP hops, two tokio TCP
# splices and the gRPC line (r-proxy + s-proxy), measured in turn within
# each round so that drifts of the machine hit every line alike: bulk
# throughput and sequential latency, each on all CPUs and on one CPU.
# Prints each line's medians over the rounds, its ratio to direct or what
# it adds to direct, and the gRPC line's difference to each plain proxy
# per round with a 95 % bootstrap interval of its median. With
# BASELINE_BIN a second gRPC line runs from that build, and the difference
# to it is printed the same way: an A/B of two builds in one run.
#
# The one-CPU rounds move every process of the run (broker, proxies,
# client) onto CPU $ONE_CPU. On a virtual machine whose idle vCPUs halt, a
# message handed to a process on the other vCPU waits for that vCPU to be
# woken and finds the caches cold; the one-CPU figures are what the
# processes themselves cost without that (in bulk: the rate is then the
# inverse of what all processes together spend per message). The machine's
# guest halt-polling setting is printed with them.
#
#   bash bench/rounds.sh
#   ROUNDS=40 LATENCY_COUNT=5000 bash bench/rounds.sh
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/rounds.sh   # another build
#   BASELINE_BIN=/tmp/old/mqttbridge bash bench/rounds.sh      # A/B: that build's line as well
#
# Needs what bench/compare.sh needs (mosquitto, haproxy, python3) and
# taskset (util-linux).
set -euo pipefail

ROUNDS=${ROUNDS:-10}                 # rounds of each kind
MESSAGES=${MESSAGES:-200000}         # throughput: QoS 0, 16-byte payloads, 1 -> 1
LATENCY_COUNT=${LATENCY_COUNT:-3000} # sequential messages per line and round
ONE_CPU=${ONE_CPU:-0}                # the CPU of the one-CPU rounds
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
lines_init "$PROFILE"
command -v taskset >/dev/null || { echo "rounds.sh: taskset not found (apt-get install util-linux)" >&2; exit 1; }

start_mosquitto
start_haproxy_line
start_splice_line
if [ -n "${BASELINE_BIN:-}" ]; then
    GRPC_LINE_NAME=baseline GRPC_LINE_BIN=$BASELINE_BIN start_grpc_line
    BASELINE_PORT=$R_PORT
fi
start_grpc_line
declare -A PORT=([direct]=$MQTT_PORT [haproxy]=$H_PORT [splice]=$SP_PORT [grpc]=$R_PORT)
LINES=(direct haproxy splice grpc)
if [ -n "${BASELINE_BIN:-}" ]; then
    PORT[baseline]=$BASELINE_PORT
    LINES+=(baseline)
fi

ALL_CPUS=0-$(($(nproc) - 1))
place() { # $1 CPU list: every process of the run may run there only
    local pid
    for pid in "${PIDS[@]}"; do
        taskset -a -p -c "$1" "$pid" >/dev/null
    done
}

# $1 the bench (throughput or latency), $2 the CPUs, rest: its flags.
# Each round runs every line in turn: $WORK/$1.$2.LINE.ROUND.json.
paired_rounds() {
    local bench=$1 cpus=$2 round line
    shift 2
    for round in $(seq "$ROUNDS"); do
        echo "$bench on CPUs $cpus: round $round of $ROUNDS..." >&2
        for line in "${LINES[@]}"; do
            taskset -c "$cpus" "$BIN" bench "$bench" -L "tcp://127.0.0.1:${PORT[$line]}" "$@" \
                --json >"$WORK/$bench.$cpus.$line.$round.json"
        done
    done
}

for cpus in "$ALL_CPUS" "$ONE_CPU"; do
    place "$cpus"
    paired_rounds throughput "$cpus" -n "$MESSAGES"
done

for cpus in "$ALL_CPUS" "$ONE_CPU"; do
    place "$cpus"
    for line in "${LINES[@]}"; do # a first connection and warm caches
        taskset -c "$cpus" "$BIN" bench latency -L "tcp://127.0.0.1:${PORT[$line]}" -n 200 --json >/dev/null
    done
    paired_rounds latency "$cpus" -n "$LATENCY_COUNT"
done

halt_poll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
python3 - "$WORK" "$ROUNDS" "$LATENCY_COUNT" "$ALL_CPUS" "$ONE_CPU" "$MESSAGES" \
    "$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)" \
    "$(cat "$halt_poll" 2>/dev/null || echo none)" "${BASELINE_BIN:-}" <<'PY'
import json, os, random, statistics, sys
work, rounds, count, all_cpus, one_cpu, messages, idle_driver, halt_poll, baseline = sys.argv[1:10]
rounds = int(rounds)
titles = {"direct": "direct mosquitto", "haproxy": "two HAProxy TCP hops",
          "splice": "two tokio TCP splices", "grpc": "gRPC line (r-proxy + s-proxy)"}
others = ["splice", "haproxy"]
if baseline:
    titles["baseline"] = f"gRPC line of the baseline build ({baseline})"
    others.append("baseline")

def figures(cpus, line):
    out = []
    for r in range(1, rounds + 1):
        l = json.load(open(os.path.join(work, f"latency.{cpus}.{line}.{r}.json")))["latency"]
        out.append((l["p50_us"], l["p99_us"]))
    return out

def interval(xs):
    """Median of xs with a 95 % bootstrap interval of it (fixed seed)."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(2000))
    return statistics.median(xs), meds[49], meds[1950]

def paired(xs, what, other, unit, places, higher_is_better):
    """One line: the gRPC line's per-round difference to another line."""
    m, lo, hi = interval(xs)
    better = sum((x > 0) if higher_is_better else (x < 0) for x in xs)
    print(f"- gRPC line minus {titles[other]}, {what}: {m:+.{places}f}{unit} "
          f"(95 % {lo:+.{places}f} .. {hi:+.{places}f}); better in {better} of {rounds} rounds")

print(f"### Throughput in paired rounds ({rounds} rounds of {int(messages):,} messages, QoS 0, "
      "16-byte payloads, 1 publisher -> 1 subscriber)")
for cpus, where in ((all_cpus, f"all CPUs ({all_cpus})"),
                    (one_cpu, f"every process on CPU {one_cpu}, where the rate is what all of them spend per message")):
    rates = {line: [json.load(open(os.path.join(work, f"throughput.{cpus}.{line}.{r}.json")))["delivery_rate"]
                    for r in range(1, rounds + 1)] for line in titles}
    ratios = {line: [a / d for a, d in zip(rates[line], rates["direct"])] for line in titles}
    print()
    print(f"On {where}:")
    print()
    print("| line | median msg/s | median ratio to direct | lowest .. highest ratio |")
    print("| --- | ---: | ---: | --- |")
    for line, title in titles.items():
        print(f"| {title} | {statistics.median(rates[line]):,.0f} | {statistics.median(ratios[line]):.3f} "
              f"| {min(ratios[line]):.3f} .. {max(ratios[line]):.3f} |")
    print()
    for other in others:
        paired([g - o for g, o in zip(ratios["grpc"], ratios[other])], "ratio to direct", other, "", 3, True)
print()
print(f"### Sequential latency in paired rounds ({rounds} rounds of {count} messages per line, "
      "QoS 0, microseconds)")
print()
print(f"cpuidle driver {idle_driver}, guest halt polling {halt_poll} ns "
      "(0: an idle vCPU halts at once, and waking it costs the hypervisor's round trip).")
for cpus, where in ((all_cpus, f"all CPUs ({all_cpus})"), (one_cpu, f"every process on CPU {one_cpu}")):
    f = {line: figures(cpus, line) for line in titles}
    print()
    print(f"On {where}: medians over the rounds; added is the median of each round's difference to direct.")
    print()
    print("| line | p50 | p99 | p50 added | p99 added |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for line, title in titles.items():
        p50 = statistics.median(x[0] for x in f[line])
        p99 = statistics.median(x[1] for x in f[line])
        added = [statistics.median(a[i] - d[i] for a, d in zip(f[line], f["direct"])) for i in (0, 1)]
        print(f"| {title} | {p50:.0f} | {p99:.0f} | {added[0]:+.1f} | {added[1]:+.1f} |")
    print()
    for other in others:
        for i, name in ((0, "p50"), (1, "p99")):
            paired([g[i] - o[i] for g, o in zip(f["grpc"], f[other])], name, other, " us", 1, False)
PY
