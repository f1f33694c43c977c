"""Types of the native module (Rust, built by maturin); use it through
``mqttbridge.Client`` and ``mqttbridge.AsyncClient``."""

import asyncio
from typing import List, Optional, Sequence, Tuple, Union

class Properties:
    """MQTT 5 properties of an application message."""

    payload_format_indicator: Optional[int]
    message_expiry_interval: Optional[int]
    content_type: Optional[str]
    response_topic: Optional[str]
    correlation_data: Optional[bytes]
    user_properties: List[Tuple[str, str]]
    topic_alias: Optional[int]
    @property
    def subscription_identifiers(self) -> List[int]: ...
    def __init__(
        self,
        *,
        payload_format_indicator: Optional[int] = None,
        message_expiry_interval: Optional[int] = None,
        content_type: Optional[str] = None,
        response_topic: Optional[str] = None,
        correlation_data: Optional[bytes] = None,
        user_properties: Sequence[Tuple[str, str]] = ...,
        topic_alias: Optional[int] = None,
    ) -> None: ...

class Will:
    """The message the broker publishes if the connection ends without
    ``disconnect()``."""

    def __init__(
        self,
        topic: str,
        payload: Union[str, bytes, bytearray, None] = None,
        qos: int = 0,
        retain: bool = False,
        *,
        delay_interval: Optional[int] = None,
        properties: Optional[Properties] = None,
    ) -> None: ...

class Publication:
    """A publish started by ``Client.publish_nowait``."""

    def done(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> None: ...

class Message:
    """One message from a subscription."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def retain(self) -> bool: ...
    @property
    def properties(self) -> Properties: ...

class Session:
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
        password: Union[str, bytes, None] = None,
        will: Optional[Will] = None,
        cafile: Optional[str] = None,
        capath: Optional[str] = None,
        insecure: bool = False,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        server_name: Optional[str] = None,
        endhost_api: Optional[str] = None,
        snap_token_file: Optional[str] = None,
        queue_depth: int = 256,
        max_in_flight: int = 16,
        receive_maximum: Optional[int] = None,
        maximum_packet_size: Optional[int] = None,
        topic_alias_maximum: int = 0,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> None: ...
    def connect(self) -> None: ...
    def connect_into(self, future: "asyncio.Future[None]") -> None: ...
    def publish(
        self,
        topic: str,
        payload: Union[str, bytes, bytearray],
        qos: int = 0,
        retain: bool = False,
        properties: Optional[Properties] = None,
    ) -> None: ...
    def publish_nowait(
        self,
        topic: str,
        payload: Union[str, bytes, bytearray],
        qos: int = 0,
        retain: bool = False,
        properties: Optional[Properties] = None,
    ) -> Publication: ...
    def publish_into(
        self,
        future: "asyncio.Future[None]",
        topic: str,
        payload: Union[str, bytes, bytearray],
        qos: int = 0,
        retain: bool = False,
        properties: Optional[Properties] = None,
    ) -> bool: ...
    def subscribe(
        self,
        topic_filter: str,
        qos: int = 0,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_identifier: Optional[int] = None,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> int: ...
    def subscribe_into(
        self,
        future: "asyncio.Future[int]",
        topic_filter: str,
        qos: int = 0,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_identifier: Optional[int] = None,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> None: ...
    def unsubscribe(
        self, topic_filter: str, user_properties: List[Tuple[str, str]] = ...
    ) -> None: ...
    def unsubscribe_into(
        self,
        future: "asyncio.Future[None]",
        topic_filter: str,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[Message]: ...
    def recv_into(
        self,
        future: "asyncio.Future[List[Message]]",
        timeout: Optional[float] = None,
        max: int = 64,
    ) -> None: ...
    def try_recv(self) -> Optional[Message]: ...
    def completion_fd(self) -> int: ...
    def drain(self) -> None: ...
    def disconnect(
        self,
        session_expiry: Optional[float] = None,
        reason_string: Optional[str] = None,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> None: ...
    def disconnect_into(
        self,
        future: "asyncio.Future[None]",
        session_expiry: Optional[float] = None,
        reason_string: Optional[str] = None,
        user_properties: List[Tuple[str, str]] = ...,
    ) -> None: ...
