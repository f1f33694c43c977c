#!/usr/bin/env bash
# The main job: the whole chain on this machine with a real broker.
# Installs what is missing, builds, and runs `mqttbridge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
cargo build --release --locked
exec ./target/release/mqttbridge demo "$@"
