//! The connection behind a Python client, in plain async Rust: it owns the
//! client library's handle and message stream, and bounds every call by
//! the client's timeout. `session.rs` exposes it to Python both ways.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use mqttbridge::client::{
    Ack, Client, ClientError, ClientOptions, DisconnectOptions, Messages, PublishProperties,
    SubscribeOptions, TryPublish,
};

use crate::errors::Failure;
use crate::message::Message;

/// A message to publish.
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub properties: PublishProperties,
}

/// A client: settings, and the connection once made.
pub struct Core {
    options: ClientOptions,
    /// Bound on connect, publish, subscribe, unsubscribe and disconnect.
    timeout: Option<Duration>,
    client: Mutex<Option<Client>>,
    /// Received messages of the current (or last) connection; a tokio mutex
    /// because `recv` waits while holding it.
    messages: tokio::sync::Mutex<Option<Messages>>,
    /// Messages received for asyncio callers that stopped waiting, handed
    /// out first (at most one per cancelled call).
    returned: Mutex<VecDeque<Message>>,
}

impl Core {
    pub fn new(options: ClientOptions, timeout: Option<Duration>) -> Self {
        Self {
            options,
            timeout,
            client: Mutex::new(None),
            messages: tokio::sync::Mutex::new(None),
            returned: Mutex::new(VecDeque::new()),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Client>> {
        self.client
            .lock()
            // A panic while holding this lock cannot leave an Option torn.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn handle(&self) -> Result<Client, Failure> {
        self.slot().clone().ok_or(Failure::NotConnected)
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Failure> {
        let result = match self.timeout {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_| Failure::Timeout(what))?,
            None => call.await,
        };
        // Only `disconnect` closes a client on purpose, and it takes the
        // handle out first: a closed session here is a lost connection.
        result.map_err(|e| match e {
            ClientError::Closed => Failure::Client(ClientError::ConnectionLost),
            e => Failure::Client(e),
        })
    }

    /// Connects (again, after a disconnect or a lost connection); a no-op
    /// when connected.
    pub async fn connect(&self) -> Result<(), Failure> {
        if self.handle().is_ok_and(|client| !client.is_closed()) {
            return Ok(());
        }
        let (client, messages) = self
            .bounded("connect", Client::connect(self.options.clone()))
            .await?;
        *self.messages.lock().await = Some(messages);
        *self.slot() = Some(client);
        Ok(())
    }

    /// Queues a QoS 0 publish without a trip through the runtime; hands
    /// the message back when the queue is full.
    pub fn try_publish(&self, message: Outgoing) -> Result<Option<Outgoing>, Failure> {
        let client = self.handle()?;
        let Outgoing {
            topic,
            payload,
            retain,
            properties,
            ..
        } = message;
        match client.try_publish(&topic, payload, retain, properties) {
            Ok(()) => Ok(None),
            Err(TryPublish::Full {
                payload,
                properties,
            }) => Ok(Some(Outgoing {
                topic,
                payload,
                qos: 0,
                retain,
                properties: *properties,
            })),
            Err(TryPublish::Failed(ClientError::Closed)) => {
                Err(Failure::Client(ClientError::ConnectionLost))
            }
            Err(TryPublish::Failed(e)) => Err(Failure::Client(e)),
        }
    }

    /// Starts a publish without a trip through the runtime when the request
    /// queue has room; `done` hears the outcome (from the session's task).
    /// A full queue hands the message back.
    pub fn publish_then(
        &self,
        message: Outgoing,
        done: impl FnOnce(Result<(), Failure>) + Send + 'static,
    ) -> Result<Option<Outgoing>, Failure> {
        let client = self.handle()?;
        let Outgoing {
            topic,
            payload,
            qos,
            retain,
            properties,
        } = message;
        let finished = move |result: Result<Ack, ClientError>| {
            done(result.map(drop).map_err(|e| match e {
                ClientError::Closed => Failure::Client(ClientError::ConnectionLost),
                e => Failure::Client(e),
            }))
        };
        match client.publish_then(&topic, payload, qos, retain, properties, finished) {
            Ok(()) => Ok(None),
            Err(TryPublish::Full {
                payload,
                properties,
            }) => Ok(Some(Outgoing {
                topic,
                payload,
                qos,
                retain,
                properties: *properties,
            })),
            Err(TryPublish::Failed(ClientError::Closed)) => {
                Err(Failure::Client(ClientError::ConnectionLost))
            }
            Err(TryPublish::Failed(e)) => Err(Failure::Client(e)),
        }
    }

    pub async fn publish(&self, message: Outgoing) -> Result<(), Failure> {
        let client = self.handle()?;
        let call = client.publish_with_properties(
            &message.topic,
            message.payload,
            message.qos,
            message.retain,
            message.properties,
        );
        self.bounded("publish", call).await.map(drop)
    }

    pub async fn subscribe(
        &self,
        filter: String,
        options: SubscribeOptions,
    ) -> Result<u8, Failure> {
        let client = self.handle()?;
        self.bounded("subscribe", client.subscribe_with(&filter, options))
            .await
            .map(|ack| ack.reason_code)
    }

    pub async fn unsubscribe(
        &self,
        filter: String,
        user_properties: Vec<(String, String)>,
    ) -> Result<(), Failure> {
        let client = self.handle()?;
        self.bounded(
            "unsubscribe",
            client.unsubscribe_with(&filter, user_properties),
        )
        .await
        .map(drop)
    }

    /// The next message, `None` when `timeout` passes first. Messages that
    /// arrived before a disconnect are still handed out; after them it
    /// fails with `ClientClosed` (we disconnected) or `ConnectionLost`.
    pub async fn recv(&self, timeout: Option<Duration>) -> Result<Option<Message>, Failure> {
        let mut guard = self.messages.lock().await;
        if let Some(message) = self.take_returned() {
            return Ok(Some(message));
        }
        let messages = guard.as_mut().ok_or(Failure::NotConnected)?;
        let next = match timeout {
            Some(limit) => match tokio::time::timeout(limit, messages.recv()).await {
                Ok(next) => next,
                Err(_) => return Ok(None),
            },
            None => messages.recv().await,
        };
        match next {
            Some(message) => Ok(Some(message.into())),
            None => Err(self.ended()),
        }
    }

    /// The next message and those already behind it, up to `max` in all;
    /// empty when `timeout` passes first.
    pub async fn recv_batch(
        &self,
        timeout: Option<Duration>,
        max: usize,
    ) -> Result<Vec<Message>, Failure> {
        let mut guard = self.messages.lock().await;
        let mut batch: Vec<Message> = std::iter::from_fn(|| self.take_returned())
            .take(max)
            .collect();
        if !batch.is_empty() {
            return Ok(batch);
        }
        let messages = guard.as_mut().ok_or(Failure::NotConnected)?;
        let first = match timeout {
            Some(limit) => match tokio::time::timeout(limit, messages.recv()).await {
                Ok(next) => next,
                Err(_) => return Ok(batch),
            },
            None => messages.recv().await,
        };
        let Some(first) = first else {
            return Err(self.ended());
        };
        batch.push(first.into());
        while batch.len() < max {
            match messages.try_recv() {
                Ok(message) => batch.push(message.into()),
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// A message that is here already, without waiting; `None` when there
    /// is none (or a waiting `recv` holds the stream). After the last one,
    /// fails as `recv` does.
    pub fn try_recv(&self) -> Result<Option<Message>, Failure> {
        if let Some(message) = self.take_returned() {
            return Ok(Some(message));
        }
        let Ok(mut guard) = self.messages.try_lock() else {
            return Ok(None);
        };
        let messages = guard.as_mut().ok_or(Failure::NotConnected)?;
        match messages.try_recv() {
            Ok(message) => Ok(Some(message.into())),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => Err(self.ended()),
        }
    }

    /// Keeps a message an asyncio caller gave up waiting for.
    pub fn put_back(&self, message: Message) {
        self.returned_queue().push_back(message);
    }

    fn take_returned(&self) -> Option<Message> {
        self.returned_queue().pop_front()
    }

    fn returned_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        self.returned
            .lock()
            // A panic while holding this lock cannot leave a VecDeque torn.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Why no more messages can come.
    fn ended(&self) -> Failure {
        if self.handle().is_err() {
            Failure::NotConnected
        } else {
            Failure::Client(ClientError::ConnectionLost)
        }
    }

    /// Sends DISCONNECT; a no-op when not connected, and no error when the
    /// connection was already lost (disconnected is what was asked for).
    pub async fn disconnect(&self, options: DisconnectOptions) -> Result<(), Failure> {
        let Some(client) = self.slot().take() else {
            return Ok(());
        };
        match self
            .bounded("disconnect", client.disconnect_with(options))
            .await
        {
            Err(Failure::Client(ClientError::ConnectionLost)) => Ok(()),
            result => result,
        }
    }
}
