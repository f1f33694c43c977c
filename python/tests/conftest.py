"""Real parts for the Python client's tests: mosquitto on an ephemeral
port, mqttbridge's QUIC listener in front of it, and a SCION network
(mqttbridge pocketscion) with scion-quic in one AS. Each is a process of
its own; a missing binary fails the tests, it never skips them."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from typing import Callable, Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WAIT = 15.0  # seconds any process gets to come up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mqttbridge_binary() -> str:
    """MQTTBRIDGE_BIN, else the dev build in the workspace's target directory."""
    path = os.environ.get("MQTTBRIDGE_BIN")
    if not path:
        meta = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        path = str(pathlib.Path(json.loads(meta.stdout)["target_directory"]) / "debug" / "mqttbridge")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no mqttbridge binary at {path}: run `cargo build` or set MQTTBRIDGE_BIN")
    return path


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not path:
        pytest.fail("mosquitto is not installed (scripts/install-deps.sh installs it)")
    return path


class Process:
    """A child process with its output in files; stopped at teardown."""

    def __init__(self, name: str, argv: list, workdir: pathlib.Path):
        self.name = name
        self.stdout = workdir / f"{name}.out"
        self.stderr = workdir / f"{name}.log"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err)

    def wait_line(self, which: pathlib.Path, match: Callable[[str], Optional[str]]) -> str:
        """The first value `match` finds in a line of `which`, polled until WAIT."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for line in which.read_text(errors="replace").splitlines():
                found = match(line)
                if found is not None:
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"{self.name}: nothing expected in {which.name}: {which.read_text()[-2000:]}")

    def listen_address(self) -> str:
        """The `listen` field of an mqttbridge mode's JSON 'serving' log line."""

        def listen(line: str) -> Optional[str]:
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                return None
            return fields.get("listen") if "serving" in fields.get("message", "") else None

        return self.wait_line(self.stderr, listen)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class Broker:
    """mosquitto on 127.0.0.1 at an ephemeral port."""

    def __init__(self, workdir: pathlib.Path, name: str = "mosquitto", extra: str = "", port: int = 0):
        self.workdir = workdir
        self.name = name
        self.extra = extra
        self.port = port or free_port()
        self.start()

    def start(self) -> None:
        conf = self.workdir / f"{self.name}.conf"
        # `user root`: started as root, mosquitto would otherwise drop to a
        # user that cannot read the test's private files (ACLs).
        conf.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser root\n{self.extra}")
        self.process = Process(self.name, [mosquitto_binary(), "-c", str(conf)], self.workdir)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.process.stderr.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {self.port} within {WAIT} s")

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("mqttbridge")


@pytest.fixture(scope="session")
def binary() -> str:
    return mqttbridge_binary()


@pytest.fixture(scope="session")
def certs(binary, workdir) -> pathlib.Path:
    out = workdir / "certs"
    subprocess.run([binary, "certs", "--out", str(out), "--name", "localhost",
                    "--name", "127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture(scope="session")
def broker(workdir):
    broker = Broker(workdir, extra="allow_anonymous true\n")
    yield broker
    broker.stop()


@pytest.fixture
def own_broker(tmp_path):
    """A broker for one test, to stop, pause or restart."""
    broker = Broker(tmp_path, extra="allow_anonymous true\n")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def quic_url(binary, workdir, broker, certs):
    """quic://localhost:PORT: mqttbridge scion-quic on UDP/IP in front of the broker."""
    proxy = Process("quic-listener", [
        binary, "--log-format", "json", "scion-quic", "--transport", "quic",
        "--listen", "127.0.0.1:0", "--broker", f"127.0.0.1:{broker.port}",
        "--cert", str(certs / "server.pem"), "--key", str(certs / "server.key"),
    ], workdir)
    port = proxy.listen_address().rsplit(":", 1)[1]
    yield f"quic://localhost:{port}"
    proxy.stop()


@pytest.fixture(scope="session")
def scion(binary, workdir, broker, certs):
    """A SCION network (pocketscion, two ASes) with scion-quic in
    2-ff00:0:212; the client side's settings are in 1-ff00:0:132 (with
    `child_snap_token_file` for clients in another process)."""
    # A token for scion-quic, one for this process's clients and one for a
    # child process's, as separate hosts would have.
    tokens = [workdir / f"{name}.token" for name in ("proxy", "client", "child")]
    proxy_token, client_token, child_token = tokens
    network = Process("pocketscion", [binary, "pocketscion"] + [
        arg for token in tokens for arg in ("--snap-token-file", str(token))
    ], workdir)
    apis = {}

    def api(line: str) -> Optional[str]:
        words = line.split()
        if len(words) == 3 and words[0] == "endhost-api":
            apis[words[1]] = words[2]
        return "ok" if len(apis) == 2 else None

    network.wait_line(network.stdout, api)
    proxy = Process("scion-quic", [
        binary, "--log-format", "json", "scion-quic", "--transport", "scion",
        "--endhost-api", apis["2-ff00:0:212"], "--snap-token-file", str(proxy_token),
        "--broker", f"127.0.0.1:{broker.port}",
        "--cert", str(certs / "server.pem"), "--key", str(certs / "server.key"),
    ], workdir)
    address = proxy.listen_address()
    yield {
        "url": f"scion-quic://{address}",
        "endhost_api": apis["1-ff00:0:132"],
        "snap_token_file": str(client_token),
        "child_snap_token_file": str(child_token),
        "cafile": str(certs / "ca.pem"),
    }
    proxy.stop()
    network.stop()


@pytest.fixture(params=["tcp", "quic", "scion-quic"])
def line(request, broker, certs):
    """Settings for each way to the broker: URL plus keyword arguments."""
    if request.param == "tcp":
        return broker.url, {}
    if request.param == "quic":
        return request.getfixturevalue("quic_url"), {"cafile": str(certs / "ca.pem")}
    settings = dict(request.getfixturevalue("scion"))
    del settings["child_snap_token_file"]
    return settings.pop("url"), settings
