#!/usr/bin/env bash
# MQTT over SCION across real network namespaces on this machine:
#
#   client  10.77.0.2 ─┐
#   proxy   10.77.0.3 ─┤
#   relay   10.77.0.5 ─┼─ br0 in "scion" 10.77.0.1: pocketscion (testnet/topology.toml:
#   broker  10.77.0.4 ─┘     core 1-ff00:0:110, leaves 1-ff00:0:111, 1-ff00:0:112, 1-ff00:0:113)
#
# each host a network namespace joined to the SCION network host by a veth
# pair. The broker host runs mosquitto and, in front of it, a QUIC listener
# on UDP/IP (scion-quic --transport quic, as a QUIC-capable broker would
# be). The proxy host runs scion-quic in 1-ff00:0:112 (QUIC ends there, MQTT
# goes on over TCP), the relay host scion-udp in 1-ff00:0:113 (datagrams go
# on over UDP/IP, QUIC ends at the broker host). Clients in
# 1-ff00:0:111 use both.
#
#   testnet/testnet.sh up       build, make the namespaces, start every process
#   testnet/testnet.sh run      up (if needed), send messages both ways, print
#                               what arrived and a latency summary, then down
#   testnet/testnet.sh status   namespaces and processes
#   testnet/testnet.sh units    the systemd unit each process corresponds to
#   testnet/testnet.sh down     stop everything and remove the namespaces
#
# Needs root and iproute2 (scripts/install-deps.sh installs it). State lives
# in $TESTNET_DIR (default /tmp/mqttbridge-testnet).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${TESTNET_DIR:-/tmp/mqttbridge-testnet}
PROFILE=${PROFILE:-dev}
PREFIX=mqb-tn
HOSTS=(client proxy relay broker)
declare -A ADDR=([scion]=10.77.0.1 [client]=10.77.0.2 [proxy]=10.77.0.3 [broker]=10.77.0.4 [relay]=10.77.0.5)
MESSAGES=${MESSAGES:-200}

say() { echo "testnet: $*" >&2; }
die() { say "$*"; exit 1; }
ns() { echo "$PREFIX-$1"; }
in_ns() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "needs root (it makes network namespaces): run it as root or with sudo"
    command -v ip >/dev/null || die "iproute2's ip is missing (apt-get install iproute2)"
    command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
    command -v mosquitto >/dev/null || die "mosquitto is missing (apt-get install mosquitto)"
}

binary() {
    say "building (profile $PROFILE)"
    cargo build --locked --profile "$PROFILE" --bin mqttbridge >&2
    local target_dir
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    BIN=$target_dir/$PROFILE/mqttbridge
    [ "$PROFILE" = dev ] && BIN=$target_dir/debug/mqttbridge
    echo "$BIN" >"$DIR/bin"
}

# Starts a process in a host's namespace, its output in $DIR/NAME.log and
# its pid in $DIR/NAME.pid.
spawn() { # $1 host, $2 name, rest: command
    local host=$1 name=$2; shift 2
    # Emptied before the start, not by the background redirect: a caller
    # waiting for a line must never read a previous run's log.
    : >"$DIR/$name.out"
    : >"$DIR/$name.log"
    # `ip netns exec` execs the command: $! is the process itself.
    ip netns exec "$(ns "$host")" "$@" >"$DIR/$name.out" 2>"$DIR/$name.log" &
    echo $! >"$DIR/$name.pid"
}

# Waits (30 s at most) for FILE to hold a line matching PATTERN; prints it.
wait_line() { # $1 file, $2 pattern
    for _ in $(seq 300); do
        if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "no line matching '$2' in $1 after 30 s: $(tail -5 "$1" 2>/dev/null)"
}

listen_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)["fields"]["listen"])'; }

up() {
    need_root
    [ ! -e "/var/run/netns/$(ns scion)" ] || die "already up (testnet/testnet.sh down first)"
    mkdir -p "$DIR"
    binary
    BIN=$(cat "$DIR/bin")
    rm -f "$DIR"/*-addr "$DIR"/*-api "$DIR"/*.out "$DIR"/*.log

    say "making namespaces $(ns scion) $(for h in "${HOSTS[@]}"; do printf '%s ' "$(ns "$h")"; done)"
    ip netns add "$(ns scion)"
    in_ns scion ip link set lo up
    in_ns scion ip link add br0 type bridge
    in_ns scion ip addr add "${ADDR[scion]}/24" dev br0
    in_ns scion ip link set br0 up
    for host in "${HOSTS[@]}"; do
        ip netns add "$(ns "$host")"
        in_ns "$host" ip link set lo up
        ip link add "tn-$host" type veth peer name "tnb-$host"
        ip link set "tn-$host" netns "$(ns "$host")"
        ip link set "tnb-$host" netns "$(ns scion)"
        in_ns scion ip link set "tnb-$host" master br0 up
        in_ns "$host" ip addr add "${ADDR[$host]}/24" dev "tn-$host"
        in_ns "$host" ip link set "tn-$host" up
    done

    say "certificates"
    "$BIN" certs --out "$DIR/certs" --name proxy.testnet >/dev/null

    say "SCION network host: pocketscion"
    sed "s/^bind_ip = .*/bind_ip = \"${ADDR[scion]}\"/" testnet/topology.toml >"$DIR/topology.toml"
    # A SNAP token per host, as each host would have its own.
    spawn scion pocketscion "$BIN" pocketscion --topology "$DIR/topology.toml" \
        --snap-token-file "$DIR/client.token" --snap-token-file "$DIR/proxy.token" \
        --snap-token-file "$DIR/relay.token"
    wait_line "$DIR/pocketscion.out" "^endhost-api 1-ff00:0:113 " >/dev/null
    awk '$2=="1-ff00:0:111"{print $3}' "$DIR/pocketscion.out" >"$DIR/client-api"
    awk '$2=="1-ff00:0:112"{print $3}' "$DIR/pocketscion.out" >"$DIR/proxy-api"
    awk '$2=="1-ff00:0:113"{print $3}' "$DIR/pocketscion.out" >"$DIR/relay-api"

    say "broker host: mosquitto on ${ADDR[broker]}:1883"
    printf 'listener 1883 %s\nallow_anonymous true\npersistence false\n' "${ADDR[broker]}" >"$DIR/mosquitto.conf"
    spawn broker mosquitto mosquitto -c "$DIR/mosquitto.conf"
    say "broker host: QUIC on ${ADDR[broker]}:14567 (UDP/IP)"
    cat >"$DIR/quic-broker.toml" <<CONF
transport = "quic"
listen = "${ADDR[broker]}:14567"
broker = "${ADDR[broker]}:1883"
cert = "$DIR/certs/server.pem"
key = "$DIR/certs/server.key"
CONF
    spawn broker quic-broker "$BIN" --log-format json scion-quic --config "$DIR/quic-broker.toml"
    wait_line "$DIR/quic-broker.log" '"message":"scion-quic serving"' >/dev/null

    say "proxy host: scion-quic in 1-ff00:0:112"
    cat >"$DIR/scion-quic.toml" <<CONF
transport = "scion"
endhost_api = "$(cat "$DIR/proxy-api")"
snap_token_file = "$DIR/proxy.token"
broker = "${ADDR[broker]}:1883"
cert = "$DIR/certs/server.pem"
key = "$DIR/certs/server.key"
CONF
    spawn proxy scion-quic "$BIN" --log-format json scion-quic --config "$DIR/scion-quic.toml"
    wait_line "$DIR/scion-quic.log" '"message":"scion-quic serving"' | listen_field >"$DIR/proxy-addr"

    say "relay host: scion-udp in 1-ff00:0:113 to the broker host's QUIC"
    cat >"$DIR/scion-udp.toml" <<CONF
endhost_api = "$(cat "$DIR/relay-api")"
snap_token_file = "$DIR/relay.token"
broker = "${ADDR[broker]}:14567"
CONF
    spawn relay scion-udp "$BIN" --log-format json scion-udp --config "$DIR/scion-udp.toml"
    wait_line "$DIR/scion-udp.log" '"message":"scion-udp relaying"' | listen_field >"$DIR/relay-addr"
    say "up: scion-quic://$(cat "$DIR/proxy-addr") (scion-quic), scion-quic://$(cat "$DIR/relay-addr") (scion-udp); clients: endhost API $(cat "$DIR/client-api")"
}

down() {
    local host pids
    # SIGTERM (the proxies drain, MQTT 5 clients hear 0x8B), then SIGKILL
    # whatever still runs after 15 s.
    for host in scion "${HOSTS[@]}"; do
        [ -e "/var/run/netns/$(ns "$host")" ] && ip netns pids "$(ns "$host")" | xargs -r kill 2>/dev/null || true
    done
    for _ in $(seq 150); do
        pids=$(for host in scion "${HOSTS[@]}"; do
            [ -e "/var/run/netns/$(ns "$host")" ] && ip netns pids "$(ns "$host")"; done || true)
        [ -z "$pids" ] && break
        sleep 0.1
    done
    [ -z "${pids:-}" ] || echo "$pids" | xargs -r kill -9 2>/dev/null || true
    for host in scion "${HOSTS[@]}"; do
        [ -e "/var/run/netns/$(ns "$host")" ] && ip netns del "$(ns "$host")"
    done
    rm -f "$DIR"/*.pid
    say "down"
}

# Each mqttbridge process is what contrib/systemd/mqttbridge@.service runs
# (`mqttbridge <mode> --config /etc/mqttbridge/<mode>.toml`) on that host.
units() {
    cat <<UNITS
host    process                       systemd unit on a real host (config file it would read)
scion   pocketscion                   none: a development network; a real host joins a SCION AS
broker  mosquitto                     mosquitto.service
broker  scion-quic --transport quic   mqttbridge@scion-quic ($DIR/quic-broker.toml as /etc/mqttbridge/scion-quic.toml)
proxy   scion-quic (SCION)            mqttbridge@scion-quic ($DIR/scion-quic.toml as /etc/mqttbridge/scion-quic.toml)
relay   scion-udp                     mqttbridge@scion-udp ($DIR/scion-udp.toml as /etc/mqttbridge/scion-udp.toml)
UNITS
}

status() {
    local host
    for host in scion "${HOSTS[@]}"; do
        if [ -e "/var/run/netns/$(ns "$host")" ]; then
            echo "$(ns "$host") ${ADDR[$host]}: $(ip netns pids "$(ns "$host")" | xargs -r ps -o comm= -p | sort | uniq -c | awk '{printf "%s(%s) ", $2, $1}')"
        else
            echo "$(ns "$host"): down"
        fi
    done
}

# Client flags for MQTT over QUIC over SCION from the client host.
client_flags() {
    echo --endhost-api "$(cat "$DIR/client-api")" --snap-token-file "$DIR/client.token" \
        --cafile "$DIR/certs/ca.pem" --server-name proxy.testnet
}

run() {
    need_root
    trap 'status=$?; [ $status -eq 0 ] || say "failed; cleaning up"; down; exit $status' EXIT
    [ -e "/var/run/netns/$(ns scion)" ] || up
    BIN=$(cat "$DIR/bin")
    local url broker_url relay_url line
    url="scion-quic://$(cat "$DIR/proxy-addr")"
    broker_url="tcp://${ADDR[broker]}:1883"
    # shellcheck disable=SC2046 # client_flags is a list of words
    set -- $(client_flags)

    # Retained messages: a subscriber gets them whenever it subscribes, so
    # no step waits for another to be ready.
    say "client -> proxy -> broker: 3 messages at QoS 0, 1, 2 from the client host"
    for qos in 0 1 2; do
        in_ns client "$BIN" pub -L "$url" "$@" -t "testnet/up/$qos" -m "over SCION at QoS $qos" -q "$qos" -r
    done
    in_ns broker "$BIN" sub -L "$broker_url" -t 'testnet/up/#' -C 3 -W 30 -v >"$DIR/up.out" ||
        die "the broker host did not receive every message"
    sed 's/^/  broker host received: /' "$DIR/up.out"

    say "broker -> proxy -> client: a message from the broker host to the client host over SCION"
    in_ns broker "$BIN" pub -L "$broker_url" -t testnet/down -m "back over SCION" -q 1 -r
    in_ns client "$BIN" sub -L "$url" "$@" -t testnet/down -q 1 -C 1 -W 30 -v >"$DIR/down.out" ||
        die "the client host did not receive the message"
    sed 's/^/  client host received: /' "$DIR/down.out"

    say "client -> relay -> broker: a message over SCION, then UDP/IP, QUIC end to end"
    relay_url="scion-quic://$(cat "$DIR/relay-addr")"
    in_ns client "$BIN" pub -L "$relay_url" "$@" -t testnet/relayed -m "through scion-udp" -q 1 -r
    in_ns broker "$BIN" sub -L "$broker_url" -t testnet/relayed -C 1 -W 30 -v >"$DIR/relayed.out" ||
        die "the broker host did not receive the relayed message"
    sed 's/^/  broker host received: /' "$DIR/relayed.out"

    for line in "scion-quic $url" "scion-udp $relay_url"; do
        say "latency through ${line%% *}: $MESSAGES messages, one at a time, client host -> broker -> client host"
        in_ns client "$BIN" bench latency -L "${line#* }" "$@" -n "$MESSAGES" | sed 's/^/  /'
    done
    say "run: ok"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    units) units ;;
    run) run ;;
    *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
