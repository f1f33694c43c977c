"""What real brokers ask of a client, from Python: logins and ACLs, TLS
and WebSocket listeners, the Will, MQTT 5 properties and subscribe
options, reason strings, and the iteration and callback styles."""

import asyncio
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

import mqttbridge
from conftest import Broker, free_port
from mqttbridge import AsyncClient, Client, Properties, Will


def password_broker(tmp_path) -> Broker:
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-b", str(passwords), "alice", "s3cret:@"], check=True, timeout=30)
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite alice/#\n")
    return Broker(tmp_path, name="guarded",
                  extra=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n")


def test_logins_in_the_url_or_as_arguments(tmp_path):
    broker = password_broker(tmp_path)
    try:
        with Client(f"tcp://alice:s3cret%3A%40@127.0.0.1:{broker.port}") as client:
            client.subscribe("alice/#", qos=1)
            client.publish("alice/x", "mine", qos=1)
            assert client.recv(timeout=10).payload == b"mine"
            with pytest.raises(mqttbridge.RequestRejected) as denied:
                client.publish("bob/x", "not mine", qos=1)
            assert (denied.value.reason_code, denied.value.reason) == (0x87, "not authorized")
        for version, code in (("5", 0x87), ("3.1.1", 0x05)):
            with pytest.raises(mqttbridge.ConnectionRefused) as refused:
                Client(broker.url, version=version, username="alice", password="wrong").connect()
            assert refused.value.reason_code == code
            with pytest.raises(mqttbridge.ConnectionRefused) as refused:
                Client(broker.url, version=version).connect()
            assert refused.value.reason_code == code
        with Client(broker.url, username="alice", password=b"s3cret:@"):
            pass
    finally:
        broker.stop()
    with pytest.raises(ValueError, match="username"):
        Client(broker.url, version="3.1.1", password="alone")


def tls_broker(tmp_path, certs, require_certificate: bool):
    tls, wss, ws = free_port(), free_port(), free_port()
    files = (f"cafile {certs / 'ca.pem'}\ncertfile {certs / 'server.pem'}\n"
             f"keyfile {certs / 'server.key'}\nrequire_certificate {str(require_certificate).lower()}\n")
    extra = (f"allow_anonymous true\nlistener {tls} 127.0.0.1\n{files}"
             f"listener {wss} 127.0.0.1\nprotocol websockets\n{files}"
             f"listener {ws} 127.0.0.1\nprotocol websockets\n")
    name = "strict" if require_certificate else "tls"
    return Broker(tmp_path, name=name, extra=extra), tls, wss, ws


def round_trip(url: str, **settings) -> bytes:
    topic = f"secure/{uuid.uuid4().hex}"
    with Client(url, **settings) as client:
        client.subscribe(topic, qos=1)
        client.publish(topic, "over the wire", qos=1)
        return client.recv(timeout=10).payload


def test_tls_and_websocket_listeners(tmp_path, certs):
    ca = certs / "ca.pem"
    mine = {"certfile": certs / "client.pem", "keyfile": certs / "client.key"}
    broker, tls, wss, ws = tls_broker(tmp_path, certs, require_certificate=False)
    try:
        assert round_trip(f"mqtts://localhost:{tls}", cafile=ca) == b"over the wire"
        assert round_trip(f"mqtts://127.0.0.1:{tls}", capath=certs) == b"over the wire"
        assert round_trip(f"wss://localhost:{wss}/mqtt", cafile=ca) == b"over the wire"
        assert round_trip(f"ws://127.0.0.1:{ws}") == b"over the wire"
    finally:
        broker.stop()
    broker, tls, wss, _ = tls_broker(tmp_path, certs, require_certificate=True)
    try:
        assert round_trip(f"mqtts://localhost:{tls}", cafile=ca, **mine) == b"over the wire"
        assert round_trip(f"wss://localhost:{wss}", cafile=ca, **mine) == b"over the wire"
        with pytest.raises((mqttbridge.ConnectError, mqttbridge.ConnectionLost)):
            round_trip(f"mqtts://localhost:{tls}", cafile=ca)
    finally:
        broker.stop()


def test_the_will_comes_when_a_client_dies_not_when_it_leaves(broker, tmp_path):
    base = f"wills/{uuid.uuid4().hex}"
    script = textwrap.dedent(f"""
        import os, signal, sys
        import mqttbridge
        will = mqttbridge.Will({base!r} + "/" + sys.argv[1], "gone", qos=1,
                               properties=mqttbridge.Properties(content_type="text/plain"))
        client = mqttbridge.Client({broker.url!r}, will=will)
        client.connect()
        if sys.argv[1] == "polite":
            client.disconnect()
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    with Client(broker.url) as watcher:
        watcher.subscribe(f"{base}/#", qos=1)
        for name in ("polite", "killed"):
            subprocess.run([sys.executable, "-c", script, name], timeout=60, cwd=tmp_path)
        will = watcher.recv(timeout=10)
        assert (will.topic, will.payload) == (f"{base}/killed", b"gone")
        assert will.properties.content_type == "text/plain"
        assert watcher.recv(timeout=0.5) is None, "no Will after a clean disconnect"


def test_every_property_round_trips_typed_or_as_keywords(broker):
    topic = f"props/{uuid.uuid4().hex}"
    sent = Properties(payload_format_indicator=1, message_expiry_interval=60,
                      content_type="application/json", response_topic="replies/1",
                      correlation_data=b"\x00id\xff", user_properties=[("a", "1"), ("a", "2")])
    with Client(broker.url) as client:
        client.subscribe(topic, qos=2, subscription_identifier=11)
        client.publish(topic, "{}", qos=1, properties=sent)
        client.publish(topic, "{}", qos=2, content_type="text/plain", user_properties=[("k", "v")])
        first, second = client.recv(timeout=10), client.recv(timeout=10)
    got = first.properties
    assert (got.payload_format_indicator, got.message_expiry_interval) == (1, 60)
    assert (got.content_type, got.response_topic) == ("application/json", "replies/1")
    assert got.correlation_data == b"\x00id\xff"
    assert got.user_properties == [("a", "1"), ("a", "2")]
    assert got.subscription_identifiers == [11]
    assert second.properties.content_type == "text/plain"
    assert second.properties.user_properties == [("k", "v")]


def test_subscribe_options(broker):
    base = f"opts/{uuid.uuid4().hex}"
    with Client(broker.url) as client, Client(broker.url) as other:
        client.publish(f"{base}/kept", "retained", qos=1, retain=True)
        client.subscribe(f"{base}/#", qos=1, no_local=True, retain_handling=2)
        client.publish(f"{base}/own", "own", qos=1)
        other.publish(f"{base}/theirs", "theirs", qos=1)
        assert client.recv(timeout=10).payload == b"theirs"
        other.subscribe(f"{base}/#", qos=1, retain_as_published=True)
        kept = other.recv(timeout=10)
        assert (kept.payload, kept.retain) == (b"retained", True)
    with pytest.raises(ValueError, match="retain handling"):
        Client(broker.url).subscribe("x", retain_handling=3)


def test_disconnect_properties_end_a_kept_session(broker):
    base = f"leave/{uuid.uuid4().hex}"
    kept = dict(client_id=f"kept-{uuid.uuid4().hex[:8]}", clean_start=False, session_expiry=60)

    def queued_first() -> str:
        """The topic of the first message the kept session gets: the one
        published while away if the session survived, else the marker."""
        with Client(broker.url) as other:
            other.publish(f"{base}/away", "while away", qos=1)
        with Client(broker.url, **kept) as client:
            client.subscribe(f"{base}/marker", qos=1)
            client.publish(f"{base}/marker", "marker", qos=1)
            message = client.recv(timeout=10)
            client.disconnect(session_expiry=0)
            return message.topic

    with Client(broker.url, **kept) as client:
        client.subscribe(f"{base}/away", qos=1)
        client.subscribe(f"{base}/gone", qos=1)
        client.unsubscribe(f"{base}/gone", user_properties=[("why", "test")])
    assert queued_first() == f"{base}/away"  # left with its expiry of 60 s

    client = Client(broker.url, **kept)
    client.connect()
    client.subscribe(f"{base}/away", qos=1)
    client.disconnect(session_expiry=0, reason_string="done", user_properties=[("k", "v")])
    assert queued_first() == f"{base}/marker"  # the session ended with the connection

    async def leave_async() -> None:
        async with AsyncClient(broker.url) as client:
            await client.unsubscribe(f"{base}/none", user_properties=[("k", "v")])
        client = AsyncClient(broker.url)
        await client.connect()
        with pytest.raises(mqttbridge.InvalidRequest, match="expiry of 0"):
            await client.disconnect(session_expiry=5)
        await client.disconnect()

    asyncio.run(leave_async())


def test_invalid_requests_say_what_is_wrong(broker):
    with Client(broker.url) as client:
        with pytest.raises(mqttbridge.InvalidRequest,
                           match="invalid topic 'a/#': wildcards are not allowed in a PUBLISH topic"):
            client.publish("a/#", "x")
        with pytest.raises(ValueError, match="topic filter"):
            client.subscribe("a/#/b")
        client.publish("still/fine", "x", qos=1)


def test_messages_iterate_until_disconnect_and_on_message_calls_back(broker):
    topic = f"iter/{uuid.uuid4().hex}"
    called = []
    done = threading.Event()

    def on_message(message: mqttbridge.Message) -> None:
        called.append(message.payload)
        if len(called) == 3:
            done.set()

    with Client(broker.url, on_message=on_message) as listener, Client(broker.url) as client:
        listener.subscribe(topic, qos=1)
        client.subscribe(topic, qos=1)
        for n in range(3):
            client.publish(topic, f"{n}", qos=1)
        got = [m.payload for m, _ in zip(client.messages(timeout=10), range(3))]
        assert done.wait(10)
    assert got == called == [b"0", b"1", b"2"]

    async def scenario():
        seen = []
        async with AsyncClient(broker.url) as client:
            await client.subscribe(topic, qos=1)
            for n in range(3):
                await client.publish(topic, f"{n}", qos=1)
            async for message in client.messages(timeout=10):
                seen.append(message.payload)
                if len(seen) == 3:
                    break
        async_called = asyncio.Queue()
        async with AsyncClient(broker.url, on_message=async_called.put) as client:
            await client.subscribe(topic, qos=1)
            await client.publish(topic, "to the callback", qos=1)
            message = await asyncio.wait_for(async_called.get(), 10)
        return seen, message.payload

    seen, via_callback = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert seen == [b"0", b"1", b"2"]
    assert via_callback == b"to the callback"


def test_a_cancelled_async_recv_loses_no_message(broker):
    topic = f"cancel/{uuid.uuid4().hex}"

    async def scenario():
        async with AsyncClient(broker.url) as client:
            await client.subscribe(topic, qos=1)
            got = []
            for n in range(20):
                # Gives up waiting (as asyncio.wait_for does) before the
                # message comes: the message stays for the next recv. A
                # recv that found a message at once has it as its result.
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                if waiting.done():
                    got.append(waiting.result())
                else:
                    waiting.cancel()
                await client.publish(topic, f"{n}", qos=1)
            got += [(await client.recv(timeout=10)) for _ in range(20 - len(got))]
            leftover = await client.recv(timeout=0.2)
            return got, leftover

    got, leftover = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sorted(m.payload for m in got) == sorted(f"{n}".encode() for n in range(20))
    assert leftover is None


def test_reason_strings_reach_python_when_the_broker_sends_them():
    """mosquitto sends no reason strings, so a peer that answers CONNECT
    the way brokers that do (EMQX, HiveMQ) answer a bad password."""
    reason = b"bad password, try again"
    properties = b"\x1f" + len(reason).to_bytes(2, "big") + reason
    body = b"\x00\x86" + bytes([len(properties)]) + properties
    connack = b"\x20" + bytes([len(body)]) + body
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(connack)
            conn.recv(1024)

    peer = threading.Thread(target=answer, daemon=True)
    peer.start()
    with pytest.raises(mqttbridge.ConnectionRefused) as refused:
        Client(f"tcp://127.0.0.1:{port}", username="u", password="p").connect()
    peer.join(timeout=10)
    server.close()
    assert refused.value.reason_code == 0x86
    assert refused.value.reason == "bad user name or password"
    assert refused.value.reason_string == "bad password, try again"
    assert "bad password, try again" in str(refused.value)


def test_publish_nowait_keeps_many_in_flight_from_one_thread(broker):
    topic = f"nowait/{uuid.uuid4().hex}"
    with Client(broker.url, max_in_flight=8) as client:
        client.subscribe(topic, qos=1)
        started = [client.publish_nowait(topic, f"{n}", qos=1) for n in range(200)]
        for publication in started:
            publication.wait(timeout=10)
        assert all(p.done() for p in started)
        got = {client.recv(timeout=10).payload for _ in range(200)}
        assert got == {f"{n}".encode() for n in range(200)}
        with pytest.raises(mqttbridge.InvalidRequest):
            client.publish_nowait("a/+", "x", qos=1).wait(timeout=10)
