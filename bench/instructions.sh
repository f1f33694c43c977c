#!/usr/bin/env bash
# How many instructions each gRPC-line proxy runs in user space per bulk
# message: the r-proxy and the s-proxy in turn under valgrind's callgrind
# (the other proxy native), while `bench throughput` sends MESSAGES QoS 0
# messages 1 -> 1 through the line after a warm-up. Counting starts after
# the warm-up (`callgrind_control -i on`, then `-z`), so connecting and the
# first messages are not in the figures. Instructions, unlike time, barely
# depend on what else the machine does: the same build counts within 2 %
# from run to run (how many messages a read carries depends on timing),
# where bulk throughput moves by a fifth (BENCHMARKS.md, "Every process's
# CPU per message"). Prints each proxy's instructions per message and its
# functions with the most instructions of their own.
#
#   bash bench/instructions.sh
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/instructions.sh   # another build
#   PROXIES=s-proxy TOP=40 bash bench/instructions.sh
#   KEEP=/tmp/profiles bash bench/instructions.sh   # keeps callgrind's files there (callgrind_annotate)
#   RATE=2000 bash bench/instructions.sh   # under load instead: 100 publishers -> 1 subscriber, RATE msg/s in all
#
# With RATE set the counted workload is compare.sh's load at a rate the
# proxy under callgrind keeps up with (it runs about 50 times slower than
# native): 100 publishers sending RATE msg/s in all, spread evenly, to one
# subscriber. Each message then arrives on its own connection and wakes its
# session alone, as under compare.sh's load, where in bulk one read
# carries dozens. Each such run opens and closes its 101 sessions, so two
# are counted, SHORT_SECONDS and SECONDS_PER_RUN long, and the figures are
# their difference per message of difference: what one more message
# costs, without the sessions' setup. How many messages a wake-up finds
# depends on timing here, so these figures move by a tenth from run to run
# (bulk ones by 2 %): they show where the time goes under load, not small
# differences between builds.
#
# Needs valgrind (callgrind_control, callgrind_annotate), besides mosquitto
# and python3.
set -euo pipefail

PROXIES=${PROXIES:-r-proxy s-proxy} # which proxies to count, in turn
MESSAGES=${MESSAGES:-20000}         # messages counted (valgrind slows the proxy)
WARM=${WARM:-2000}                  # messages before counting starts
TOP=${TOP:-15}                      # functions listed per proxy
KEEP=${KEEP:-}                      # a directory to keep callgrind's output in
RATE=${RATE:-}                      # load instead of bulk: total msg/s of 100 publishers -> 1 subscriber
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10} # load: seconds of the long run
SHORT_SECONDS=${SHORT_SECONDS:-2}   # load: seconds of the short run
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool not found (apt-get install valgrind)" >&2; exit 1; }
done
lines_init "$PROFILE"
start_mosquitto
if [ -n "$RATE" ]; then
    LOAD=(-p 100 -s 1 --rate "$((RATE / 100))")
    RUNS=("short:${LOAD[*]} -d $SHORT_SECONDS" "long:${LOAD[*]} -d $SECONDS_PER_RUN")
    TITLE="100 publishers -> 1 subscriber at $RATE msg/s, QoS 0, $SHORT_SECONDS s and $SECONDS_PER_RUN s, the difference"
else
    RUNS=("bulk:-n $MESSAGES")
    TITLE="$MESSAGES QoS 0 messages 1 -> 1"
fi

counted() { # $1 name, rest: mqttbridge arguments; sets COUNTED_PID
    local name=$1; shift
    RUST_LOG=info valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$WORK/$name.callgrind" "$BIN" --log-format json "$@" \
        2>"$WORK/$name.log" >/dev/null &
    COUNTED_PID=$!
    PIDS+=("$COUNTED_PID")
}

for proxy in $PROXIES; do
    echo "counting $proxy..." >&2
    upstream=$(free_port tcp)
    port=$(free_port tcp)
    case $proxy in
    r-proxy)
        start "s-for-$proxy" s-proxy --listen "127.0.0.1:$upstream" --broker "127.0.0.1:$MQTT_PORT"
        counted "$proxy" r-proxy --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$upstream"
        wait_log "$WORK/s-for-$proxy.log" "s-proxy serving" listen >/dev/null
        ;;
    s-proxy)
        counted "$proxy" s-proxy --listen "127.0.0.1:$upstream" --broker "127.0.0.1:$MQTT_PORT"
        start "r-for-$proxy" r-proxy --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$upstream"
        wait_log "$WORK/r-for-$proxy.log" "r-proxy serving" listen >/dev/null
        ;;
    *)
        echo "instructions.sh: unknown proxy '$proxy' (r-proxy or s-proxy)" >&2
        exit 2
        ;;
    esac
    wait_log "$WORK/$proxy.log" "$proxy serving" listen >/dev/null
    "$BIN" bench throughput -L "tcp://127.0.0.1:$port" -n "$WARM" --json >/dev/null
    for run in "${RUNS[@]}"; do
        name=${run%%:*}
        read -r -a workload <<<"${run#*:}"
        callgrind_control -i on "$COUNTED_PID" >/dev/null
        callgrind_control -z "$COUNTED_PID" >/dev/null
        "$BIN" bench throughput -L "tcp://127.0.0.1:$port" "${workload[@]}" --json >"$WORK/$proxy.$name.json"
        callgrind_control -d "$COUNTED_PID" >/dev/null
        callgrind_control -i off "$COUNTED_PID" >/dev/null
        # The dump after zeroing: the last file callgrind wrote.
        dump=$(ls -t "$WORK/$proxy.callgrind"* | head -n 1)
        callgrind_annotate "$dump" >"$WORK/$proxy.$name.annotated" 2>/dev/null
        if [ -n "$KEEP" ]; then
            mkdir -p "$KEEP"
            cp "$dump" "$KEEP/$proxy.$name.callgrind"
        fi
    done
done

python3 - "$WORK" "$TOP" "$TITLE" "${RATE:+short}" $PROXIES <<'PY'
import collections, json, os, re, sys

work, top, title, short, proxies = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
print(f"## Instructions per delivered message in user space ({title}, callgrind)")


def counted(proxy, run):
    """Messages delivered, total instructions and each function's own."""
    received = json.load(open(os.path.join(work, f"{proxy}.{run}.json")))["received"]
    total, functions = None, collections.Counter()
    for line in open(os.path.join(work, f"{proxy}.{run}.annotated")):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)", line)
        if not m:
            continue
        count, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = count
        elif total is not None:
            # "file:function [object]": the function's name.
            functions[re.sub(r"^\S*?:", "", name.rsplit(" [", 1)[0])] += count
    if total is None:
        sys.exit(f"instructions.sh: no figures for {proxy}")
    return received, total, functions


for proxy in proxies:
    if short:
        received, total, functions = counted(proxy, "long")
        r0, t0, f0 = counted(proxy, "short")
        received, total = received - r0, total - t0
        functions.subtract(f0)
    else:
        received, total, functions = counted(proxy, "bulk")
    if received <= 0:
        sys.exit(f"instructions.sh: no messages counted for {proxy}")
    print()
    print(f"{proxy}: {total:,} instructions for {received:,} messages, {total / received:,.0f} per message")
    print()
    print("| function (its own instructions) | per message |")
    print("| --- | ---: |")
    for name, count in functions.most_common(top):
        print(f"| {name[:100]} | {count / received:,.0f} |")
PY
