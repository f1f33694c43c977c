"""MQTT 3.1.1 and 5.0 over TCP, QUIC and QUIC over SCION: the mqttbridge
client library for Python, blocking (``Client``) or asyncio
(``AsyncClient``)."""

from ._client import AsyncClient, Client
from ._errors import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    ConnectionRefused,
    MqttError,
    ProtocolError,
    RequestRejected,
    RequestTimeout,
)
from ._native import Message

__all__ = [
    "AsyncClient",
    "Client",
    "ClientClosed",
    "ConnectError",
    "ConnectionLost",
    "ConnectionRefused",
    "Message",
    "MqttError",
    "ProtocolError",
    "RequestRejected",
    "RequestTimeout",
]
