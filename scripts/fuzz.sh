#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for a bounded time (libFuzzer via cargo
# fuzz, no sanitizer: the targets look for panics, hangs and runaway
# allocation, which safe Rust shows without one). First replays the kept
# reproducers in fuzz/regressions/TARGET, so a fixed crash stays fixed.
#
#   bash scripts/fuzz.sh              # every target, 30 s each
#   bash scripts/fuzz.sh 3600         # every target, an hour each
#   bash scripts/fuzz.sh 600 mqtt_framer
#
# A crash leaves its input in fuzz/artifacts/TARGET/ and fails the run;
# copy it to fuzz/regressions/TARGET/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(mqtt_framer proto_to_mqtt grpc_frames datagram_ingress config_parser http2_server)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# A smoke run (a minute or less per target, as the test command's) builds
# at opt-level 1: from cold about 100 s less on two cores (8 min 28 s
# against 10 min 6 s), for a quarter to a third fewer inputs a second.
# Longer runs build fully optimised. FUZZ_OPT_LEVEL overrides either.
if [ -z "${FUZZ_OPT_LEVEL:-}" ]; then
    if [ "$SECONDS_PER_TARGET" -le 60 ]; then FUZZ_OPT_LEVEL=1; else FUZZ_OPT_LEVEL=3; fi
fi
export CARGO_PROFILE_RELEASE_OPT_LEVEL=$FUZZ_OPT_LEVEL

# Built first, in view: from cold this rebuilds every dependency with
# coverage instrumentation (BoringSSL included).
echo "fuzz.sh: building the fuzz targets (opt-level $FUZZ_OPT_LEVEL)" >&2
for target in "${TARGETS[@]}"; do
    cargo fuzz build -s none "$target"
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${TARGETS[@]}"; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus" "fuzz/regressions/$target"
    if [ "$target" = config_parser ]; then cp config/*.toml "$corpus/"; fi
    echo "fuzz.sh: $target for ${SECONDS_PER_TARGET}s" >&2
    if ! cargo fuzz run -s none "$target" "$corpus" "fuzz/regressions/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz.sh: $target ok ($runs inputs)" >&2
done
