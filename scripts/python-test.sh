#!/usr/bin/env bash
# The Python bindings' tests: `pip install ./python` into a venv (in the
# target directory, so a fresh clone starts clean), then pytest against
# real mosquitto, mqttbridge's QUIC listener and a pocketscion SCION
# network, and mypy --strict on the types (python/tests); the
# Kubernetes manifests against kubernetes-validate's schemas; and the gRPC
# line's HTTP/2 against gRPC's C core (grpcio) at both ends. The package is
# built with the dev profile here, reusing what `cargo test` built; a
# plain `pip install ./python` builds it optimised.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mosquitto >/dev/null 2>&1 || export PATH="$PATH:/usr/sbin"

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
venv="$target_dir/python-venv"
cargo build --locked --bin mqttbridge
# (Re)made when missing or broken (a moved target directory breaks it).
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || python3 -m venv --clear "$venv"
echo "python: pip install ./python pytest mypy kubernetes-validate grpcio grpcio-health-checking (into $venv)"
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python pytest mypy kubernetes-validate grpcio grpcio-health-checking
# From the root, so the installed package is imported, not python/mqttbridge.
status=0
MQTTBRIDGE_BIN="$target_dir/debug/mqttbridge" "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests || status=$?
# pytest: 0 all passed, 1 some failed, 5 no tests collected (a failure too).
case $status in
    0) exit 0 ;;
    5) echo "python: pytest collected no tests" >&2; exit 1 ;;
    *) exit "$status" ;;
esac
