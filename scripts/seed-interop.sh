#!/usr/bin/env bash
# Runs the seed system's own proxies (r-proxy and s-proxy of emqx/flowsdk's
# mqtt_grpc_duality, built from a checkout) against ours, in every pairing,
# in front of one mosquitto:
#
#   ours -> seed    client -> our r-proxy -> the seed's s-proxy -> mosquitto
#   seed -> ours    client -> the seed's r-proxy -> our s-proxy -> mosquitto
#   seed -> seed    the seed's chain alone, for reference
#   ours -> ours    ours alone
#
# For each it subscribes, publishes one message at QoS 0, 1 and 2 with MQTT
# 3.1.1 and with MQTT 5 and checks that each arrives once, unchanged; then it
# runs `mqttbridge bench throughput` (QoS 0, 1 -> 1) and reports what
# arrived, how long `pub` took to finish, and the error and warning lines
# of each process's log. It fails when a pairing with one of ours loses or
# changes a message (a lost QoS 0 message only when both proxies are ours;
# the seed's chain alone is only reported).
#
#   bash scripts/seed-interop.sh ~/flowsdk
#
# The checkout is copied and built in a temporary directory (its workspace
# members that need git dependencies are left out; it needs protoc:
# apt-get install protobuf-compiler). BIN picks the mqttbridge binary
# (default: the debug build); MESSAGES the throughput run's size.
set -euo pipefail
checkout=${1:?usage: seed-interop.sh FLOWSDK_CHECKOUT}
messages=${MESSAGES:-20000}
cd "$(dirname "$0")/.."
bin=${BIN:-$PWD/target/debug/mqttbridge}
[ -x "$bin" ] || { echo "seed-interop: build first (cargo build)" >&2; exit 1; }
[ -f "$checkout/mqtt_grpc_duality/Cargo.toml" ] || { echo "seed-interop: no $checkout/mqtt_grpc_duality" >&2; exit 1; }
command -v protoc >/dev/null || { echo "seed-interop: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
command -v mosquitto >/dev/null 2>&1 || export PATH="$PATH:/usr/sbin"

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "seed-interop: building the seed's proxies..." >&2
cp -r "$checkout" "$work/seed"
# Only the root package and mqtt_grpc_duality; no git-sourced dependencies.
python3 - "$work/seed/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r'members = \[[^\]]*\]', 'members = [".", "mqtt_grpc_duality"]', text)
text = "\n".join(l for l in text.splitlines()
                 if 'git = "' not in l and not re.match(r'(quic-openssl|quic-proto-openssl)\s*=', l)) + "\n"
open(path, "w").write(text)
PY
(cd "$work/seed" && CARGO_TARGET_DIR="$work/target" cargo build --release -p mqtt-grpc-proxy >&2)
seed=$work/target/release

source scripts/ports.sh
start() { # $1 log name, rest: command
    local name=$1; shift
    "$@" > "$work/$name.log" 2>&1 & pids+=($!)
}

broker=$(free_port)
start mosquitto mosquitto -p "$broker"
wait_port "$broker"
seed_s=$(free_port); ours_s=$(free_port)
start seed-s-proxy "$seed/s-proxy" "$seed_s" "127.0.0.1:$broker"
start our-s-proxy "$bin" s-proxy --listen "127.0.0.1:$ours_s" --broker "127.0.0.1:$broker"
wait_port "$seed_s"; wait_port "$ours_s"
declare -A edge
for pair in "ours->seed seed" "seed->ours ours" "seed->seed seed" "ours->ours ours"; do
    read -r name upstream <<< "$pair"
    port=$(free_port); edge[$name]=$port
    s_port=$seed_s; [ "$upstream" = ours ] && s_port=$ours_s
    case $name in
        ours-*) start "r-proxy $name" "$bin" r-proxy --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$s_port" ;;
        seed-*) start "r-proxy $name" "$seed/r-proxy" "$port" "127.0.0.1:$s_port" ;;
    esac
    wait_port "$port"
done

failures=0
for name in "ours->seed" "seed->ours" "seed->seed" "ours->ours"; do
    port=${edge[$name]}
    for version in 311 5; do
        topic="interop/$RANDOM/v$version"
        "$bin" sub -h 127.0.0.1 -p "$port" -V "$version" -t "$topic/#" -q 2 -C 4 -W 30 -v > "$work/sub.out" 2>&1 &
        sub=$!
        # The subscription is in place once a retained probe comes back (it
        # is the first of the subscriber's four messages).
        "$bin" pub -h 127.0.0.1 -p "$port" -V "$version" -t "$topic/ready" -r -q 1 -m ready > /dev/null 2>&1 || true
        "$bin" sub -h 127.0.0.1 -p "$port" -V "$version" -t "$topic/ready" -C 1 -W 10 > /dev/null 2>&1 || true
        start=$(date +%s.%N)
        for qos in 0 1 2; do
            "$bin" pub -h 127.0.0.1 -p "$port" -V "$version" -t "$topic/q$qos" -q "$qos" -m "payload $qos" \
                || echo "  pub QoS $qos failed" >&2
        done
        took=$(python3 -c "import sys; print(f'{($(date +%s.%N) - $start) / 3:.2f}')")
        wait "$sub" || true
        got=$(grep -c "^$topic/q[012] payload [012]$" "$work/sub.out" || true)
        acknowledged=$(grep -c "^$topic/q[12] payload [12]$" "$work/sub.out" || true)
        extra=$(grep -vc "^$topic/\(q[012] payload [012]\|ready ready\)$" "$work/sub.out" || true)
        verdict=ok
        if [ "$acknowledged" != 2 ] || [ "$extra" != 0 ]; then
            verdict=FAILED
        elif [ "$got" != 3 ]; then
            # The seed's proxies can drop a QoS 0 PUBLISH that comes right
            # before DISCONNECT (their chain alone does too); ours may not.
            verdict="QoS 0 lost"
            [ "$name" = "ours->ours" ] && verdict=FAILED
        fi
        # The seed's own chain is the reference, not under test.
        [ "$verdict" = FAILED ] && [ "$name" != "seed->seed" ] && failures=$((failures + 1))
        printf '%-11s MQTT %-3s QoS 0, 1, 2: %s (%s of 3 arrived, %s s per pub)\n' "$name" "$version" "$verdict" "$got" "$took"
    done
    result=$("$bin" bench throughput -L "tcp://127.0.0.1:$port" -n "$messages" --json 2>&1 |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print("{:,} of {:,} arrived, {:,.0f} msg/s".format(r["received"], r["expected"], r["delivery_rate"]))' 2>/dev/null ||
        echo "failed")
    printf '%-11s throughput, QoS 0, %s messages: %s\n' "$name" "$messages" "$result"
done
for log in "$work"/*.log; do
    errors=$(grep -ciE 'error|warn' "$log" || true)
    [ "$errors" = 0 ] || echo "$(basename "$log" .log): $errors error or warning lines, e.g. $(grep -iE -m1 'error|warn' "$log" | cut -c1-200)"
done
[ "$failures" = 0 ] || { echo "seed-interop: $failures pairings lost or changed a message" >&2; exit 1; }
