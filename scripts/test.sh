#!/usr/bin/env bash
# The whole test suite. Installs what is missing, then runs every test
# (unit, property, integration against real mosquitto, the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
command -v mosquitto >/dev/null 2>&1 || export PATH="$PATH:/usr/sbin"
cargo test --locked --all-targets
