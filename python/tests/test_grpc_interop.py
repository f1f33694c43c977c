"""The gRPC line's HTTP/2 (our own, src/net/http2) checked by another
implementation: gRPC's C core (grpcio) as a client of the s-proxy's server
(the health service: unary, server streaming, a cancelled stream, many
calls on one connection with metadata growing past HPACK's table) and as
the server the r-proxy's client probes (its /readyz follows what grpcio's
health servicer says). Here because grpcio comes from PyPI."""

import time
import urllib.error
import urllib.request
from concurrent import futures
from typing import Callable, Optional

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import WAIT, Process, free_port

RELAY = "mqtt.MqttRelayService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def eventually(what: str, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {WAIT} s: {what}")


@pytest.fixture
def s_proxy(binary, broker, tmp_path):
    proxy = Process("s-proxy", [
        binary, "--log-format", "json", "s-proxy",
        "--listen", "127.0.0.1:0", "--broker", f"127.0.0.1:{broker.port}",
    ], tmp_path)
    yield proxy.listen_address()
    proxy.stop()


def test_grpcio_calls_the_s_proxys_health_service(s_proxy) -> None:
    with grpc.insecure_channel(s_proxy) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def check(service: str, **kwargs) -> int:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5, **kwargs).status

        eventually("the s-proxy serving (its broker answered)", lambda: check("") == SERVING)
        assert check(RELAY) == SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            check("no.such.Service")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        # One connection, 200 calls, metadata up to 4 KB: HPACK's dynamic
        # table fills and evicts, header blocks grow past a frame's worth.
        for n in range(200):
            assert check("", metadata=[("x-pad", "v" * (n * 20)), ("x-n", str(n))]) == SERVING
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == SERVING
        watch.cancel()
        assert check("") == SERVING, "the connection outlives a cancelled stream"


def test_the_r_proxy_probes_a_grpcio_server(binary, tmp_path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set(RELAY, SERVING)
    admin = free_port()
    r_proxy = Process("r-proxy", [
        binary, "--log-format", "json", "r-proxy", "--listen", "127.0.0.1:0",
        "--upstream", f"http://127.0.0.1:{port}", "--upstream-probe-ms", "200",
        "--admin", f"127.0.0.1:{admin}",
    ], tmp_path)

    def ready() -> Optional[int]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    try:
        eventually("ready while grpcio's server says SERVING", lambda: ready() == 200)
        servicer.set(RELAY, NOT_SERVING)
        eventually("not ready once it says NOT_SERVING", lambda: ready() == 503)
        servicer.set(RELAY, SERVING)
        eventually("ready again", lambda: ready() == 200)
    finally:
        r_proxy.stop()
        server.stop(0)
