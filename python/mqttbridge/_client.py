"""``Client`` (blocking calls) and ``AsyncClient`` (asyncio): thin wrappers
around the native session, which runs the connection on a background tokio
runtime. Both take the same settings (``_settings._Settings``)."""

import asyncio
import threading
from typing import AsyncIterator, Iterator, List, Optional

from ._errors import ClientClosed
from ._native import Message, Properties, Publication
from ._settings import Payload, UserProperties, _expire, _properties, _report, _Settings


class Client(_Settings):
    """An MQTT client whose calls block until done (Ctrl-C interrupts them).

    >>> with Client("tcp://127.0.0.1:1883") as client:
    ...     client.subscribe("sensors/#", qos=1)
    ...     client.publish("sensors/1", "21.5", qos=1)
    ...     message = client.recv(timeout=5)
    """

    _dispatcher: Optional[threading.Thread] = None

    def connect(self) -> None:
        """Connects and waits for the broker's CONNACK; again after a
        disconnect or a lost connection; nothing when connected. With
        ``on_message``, starts the thread that calls it."""
        self._session.connect()
        if self.on_message is not None and (
            self._dispatcher is None or not self._dispatcher.is_alive()
        ):
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="mqttbridge-on-message", daemon=True
            )
            self._dispatcher.start()

    def _dispatch(self) -> None:
        callback = self.on_message
        try:
            for message in self.messages():
                try:
                    if callback is not None:
                        callback(message)
                except Exception:
                    _report(callback)
        except Exception:
            return  # the connection is lost: no more messages

    def publish(
        self,
        topic: str,
        payload: Payload,
        qos: int = 0,
        retain: bool = False,
        *,
        properties: Optional[Properties] = None,
        payload_format_indicator: Optional[int] = None,
        message_expiry_interval: Optional[int] = None,
        content_type: Optional[str] = None,
        response_topic: Optional[str] = None,
        correlation_data: Optional[bytes] = None,
        user_properties: Optional[UserProperties] = None,
        topic_alias: Optional[int] = None,
    ) -> None:
        """Publishes; returns once queued (QoS 0: ``disconnect()`` still
        sends it first), acknowledged (QoS 1) or the QoS 2 exchange is
        complete. A ``str`` payload is sent as UTF-8. MQTT 5 properties come
        as ``properties`` or as keyword arguments (which win)."""
        merged = _properties(
            properties,
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            user_properties,
            topic_alias,
        )
        self._session.publish(topic, payload, qos, retain, merged)

    def publish_nowait(
        self,
        topic: str,
        payload: Payload,
        qos: int = 0,
        retain: bool = False,
        *,
        properties: Optional[Properties] = None,
        payload_format_indicator: Optional[int] = None,
        message_expiry_interval: Optional[int] = None,
        content_type: Optional[str] = None,
        response_topic: Optional[str] = None,
        correlation_data: Optional[bytes] = None,
        user_properties: Optional[UserProperties] = None,
        topic_alias: Optional[int] = None,
    ) -> Publication:
        """Starts a publish and returns at once, so one thread keeps many in
        flight (up to ``max_in_flight``; more wait their turn in order);
        ``Publication.wait()`` blocks until it is acknowledged and raises
        what it failed with."""
        merged = _properties(
            properties,
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            user_properties,
            topic_alias,
        )
        return self._session.publish_nowait(topic, payload, qos, retain, merged)

    def subscribe(
        self,
        topic_filter: str,
        qos: int = 0,
        *,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_identifier: Optional[int] = None,
        user_properties: Optional[UserProperties] = None,
    ) -> int:
        """Subscribes; returns the QoS the broker granted. The keyword
        arguments are MQTT 5 subscribe options (retain handling: 0 send
        retained messages, 1 only for a new subscription, 2 never)."""
        return self._session.subscribe(
            topic_filter,
            qos,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
            list(user_properties or []),
        )

    def unsubscribe(
        self, topic_filter: str, *, user_properties: Optional[UserProperties] = None
    ) -> None:
        """Unsubscribes from one filter (MQTT 5: with user properties)."""
        self._session.unsubscribe(topic_filter, list(user_properties or []))

    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or ``None`` when ``timeout`` seconds pass first
        (``None``: wait as long as it takes). Raises ``ConnectionLost`` or
        ``ClientClosed`` once no more messages can come."""
        return self._session.recv(timeout)

    def messages(self, timeout: Optional[float] = None) -> Iterator[Message]:
        """Received messages, one after the other: ``for message in
        client.messages():``. Ends after ``disconnect()`` (or when
        ``timeout`` seconds pass without one); raises ``ConnectionLost``."""
        while True:
            try:
                message = self._session.recv(timeout)
            except ClientClosed:
                return
            if message is None:
                return
            yield message

    def disconnect(
        self,
        *,
        session_expiry: Optional[float] = None,
        reason_string: Optional[str] = None,
        user_properties: Optional[UserProperties] = None,
    ) -> None:
        """Sends DISCONNECT and waits for the broker's side to close (so all
        sent before has arrived, QUIC too); nothing when not connected or
        already lost. MQTT 5: ``session_expiry`` (seconds) replaces the
        session's expiry (not allowed when it opened with 0),
        ``reason_string`` and ``user_properties`` go to the broker."""
        self._session.disconnect(session_expiry, reason_string, list(user_properties or []))

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

    _watching: Optional[asyncio.AbstractEventLoop] = None
    _dispatcher: "Optional[asyncio.Task[None]]" = None

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, watching for this client's finished calls."""
        loop = asyncio.get_running_loop()
        if loop is not self._watching:
            loop.add_reader(self._session.completion_fd(), self._session.drain)
            self._watching = loop
        return loop

    async def connect(self) -> None:
        """See ``Client.connect``; ``on_message`` runs as a task."""
        future: "asyncio.Future[None]" = self._loop().create_future()
        self._session.connect_into(future)
        await future
        if self.on_message is not None and (self._dispatcher is None or self._dispatcher.done()):
            self._dispatcher = asyncio.ensure_future(self._dispatch())

    async def _dispatch(self) -> None:
        callback = self.on_message
        try:
            async for message in self.messages():
                try:
                    if callback is not None:
                        result = callback(message)
                        if asyncio.iscoroutine(result):
                            await result
                except Exception:
                    _report(callback)
        except Exception:
            return  # the connection is lost: no more messages

    async def publish(
        self,
        topic: str,
        payload: Payload,
        qos: int = 0,
        retain: bool = False,
        *,
        properties: Optional[Properties] = None,
        payload_format_indicator: Optional[int] = None,
        message_expiry_interval: Optional[int] = None,
        content_type: Optional[str] = None,
        response_topic: Optional[str] = None,
        correlation_data: Optional[bytes] = None,
        user_properties: Optional[UserProperties] = None,
        topic_alias: Optional[int] = None,
    ) -> None:
        """See ``Client.publish``; bounded by the client's ``timeout``."""
        future = self.publish_nowait(
            topic,
            payload,
            qos,
            retain,
            properties=properties,
            payload_format_indicator=payload_format_indicator,
            message_expiry_interval=message_expiry_interval,
            content_type=content_type,
            response_topic=response_topic,
            correlation_data=correlation_data,
            user_properties=user_properties,
            topic_alias=topic_alias,
        )
        if future.done() or self._timeout is None:
            await future
            return
        expiry = future.get_loop().call_later(self._timeout, _expire, future, "publish")
        try:
            await future
        finally:
            expiry.cancel()

    def publish_nowait(
        self,
        topic: str,
        payload: Payload,
        qos: int = 0,
        retain: bool = False,
        *,
        properties: Optional[Properties] = None,
        payload_format_indicator: Optional[int] = None,
        message_expiry_interval: Optional[int] = None,
        content_type: Optional[str] = None,
        response_topic: Optional[str] = None,
        correlation_data: Optional[bytes] = None,
        user_properties: Optional[UserProperties] = None,
        topic_alias: Optional[int] = None,
    ) -> "asyncio.Future[None]":
        """Starts a publish (call it in the event loop) and returns a future
        that is done once it is acknowledged, so many are in flight without
        a task each: keep a window of them and await the oldest. The
        client's ``timeout`` does not apply (``asyncio.wait_for`` does)."""
        merged = _properties(
            properties,
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            user_properties,
            topic_alias,
        )
        future: "asyncio.Future[None]" = self._loop().create_future()
        if self._session.publish_into(future, topic, payload, qos, retain, merged):
            future.set_result(None)  # QoS 0, queued
        return future

    async def subscribe(
        self,
        topic_filter: str,
        qos: int = 0,
        *,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_identifier: Optional[int] = None,
        user_properties: Optional[UserProperties] = None,
    ) -> int:
        """See ``Client.subscribe``."""
        future: "asyncio.Future[int]" = self._loop().create_future()
        self._session.subscribe_into(
            future,
            topic_filter,
            qos,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
            list(user_properties or []),
        )
        return await future

    async def unsubscribe(
        self, topic_filter: str, *, user_properties: Optional[UserProperties] = None
    ) -> None:
        """See ``Client.unsubscribe``."""
        future: "asyncio.Future[None]" = self._loop().create_future()
        self._session.unsubscribe_into(future, topic_filter, list(user_properties or []))
        await future

    async def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """See ``Client.recv``."""
        if self._ready:
            return self._ready.popleft()
        # A message already here needs no hand-off from the runtime's threads.
        message = self._session.try_recv()
        if message is not None:
            return message
        future: "asyncio.Future[List[Message]]" = self._loop().create_future()
        self._session.recv_into(future, timeout)
        batch = await future
        if not batch:
            return None
        self._ready.extend(batch[1:])
        return batch[0]

    async def messages(self, timeout: Optional[float] = None) -> AsyncIterator[Message]:
        """See ``Client.messages``: ``async for message in client.messages():``."""
        while True:
            try:
                message = await self.recv(timeout)
            except ClientClosed:
                return
            if message is None:
                return
            yield message

    async def disconnect(
        self,
        *,
        session_expiry: Optional[float] = None,
        reason_string: Optional[str] = None,
        user_properties: Optional[UserProperties] = None,
    ) -> None:
        """See ``Client.disconnect``; stops the ``on_message`` task."""
        future: "asyncio.Future[None]" = self._loop().create_future()
        self._session.disconnect_into(
            future, session_expiry, reason_string, list(user_properties or [])
        )
        await future
        if self._dispatcher is not None and self._dispatcher is not asyncio.current_task():
            # It ends by itself once the last message is handed out.
            await asyncio.wait([self._dispatcher], timeout=5)

    async def __aenter__(self) -> "AsyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()
