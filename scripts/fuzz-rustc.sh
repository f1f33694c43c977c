#!/usr/bin/env bash
# RUSTC_WORKSPACE_WRAPPER for scripts/fuzz.sh: adds libFuzzer's coverage
# instrumentation (the flags `cargo fuzz` passes) to this workspace's own
# crates only, so the fuzz targets link against the dependencies the tests
# already built instead of an instrumented copy of the whole tree.
# Our crate is built at opt-level 1: at the dev profile's 0 a target runs a
# quarter of the inputs a second that it runs at 1, and at 1 it runs three
# quarters to all of what `cargo fuzz`'s optimised build of every crate runs.
# Build scripts run on the host at build time and get no instrumentation.
# fuzz.sh calls a copy named after its contents (Cargo keeps a build per
# wrapper path and does not look inside).
set -euo pipefail
rustc=$1
shift
case " $* " in
*" --crate-name build_script_"*)
    exec "$rustc" "$@"
    ;;
esac
exec "$rustc" "$@" \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
    -Cdebug-assertions \
    -Copt-level=1 \
    --cfg fuzzing
