"""What resumable sessions cost and buy on the gRPC line, in one run:

- steady line: `mqttbridge bench throughput` (QoS 0 and QoS 1) through an
  r-proxy that resumes against one started with --no-resume, same s-proxy,
  same broker, alternating which goes first; printed as the ratio on/off (the cost of
  numbering, acknowledging and keeping the replay buffer);
- recovery: a publisher sends a QoS 0 message every millisecond through the
  line while a relay between the proxies is cut for CUT seconds (every
  connection closed, new ones refused); printed is the time from the relay
  taking connections again to the first message the subscriber (on the
  broker) receives, and how many messages were lost (none expected).

    python3 bench/resume.py [--runs 2] [--cuts 5] [--cut 2.0]

MQTTBRIDGE_BIN names the mqttbridge binary (default: the workspace's
release build, else dev). Needs only python3 and mosquitto.
"""

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def binary() -> str:
    if os.environ.get("MQTTBRIDGE_BIN"):
        return os.environ["MQTTBRIDGE_BIN"]
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    target = pathlib.Path(json.loads(meta.stdout)["target_directory"])
    for profile in ("release", "debug"):
        if (target / profile / "mqttbridge").exists():
            return str(target / profile / "mqttbridge")
    raise SystemExit("no mqttbridge binary: cargo build --release, or set MQTTBRIDGE_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start on port {port}")


class Processes:
    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, args: list[str], port: int, what: str) -> None:
        self.children.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        wait_port(port, what)

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.wait(timeout=15)


class Relay:
    """TCP relay (no Nagle, as a router) whose connections can be cut."""

    def __init__(self, target: int) -> None:
        self.port = free_port()
        self.target = target
        self.down_until = 0.0
        self.pairs: set = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _handle(self, reader, writer) -> None:
        if time.monotonic() < self.down_until:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        pair = (writer, up_writer)
        self.pairs.add(pair)

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.pairs.discard(pair)

    def cut_for(self, seconds: float) -> float:
        """Closes every connection and refuses new ones; returns when the
        relay takes connections again (time.monotonic())."""
        def cut() -> None:
            self.down_until = time.monotonic() + seconds
            for a, b in list(self.pairs):
                a.transport.abort()
                b.transport.abort()
            self.pairs.clear()
        self.loop.call_soon_threadsafe(cut)
        return time.monotonic() + seconds


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str) -> bytes:
    return len(s).to_bytes(2, "big") + s.encode()


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + remaining_length(len(body)) + body


def mqtt_connect(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(packet(0x10, utf8("MQTT") + bytes([4, 2, 0, 60]) + utf8(client_id)))
    header = sock.recv(4)
    if header[:1] != b"\x20" or header[3:4] != b"\x00":
        raise SystemExit(f"CONNACK refused: {header!r}")
    return sock


def read_packet(sock: socket.socket, buffer: bytearray):
    """One packet (type byte, body) from `sock`, or None when it closed."""
    while True:
        if len(buffer) >= 2:
            length, shift, i = 0, 0, 1
            while i < len(buffer):
                length |= (buffer[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not buffer[i - 1] & 0x80:
                    break
            else:
                i = None
            if i is not None and len(buffer) >= i + length:
                first, body = buffer[0], bytes(buffer[i:i + length])
                del buffer[:i + length]
                return first, body
        data = sock.recv(65536)
        if not data:
            return None
        buffer.extend(data)


def throughput(bin_: str, port: int, qos: int, count: int) -> float:
    run = subprocess.run([bin_, "bench", "throughput", "-L", f"mqtt://127.0.0.1:{port}",
                          "-p", "1", "-s", "1", "-q", str(qos), "-n", str(count), "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    assert report["lost"] == 0, report
    return report["received"] / report["seconds"]


def recovery(relay: Relay, r_port: int, broker: int, cuts: int, cut: float):
    sub = mqtt_connect(broker, "resume-bench-sub")
    sub.sendall(packet(0x82, (1).to_bytes(2, "big") + utf8("resume/bench") + b"\x00"))
    buffer = bytearray()
    while (p := read_packet(sub, buffer)) and p[0] >> 4 != 9:
        pass
    pub = mqtt_connect(r_port, "resume-bench-pub")
    stop = threading.Event()
    sent = [0]

    def publish() -> None:
        while not stop.is_set():
            pub.sendall(packet(0x30, utf8("resume/bench") + sent[0].to_bytes(8, "big")))
            sent[0] += 1
            time.sleep(0.001)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    received, next_expected, lost, back_to_first = 0, 0, 0, []
    pending_up = None
    cut_at = time.monotonic() + 1.0
    done = 0
    quiet_since = None
    sub.settimeout(0.05)
    while True:
        now = time.monotonic()
        if done < cuts and pending_up is None and now >= cut_at:
            pending_up = relay.cut_for(cut)
            done += 1
        if done >= cuts and pending_up is None and now >= cut_at:
            stop.set()
        try:
            p = read_packet(sub, buffer)
        except socket.timeout:
            if stop.is_set():
                quiet_since = quiet_since or now
                if now - quiet_since > 2.0:
                    break
            continue
        quiet_since = None
        if p is None:
            raise SystemExit("subscriber closed")
        if p[0] >> 4 != 3:
            continue
        topic_len = int.from_bytes(p[1][:2], "big")
        n = int.from_bytes(p[1][2 + topic_len:], "big")
        lost += max(0, n - next_expected)
        next_expected = max(next_expected, n + 1)
        received += 1
        arrived = time.monotonic()
        if pending_up is not None and arrived >= pending_up:
            back_to_first.append(arrived - pending_up)
            pending_up = None
            cut_at = arrived + 1.0
    publisher.join()
    pub.close()
    sub.close()
    lost += sent[0] - next_expected
    return back_to_first, lost, sent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cuts", type=int, default=5)
    parser.add_argument("--cut", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    bin_ = binary()
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if not exe:
        raise SystemExit("mosquitto is not installed")
    procs = Processes()
    with tempfile.TemporaryDirectory() as work:
        try:
            broker = free_port()
            conf = pathlib.Path(work) / "mosquitto.conf"
            conf.write_text(f"listener {broker} 127.0.0.1\nallow_anonymous true\n"
                            "max_inflight_messages 0\nmax_queued_messages 0\nset_tcp_nodelay true\n")
            procs.start([exe, "-c", str(conf)], broker, "mosquitto")
            s_port = free_port()
            procs.start([bin_, "s-proxy", "--listen", f"127.0.0.1:{s_port}",
                         "--broker", f"127.0.0.1:{broker}"], s_port, "s-proxy")
            on, off = free_port(), free_port()
            procs.start([bin_, "r-proxy", "--listen", f"127.0.0.1:{on}",
                         "--upstream", f"http://127.0.0.1:{s_port}"], on, "r-proxy")
            procs.start([bin_, "r-proxy", "--listen", f"127.0.0.1:{off}", "--no-resume",
                         "--upstream", f"http://127.0.0.1:{s_port}"], off, "r-proxy --no-resume")
            relay = Relay(s_port)
            cut_port = free_port()
            procs.start([bin_, "r-proxy", "--listen", f"127.0.0.1:{cut_port}",
                         "--upstream", f"http://127.0.0.1:{relay.port}"], cut_port, "r-proxy (relay)")

            print(f"binary: {bin_}")
            print("steady line, msg/s delivered (1 publisher -> 1 subscriber, both through the line)")
            print(f"{'run':>3} {'QoS':>3} {'resume on':>11} {'resume off':>11} {'on/off':>7}")
            for run in range(1, args.runs + 1):
                for qos, count in ((0, args.count), (1, args.count // 2)):
                    # Which goes first alternates, so that neither gains
                    # from the broker's state the other left.
                    if run % 2:
                        rate_off = throughput(bin_, off, qos, count)
                        rate_on = throughput(bin_, on, qos, count)
                    else:
                        rate_on = throughput(bin_, on, qos, count)
                        rate_off = throughput(bin_, off, qos, count)
                    print(f"{run:>3} {qos:>3} {rate_on:>11,.0f} {rate_off:>11,.0f} "
                          f"{rate_on / rate_off:>7.2f}")
            gaps, lost, sent = recovery(relay, cut_port, broker, args.cuts, args.cut)
            ms = [g * 1000 for g in gaps]
            print(f"recovery: {len(gaps)} cuts of {args.cut:.1f} s; link back -> first message "
                  f"delivered: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms; "
                  f"{sent} published, {lost} lost")
        finally:
            procs.stop()


if __name__ == "__main__":
    main()
