#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for a bounded time (libFuzzer, no
# sanitizer: the targets look for panics, hangs and runaway
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

# Short runs (a minute or less per target, as the test command's) build in
# the tests' target directory and Cargo's dev profile: the dependencies are
# the ones the tests built, and only this crate and the targets are compiled
# again, with libFuzzer's coverage instrumentation at opt-level 1
# (scripts/fuzz-rustc.sh); about a minute and a half on two cores instead of
# eight to ten. Longer runs build through `cargo fuzz`: every crate
# instrumented and fully optimised, which from cold rebuilds the whole
# dependency tree (BoringSSL included). FUZZ_BUILD=shared or cargo-fuzz
# overrides the choice.
if [ -z "${FUZZ_BUILD:-}" ]; then
    if [ "$SECONDS_PER_TARGET" -le 60 ]; then FUZZ_BUILD=shared; else FUZZ_BUILD=cargo-fuzz; fi
fi
case "$FUZZ_BUILD" in
shared)
    echo "fuzz.sh: building the fuzz targets beside the tests' build" >&2
    target_dir=$(cargo metadata --locked --format-version 1 --no-deps |
        grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
    # Cargo keeps one build per wrapper path and does not look inside the
    # wrapper: a copy named after its contents makes an edit a new build.
    wrapper="$target_dir/fuzz-rustc-$(sha256sum scripts/fuzz-rustc.sh | cut -c1-16).sh"
    mkdir -p "$target_dir"
    cp scripts/fuzz-rustc.sh "$wrapper"
    RUSTC_WORKSPACE_WRAPPER="$wrapper" cargo build --locked -p mqttbridge-fuzz --bins
    ;;
cargo-fuzz)
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz.sh: installing cargo-fuzz" >&2
        cargo install --locked cargo-fuzz
    fi
    echo "fuzz.sh: building the fuzz targets with cargo fuzz" >&2
    # The workspace's release profile is whole-program optimised for the
    # binary we ship; the fuzz targets are built without that.
    export CARGO_PROFILE_RELEASE_LTO=false
    for target in "${TARGETS[@]}"; do
        cargo fuzz build -s none "$target"
    done
    ;;
*)
    echo "fuzz.sh: FUZZ_BUILD is shared or cargo-fuzz, not '$FUZZ_BUILD'" >&2
    exit 2
    ;;
esac

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${TARGETS[@]}"; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus" "fuzz/regressions/$target"
    if [ "$target" = config_parser ]; then cp config/*.toml "$corpus/"; fi
    echo "fuzz.sh: $target for ${SECONDS_PER_TARGET}s" >&2
    limits=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
        -malloc_limit_mb=512 -print_final_stats=1)
    if [ "$FUZZ_BUILD" = shared ]; then
        # What `cargo fuzz run` adds: where a failing input is kept.
        mkdir -p "fuzz/artifacts/$target"
        run=("$target_dir/debug/$target" -artifact_prefix="fuzz/artifacts/$target/"
            "${limits[@]}" "$corpus" "fuzz/regressions/$target")
    else
        run=(cargo fuzz run -s none "$target" "$corpus" "fuzz/regressions/$target" -- "${limits[@]}")
    fi
    if ! "${run[@]}" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz.sh: $target ok ($runs inputs)" >&2
done
