//! The client library: an MQTT session over TCP, TLS, WebSocket, QUIC or
//! QUIC over SCION, driven by one background task.
//!
//! ```no_run
//! use mqttbridge::client::{Client, ClientOptions};
//!
//! # async fn demo() -> Result<(), mqttbridge::client::ClientError> {
//! let options = ClientOptions::new("tcp://127.0.0.1:1883", "sensor-7");
//! let (client, mut messages) = Client::connect(options).await?;
//! client.subscribe("alerts/#", 1).await?;
//! client.publish("sensors/7/temp", "21.5", 1, false).await?; // returns once PUBACK arrives
//! while let Some(message) = messages.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload);
//! }
//! # Ok(()) }
//! ```
//!
//! Many requests may be in flight at once (up to the broker's receive
//! maximum). Every queue is bounded: callers wait instead of messages being
//! dropped, and when received messages are not consumed the client stops
//! reading from the network until they are.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::driver::Driver;
use super::handshake::{Connected, Credentials};
use super::link::Link;
use super::options::{Ack, ClientError, ClientOptions, Messages};
use super::properties::{DisconnectOptions, PublishProperties, SubscribeOptions};
use super::url::ClientUrl;

type Callback = Box<dyn FnOnce(Result<Ack, ClientError>) + Send>;

/// Who hears how a request ended: a caller awaiting it, or a callback.
pub(super) enum Done {
    Waiting(Option<oneshot::Sender<Result<Ack, ClientError>>>),
    /// Called once; with "connection lost" if the request is dropped
    /// unanswered (the session ended with it still queued).
    Callback(Option<Callback>),
}

impl Done {
    fn callback(done: impl FnOnce(Result<Ack, ClientError>) + Send + 'static) -> Self {
        Done::Callback(Some(Box::new(done)))
    }

    pub(super) fn send(mut self, result: Result<Ack, ClientError>) {
        match &mut self {
            Done::Waiting(caller) => {
                if let Some(caller) = caller.take() {
                    // A caller that stopped waiting needs no answer.
                    let _ = caller.send(result);
                }
            }
            Done::Callback(callback) => {
                if let Some(callback) = callback.take() {
                    callback(result);
                }
            }
        }
    }

    /// Takes the callback out uncalled (the request was never queued).
    fn disarm(mut self) {
        if let Done::Callback(callback) = &mut self {
            callback.take();
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Done::Callback(callback) = self
            && let Some(callback) = callback.take()
        {
            callback(Err(ClientError::ConnectionLost));
        }
    }
}

pub(super) enum Request {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        properties: PublishProperties,
        done: Done,
    },
    Subscribe {
        filter: String,
        options: SubscribeOptions,
        done: Done,
    },
    Unsubscribe {
        filter: String,
        user_properties: Vec<(String, String)>,
        done: Done,
    },
    Disconnect {
        options: DisconnectOptions,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// Why [`Client::try_publish`] did not queue a message.
#[derive(Debug)]
pub enum TryPublish {
    /// The request queue is full: the message, to publish another way.
    Full {
        /// The payload given.
        payload: Vec<u8>,
        /// The properties given.
        properties: Box<PublishProperties>,
    },
    /// The topic is invalid or the client is closed.
    Failed(ClientError),
}

/// A handle to the session; cheap to clone, all clones share it.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    connected: watch::Receiver<Connected>,
}

impl Client {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(options: ClientOptions) -> Result<(Client, Messages), ClientError> {
        let url: ClientUrl = options.url.parse().map_err(ClientError::Url)?;
        let credentials = Credentials {
            username: options.username.clone().or(url.username),
            password: options.password.clone().or(url.password.map(Bytes::from)),
        };
        let link = Link::open(&url.endpoint, &options, &credentials, options.clean_start).await?;
        let (requests, request_rx) = mpsc::channel(options.queue_depth.max(1));
        let (messages_tx, messages) = mpsc::channel(options.queue_depth.max(1));
        let (connected_tx, connected) = watch::channel(link.connected.clone());
        let driver = Driver {
            options,
            endpoint: url.endpoint,
            credentials,
            link,
            requests: request_rx,
            messages: messages_tx,
            connected: connected_tx,
            pending: HashMap::new(),
            awaiting_pubrel: HashSet::new(),
            subscriptions: Vec::new(),
            aliases_out: HashMap::new(),
            aliases_in: HashMap::new(),
            next_id: 1,
            sent: 0,
        };
        tokio::spawn(driver.run());
        Ok((
            Client {
                requests,
                connected,
            },
            Messages(messages),
        ))
    }

    /// What the broker granted on the current connection (session present,
    /// assigned client id, limits, reason string).
    pub fn connected(&self) -> Connected {
        self.connected.borrow().clone()
    }

    async fn call(&self, make: impl FnOnce(Done) -> Request) -> Result<Ack, ClientError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send(make(Done::Waiting(Some(done))))
            .await
            .map_err(|_| ClientError::Closed)?;
        result.await.map_err(|_| ClientError::ConnectionLost)?
    }

    /// Publishes; returns once the message is written (QoS 0), acknowledged
    /// by PUBACK (QoS 1) or the QoS 2 exchange is complete, with the
    /// broker's reason code (MQTT 5: e.g. 0x10, no matching subscribers).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: u8,
        retain: bool,
    ) -> Result<Ack, ClientError> {
        self.publish_with_properties(topic, payload, qos, retain, PublishProperties::default())
            .await
    }

    /// Publishes with MQTT 5 properties.
    pub async fn publish_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: u8,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<Ack, ClientError> {
        let payload = payload.into();
        if qos > 2 {
            return Err(ClientError::Invalid(format!("QoS {qos}: use 0, 1 or 2")));
        }
        self.call(|done| Request::Publish {
            topic: topic.to_string(),
            payload,
            qos,
            retain,
            properties,
            done,
        })
        .await
    }

    /// Queues a QoS 0 publish without waiting for it to be written (a
    /// `disconnect` later still sends it first). The topic is checked here;
    /// a full queue hands the message back.
    pub fn try_publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<(), TryPublish> {
        crate::mqtt::check_topic_name(topic).map_err(|e| TryPublish::Failed(e.into()))?;
        self.try_request(topic, payload, 0, retain, properties, Done::callback(drop))
    }

    /// Starts a publish at any QoS without waiting, if the request queue
    /// has room: `done` is called with the outcome, from the session's
    /// task (so it must be quick). A full queue hands the message back
    /// and `done` is not called.
    pub fn publish_then(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        properties: PublishProperties,
        done: impl FnOnce(Result<Ack, ClientError>) + Send + 'static,
    ) -> Result<(), TryPublish> {
        if qos > 2 {
            return Err(TryPublish::Failed(ClientError::Invalid(format!(
                "QoS {qos}: use 0, 1 or 2"
            ))));
        }
        self.try_request(
            topic,
            payload,
            qos,
            retain,
            properties,
            Done::callback(done),
        )
    }

    fn try_request(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        properties: PublishProperties,
        done: Done,
    ) -> Result<(), TryPublish> {
        let request = Request::Publish {
            topic: topic.to_string(),
            payload,
            qos,
            retain,
            properties,
            done,
        };
        let (full, request) = match self.requests.try_send(request) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(request)) => (true, request),
            Err(mpsc::error::TrySendError::Closed(request)) => (false, request),
        };
        // The request handed back is the publish built above.
        let Request::Publish {
            payload,
            properties,
            done,
            ..
        } = request
        else {
            unreachable!("try_request only sends publishes")
        };
        done.disarm();
        Err(if full {
            TryPublish::Full {
                payload,
                properties: Box::new(properties),
            }
        } else {
            TryPublish::Failed(ClientError::Closed)
        })
    }

    /// Subscribes to one filter; returns the granted QoS.
    pub async fn subscribe(&self, filter: &str, qos: u8) -> Result<u8, ClientError> {
        let ack = self
            .subscribe_with(filter, SubscribeOptions::qos(qos))
            .await?;
        Ok(ack.reason_code)
    }

    /// Subscribes with MQTT 5 subscription options; the acknowledgement's
    /// reason code is the granted QoS.
    pub async fn subscribe_with(
        &self,
        filter: &str,
        options: SubscribeOptions,
    ) -> Result<Ack, ClientError> {
        if options.qos > 2 {
            return Err(ClientError::Invalid(format!(
                "QoS {}: use 0, 1 or 2",
                options.qos
            )));
        }
        self.call(|done| Request::Subscribe {
            filter: filter.to_string(),
            options,
            done,
        })
        .await
    }

    /// Unsubscribes from one filter.
    pub async fn unsubscribe(&self, filter: &str) -> Result<Ack, ClientError> {
        self.unsubscribe_with(filter, Vec::new()).await
    }

    /// Unsubscribes from one filter, with user properties (MQTT 5).
    pub async fn unsubscribe_with(
        &self,
        filter: &str,
        user_properties: Vec<(String, String)>,
    ) -> Result<Ack, ClientError> {
        self.call(|done| Request::Unsubscribe {
            filter: filter.to_string(),
            user_properties,
            done,
        })
        .await
    }

    /// Whether the session is over: disconnected, or the connection lost
    /// with no reconnection configured.
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends DISCONNECT and closes the connection, once the server has
    /// closed its side (or `close_timeout` passed).
    pub async fn disconnect(self) -> Result<(), ClientError> {
        self.disconnect_with(DisconnectOptions::default()).await
    }

    /// [`Client::disconnect`] with MQTT 5 DISCONNECT properties.
    pub async fn disconnect_with(self, options: DisconnectOptions) -> Result<(), ClientError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send(Request::Disconnect { options, done })
            .await
            .map_err(|_| ClientError::Closed)?;
        result.await.map_err(|_| ClientError::ConnectionLost)?
    }
}
