"""mqttbridge.Client (blocking) against a real mosquitto, directly over
TCP, through mqttbridge's QUIC listener and through scion-quic over a
pocketscion SCION network."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

import mqttbridge
from mqttbridge import Client

from conftest import Broker


def topic() -> str:
    return f"test/{uuid.uuid4().hex}"


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_every_qos_arrives_with_its_topic_payload_and_qos(line, version):
    url, settings = line
    base = topic()
    with Client(url, version=version, **settings) as sub, Client(url, version=version, **settings) as pub:
        assert sub.subscribe(f"{base}/#", qos=2) == 2
        for qos in (0, 1, 2):
            pub.publish(f"{base}/{qos}", f"payload at QoS {qos}", qos=qos)
        got = [sub.recv(timeout=10) for _ in range(3)]
    assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
        (f"{base}/{qos}", f"payload at QoS {qos}".encode(), qos, False) for qos in (0, 1, 2)
    ]


def test_bytes_bytearray_and_large_payloads_arrive_unchanged(broker):
    name = topic()
    payloads = [b"\x00\xff binary \x00", bytearray(b"from a bytearray"), os.urandom(1024 * 1024)]
    with Client(broker.url) as client:
        client.subscribe(name, qos=1)
        for payload in payloads:
            client.publish(name, payload, qos=1)
        assert [client.recv(timeout=10).payload for _ in payloads] == [bytes(p) for p in payloads]


def test_retained_message_reaches_a_later_subscriber(broker):
    name = topic()
    with Client(broker.url) as pub:
        pub.publish(name, "kept", qos=1, retain=True)
    with Client(broker.url) as sub:
        sub.subscribe(name, qos=1)
        message = sub.recv(timeout=10)
        assert (message.payload, message.retain) == (b"kept", True)
        sub.publish(name, b"", qos=1, retain=True)  # clears it


def test_recv_returns_none_when_the_timeout_passes(broker):
    with Client(broker.url) as client:
        client.subscribe(topic())
        started = time.monotonic()
        assert client.recv(timeout=0.3) is None
        assert 0.25 < time.monotonic() - started < 5


def test_unsubscribed_filter_gets_nothing_more(broker):
    base = topic()
    with Client(broker.url) as client:
        client.subscribe(f"{base}/dropped", qos=1)
        client.subscribe(f"{base}/kept", qos=1)
        client.unsubscribe(f"{base}/dropped")
        client.publish(f"{base}/dropped", "not for us", qos=1)
        client.publish(f"{base}/kept", "for us", qos=1)
        # Same publisher, same connection: had the first arrived, it would come first.
        assert client.recv(timeout=10).topic == f"{base}/kept"


def test_reconnects_after_disconnect(broker):
    name = topic()
    client = Client(broker.url)
    client.connect()
    client.disconnect()
    with pytest.raises(mqttbridge.ClientClosed):
        client.publish(name, "after disconnect")
    client.connect()
    client.subscribe(name)
    client.publish(name, "again")
    assert client.recv(timeout=10).payload == b"again"
    client.disconnect()


def test_calls_before_connect_raise_client_closed(broker):
    client = Client(broker.url)
    for call in (lambda: client.publish("t", "m"), lambda: client.subscribe("t"), lambda: client.recv(0)):
        with pytest.raises(mqttbridge.ClientClosed, match="call connect"):
            call()
    client.disconnect()  # nothing to do, no error


@pytest.mark.parametrize(
    "version, code, reason", [("5", 0x87, "not authorized"), ("3.1.1", 0x05, "not authorized")]
)
def test_refused_connection_carries_the_connack_reason(tmp_path, version, code, reason):
    strict = Broker(tmp_path, name="strict", extra="allow_anonymous false\n")
    try:
        with pytest.raises(mqttbridge.ConnectionRefused) as refused:
            Client(strict.url, version=version).connect()
    finally:
        strict.stop()
    assert (refused.value.reason_code, refused.value.reason) == (code, reason)
    assert f"{code:#04x} {reason}" in str(refused.value)


@pytest.mark.parametrize("qos, answer", [(1, "PUBACK"), (2, "PUBREC")])
def test_refused_publish_carries_the_reason(tmp_path, qos, answer):
    """MQTT 5: mosquitto answers a publish its ACL forbids with 0x87 in the
    PUBACK (QoS 1) or PUBREC (QoS 2); the call raises with that reason."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite public/#\n")
    guarded = Broker(tmp_path, name="guarded", extra=f"allow_anonymous true\nacl_file {acl}\n")
    try:
        with Client(guarded.url) as client:
            client.publish("public/news", "allowed", qos=qos)
            with pytest.raises(mqttbridge.RequestRejected) as rejected:
                client.publish("secret/plans", "forbidden", qos=qos)
            client.publish("public/news", "the connection goes on", qos=qos)
    finally:
        guarded.stop()
    assert (rejected.value.reason_code, rejected.value.reason) == (0x87, "not authorized"), answer


def test_nothing_listening_is_a_connect_error():
    with pytest.raises(mqttbridge.ConnectError, match="refused"):
        Client("tcp://127.0.0.1:1").connect()


def test_quic_server_certificate_is_checked(quic_url):
    # No cafile: the system's roots do not know the test CA.
    with pytest.raises(mqttbridge.ConnectError, match="unknown CA"):
        Client(quic_url, timeout=20).connect()


def test_quic_server_checked_by_its_ip_address(quic_url, certs):
    by_ip = quic_url.replace("localhost", "127.0.0.1")
    cafile = str(certs / "ca.pem")
    with Client(by_ip, cafile=cafile, timeout=20) as client:
        client.publish(topic(), "reached by IP", qos=1)
    with pytest.raises(mqttbridge.ConnectError, match="name mismatch.*'broker.example'"):
        Client(by_ip, cafile=cafile, server_name="broker.example", timeout=20).connect()


def test_lost_broker_ends_recv_and_calls_then_connect_works_again(own_broker):
    name = topic()
    client = Client(own_broker.url)
    client.connect()
    client.subscribe(name)
    own_broker.stop()
    with pytest.raises(mqttbridge.ConnectionLost):
        client.recv(timeout=10)
    with pytest.raises(mqttbridge.ConnectionLost):
        client.publish(name, "into the void", qos=1)
    own_broker.start()
    client.connect()
    client.subscribe(name)
    client.publish(name, "back", qos=1)
    assert client.recv(timeout=10).payload == b"back"
    client.disconnect()


def test_reconnect_true_rides_out_a_broker_restart(own_broker):
    name = topic()
    with Client(own_broker.url, reconnect=True) as client:
        client.subscribe(name, qos=1)
        own_broker.stop()
        own_broker.start()
        # The publish waits for the reconnection; the subscription is restored.
        client.publish(name, "after the restart", qos=1)
        assert client.recv(timeout=20).payload == b"after the restart"


def test_a_stalled_broker_times_out_the_call(own_broker):
    client = Client(own_broker.url, timeout=1.0)
    client.connect()
    own_broker.process.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(mqttbridge.RequestTimeout) as timed_out:
            client.publish(topic(), "stuck", qos=1)
        assert 0.9 < time.monotonic() - started < 5
        assert isinstance(timed_out.value, TimeoutError)
    finally:
        own_broker.process.signal(signal.SIGCONT)
    client.disconnect()


def test_bad_settings_are_refused_before_connecting(broker):
    with pytest.raises(ValueError, match="scheme"):
        Client("http://127.0.0.1:1883")
    with pytest.raises(ValueError, match="version"):
        Client(broker.url, version="4")
    with pytest.raises(ValueError, match="keep_alive"):
        Client(broker.url, keep_alive=-1)
    with pytest.raises(ValueError, match="SNAP token"):
        Client("scion-quic://[1-ff00:0:110,127.0.0.1]:4433", snap_token_file="/nonexistent/token")
    with Client(broker.url) as client:
        with pytest.raises(ValueError, match="qos"):
            client.publish("t", "m", qos=3)
        with pytest.raises(TypeError, match="payload"):
            client.publish("t", 42)


def test_ctrl_c_interrupts_a_blocking_recv(broker):
    # Python keeps SIGINT ignored when it starts with it ignored (a test
    # command run in the background by a shell): the child takes Ctrl-C as
    # an interactive Python does.
    script = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import mqttbridge\n"
        f"c = mqttbridge.Client({broker.url!r}); c.connect(); c.subscribe('nothing/comes')\n"
        "try:\n    print('waiting', flush=True)\n    c.recv()\n"
        "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "waiting\n"
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    assert out == "interrupted\n"


def test_clients_in_one_process_share_the_scion_network(scion):
    """Two clients over SCION at once from one process (one SCION stack)."""
    settings = dict(scion)
    url = settings.pop("url")
    del settings["child_snap_token_file"]
    name = topic()
    with Client(url, **settings) as sub, Client(url, **settings) as pub:
        sub.subscribe(name, qos=1)
        for n in range(20):
            pub.publish(name, f"{n}", qos=1)
        assert [sub.recv(timeout=10).payload for _ in range(20)] == [f"{n}".encode() for n in range(20)]
