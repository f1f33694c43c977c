"""The settings both clients take (``_Settings``) and the helpers they
share: MQTT 5 properties from keyword arguments, timeouts for asyncio
calls, reporting a failing ``on_message`` callback."""

import asyncio
import collections
import os
import sys
import traceback
from typing import Any, Callable, Deque, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import RequestTimeout
from ._native import Message, Properties, Will

Payload = Union[str, bytes, bytearray]
PathLike = Union[str, "os.PathLike[str]"]
UserProperties = Sequence[Tuple[str, str]]


def _path(path: Optional[PathLike]) -> Optional[str]:
    return None if path is None else os.fspath(path)


def _properties(
    properties: Optional[Properties],
    payload_format_indicator: Optional[int],
    message_expiry_interval: Optional[int],
    content_type: Optional[str],
    response_topic: Optional[str],
    correlation_data: Optional[bytes],
    user_properties: Optional[UserProperties],
    topic_alias: Optional[int],
) -> Optional[Properties]:
    """``properties`` with the keyword arguments given laid over it."""
    if (
        payload_format_indicator is None
        and message_expiry_interval is None
        and content_type is None
        and response_topic is None
        and correlation_data is None
        and user_properties is None
        and topic_alias is None
    ):
        return properties  # the common case, without building anything
    given = {
        "payload_format_indicator": payload_format_indicator,
        "message_expiry_interval": message_expiry_interval,
        "content_type": content_type,
        "response_topic": response_topic,
        "correlation_data": correlation_data,
        "topic_alias": topic_alias,
    }
    merged = Properties() if properties is None else _copy(properties)
    for name, value in given.items():
        if value is not None:
            setattr(merged, name, value)
    if user_properties is not None:
        merged.user_properties = list(user_properties)
    return merged


def _copy(properties: Properties) -> Properties:
    return Properties(
        payload_format_indicator=properties.payload_format_indicator,
        message_expiry_interval=properties.message_expiry_interval,
        content_type=properties.content_type,
        response_topic=properties.response_topic,
        correlation_data=properties.correlation_data,
        user_properties=properties.user_properties,
        topic_alias=properties.topic_alias,
    )


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
        username: Optional[str] = None,
        password: Optional[Union[str, bytes]] = None,
        will: Optional[Will] = None,
        cafile: Optional[PathLike] = None,
        capath: Optional[PathLike] = None,
        insecure: bool = False,
        certfile: Optional[PathLike] = None,
        keyfile: Optional[PathLike] = None,
        server_name: Optional[str] = None,
        endhost_api: Optional[str] = None,
        snap_token_file: Optional[PathLike] = None,
        queue_depth: int = 256,
        max_in_flight: int = 16,
        receive_maximum: Optional[int] = None,
        maximum_packet_size: Optional[int] = None,
        topic_alias_maximum: int = 0,
        user_properties: Optional[UserProperties] = None,
        on_message: Optional[Callable[[Message], Any]] = None,
    ) -> None:
        """Settings only; nothing connects before ``connect()``.

        url: ``tcp://host:port`` (also ``mqtt://``), ``mqtts://host:port``
            (TLS), ``ws://host:port/path`` and ``wss://host:port/path``
            (WebSocket), ``quic://host:port`` (MQTT over QUIC) or
            ``scion-quic://[ISD-AS,IP]:port`` (MQTT over QUIC over SCION);
            ``user:password@`` before the host is the login (percent-encoded).
        client_id: MQTT client identifier; a random ``mqttbridge-py-...`` when
            not given.
        version: ``"5"`` or ``"3.1.1"``.
        clean_start: clean start (5) / clean session (3.1.1).
        session_expiry: MQTT 5: seconds the broker keeps the session after
            the connection ends (then reconnections resume it, and messages
            in flight are sent again).
        keep_alive: seconds; PINGREQ goes out when the link is idle.
        timeout: seconds each call (connect, publish, subscribe, unsubscribe,
            disconnect) may take before ``RequestTimeout``; ``None``: no bound.
        reconnect: reconnect with backoff when the connection is lost,
            restoring subscriptions (or the kept session).
        username, password: the login; they win over the URL's. MQTT 5 takes
            a password without a username.
        will: the ``Will`` the broker publishes if the connection ends
            without ``disconnect()``.
        cafile, capath: PEM CA bundle, or a directory of PEM CA certificates,
            for the server's certificate (default: the system's roots).
            insecure: do not check it (testing only).
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
        receive_maximum, maximum_packet_size, topic_alias_maximum,
            user_properties: MQTT 5 CONNECT properties.
        on_message: called with each received message (instead of ``recv``):
            from a background thread for ``Client``, as a task on the event
            loop for ``AsyncClient`` (a coroutine function is awaited).
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
            username=username,
            password=password,
            will=will,
            cafile=_path(cafile),
            capath=_path(capath),
            insecure=insecure,
            certfile=_path(certfile),
            keyfile=_path(keyfile),
            server_name=server_name,
            endhost_api=endhost_api,
            snap_token_file=_path(snap_token_file),
            queue_depth=queue_depth,
            max_in_flight=max_in_flight,
            receive_maximum=receive_maximum,
            maximum_packet_size=maximum_packet_size,
            topic_alias_maximum=topic_alias_maximum,
            user_properties=list(user_properties or []),
        )
        self.on_message = on_message
        self._timeout = timeout
        # AsyncClient: messages that came in one batch, handed out first.
        self._ready: Deque[Message] = collections.deque()


def _expire(future: "asyncio.Future[None]", what: str) -> None:
    if not future.done():
        future.set_exception(RequestTimeout(f"{what} did not finish within the client's timeout"))


def _report(callback: object) -> None:
    print(f"mqttbridge: on_message callback {callback!r} raised:", file=sys.stderr)
    traceback.print_exc()


