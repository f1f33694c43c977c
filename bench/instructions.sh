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
#
# Needs valgrind (callgrind_control, callgrind_annotate), besides mosquitto
# and python3.
set -euo pipefail

PROXIES=${PROXIES:-r-proxy s-proxy} # which proxies to count, in turn
MESSAGES=${MESSAGES:-20000}         # messages counted (valgrind slows the proxy)
WARM=${WARM:-2000}                  # messages before counting starts
TOP=${TOP:-15}                      # functions listed per proxy
KEEP=${KEEP:-}                      # a directory to keep callgrind's output in
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool not found (apt-get install valgrind)" >&2; exit 1; }
done
lines_init "$PROFILE"
start_mosquitto

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
    callgrind_control -i on "$COUNTED_PID" >/dev/null
    callgrind_control -z "$COUNTED_PID" >/dev/null
    "$BIN" bench throughput -L "tcp://127.0.0.1:$port" -n "$MESSAGES" --json >"$WORK/$proxy.json"
    callgrind_control -d "$COUNTED_PID" >/dev/null
    callgrind_control -i off "$COUNTED_PID" >/dev/null
    # The dump after zeroing: the last file callgrind wrote.
    dump=$(ls -t "$WORK/$proxy.callgrind"* | head -n 1)
    callgrind_annotate "$dump" >"$WORK/$proxy.annotated" 2>/dev/null
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP"
        cp "$dump" "$KEEP/$proxy.callgrind"
    fi
done

python3 - "$WORK" "$TOP" "$MESSAGES" $PROXIES <<'PY'
import json, os, re, sys

work, top, messages, proxies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
print(f"## Instructions per bulk message in user space ({messages:,} QoS 0 messages 1 -> 1, callgrind)")
for proxy in proxies:
    received = json.load(open(os.path.join(work, f"{proxy}.json")))["received"]
    total, functions = None, []
    for line in open(os.path.join(work, f"{proxy}.annotated")):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)", line)
        if not m:
            continue
        count, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = count
        elif total is not None:
            # "file:function [object]": the function's name.
            functions.append((count, re.sub(r"^\S*?:", "", name.rsplit(" [", 1)[0])))
    if total is None or received == 0:
        sys.exit(f"instructions.sh: no figures for {proxy}")
    print()
    print(f"{proxy}: {total:,} instructions for {received:,} messages, {total / received:,.0f} per message")
    print()
    print("| function (its own instructions) | per message |")
    print("| --- | ---: |")
    for count, name in functions[:top]:
        print(f"| {name[:100]} | {count / received:,.0f} |")
PY
