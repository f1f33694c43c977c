"""The Python bindings against the Rust client on the same broker, in one
run: throughput at QoS 0 and 1 (one publisher, one subscriber; asyncio and
blocking) and one-at-a-time latency (QoS 0), each printed as a ratio to
`mqttbridge bench` (the Rust client library, the baseline), asyncio as a
ratio to blocking, with paho-mqtt's figures beside ours when paho-mqtt is
installed.

    python bench/python.py [--url tcp://host:port] [--count 20000]

Run it with the Python that has the package (`pip install ./python`);
without --url it starts mosquitto on a free port. MQTTBRIDGE_BIN names
the mqttbridge binary (default: the workspace's release build, else dev).
"""

import argparse
import asyncio
import collections
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
import uuid
from typing import Optional

import mqttbridge

ROOT = pathlib.Path(__file__).resolve().parents[1]
IN_FLIGHT = 16  # what `bench throughput` keeps in flight per publisher


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


def start_mosquitto(workdir: str):
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if not exe:
        raise SystemExit("mosquitto is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = pathlib.Path(workdir) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\nset_tcp_nodelay true\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"tcp://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def rust(args: list) -> dict:
    out = subprocess.run([binary(), "bench", *args, "--json"], capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout)


PAYLOAD = b"x" * 16


async def asyncio_throughput(url: str, count: int, qos: int, tasks: bool = False) -> float:
    """With `tasks`, every publish is a coroutine of its own under a
    semaphore (asyncio.gather): Python's per-task cost is measured too."""
    name = f"bench/{uuid.uuid4().hex}"
    async with mqttbridge.AsyncClient(url) as sub, mqttbridge.AsyncClient(url, max_in_flight=IN_FLIGHT) as pub:
        await sub.subscribe(name, qos=qos)

        async def receive() -> None:
            for _ in range(count):
                if await sub.recv(timeout=30) is None:
                    raise SystemExit(f"asyncio QoS {qos}: a message did not arrive")

        started = time.perf_counter()
        receiving = asyncio.ensure_future(receive())
        if tasks:
            window = asyncio.Semaphore(IN_FLIGHT)

            async def publish() -> None:
                async with window:
                    await pub.publish(name, PAYLOAD, qos=qos)

            await asyncio.gather(*(publish() for _ in range(count)))
        else:
            # A sliding window of IN_FLIGHT publishes, as `bench throughput`
            # keeps (waiting for whole batches would stall on the broker's
            # Nagle-delayed PUBACKs at the end of each).
            in_flight = collections.deque()
            for _ in range(count):
                if len(in_flight) == IN_FLIGHT:
                    await in_flight.popleft()
                in_flight.append(pub.publish_nowait(name, PAYLOAD, qos=qos))
            for future in in_flight:
                await future
        await receiving
        return count / (time.perf_counter() - started)


def blocking_throughput(url: str, count: int, qos: int) -> float:
    name = f"bench/{uuid.uuid4().hex}"
    with mqttbridge.Client(url) as sub, mqttbridge.Client(url, max_in_flight=IN_FLIGHT) as pub:
        sub.subscribe(name, qos=qos)
        missing = []

        def receive() -> None:
            for _ in range(count):
                if sub.recv(timeout=30) is None:
                    missing.append(1)
                    return

        receiver = threading.Thread(target=receive)
        started = time.perf_counter()
        receiver.start()
        if qos == 0:
            for _ in range(count):
                pub.publish(name, PAYLOAD)
        else:
            # IN_FLIGHT at once from this one thread, as `bench throughput`.
            window = collections.deque()
            for _ in range(count):
                if len(window) == IN_FLIGHT:
                    window.popleft().wait(timeout=30)
                window.append(pub.publish_nowait(name, PAYLOAD, qos=qos))
            for publication in window:
                publication.wait(timeout=30)
        receiver.join(timeout=60)
        if missing or receiver.is_alive():
            raise SystemExit(f"blocking QoS {qos}: a message did not arrive")
        return count / (time.perf_counter() - started)


def paho_throughput(url: str, count: int, qos: int) -> Optional[float]:
    """paho-mqtt 2.x with its network threads, IN_FLIGHT messages in
    flight at QoS 1; None when paho-mqtt is not installed."""
    try:
        import paho.mqtt.client as paho
    except ImportError:
        return None
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    name = f"bench/{uuid.uuid4().hex}"
    received = threading.Semaphore(0)
    subscribed = threading.Event()

    def client() -> "paho.Client":
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        c.max_inflight_messages_set(IN_FLIGHT)
        c.max_queued_messages_set(0)
        c.connect(host, int(port))
        c.loop_start()
        return c

    sub = client()
    sub.on_message = lambda *_: received.release()
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.subscribe(name, qos=qos)
    if not subscribed.wait(10):
        raise SystemExit("paho: no SUBACK")
    pub = client()
    started = time.perf_counter()
    infos = [pub.publish(name, PAYLOAD, qos=qos) for _ in range(count)]
    for _ in range(count):
        if not received.acquire(timeout=30):
            raise SystemExit(f"paho QoS {qos}: a message did not arrive")
    rate = count / (time.perf_counter() - started)
    for info in infos[-1:]:
        info.wait_for_publish(10)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return rate


def blocking_latency_p50_us(url: str, count: int) -> float:
    name = f"bench/{uuid.uuid4().hex}"
    samples = []
    with mqttbridge.Client(url) as client:
        client.subscribe(name)
        for n in range(count + 50):
            started = time.perf_counter()
            client.publish(name, PAYLOAD)
            if client.recv(timeout=10) is None:
                raise SystemExit("latency: a message did not arrive")
            if n >= 50:  # warm-up, as `bench latency` does
                samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--latency-count", type=int, default=2000)
    args = parser.parse_args()
    n = args.count
    rows = []
    against_blocking = []  # (QoS, asyncio window rate / blocking rate)
    with tempfile.TemporaryDirectory() as workdir:
        broker, url = (None, args.url) if args.url else start_mosquitto(workdir)
        try:
            for qos in (0, 1):
                base = rust(["throughput", "-L", url, "-p", "1", "-s", "1", "-q", str(qos),
                             "-n", str(n), "--inflight", str(IN_FLIGHT)])["delivery_rate"]
                async_rate = asyncio.run(asyncio_throughput(url, n, qos))
                blocking_rate = blocking_throughput(url, n, qos)
                paho = paho_throughput(url, n, qos)
                window = f"{IN_FLIGHT} in flight" if qos else "as fast as it goes"
                rows.append((f"QoS {qos} msg/s, asyncio, {window}", base, async_rate, paho))
                if qos:
                    rows.append((f"QoS {qos} msg/s, asyncio, a task per publish, {window}", base,
                                 asyncio.run(asyncio_throughput(url, n, qos, tasks=True)), paho))
                rows.append((f"QoS {qos} msg/s, blocking, {window}", base, blocking_rate, paho))
                against_blocking.append((qos, async_rate / blocking_rate))
            base_latency = rust(["latency", "-L", url, "-n", str(args.latency_count)])["latency"]["p50_us"]
            latency = blocking_latency_p50_us(url, args.latency_count)
        finally:
            if broker:
                broker.terminate()
                broker.wait(timeout=10)
    print(f"Python bindings against the Rust client (and paho-mqtt when installed), {url}, 16-byte payloads\n")
    print("| measure | Rust client (baseline) | Python | Python / Rust | paho-mqtt | Python / paho |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, base, ours, paho in rows:
        theirs = "-" if paho is None else f"{paho:,.0f} ({IN_FLIGHT} in flight)" if "QoS 1" in name else f"{paho:,.0f}"
        ratio = "-" if paho is None else f"{ours / paho:.2f}"
        print(f"| {name} | {base:,.0f} | {ours:,.0f} | {ours / base:.2f} | {theirs} | {ratio} |")
    print(f"| QoS 0 latency p50, us, one at a time | {base_latency:,.1f} | {latency:,.1f} | {latency / base_latency:.2f} | - | - |")
    print()
    print("asyncio / blocking: " + ", ".join(f"QoS {qos} {ratio:.2f}" for qos, ratio in against_blocking))


if __name__ == "__main__":
    main()
