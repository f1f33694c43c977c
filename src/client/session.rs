//! The client library: an MQTT session over TCP, QUIC or QUIC over SCION,
//! driven by one background task.
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
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_protocol_core::mqtt::packet::Property;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::packets;
use crate::mqtt::PacketReader;
use crate::mqtt::{self, Packet, Version, packet_type_name};
use crate::net::connector::{self as transport, BoxedStream, Endpoint, TransportOptions};

/// What can go wrong for a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one the client understands.
    #[error("bad URL: {0}")]
    Url(String),
    /// The transport could not be opened.
    #[error("cannot connect: {0:#}")]
    Transport(anyhow::Error),
    /// The broker refused the connection (CONNACK return/reason code).
    #[error("connection refused by the broker: {0:#04x} {name}", name = mqtt::reason_name(*.0))]
    Refused(u8),
    /// The broker answered a request with a failure code (PUBACK, PUBREC,
    /// SUBACK or UNSUBACK reason code of 0x80 or more).
    #[error("request refused by the broker: {0:#04x} {name}", name = mqtt::reason_name(*.0))]
    Rejected(u8),
    /// The connection went away before the request completed.
    #[error("connection lost")]
    ConnectionLost,
    /// The client was shut down.
    #[error("client closed")]
    Closed,
    /// The broker broke the protocol or a packet could not be built.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<mqtt_protocol_core::mqtt::result_code::MqttError> for ClientError {
    fn from(e: mqtt_protocol_core::mqtt::result_code::MqttError) -> Self {
        ClientError::Protocol(format!("{e:?}"))
    }
}

/// Reconnection after a lost connection.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// First wait before reconnecting; doubles after each failure.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `tcp://host:port`, `quic://host:port` or `scion-quic://[ISD-AS,IP]:port`.
    pub url: String,
    /// MQTT version.
    pub version: Version,
    /// Client identifier ("" lets the broker assign one).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// MQTT 5: how long the broker keeps the session after the connection
    /// ends (zero: not at all, so `clean_start = false` alone keeps
    /// nothing). MQTT 3.1.1 keeps it whenever `clean_start` is false.
    pub session_expiry: Duration,
    /// Keep-alive interval; PINGREQ is sent when the link is otherwise idle.
    pub keep_alive: Duration,
    /// TLS, SCION and QUIC settings.
    pub transport: TransportOptions,
    /// Requests and received messages buffered (each way).
    pub queue_depth: usize,
    /// Reconnect with backoff when the connection is lost.
    pub reconnect: Option<Reconnect>,
    /// QoS 1/2 publishes and (un)subscriptions awaiting their answer at
    /// once; an MQTT 5 broker's receive maximum lowers it. MQTT 3.1.1 has no
    /// way to learn the broker's limit (mosquitto's default is 20).
    pub max_in_flight: usize,
    /// How long `disconnect` waits for the server to close its side after
    /// DISCONNECT (which tells that everything sent before it arrived).
    pub close_timeout: Duration,
}

impl ClientOptions {
    /// MQTT 5.0, clean start, 30 s keep-alive, no reconnection.
    pub fn new(url: &str, client_id: &str) -> Self {
        Self {
            url: url.to_string(),
            version: Version::V5,
            client_id: client_id.to_string(),
            clean_start: true,
            session_expiry: Duration::ZERO,
            keep_alive: Duration::from_secs(30),
            transport: TransportOptions::default(),
            queue_depth: 256,
            reconnect: None,
            max_in_flight: 16,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// A received application message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was delivered with.
    pub qos: u8,
    /// Retained flag.
    pub retain: bool,
    /// MQTT 5 properties (empty for 3.1.1).
    pub properties: Vec<Property>,
}

/// Received messages, in order. Ends when the client is closed or the
/// connection is lost for good.
pub struct Messages(mpsc::Receiver<Message>);

impl Messages {
    /// The next message; `None` once no more can come.
    pub async fn recv(&mut self) -> Option<Message> {
        self.0.recv().await
    }

    /// The next message if one is here already, without waiting.
    pub fn try_recv(&mut self) -> Result<Message, mpsc::error::TryRecvError> {
        self.0.try_recv()
    }
}

impl futures_util::Stream for Messages {
    type Item = Message;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        self.0.poll_recv(cx)
    }
}

enum Request {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        properties: Vec<Property>,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        filter: String,
        qos: u8,
        done: oneshot::Sender<Result<u8, ClientError>>,
    },
    Unsubscribe {
        filter: String,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Disconnect {
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// A handle to the session; cheap to clone, all clones share it.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

impl Client {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(options: ClientOptions) -> Result<(Client, Messages), ClientError> {
        let endpoint: Endpoint = options.url.parse().map_err(ClientError::Url)?;
        let link = Link::open(&endpoint, &options).await?;
        let (requests, request_rx) = mpsc::channel(options.queue_depth.max(1));
        let (messages_tx, messages) = mpsc::channel(options.queue_depth.max(1));
        let driver = Driver {
            options,
            endpoint,
            link,
            requests: request_rx,
            messages: messages_tx,
            pending: HashMap::new(),
            awaiting_pubrel: HashSet::new(),
            subscriptions: Vec::new(),
            next_id: 1,
        };
        tokio::spawn(driver.run());
        Ok((Client { requests }, Messages(messages)))
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Request,
    ) -> Result<T, ClientError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send(make(done))
            .await
            .map_err(|_| ClientError::Closed)?;
        result.await.map_err(|_| ClientError::ConnectionLost)?
    }

    /// Publishes; returns once the message is written (QoS 0), acknowledged
    /// by PUBACK (QoS 1) or the QoS 2 exchange is complete.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: u8,
        retain: bool,
    ) -> Result<(), ClientError> {
        self.publish_with_properties(topic, payload, qos, retain, Vec::new())
            .await
    }

    /// Publishes with MQTT 5 properties.
    pub async fn publish_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: u8,
        retain: bool,
        properties: Vec<Property>,
    ) -> Result<(), ClientError> {
        let payload = payload.into();
        self.call(|done| Request::Publish {
            topic: topic.to_string(),
            payload,
            qos: qos.min(2),
            retain,
            properties,
            done,
        })
        .await
    }

    /// Subscribes to one filter; returns the granted QoS.
    pub async fn subscribe(&self, filter: &str, qos: u8) -> Result<u8, ClientError> {
        self.call(|done| Request::Subscribe {
            filter: filter.to_string(),
            qos: qos.min(2),
            done,
        })
        .await
    }

    /// Unsubscribes from one filter.
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), ClientError> {
        self.call(|done| Request::Unsubscribe {
            filter: filter.to_string(),
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
        self.call(|done| Request::Disconnect { done }).await
    }
}

/// One open connection.
struct Link {
    reader: PacketReader<ReadHalf<BoxedStream>>,
    writer: WriteHalf<BoxedStream>,
    /// Requests the broker lets us have in flight (MQTT 5 receive maximum).
    max_in_flight: usize,
    session_present: bool,
}

impl Link {
    async fn open(endpoint: &Endpoint, options: &ClientOptions) -> Result<Self, ClientError> {
        let stream = transport::open(endpoint, &options.transport)
            .await
            .map_err(ClientError::Transport)?;
        let (rd, writer) = tokio::io::split(stream);
        let mut link = Link {
            reader: PacketReader::new(rd, mqtt::DEFAULT_MAX_PACKET_SIZE * 4),
            writer,
            max_in_flight: options.max_in_flight.max(1),
            session_present: false,
        };
        let keep_alive = options.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
        let connect = packets::connect_keeping_session(
            options.version,
            &options.client_id,
            options.clean_start,
            keep_alive,
            u32::try_from(options.session_expiry.as_secs()).unwrap_or(u32::MAX),
        )?;
        link.write(&connect).await?;
        let reply = tokio::time::timeout(Duration::from_secs(30), link.read(options.version))
            .await
            .map_err(|_| ClientError::Transport(anyhow::anyhow!("no CONNACK within 30 s")))??;
        match reply {
            Some(Packet::V3_1_1Connack(c)) => {
                let code = c.return_code() as u8;
                if code != 0 {
                    return Err(ClientError::Refused(code));
                }
                link.session_present = c.session_present();
            }
            Some(Packet::V5_0Connack(c)) => {
                let code = c.reason_code() as u8;
                if code >= 0x80 {
                    return Err(ClientError::Refused(code));
                }
                link.session_present = c.session_present();
                for p in &c.props {
                    if let Property::ReceiveMaximum(m) = p {
                        link.max_in_flight = link.max_in_flight.min(m.val().into());
                    }
                }
            }
            Some(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected CONNACK, got {}",
                    packet_type_name(&other)
                )));
            }
            None => return Err(ClientError::ConnectionLost),
        }
        Ok(link)
    }

    async fn write(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let mut buf = BytesMut::new();
        mqtt::encode(packet, &mut buf);
        let written = async {
            self.writer.write_all(&buf).await?;
            // TLS and WebSocket streams buffer until flushed.
            self.writer.flush().await
        };
        written.await.map_err(|_| ClientError::ConnectionLost)
    }

    async fn read(&mut self, version: Version) -> Result<Option<Packet>, ClientError> {
        match self.reader.next().await {
            Ok(Some(raw)) => mqtt::decode(version, &raw)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
            Ok(None) => Ok(None),
            Err(_) => Err(ClientError::ConnectionLost),
        }
    }
}

/// A request waiting for the broker's answer.
enum Pending {
    Publish {
        qos: u8,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        done: oneshot::Sender<Result<u8, ClientError>>,
    },
    Unsubscribe {
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

impl Pending {
    fn fail(self, error: fn() -> ClientError) {
        match self {
            Pending::Publish { done, .. } => drop(done.send(Err(error()))),
            Pending::Subscribe { done } => drop(done.send(Err(error()))),
            Pending::Unsubscribe { done } => drop(done.send(Err(error()))),
        }
    }
}

/// Why a connection's loop ended.
enum End {
    /// The application disconnected or dropped every handle.
    Closed,
    /// The connection failed.
    Lost,
}

struct Driver {
    options: ClientOptions,
    endpoint: Endpoint,
    link: Link,
    requests: mpsc::Receiver<Request>,
    messages: mpsc::Sender<Message>,
    pending: HashMap<u16, Pending>,
    /// QoS 2 messages delivered, waiting for PUBREL (not delivered twice).
    awaiting_pubrel: HashSet<u16>,
    /// Filters to restore after a reconnect without a session.
    subscriptions: Vec<(String, u8)>,
    next_id: u16,
}

impl Driver {
    async fn run(mut self) {
        loop {
            match self.serve_link().await {
                End::Closed => return,
                End::Lost => {
                    for (_, pending) in self.pending.drain() {
                        pending.fail(|| ClientError::ConnectionLost);
                    }
                    let Some(reconnect) = self.options.reconnect.clone() else {
                        return;
                    };
                    if !self.reconnect(&reconnect).await {
                        return;
                    }
                }
            }
        }
    }

    /// Reconnects with exponential backoff; false when the application is gone.
    async fn reconnect(&mut self, policy: &Reconnect) -> bool {
        let mut wait = policy.initial_backoff;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.messages.closed() => return false,
            }
            match Link::open(&self.endpoint, &self.options).await {
                Ok(link) => {
                    self.link = link;
                    if !self.link.session_present {
                        let subscriptions = self.subscriptions.clone();
                        for (filter, qos) in subscriptions {
                            let id = self.allocate_id();
                            let Ok(packet) =
                                packets::subscribe(self.options.version, id, &filter, qos)
                            else {
                                continue;
                            };
                            if self.link.write(&packet).await.is_err() {
                                break;
                            }
                        }
                    }
                    debug!("reconnected");
                    return true;
                }
                Err(e) => {
                    debug!(error = %e, "reconnect failed");
                    wait = (wait * 2).min(policy.max_backoff);
                }
            }
        }
    }

    fn allocate_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    async fn serve_link(&mut self) -> End {
        let version = self.options.version;
        let keep_alive = self.options.keep_alive;
        let mut last_sent = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let mut tick = tokio::time::interval((keep_alive / 2).max(Duration::from_millis(100)));
        loop {
            let can_send = self.pending.len() < self.link.max_in_flight;
            tokio::select! {
                request = self.requests.recv(), if can_send => {
                    let Some(request) = request else {
                        // Every handle dropped: leave politely.
                        let _ = self.link.write(&packets::disconnect(version)).await;
                        let _ = self.link.writer.shutdown().await;
                        return End::Closed;
                    };
                    last_sent = Instant::now();
                    match self.send_request(request).await {
                        Ok(true) => {}
                        Ok(false) => return End::Closed,
                        Err(_) => return End::Lost,
                    }
                }
                packet = self.link.read(version) => {
                    match packet {
                        Ok(Some(packet)) => {
                            ping_sent = None;
                            if self.handle_incoming(packet).await.is_err() {
                                return End::Lost;
                            }
                        }
                        Ok(None) | Err(_) => return End::Lost,
                    }
                }
                _ = tick.tick() => {
                    if let Some(sent) = ping_sent
                        && sent.elapsed() > keep_alive
                    {
                        debug!("no PINGRESP in time");
                        return End::Lost;
                    }
                    if !keep_alive.is_zero() && ping_sent.is_none() && last_sent.elapsed() >= keep_alive {
                        let ping = match version {
                            Version::V3_1_1 => Packet::V3_1_1Pingreq(mqtt_protocol_core::mqtt::packet::v3_1_1::Pingreq::new()),
                            Version::V5 => Packet::V5_0Pingreq(mqtt_protocol_core::mqtt::packet::v5_0::Pingreq::new()),
                        };
                        if self.link.write(&ping).await.is_err() {
                            return End::Lost;
                        }
                        last_sent = Instant::now();
                        ping_sent = Some(last_sent);
                    }
                }
            }
        }
    }

    /// Writes a request; `Ok(false)` after a DISCONNECT.
    async fn send_request(&mut self, request: Request) -> Result<bool, ClientError> {
        let version = self.options.version;
        match request {
            Request::Publish {
                topic,
                payload,
                qos,
                retain,
                properties,
                done,
            } => {
                let id = if qos > 0 { self.allocate_id() } else { 0 };
                let packet =
                    match packets::publish(version, &topic, payload, qos, retain, id, properties) {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = done.send(Err(e.into()));
                            return Ok(true);
                        }
                    };
                self.link.write(&packet).await?;
                if qos == 0 {
                    let _ = done.send(Ok(()));
                } else {
                    self.pending.insert(id, Pending::Publish { qos, done });
                }
            }
            Request::Subscribe { filter, qos, done } => {
                let id = self.allocate_id();
                let packet = match packets::subscribe(version, id, &filter, qos) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(true);
                    }
                };
                self.link.write(&packet).await?;
                self.subscriptions.retain(|(f, _)| f != &filter);
                self.subscriptions.push((filter, qos));
                self.pending.insert(id, Pending::Subscribe { done });
            }
            Request::Unsubscribe { filter, done } => {
                let id = self.allocate_id();
                let packet = match packets::unsubscribe(version, id, &filter) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(true);
                    }
                };
                self.link.write(&packet).await?;
                self.subscriptions.retain(|(f, _)| f != &filter);
                self.pending.insert(id, Pending::Unsubscribe { done });
            }
            Request::Disconnect { done } => {
                let result = self.link.write(&packets::disconnect(version)).await;
                let _ = self.link.writer.shutdown().await;
                // Wait for the server to close its side too: then everything
                // written before DISCONNECT has arrived. Over QUIC, a process
                // exiting right after writing would lose what was not yet
                // acknowledged (a QoS 0 publish, the DISCONNECT itself).
                let linger = tokio::time::Instant::now() + self.options.close_timeout;
                while let Ok(Ok(Some(_))) =
                    tokio::time::timeout_at(linger, self.link.reader.next()).await
                {}
                for (_, pending) in self.pending.drain() {
                    pending.fail(|| ClientError::Closed);
                }
                let _ = done.send(result);
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn handle_incoming(&mut self, packet: Packet) -> Result<(), ClientError> {
        let version = self.options.version;
        if let Some(received) = packets::received(&packet) {
            let duplicate = received.qos == 2 && self.awaiting_pubrel.contains(&received.packet_id);
            if let Some(ack) = packets::publish_ack(version, received.qos, received.packet_id)? {
                if received.qos == 2 {
                    self.awaiting_pubrel.insert(received.packet_id);
                }
                if !duplicate {
                    self.deliver(received).await?;
                }
                return self.link.write(&ack).await;
            }
            return self.deliver(received).await;
        }
        match packet {
            Packet::V3_1_1Puback(p) => self.complete_publish(p.packet_id(), 1, 0),
            Packet::V5_0Puback(p) => {
                self.complete_publish(p.packet_id(), 1, p.reason_code().map_or(0, |c| c as u8))
            }
            Packet::V3_1_1Pubrec(p) => return self.pubrec(p.packet_id(), 0).await,
            Packet::V5_0Pubrec(p) => {
                return self
                    .pubrec(p.packet_id(), p.reason_code().map_or(0, |c| c as u8))
                    .await;
            }
            Packet::V3_1_1Pubcomp(p) => self.complete_publish(p.packet_id(), 2, 0),
            Packet::V5_0Pubcomp(p) => {
                self.complete_publish(p.packet_id(), 2, p.reason_code().map_or(0, |c| c as u8))
            }
            Packet::V3_1_1Pubrel(p) => {
                self.awaiting_pubrel.remove(&p.packet_id());
                return self
                    .link
                    .write(&packets::pubcomp(version, p.packet_id())?)
                    .await;
            }
            Packet::V5_0Pubrel(p) => {
                self.awaiting_pubrel.remove(&p.packet_id());
                return self
                    .link
                    .write(&packets::pubcomp(version, p.packet_id())?)
                    .await;
            }
            Packet::V3_1_1Suback(s) => {
                let code = s.return_codes().first().map_or(0x80, |c| *c as u8);
                self.complete_subscribe(s.packet_id(), code);
            }
            Packet::V5_0Suback(s) => {
                let code = s.reason_codes().first().map_or(0x80, |c| *c as u8);
                self.complete_subscribe(s.packet_id(), code);
            }
            Packet::V3_1_1Unsuback(u) => self.complete_unsubscribe(u.packet_id(), 0),
            Packet::V5_0Unsuback(u) => {
                let code = u.reason_codes().first().map_or(0, |c| *c as u8);
                self.complete_unsubscribe(u.packet_id(), code);
            }
            Packet::V3_1_1Pingresp(_) | Packet::V5_0Pingresp(_) => {}
            Packet::V5_0Disconnect(d) => {
                debug!(reason = ?d.reason_code(), "broker sent DISCONNECT");
                return Err(ClientError::ConnectionLost);
            }
            other => debug!(
                packet = packet_type_name(&other),
                "unexpected packet ignored"
            ),
        }
        Ok(())
    }

    async fn deliver(&mut self, received: packets::Received) -> Result<(), ClientError> {
        let message = Message {
            topic: received.topic,
            payload: Bytes::from(received.payload),
            qos: received.qos,
            retain: received.retain,
            properties: received.properties,
        };
        // Waits while the application is behind: backpressure, not drops.
        // An application that dropped its receiver simply gets no messages.
        let _ = self.messages.send(message).await;
        Ok(())
    }

    async fn pubrec(&mut self, id: u16, code: u8) -> Result<(), ClientError> {
        if code >= 0x80 {
            self.complete_publish(id, 2, code);
            return Ok(());
        }
        self.link
            .write(&packets::pubrel(self.options.version, id)?)
            .await
    }

    fn complete_publish(&mut self, id: u16, expected_qos: u8, code: u8) {
        if let Some(Pending::Publish { qos, done }) = self.pending.remove(&id) {
            let result = if qos != expected_qos {
                Err(ClientError::Protocol(format!(
                    "acknowledgement for QoS {expected_qos}, message was QoS {qos}"
                )))
            } else if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(())
            };
            let _ = done.send(result);
        }
    }

    fn complete_subscribe(&mut self, id: u16, code: u8) {
        if let Some(Pending::Subscribe { done }) = self.pending.remove(&id) {
            let _ = done.send(if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(code)
            });
        }
    }

    fn complete_unsubscribe(&mut self, id: u16, code: u8) {
        if let Some(Pending::Unsubscribe { done }) = self.pending.remove(&id) {
            let _ = done.send(if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(())
            });
        }
    }
}
