"""The Python bindings against the Rust client on the same broker, in one
run: throughput (QoS 1, one publisher, one subscriber) and one-at-a-time
latency (QoS 0), each printed as a ratio to `mqttbridge bench` (the Rust
client library, the baseline).

    python bench/python.py [--url tcp://host:port] [--count 20000]

Run it with the Python that has the package (`pip install ./python`);
without --url it starts mosquitto on a free port. MQTTBRIDGE_BIN names
the mqttbridge binary (default: the workspace's release build, else dev).
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
import uuid

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
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nset_tcp_nodelay true\n")
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


async def asyncio_throughput(url: str, count: int) -> float:
    name = f"bench/{uuid.uuid4().hex}"
    async with mqttbridge.AsyncClient(url) as sub, mqttbridge.AsyncClient(url, max_in_flight=IN_FLIGHT) as pub:
        await sub.subscribe(name, qos=1)
        payload = b"x" * 16

        async def receive() -> None:
            for _ in range(count):
                if await sub.recv(timeout=30) is None:
                    raise SystemExit("asyncio: a message did not arrive")

        # A sliding window of IN_FLIGHT publishes, as `bench throughput`
        # keeps (waiting for whole batches would stall on the broker's
        # Nagle-delayed PUBACKs at the end of each).
        window = asyncio.Semaphore(IN_FLIGHT)

        async def publish() -> None:
            async with window:
                await pub.publish(name, payload, qos=1)

        started = time.perf_counter()
        receiving = asyncio.ensure_future(receive())
        await asyncio.gather(*(publish() for _ in range(count)))
        await receiving
        return count / (time.perf_counter() - started)


def blocking_throughput(url: str, count: int) -> float:
    name = f"bench/{uuid.uuid4().hex}"
    with mqttbridge.Client(url) as sub, mqttbridge.Client(url) as pub:
        sub.subscribe(name, qos=1)
        missing = []

        def receive() -> None:
            for _ in range(count):
                if sub.recv(timeout=30) is None:
                    missing.append(1)
                    return

        receiver = threading.Thread(target=receive)
        started = time.perf_counter()
        receiver.start()
        for _ in range(count):
            pub.publish(name, b"x" * 16, qos=1)  # waits for each PUBACK
        receiver.join(timeout=60)
        if missing or receiver.is_alive():
            raise SystemExit("blocking: a message did not arrive")
        return count / (time.perf_counter() - started)


def blocking_latency_p50_us(url: str, count: int) -> float:
    name = f"bench/{uuid.uuid4().hex}"
    samples = []
    with mqttbridge.Client(url) as client:
        client.subscribe(name)
        for n in range(count + 50):
            started = time.perf_counter()
            client.publish(name, b"x" * 16)
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
    with tempfile.TemporaryDirectory() as workdir:
        broker, url = (None, args.url) if args.url else start_mosquitto(workdir)
        try:
            base = rust(["throughput", "-L", url, "-p", "1", "-s", "1", "-q", "1",
                         "-n", str(args.count), "--inflight", str(IN_FLIGHT)])["delivery_rate"]
            base_latency = rust(["latency", "-L", url, "-n", str(args.latency_count)])["latency"]["p50_us"]
            async_rate = asyncio.run(asyncio_throughput(url, args.count))
            blocking_rate = blocking_throughput(url, min(args.count, 5000))
            latency = blocking_latency_p50_us(url, args.latency_count)
        finally:
            if broker:
                broker.terminate()
                broker.wait(timeout=10)
    print(f"Python bindings against the Rust client, {url}, 16-byte payloads\n")
    print("| measure | Rust client (baseline) | Python | Python / Rust |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| QoS 1 msg/s, asyncio, {IN_FLIGHT} in flight | {base:,.0f} | {async_rate:,.0f} | {async_rate / base:.2f} |")
    print(f"| QoS 1 msg/s, blocking, 1 in flight | {base:,.0f} | {blocking_rate:,.0f} | {blocking_rate / base:.2f} |")
    print(f"| QoS 0 latency p50, us, one at a time | {base_latency:,.1f} | {latency:,.1f} | {latency / base_latency:.2f} |")


if __name__ == "__main__":
    main()
