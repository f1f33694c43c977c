//! MQTT client side: the client library ([`Client`]) over every transport
//! `net::connector` opens (tcp, mqtts, ws, wss, quic, scion-quic), plus a
//! packet-level [`Connection`] that tests use to speak exact MQTT through
//! the proxies.
//!
//! Layer rule: `client` builds on `mqtt`, `net` and `ops`; it never imports
//! `line`, `service`, `tools` or `cli`.

mod acks;
mod connection;
mod driver;
pub mod exchange;
mod handshake;
mod inflight;
mod link;
mod options;
mod outgoing;
pub mod packets;
mod properties;
mod session;
mod url;

pub use connection::{Connection, ConnectionError};
pub use handshake::Connected;
pub use options::{Ack, ClientError, ClientOptions, Message, Messages, Reconnect};
pub use properties::{
    DisconnectOptions, PublishProperties, RetainHandling, SubscribeOptions, Will,
};
pub use session::{Client, TryPublish};
pub use url::ClientUrl;
