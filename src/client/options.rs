//! What a client is given and gives back: its options (URL, identity,
//! reconnection), received messages, and the errors of its calls.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::mqtt::{self, Version};
use crate::net::connector::TransportOptions;

use super::properties::{PublishProperties, Will};

/// What can go wrong for a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one the client understands.
    #[error("bad URL: {0}")]
    Url(String),
    /// A call's argument cannot be sent: an invalid topic, a QoS or
    /// packet the broker said it does not take, a property out of range.
    #[error("{0}")]
    Invalid(String),
    /// The transport could not be opened.
    #[error("cannot connect: {0:#}")]
    Transport(anyhow::Error),
    /// The broker refused the connection (CONNACK return/reason code and,
    /// MQTT 5, its reason string).
    #[error("connection refused by the broker: {code:#04x} {name}{reason}", name = mqtt::reason_name(*.code), reason = said(.reason))]
    Refused {
        /// CONNACK return code (3.1.1) or reason code (5.0).
        code: u8,
        /// MQTT 5 reason string.
        reason: Option<String>,
    },
    /// The broker answered a request with a failure code (PUBACK, PUBREC,
    /// PUBCOMP, SUBACK or UNSUBACK reason code of 0x80 or more).
    #[error("request refused by the broker: {code:#04x} {name}{reason}", name = mqtt::reason_name(*.code), reason = said(.reason))]
    Rejected {
        /// The acknowledgement's reason code.
        code: u8,
        /// MQTT 5 reason string.
        reason: Option<String>,
    },
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

fn said(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(" (\"{r}\")"))
        .unwrap_or_default()
}

impl ClientError {
    /// The broker's reason code, for a refused connection or request.
    pub fn reason_code(&self) -> Option<u8> {
        match self {
            ClientError::Refused { code, .. } | ClientError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<mqtt_protocol_core::mqtt::result_code::MqttError> for ClientError {
    fn from(e: mqtt_protocol_core::mqtt::result_code::MqttError) -> Self {
        ClientError::Protocol(format!("{e:?}"))
    }
}

impl From<mqtt::TopicError> for ClientError {
    fn from(e: mqtt::TopicError) -> Self {
        ClientError::Invalid(e.to_string())
    }
}

/// A broker's successful answer to a request: its reason code (for
/// SUBACK, the granted QoS) and, MQTT 5, reason string and user properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// Reason code below 0x80 (0 for MQTT 3.1.1 and QoS 0).
    pub reason_code: u8,
    /// MQTT 5 reason string.
    pub reason_string: Option<String>,
    /// MQTT 5 user properties of the acknowledgement.
    pub user_properties: Vec<(String, String)>,
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
    /// `tcp://host:port` (also `mqtt://`), `mqtts://host:port`,
    /// `ws://host:port/path`, `wss://host:port/path`, `quic://host:port` or
    /// `scion-quic://[ISD-AS,IP]:port`, each optionally with
    /// `user:password@` before the host (percent-encoded).
    pub url: String,
    /// MQTT version.
    pub version: Version,
    /// Client identifier ("" lets the broker assign one).
    pub client_id: String,
    /// User name; overrides the URL's.
    pub username: Option<String>,
    /// Password; overrides the URL's. MQTT 3.1.1 needs a user name with it.
    pub password: Option<Bytes>,
    /// Message the broker publishes if the connection ends without DISCONNECT.
    pub will: Option<Will>,
    /// Clean session (3.1.1) / clean start (5.0) of the first connection.
    /// Reconnections resume the session when one is kept.
    pub clean_start: bool,
    /// MQTT 5: how long the broker keeps the session after the connection
    /// ends (zero: not at all, so `clean_start = false` alone keeps
    /// nothing; `u32::MAX` seconds: for ever). MQTT 3.1.1 keeps it whenever
    /// `clean_start` is false.
    pub session_expiry: Duration,
    /// Keep-alive interval; PINGREQ is sent when the link is otherwise idle.
    /// An MQTT 5 broker's server keep alive replaces it.
    pub keep_alive: Duration,
    /// MQTT 5: QoS 1/2 messages the broker may send before we acknowledge
    /// (default: the protocol's 65,535).
    pub receive_maximum: Option<u16>,
    /// Largest packet the client accepts; the broker is told (MQTT 5) and
    /// larger packets end the connection.
    pub maximum_packet_size: u32,
    /// MQTT 5: topic aliases the broker may use towards us (0: none).
    pub topic_alias_maximum: u16,
    /// MQTT 5: user properties sent with CONNECT.
    pub user_properties: Vec<(String, String)>,
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
    /// How long to wait for CONNACK.
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// MQTT 5.0, clean start, 30 s keep-alive, no reconnection.
    pub fn new(url: &str, client_id: &str) -> Self {
        Self {
            url: url.to_string(),
            version: Version::V5,
            client_id: client_id.to_string(),
            username: None,
            password: None,
            will: None,
            clean_start: true,
            session_expiry: Duration::ZERO,
            keep_alive: Duration::from_secs(30),
            receive_maximum: None,
            maximum_packet_size: mqtt::DEFAULT_MAX_PACKET_SIZE * 4,
            topic_alias_maximum: 0,
            user_properties: Vec::new(),
            transport: TransportOptions::default(),
            queue_depth: 256,
            reconnect: None,
            max_in_flight: 16,
            close_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// Whether the broker keeps the session when a connection ends, so
    /// unacknowledged messages are resent after a reconnect.
    pub fn keeps_session(&self) -> bool {
        match self.version {
            Version::V3_1_1 => !self.clean_start,
            Version::V5 => !self.session_expiry.is_zero(),
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
    /// Whether the broker says it may have sent it before (DUP).
    pub duplicate: bool,
    /// Packet identifier it came with (0 for QoS 0).
    pub packet_id: u16,
    /// MQTT 5 properties (empty for 3.1.1).
    pub properties: PublishProperties,
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
