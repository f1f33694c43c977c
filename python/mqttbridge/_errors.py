"""Exceptions the client raises. Every one is an ``MqttError``; when the
broker answered with a failure code, ``reason_code`` holds it and
``reason`` its name (``0x87``, ``"not authorized"``)."""

from typing import Optional


class MqttError(Exception):
    """Base of every error the client raises."""

    reason_code: Optional[int]
    reason: Optional[str]

    def __init__(
        self, message: str, reason_code: Optional[int] = None, reason: Optional[str] = None
    ) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.reason = reason


class ConnectError(MqttError):
    """The connection could not be opened: address, TLS, QUIC handshake,
    SCION attachment or path."""


class ConnectionRefused(MqttError):
    """The broker refused the connection; ``reason_code`` is its CONNACK code."""


class RequestRejected(MqttError):
    """The broker refused a publish, subscribe or unsubscribe; ``reason_code``
    is the PUBACK, PUBREC, SUBACK or UNSUBACK code."""


class ConnectionLost(MqttError):
    """The connection went away (and no reconnection was asked for)."""


class ClientClosed(MqttError):
    """The client is not connected: ``connect()`` was not called, or
    ``disconnect()`` was."""


class ProtocolError(MqttError):
    """The broker broke the MQTT protocol."""


class RequestTimeout(MqttError, TimeoutError):
    """A call did not finish within the client's ``timeout``."""
