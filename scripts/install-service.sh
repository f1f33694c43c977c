#!/usr/bin/env bash
# Installs mqttbridge as systemd services (as root): the binary, one config
# file per mode (the examples in config/, where none exists yet), the
# template unit mqttbridge@.service, /etc/default/mqttbridge and a 0700
# directory for keys handed to the services as systemd credentials.
#
#   cargo build --release && scripts/install-service.sh
#   systemctl enable --now mqttbridge@r-proxy
#
# DESTDIR=/some/root installs under that root instead (the tests do, and
# packagers); BIN names the binary (default: target/release/mqttbridge).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${DESTDIR:-}"
bin="${BIN:-target/release/mqttbridge}"
if [ ! -x "$bin" ]; then
    echo "install-service: no $bin: run cargo build --release first (or set BIN)" >&2
    exit 1
fi
install -D -m 0755 "$bin" "$root/usr/local/bin/mqttbridge"
for pair in r-proxy:edge s-proxy:cloud scion-quic:scion-quic scion-udp:scion-udp; do
    mode=${pair%%:*}
    example=${pair#*:}
    target="$root/etc/mqttbridge/$mode.toml"
    # An existing configuration is never overwritten.
    [ -e "$target" ] || install -D -m 0644 "config/$example.toml" "$target"
done
install -D -m 0644 contrib/systemd/mqttbridge@.service "$root/etc/systemd/system/mqttbridge@.service"
[ -e "$root/etc/default/mqttbridge" ] ||
    install -D -m 0644 contrib/systemd/mqttbridge.default "$root/etc/default/mqttbridge"
install -d -m 0700 "$root/etc/mqttbridge/credentials"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "install-service: installed under ${root:-/}; edit $root/etc/mqttbridge/<mode>.toml, then"
echo "  systemctl enable --now mqttbridge@<mode>   (r-proxy, s-proxy, scion-quic, scion-udp)"
