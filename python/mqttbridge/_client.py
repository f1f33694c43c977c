"""``Client`` (blocking calls) and ``AsyncClient`` (asyncio): thin wrappers
around the native session, which runs the connection on a background tokio
runtime. Both take the same settings."""

import os
from typing import Optional, Union

from . import _native
from ._native import Message

Payload = Union[str, bytes, bytearray]
PathLike = Union[str, "os.PathLike[str]"]


class _Settings:
    def __init__(
        self,
        url: str,
        *,
        client_id: Optional[str] = None,
        version: str = "5",
        clean_start: bool = True,
        session_expiry: float = 0.0,
        keep_alive: float = 30.0,
        timeout: Optional[float] = 30.0,
        reconnect: bool = False,
        cafile: Optional[PathLike] = None,
        insecure: bool = False,
        certfile: Optional[PathLike] = None,
        keyfile: Optional[PathLike] = None,
        server_name: Optional[str] = None,
        endhost_api: Optional[str] = None,
        snap_token_file: Optional[PathLike] = None,
        queue_depth: int = 256,
        max_in_flight: int = 16,
    ) -> None:
        """Settings only; nothing connects before ``connect()``.

        url: ``tcp://host:port``, ``quic://host:port`` (MQTT over QUIC) or
            ``scion-quic://[ISD-AS,IP]:port`` (MQTT over QUIC over SCION).
        client_id: MQTT client identifier; a random ``mqttbridge-py-...`` when
            not given.
        version: ``"5"`` or ``"3.1.1"``.
        clean_start: clean start (5) / clean session (3.1.1).
        session_expiry: MQTT 5: seconds the broker keeps the session after
            the connection ends.
        keep_alive: seconds; PINGREQ goes out when the link is idle.
        timeout: seconds each call (connect, publish, subscribe, unsubscribe,
            disconnect) may take before ``RequestTimeout``; ``None``: no bound.
        reconnect: reconnect with backoff when the connection is lost,
            restoring subscriptions.
        cafile: PEM CA bundle for the QUIC server's certificate (default:
            the system's roots). insecure: do not check it (testing only).
        certfile, keyfile: PEM client certificate and key for mutual TLS.
        server_name: the name or IP address the server's certificate must
            carry (default: the URL's host; ``localhost`` for SCION). An IP
            address is checked against the certificate's IP addresses.
        endhost_api: endhost API of the local SCION AS (scion-quic URLs).
        snap_token_file: file with the SNAP token for the endhost API.
        queue_depth: received messages (and requests) buffered; when full,
            the client stops reading from the network until ``recv`` is called.
        max_in_flight: QoS 1/2 publishes and (un)subscriptions awaiting
            their answer at once.
        """
        self._session = _native.Session(
            url,
            client_id=client_id,
            version=version,
            clean_start=clean_start,
            session_expiry=session_expiry,
            keep_alive=keep_alive,
            timeout=timeout,
            reconnect=reconnect,
            cafile=None if cafile is None else os.fspath(cafile),
            insecure=insecure,
            certfile=None if certfile is None else os.fspath(certfile),
            keyfile=None if keyfile is None else os.fspath(keyfile),
            server_name=server_name,
            endhost_api=endhost_api,
            snap_token_file=None if snap_token_file is None else os.fspath(snap_token_file),
            queue_depth=queue_depth,
            max_in_flight=max_in_flight,
        )


class Client(_Settings):
    """An MQTT client whose calls block until done (Ctrl-C interrupts them).

    >>> with Client("tcp://127.0.0.1:1883") as client:
    ...     client.subscribe("sensors/#", qos=1)
    ...     client.publish("sensors/1", "21.5", qos=1)
    ...     message = client.recv(timeout=5)
    """

    def connect(self) -> None:
        """Connects and waits for the broker's CONNACK; again after a
        disconnect or a lost connection; nothing when connected."""
        self._session.connect()

    def publish(self, topic: str, payload: Payload, qos: int = 0, retain: bool = False) -> None:
        """Publishes; returns once written (QoS 0), acknowledged (QoS 1) or
        the QoS 2 exchange is complete. A ``str`` payload is sent as UTF-8."""
        self._session.publish(topic, payload, qos, retain)

    def subscribe(self, topic_filter: str, qos: int = 0) -> int:
        """Subscribes; returns the QoS the broker granted."""
        return self._session.subscribe(topic_filter, qos)

    def unsubscribe(self, topic_filter: str) -> None:
        """Unsubscribes from one filter."""
        self._session.unsubscribe(topic_filter)

    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or ``None`` when ``timeout`` seconds pass first
        (``None``: wait as long as it takes). Raises ``ConnectionLost`` or
        ``ClientClosed`` once no more messages can come."""
        return self._session.recv(timeout)

    def disconnect(self) -> None:
        """Sends DISCONNECT and waits for the broker's side to close (so all
        sent before has arrived, QUIC too); nothing when not connected or
        already lost."""
        self._session.disconnect()

    def __enter__(self) -> "Client":
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()


class AsyncClient(_Settings):
    """The same client for asyncio: every call is a coroutine.

    >>> async with AsyncClient("tcp://127.0.0.1:1883") as client:
    ...     await client.subscribe("sensors/#", qos=1)
    ...     await client.publish("sensors/1", "21.5", qos=1)
    ...     message = await client.recv(timeout=5)
    """

    async def connect(self) -> None:
        """See ``Client.connect``."""
        await self._session.connect_async()

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        """See ``Client.publish``."""
        await self._session.publish_async(topic, payload, qos, retain)

    async def subscribe(self, topic_filter: str, qos: int = 0) -> int:
        """See ``Client.subscribe``."""
        return await self._session.subscribe_async(topic_filter, qos)

    async def unsubscribe(self, topic_filter: str) -> None:
        """See ``Client.unsubscribe``."""
        await self._session.unsubscribe_async(topic_filter)

    async def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """See ``Client.recv``."""
        # A message already here needs no hand-off from the runtime's threads.
        message = self._session.try_recv()
        if message is not None:
            return message
        return await self._session.recv_async(timeout)

    async def disconnect(self) -> None:
        """See ``Client.disconnect``."""
        await self._session.disconnect_async()

    async def __aenter__(self) -> "AsyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()
