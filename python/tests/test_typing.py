"""The package's types (inline annotations and the native module's .pyi
stub) as a type checker sees them: code that uses the API right passes
mypy --strict, code that uses it wrong is flagged."""

import subprocess
import sys
import textwrap

RIGHT = '''
import asyncio
from typing import Optional

import mqttbridge
from mqttbridge import AsyncClient, Client, Message


def blocking(url: str) -> Optional[bytes]:
    with Client(url, version="3.1.1", keep_alive=10.0, timeout=None) as client:
        granted: int = client.subscribe("a/#", qos=1)
        client.publish("a/b", b"bytes", qos=granted, retain=False)
        client.unsubscribe("a/#")
        message: Optional[Message] = client.recv(timeout=1.5)
        return None if message is None else message.payload


async def concurrent(url: str) -> str:
    try:
        async with AsyncClient(url, cafile="ca.pem") as client:
            await client.publish("a", "text")
            await client.publish_nowait("a", b"bytes", qos=1)
            message = await client.recv()
            return "" if message is None else message.topic
    except mqttbridge.RequestRejected as e:
        code: Optional[int] = e.reason_code
        return str(code)
    except mqttbridge.RequestTimeout:
        return "slow"


def mqtt5(url: str) -> list[str]:
    will = mqttbridge.Will("wills/me", b"gone", qos=1, delay_interval=5,
                           properties=mqttbridge.Properties(content_type="text/plain"))
    seen: list[str] = []
    with Client(url, username="alice", password=b"pw", will=will, session_expiry=60.0,
                 user_properties=[("a", "b")], on_message=lambda m: seen.append(m.topic)) as client:
        client.subscribe("a/#", qos=2, no_local=True, retain_handling=2, subscription_identifier=7)
        props = mqttbridge.Properties(user_properties=[("k", "v")], correlation_data=b"id")
        client.publish("a/b", "x", qos=1, properties=props, content_type="text/plain")
        pending: mqttbridge.Publication = client.publish_nowait("a/c", b"y", qos=1)
        pending.wait(timeout=5.0)
        for message in client.messages(timeout=1.0):
            alias: Optional[int] = message.properties.topic_alias
            ids: list[int] = message.properties.subscription_identifiers
            seen.append(f"{alias} {ids} {message.properties.correlation_data!r}")
    return seen


async def iterate(url: str) -> Optional[str]:
    async with AsyncClient(url) as client:
        async for message in client.messages(timeout=1.0):
            return message.properties.content_type
    return None


def rejected(e: mqttbridge.MqttError) -> Optional[str]:
    return e.reason_string


asyncio.run(concurrent("quic://localhost:14567"))
'''

WRONG = '''
from mqttbridge import Client

client = Client("tcp://127.0.0.1:1883", keep_alive="30")
client.publish("a", 42)
topic: int = client.recv().topic
'''


def mypy(tmp_path, name: str, code: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


def test_right_use_passes_mypy_strict(tmp_path):
    checked = mypy(tmp_path, "right", RIGHT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_wrong_use_is_flagged(tmp_path):
    checked = mypy(tmp_path, "wrong", WRONG)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    out = checked.stdout
    assert 'Argument "keep_alive" to "Client" has incompatible type "str"' in out, out
    assert 'Argument 2 to "publish" of "Client" has incompatible type "int"' in out, out
    assert 'Item "None" of "Message | None" has no attribute "topic"' in out, out
