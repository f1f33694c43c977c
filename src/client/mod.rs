//! MQTT client side: the client library ([`Client`]) over TCP, QUIC and
//! QUIC over SCION, plus a packet-level [`Connection`] that tests use to
//! speak exact MQTT through the proxies.

mod connection;
pub mod exchange;
pub mod packets;
mod session;

pub use connection::{Connection, ConnectionError};
pub use session::{Client, ClientError, ClientOptions, Message, Messages, Reconnect};
