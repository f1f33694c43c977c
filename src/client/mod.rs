//! MQTT client side: transports (TCP, QUIC, QUIC over SCION) and a
//! packet-level connection that the demo and the tests use to speak exact
//! MQTT through the proxies.

mod connection;
pub mod exchange;
pub mod packets;
pub mod transport;

pub use connection::{Connection, ConnectionError};
