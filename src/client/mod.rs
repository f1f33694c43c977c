//! MQTT client side: the client library ([`Client`]) over every transport
//! `net::connector` opens (tcp, mqtts, ws, wss, quic, scion-quic), plus a
//! packet-level [`Connection`] that tests use to speak exact MQTT through
//! the proxies.
//!
//! Layer rule: `client` builds on `mqtt`, `net` and `ops`; it never imports
//! `line`, `service`, `tools` or `cli`.

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
