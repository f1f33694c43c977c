#!/usr/bin/env bash
# Installs what mqttbridge needs to build and test on Debian, only where it
# is missing: a C toolchain, cmake and libclang (for BoringSSL, used by the
# QUIC/SCION work), mosquitto (the tests' and demo's real broker), iproute2
# (the fault tests' network namespaces), python3 with venv (bench/compare.sh,
# the Python bindings) and Rust.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in build-essential pkg-config git cmake libclang-dev mosquitto mosquitto-clients iproute2 ca-certificates curl; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
# bench/compare.sh formats its tables with python3 (any python3 will do);
# the Python bindings' tests install them into a venv (scripts/python-test.sh).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${need_apt[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Debian mosquitto package may start a system broker on port 1883; the
# tests never use it (each starts its own on a free port).

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "install-deps: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
