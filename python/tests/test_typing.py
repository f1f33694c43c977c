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
            message = await client.recv()
            return "" if message is None else message.topic
    except mqttbridge.RequestRejected as e:
        code: Optional[int] = e.reason_code
        return str(code)
    except mqttbridge.RequestTimeout:
        return "slow"


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
