//! Byte streams and where they come from: addresses, the stream type every
//! transport yields ([`BoxedStream`]), listeners and connectors by transport
//! name (tcp, tls, ws, wss, quic, scion-quic), the broker connector, TLS
//! settings, PROXY protocol v2, SCION attachment, the QUIC driver and the
//! SCION/UDP datagram table.
//!
//! A transport here moves bytes and does not know MQTT packets.
//!
//! Layer rule: `net` builds on `mqtt` and `ops` only; it never imports
//! `line`, `service`, `client`, `tools` or `cli`.

mod addr;
pub mod broker;
pub mod connector;
pub mod counted;
pub mod http2;
mod listen_url;
pub mod listener;
pub mod proxy_protocol;
pub mod quic;
pub mod scion;
mod stream;
pub mod tls;
pub mod udp_relay;
mod waker_slot;
pub mod woken;
pub mod ws;

pub use addr::HostPort;
pub(crate) use addr::deserialize_from_str;
pub use stream::{BoxedStream, ByteStream};
pub use waker_slot::{Registered, keep_waker};
