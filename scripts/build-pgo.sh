#!/usr/bin/env bash
# A release build optimised with a profile of its own work (profile-guided
# optimisation): the compiler lays out and inlines the code as the hot paths
# run it, so per message each proxy runs about a fifth fewer instructions
# and touches a third fewer lines of code (BENCHMARKS.md, "A release build
# optimised with a profile of its own").
#
#   bash scripts/build-pgo.sh     # prints the binary's path last
#   BIN=$(bash scripts/build-pgo.sh | tail -n 1) scripts/install-service.sh
#
# 1. Builds the release binary instrumented (target dir <target>/pgo-generate;
#    incremental from the second run on).
# 2. Runs it on this machine (bench/lines.sh): mosquitto, the gRPC line,
#    scion-quic on UDP/IP and over an in-process SCION network, scion-udp,
#    `bench` through each (sequential, bulk, 100 publishers, QoS 0 to 2,
#    idle connections), then `mqttbridge demo`. Each process writes its
#    profile as it exits.
# 3. Merges the profiles with llvm-profdata of rustup's llvm-tools component
#    (added when missing), which matches rustc's LLVM.
# 4. Builds the release binary with them (target dir <target>/pgo).
#
# Two release builds: 22-32 minutes on two cores the first time; from the
# second run on the instrumented build recompiles only what changed. Both build for the host
# target named explicitly, so that build scripts and procedural macros are
# neither instrumented nor optimised with the profile.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

host=$(rustc -vV | awk '$1 == "host:" { print $2 }')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
    echo "build-pgo: adding rustup's llvm-tools component (llvm-profdata)" >&2
    rustup component add llvm-tools >&2
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
profiles=$(mktemp -d)
trap 'rm -rf "$profiles"' EXIT
# Where the instrumented processes write their profiles: the same directory
# every run, so that the instrumented build's flags do not change and cargo
# rebuilds only what changed since the last run. Emptied before the run.
raw=$target_dir/pgo-generate/profiles

echo "build-pgo: building the instrumented binary..." >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$raw" \
    cargo build --locked --release --bin mqttbridge --target "$host" --target-dir "$target_dir/pgo-generate" >&2
rm -rf "$raw"
mkdir -p "$raw"

echo "build-pgo: running it..." >&2
(
    MQTTBRIDGE_BIN=$target_dir/pgo-generate/$host/release/mqttbridge
    source bench/lines.sh
    lines_init release
    start_mosquitto
    start_grpc_line
    make_certs
    start_quic quic
    quic_port=$QUIC_PORT
    start_pocketscion pocketscion
    start_scion_quic scion-quic
    scion_quic=$SCION_ADDR
    start_scion_udp scion-udp "$quic_port"
    scion_udp=$SCION_ADDR
    load() { # URL, rest: client flags
        local url=$1; shift
        "$BIN" bench latency -L "$url" "$@" -n 2000 --json >/dev/null
        "$BIN" bench throughput -L "$url" "$@" -n 100000 --json >/dev/null
        "$BIN" bench throughput -L "$url" "$@" -q 1 -n 20000 --json >/dev/null
        "$BIN" bench throughput -L "$url" "$@" -q 2 -n 10000 --json >/dev/null
        "$BIN" bench throughput -L "$url" "$@" -p 100 -s 1 -q 0,1 --rate 100 -d 3 --json >/dev/null
        "$BIN" bench connections -L "$url" "$@" -n 500 --rate 1000 --hold 1 --json >/dev/null
    }
    echo "build-pgo: the gRPC line..." >&2
    load "tcp://127.0.0.1:$R_PORT"
    echo "build-pgo: QUIC, QUIC over SCION, scion-udp..." >&2
    load "quic://127.0.0.1:$quic_port" "${TLS[@]}"
    load "scion-quic://$scion_quic" "${TLS[@]}" "${SCION_CLIENT[@]}"
    load "scion-quic://$scion_udp" "${TLS[@]}" "${SCION_CLIENT[@]}"
    echo "build-pgo: the demo..." >&2
    "$BIN" demo >/dev/null
) # every process stopped here (SIGTERM): the profiles are written
"$profdata" merge -o "$profiles/merged.profdata" "$raw"

# The profile's path is new each run, as its content is: cargo does not
# look into files named in RUSTFLAGS, so a path kept from run to run would
# leave a build optimised with an older profile in place.
echo "build-pgo: building the optimised binary..." >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profiles/merged.profdata" \
    cargo build --locked --release --bin mqttbridge --target "$host" --target-dir "$target_dir/pgo" >&2
echo "$target_dir/pgo/$host/release/mqttbridge"
