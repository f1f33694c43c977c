#!/usr/bin/env bash
# The whole test suite. Installs what is missing, then runs every test
# (unit, property, integration against real mosquitto, QUIC and SCION, the
# demo, documentation examples, fault injection, no-loss runs), the Python
# bindings' pytest suite (scripts/python-test.sh), then a
# short run of every fuzz target (scripts/fuzz.sh, FUZZ_SECONDS each,
# default 20), a short soak of every line (scripts/soak.sh, SOAK_SECONDS,
# default 20) and MQTT over SCION across network namespaces
# (testnet/testnet.sh run, needs root), and ends with one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
command -v mosquitto >/dev/null 2>&1 || export PATH="$PATH:/usr/sbin"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
{ cargo test --locked --no-fail-fast --lib --tests && cargo test --locked --doc; } 2>&1 | tee "$log" || status=$?
python_status=0
bash scripts/python-test.sh 2>&1 | tee -a "$log" || python_status=$?
if [ "$python_status" -eq 0 ]; then echo "python tests: ok"; else echo "python tests: FAILED"; fi
fuzz_status=0
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}" || fuzz_status=$?
if [ "$fuzz_status" -eq 0 ]; then echo "fuzz smoke: ok"; else echo "fuzz smoke: FAILED"; fi
soak_status=0
DURATION="${SOAK_SECONDS:-20}" bash scripts/soak.sh || soak_status=$?
if [ "$soak_status" -eq 0 ]; then echo "soak: ok"; else echo "soak: FAILED"; fi
testnet_status=0
bash testnet/testnet.sh run || testnet_status=$?
if [ "$testnet_status" -eq 0 ]; then echo "testnet: ok"; else echo "testnet: FAILED"; fi
[ "$status" -ne 0 ] || status=$python_status
[ "$status" -ne 0 ] || status=$fuzz_status
[ "$status" -ne 0 ] || status=$soak_status
[ "$status" -ne 0 ] || status=$testnet_status
# Cargo's "test result:" lines and pytest's last line ("2 failed, 28 passed in 4.1s").
awk '/^test result:/ || /^(=+ )?[0-9]+ (passed|failed).* in [0-9.]+s/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
       }
     }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
