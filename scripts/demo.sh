#!/usr/bin/env bash
# The main job: the whole chain on this machine with a real broker.
# Installs what is missing, builds, and runs `mqttbridge demo`.
#
# It builds what scripts/test.sh builds (the dev profile, whose dependencies
# are optimised: Cargo.toml), so running both commands compiles the
# dependency tree once. `cargo build --release` is the build to deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
cargo build --locked --bin mqttbridge
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/debug/mqttbridge" demo "$@"
