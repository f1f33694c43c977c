//! Byte streams and where they come from: addresses, the stream type every
//! transport yields, client-facing listeners (tcp, tls, ws), connectors
//! (tcp, quic, scion-quic) and the broker connector, PROXY protocol v2,
//! SCION attachment, the QUIC driver and the SCION/UDP datagram table.
//!
//! A transport here moves bytes and does not know MQTT packets.
//!
//! Layer rule: `net` builds on `mqtt` and `ops` only; it never imports
//! `line`, `service`, `client`, `tools` or `cli`.

mod addr;
pub mod broker;
pub mod connector;
pub mod listener;
pub mod proxy_protocol;
pub mod quic;
pub mod scion;
pub mod udp_relay;

pub use addr::HostPort;
