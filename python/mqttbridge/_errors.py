"""Exceptions the client raises. Every one is an ``MqttError``; when the
broker answered with a failure code, ``reason_code`` holds it, ``reason``
its name (``0x87``, ``"not authorized"``) and, MQTT 5, ``reason_string``
the broker's own words when it sent some."""

from typing import Optional


class MqttError(Exception):
    """Base of every error the client raises."""

    reason_code: Optional[int]
    reason: Optional[str]
    reason_string: Optional[str]

    def __init__(
        self,
        message: str,
        reason_code: Optional[int] = None,
        reason: Optional[str] = None,
        reason_string: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.reason = reason
        self.reason_string = reason_string


class ConnectError(MqttError):
    """The connection could not be opened: address, TLS, QUIC handshake,
    SCION attachment or path."""


class ConnectionRefused(MqttError):
    """The broker refused the connection; ``reason_code`` is its CONNACK code."""


class RequestRejected(MqttError):
    """The broker refused a publish, subscribe or unsubscribe; ``reason_code``
    is the PUBACK, PUBREC, PUBCOMP, SUBACK or UNSUBACK code."""


class ConnectionLost(MqttError):
    """The connection went away (and no reconnection was asked for)."""


class ClientClosed(MqttError):
    """The client is not connected: ``connect()`` was not called, or
    ``disconnect()`` was."""


class InvalidRequest(MqttError, ValueError):
    """A call the client refused before sending: an invalid topic or filter,
    a QoS or packet size the broker does not take, a topic alias out of its
    range (also a ``ValueError``)."""


class ProtocolError(MqttError):
    """The broker broke the MQTT protocol."""


class RequestTimeout(MqttError, TimeoutError):
    """A call did not finish within the client's ``timeout``."""
