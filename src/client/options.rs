//! What a client is given and gives back: its options (URL, identity,
//! reconnection), received messages, and the errors of its calls.

use std::time::Duration;

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::Property;
use tokio::sync::mpsc;

use crate::mqtt::{self, Version};
use crate::net::connector::TransportOptions;

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
pub struct Messages(pub(super) mpsc::Receiver<Message>);

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
