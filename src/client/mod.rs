//! MQTT client side: the client library ([`Client`]) over TCP, QUIC and
//! QUIC over SCION, plus a packet-level [`Connection`] that tests use to
//! speak exact MQTT through the proxies.

mod connection;
mod driver;
pub mod exchange;
mod link;
mod options;
pub mod packets;
mod session;

pub use connection::{Connection, ConnectionError};
pub use options::{ClientError, ClientOptions, Message, Messages, Reconnect};
pub use session::Client;
