"""MQTT 3.1.1 and 5.0 over TCP, TLS, WebSocket, QUIC and QUIC over SCION:
the mqttbridge client library for Python, blocking (``Client``) or asyncio
(``AsyncClient``)."""

from ._client import AsyncClient, Client
from ._errors import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    ConnectionRefused,
    InvalidRequest,
    MqttError,
    ProtocolError,
    RequestRejected,
    RequestTimeout,
)
from ._native import Message, Properties, Publication, Will

__all__ = [
    "AsyncClient",
    "Client",
    "ClientClosed",
    "ConnectError",
    "ConnectionLost",
    "ConnectionRefused",
    "InvalidRequest",
    "Message",
    "MqttError",
    "ProtocolError",
    "RequestRejected",
    "Properties",
    "Publication",
    "RequestTimeout",
    "Will",
]
