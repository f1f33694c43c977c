//! MQTT client side: a packet-level connection over TCP that the demo and
//! the tests use to speak exact MQTT through the proxies.

mod connection;
pub mod exchange;
pub mod packets;

pub use connection::{Connection, ConnectionError};
