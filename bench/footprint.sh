#!/usr/bin/env bash
# How many distinct cache lines (code and data, 64 bytes each) one proxy
# process touches per sequential message: the r-proxy, the s-proxy and one
# hop of the tokio TCP splice (bench/tcp-splice), each traced in turn by
# valgrind's lackey while `bench latency` sends messages one at a time
# through its line.
#
# Why lines and not instructions: on a virtual machine whose idle vCPUs
# halt (BENCHMARKS.md, "Halted vCPUs and cold caches"), a process that slept
# between two messages finds much of what it touches gone from the caches,
# so each message pays for every line it touches, however few instructions
# touch it.
#
# A message is two turns of the process's tokio I/O driver (publish and
# delivery each wake it once), told apart by the first instruction of
# libc's `epoll_wait`, which each turn calls once (tokio's `Driver::turn`
# may be inlined: a build with profile-guided optimisation inlines it).
# The figures are the mean over the last MESSAGES messages (the session's
# end excluded) and the union over them; then, as means a message, the
# functions whose code lines a message touches most (libc's by its nearest
# exported name), where its data lines lie (the stack, the heap, the
# binary's statics), which functions touch them first, the stack's lines
# by function, and the binary's statics by name.
#
#   bash bench/footprint.sh
#   PROXIES="r-proxy" MESSAGES=100 bash bench/footprint.sh
#   PROXY_FLAGS=--no-resume bash bench/footprint.sh   # flags for both proxies
#   MQTTBRIDGE_BIN=/tmp/old/mqttbridge bash bench/footprint.sh   # another build
#
# Needs valgrind and nm (binutils), besides mosquitto and python3.
set -euo pipefail

PROXIES=${PROXIES:-r-proxy s-proxy splice} # which processes to trace, in turn
MESSAGES=${MESSAGES:-200}                  # messages in the figures
TOP=${TOP:-25}                             # functions listed per process
PROXY_FLAGS=${PROXY_FLAGS:-}               # more flags for the r-proxy and the s-proxy
PROFILE=${PROFILE:-release}

cd "$(dirname "$0")/.."
source bench/lines.sh
for tool in valgrind nm; do
    command -v "$tool" >/dev/null || { echo "footprint.sh: $tool not found (apt-get install valgrind binutils)" >&2; exit 1; }
done
lines_init "$PROFILE"
build_splice
start_mosquitto

# Lackey writes a line per instruction and per data access: only the last
# ones are kept (about 1.5 a traced instruction; a proxy runs under 20,000
# instructions a message).
KEEP=$((MESSAGES * 60000 + 2000000))
TRACED=()

traced() { # $1 name, $2 binary, rest: its arguments; sets TRACED_PID
    local name=$1 binary=$2; shift 2
    RUST_LOG=info valgrind --tool=lackey --trace-mem=yes --log-fd=3 "$binary" "$@" \
        2>"$WORK/$name.log" 3> >(tail -n "$KEEP" >"$WORK/$name.trace" && : >"$WORK/$name.written") &
    TRACED_PID=$!
    PIDS+=("$TRACED_PID")
}

for proxy in $PROXIES; do
    echo "tracing $proxy..." >&2
    upstream=$(free_port tcp)
    port=$(free_port tcp)
    case $proxy in
    r-proxy)
        # shellcheck disable=SC2086
        start "s-for-$proxy" s-proxy --listen "127.0.0.1:$upstream" --broker "127.0.0.1:$MQTT_PORT" $PROXY_FLAGS
        # shellcheck disable=SC2086
        traced "$proxy" "$BIN" --log-format json r-proxy --listen "127.0.0.1:$port" \
            --upstream "http://127.0.0.1:$upstream" $PROXY_FLAGS
        binary=$BIN
        wait_log "$WORK/s-for-$proxy.log" "s-proxy serving" listen >/dev/null
        wait_log "$WORK/$proxy.log" "r-proxy serving" listen >/dev/null
        ;;
    s-proxy)
        # shellcheck disable=SC2086
        traced "$proxy" "$BIN" --log-format json s-proxy --listen "127.0.0.1:$upstream" \
            --broker "127.0.0.1:$MQTT_PORT" $PROXY_FLAGS
        # shellcheck disable=SC2086
        start "r-for-$proxy" r-proxy --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$upstream" $PROXY_FLAGS
        binary=$BIN
        wait_log "$WORK/$proxy.log" "s-proxy serving" listen >/dev/null
        wait_log "$WORK/r-for-$proxy.log" "r-proxy serving" listen >/dev/null
        ;;
    splice)
        start_splice_hop splice-cloud "$upstream" "$MQTT_PORT"
        traced "$proxy" "$TCP_SPLICE_BIN" "127.0.0.1:$port" "127.0.0.1:$upstream"
        binary=$TCP_SPLICE_BIN
        wait_log "$WORK/$proxy.log" "tcp-splice serving" listen >/dev/null
        ;;
    *)
        echo "footprint.sh: unknown proxy '$proxy' (r-proxy, s-proxy or splice)" >&2
        exit 2
        ;;
    esac
    pid=$TRACED_PID
    "$BIN" bench latency -L "tcp://127.0.0.1:$port" -n 50 --json >/dev/null
    # Where the binary is mapped in the traced process (a position-
    # independent executable lands where valgrind puts it).
    real=$(readlink -f "$binary")
    base=$(awk -v bin="$real" '$6 == bin { split($1, a, "-"); print a[1]; exit }' "/proc/$pid/maps")
    [ -n "$base" ] || { echo "footprint.sh: $real is not mapped in process $pid" >&2; exit 1; }
    # The mark between turns: libc's epoll_wait where libc is mapped.
    libc=$(awk '$6 ~ /\/libc\.so\.6$/ { print $6; exit }' "/proc/$pid/maps")
    libc_base=$(awk -v lib="$libc" '$6 == lib { split($1, a, "-"); print a[1]; exit }' "/proc/$pid/maps")
    offset=$(nm -D --defined-only "$libc" | awk '$3 ~ /^epoll_wait(@|$)/ && !found { print $1; found = 1 }')
    [ -n "$libc_base" ] && [ -n "$offset" ] || { echo "footprint.sh: no epoll_wait in $proxy's libc" >&2; exit 1; }
    mark=$(printf '%x' $((0x$libc_base + 0x$offset)))
    "$BIN" bench latency -L "tcp://127.0.0.1:$port" -n "$((MESSAGES + 20))" --json >/dev/null
    cp "/proc/$pid/maps" "$WORK/$proxy.maps"
    # Ended at once: what it would do on its way out is not a message's.
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 600); do # the trace's last lines written (60 s at most)
        [ -e "$WORK/$proxy.written" ] && break
        sleep 0.1
    done
    [ -e "$WORK/$proxy.written" ] || { echo "footprint.sh: $proxy's trace was not written" >&2; exit 1; }
    nm -n -C --defined-only "$binary" >"$WORK/$proxy.symbols"
    # libc's functions too, where libc is mapped (its own lines by name).
    nm -n -D --defined-only "$libc" >"$WORK/$proxy.libc"
    TRACED+=("$proxy=$base=$mark=$libc_base")
done

python3 - "$WORK" "$MESSAGES" "$TOP" "${TRACED[@]}" <<'PY'
import bisect, collections, functools, os, sys
work, messages, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

print(f"### Cache lines touched per sequential message ({messages} messages, lackey)")
print()
print("| process | code lines | data lines | KiB | instructions | union of all messages: code / data lines |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
details = []
for entry in sys.argv[4:]:
    name, base, mark, libc_base = entry.split("=")
    base, mark, libc_base = int(base, 16), int(mark, 16), int(libc_base, 16)
    starts, names, data_starts, data_names = [], [], [], []
    libc = sorted((int(parts[0], 16) + libc_base, "libc: " + parts[2])
                  for parts in (l.split(" ", 2) for l in open(os.path.join(work, f"{name}.libc")))
                  if len(parts) == 3 and parts[1] in "tTwWiI")
    for line in open(os.path.join(work, f"{name}.symbols")):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            starts.append(int(parts[0], 16) + base)
            names.append(parts[2])
        elif len(parts) == 3 and parts[1] in "dDbBvV":
            data_starts.append(int(parts[0], 16) + base)
            data_names.append(parts[2])
    # Records of the trace: (is code, first line, last line); a message
    # starts at every second turn of the driver.
    records, turns = [], []
    for line in open(os.path.join(work, f"{name}.trace")):
        kind, _, rest = line.strip().partition(" ")
        if kind not in ("I", "L", "S", "M"):
            continue
        addr, _, size = rest.strip().partition(",")
        try:
            a, n = int(addr, 16), int(size)
        except ValueError:
            continue
        if kind == "I" and a == mark:
            turns.append(len(records))
        records.append((kind == "I", a >> 6, (a + n - 1) >> 6))
    # The last turns are the session's end; the messages before them count.
    turns = turns[:-10]
    bounds = turns[-(2 * messages + 1)::2]
    if len(bounds) < messages + 1:
        sys.exit(f"footprint.sh: {name}: only {len(turns)} driver turns traced")
    per, union = [], (set(), set())
    for lo, hi in zip(bounds, bounds[1:]):
        code, data, count = set(), set(), 0
        for is_code, first, last in records[lo:hi]:
            (code if is_code else data).update((first, last))
            count += is_code
        per.append((len(code), len(data), count))
        union[0].update(code)
        union[1].update(data)
    mean = [sum(p[i] for p in per) / len(per) for i in range(3)]
    print(f"| {name} | {mean[0]:,.0f} | {mean[1]:,.0f} | {(mean[0] + mean[1]) * 64 / 1024:.1f} "
          f"| {mean[2]:,.0f} | {len(union[0]):,} / {len(union[1]):,} |")
    libc_starts = [a for a, _ in libc]
    def function_of(line):
        k = bisect.bisect_right(starts, line << 6) - 1
        inside = k >= 0 and (line << 6) - starts[k] < 1 << 20
        if inside:
            return names[k]
        k = bisect.bisect_right(libc_starts, line << 6) - 1
        if k >= 0 and (line << 6) - libc_starts[k] < 1 << 14:
            return libc[k][1]
        return "(outside the binary and libc: the loader, vdso)"
    # Where each data line lies: the process's mappings when it was stopped.
    regions = []
    for line in open(os.path.join(work, f"{name}.maps")):
        fields = line.split()
        lo_hi = fields[0].split("-")
        path = fields[5] if len(fields) > 5 else ""
        size = int(lo_hi[1], 16) - int(lo_hi[0], 16)
        label = ("stack" if path.startswith("[stack") else
                 "heap (brk)" if path == "[heap]" else
                 "the binary's data" if path and not path.startswith("[") and "/lib" not in path else
                 "libraries' data" if path else
                 f"anonymous mapping at {fields[0].split('-')[0]}, {size // 1024:,} KiB")
        regions.append((int(lo_hi[0], 16), int(lo_hi[1], 16), label))
    def region_of(line):
        a = line << 6
        for lo_, hi_, label in regions:
            if lo_ <= a < hi_:
                return label
        return "unmapped at the end (freed mappings)"
    # Over the messages: code lines by function, data lines by where they
    # lie and by the function that touched them first (means a message).
    function_of = functools.lru_cache(maxsize=None)(function_of)
    region_of = functools.lru_cache(maxsize=None)(region_of)
    by_function, by_region = collections.Counter(), collections.Counter()
    data_by_function, stack_by_function = collections.Counter(), collections.Counter()
    touched_data, statics_by_function = collections.Counter(), collections.Counter()
    top_region = None
    for lo, hi in zip(bounds, bounds[1:]):
        lines, data_first = set(), {}
        current = None
        for is_code, first, last in records[lo:hi]:
            if is_code:
                lines.add(first)
                current = first
            else:
                for line in (first, last):
                    data_first.setdefault(line, current)
        by_function.update(function_of(line) for line in lines)
        by_region.update(region_of(line) for line in data_first)
        data_by_function.update(
            function_of(code) if code is not None else "?" for code in data_first.values())
        # The thread's stack: the highest mapping a message touches (under
        # valgrind the client's stack is an anonymous mapping at the top).
        if top_region is None and data_first:
            top_region = region_of(max(data_first))
        def touching(region):
            return (function_of(code) if code is not None else "?"
                    for line, code in data_first.items() if region_of(line) == region)
        stack_by_function.update(touching(top_region))
        touched_data.update(line for line in data_first if region_of(line) == "the binary's data")
        statics_by_function.update(touching("the binary's data"))
    # The binary's own data: which statics.
    def static_of(line):
        k = bisect.bisect_right(data_starts, line << 6) - 1
        return data_names[k] if k >= 0 else "?"
    statics = collections.Counter()
    for line, n in touched_data.items():
        statics[static_of(line)] += n
    details.append((name, by_function, by_region, data_by_function, top_region, stack_by_function,
                    statics, statics_by_function))
def show(title, counter, limit):
    """One breakdown: its title and its largest entries, as means a message."""
    print()
    print(title)
    print()
    for what, n in counter.most_common(limit):
        print(f"- {n / messages:.1f} {what[:160]}")
for (name, by_function, by_region, data_by_function, top_region, stack_by_function, statics,
     statics_by_function) in details:
    show(f"{name}, code lines a message touches, by function (mean):", by_function, top)
    show(f"{name}, data lines a message touches, by where they lie (mean):", by_region, None)
    show(f"{name}, data lines a message touches, by the function that touched each first (mean):",
         data_by_function, top)
    show(f"{name}, of them on the stack ({top_region}), by function (mean):", stack_by_function, top)
    show(f"{name}, of them in the binary's data, by the static (or the one before it; mean):",
         statics, top)
    show(f"{name}, the binary's data lines by the function that touched each first (mean):",
         statics_by_function, top)
PY
