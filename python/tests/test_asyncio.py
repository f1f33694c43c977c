"""mqttbridge.AsyncClient under asyncio, on every line to the broker."""

import asyncio
import signal
import time
import uuid

import pytest

import mqttbridge
from mqttbridge import AsyncClient


def run(coroutine, limit: float = 60.0):
    return asyncio.run(asyncio.wait_for(coroutine, limit))


def test_round_trip_at_every_qos(line):
    url, settings = line
    base = f"test/{uuid.uuid4().hex}"

    async def scenario():
        async with AsyncClient(url, **settings) as sub, AsyncClient(url, **settings) as pub:
            assert await sub.subscribe(f"{base}/#", qos=2) == 2
            for qos in (0, 1, 2):
                await pub.publish(f"{base}/{qos}", f"async {qos}", qos=qos)
            return [await sub.recv(timeout=10) for _ in range(3)]

    got = run(scenario())
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"{base}/{qos}", f"async {qos}".encode(), qos) for qos in (0, 1, 2)
    ]


def test_concurrent_publishes_all_arrive(broker):
    name = f"test/{uuid.uuid4().hex}"

    async def scenario():
        async with AsyncClient(broker.url) as sub, AsyncClient(broker.url) as pub:
            await sub.subscribe(name, qos=1)
            await asyncio.gather(*(pub.publish(name, f"{n}", qos=1) for n in range(500)))
            return {(await sub.recv(timeout=10)).payload for _ in range(500)}

    assert run(scenario()) == {f"{n}".encode() for n in range(500)}


def test_recv_gives_way_to_other_tasks_and_times_out(broker):
    name = f"test/{uuid.uuid4().hex}"

    async def scenario():
        async with AsyncClient(broker.url) as sub, AsyncClient(broker.url) as pub:
            await sub.subscribe(name, qos=1)
            waiting = asyncio.ensure_future(sub.recv(timeout=10))
            await pub.publish(name, "while recv waits", qos=1)  # runs while recv is pending
            first = await waiting
            empty = await sub.recv(timeout=0.2)
            return first, empty

    first, empty = run(scenario())
    assert (first.payload, empty) == (b"while recv waits", None)


def test_errors_are_the_same_exceptions(tmp_path):
    from conftest import Broker

    strict = Broker(tmp_path, name="strict", extra="allow_anonymous false\n")
    try:
        with pytest.raises(mqttbridge.ConnectionRefused) as refused:
            run(AsyncClient(strict.url).connect())
    finally:
        strict.stop()
    assert refused.value.reason_code == 0x87
    with pytest.raises(mqttbridge.ClientClosed):
        run(AsyncClient(strict.url).publish("t", "m"))


def test_a_stalled_broker_times_out_an_async_publish(own_broker):
    async def scenario():
        async with AsyncClient(own_broker.url, timeout=1.0) as client:
            own_broker.process.signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(mqttbridge.RequestTimeout, match="publish did not finish"):
                    await client.publish("stalled", "stuck", qos=1)
                return time.monotonic() - started
            finally:
                own_broker.process.signal(signal.SIGCONT)

    assert 0.9 < run(scenario()) < 5


def test_publish_nowait_keeps_a_window_in_flight_without_tasks(broker):
    name = f"test/{uuid.uuid4().hex}"

    async def scenario():
        async with AsyncClient(broker.url, max_in_flight=8) as sub, AsyncClient(broker.url) as pub:
            await sub.subscribe(name, qos=1)
            window = []
            for n in range(300):
                if len(window) == 8:
                    await window.pop(0)
                window.append(pub.publish_nowait(name, f"{n}", qos=1))
            await asyncio.gather(*window)
            with pytest.raises(mqttbridge.InvalidRequest):
                await pub.publish_nowait("a/#", "x", qos=1)
            return [(await sub.recv(timeout=10)).payload for _ in range(300)]

    assert run(scenario()) == [f"{n}".encode() for n in range(300)]
