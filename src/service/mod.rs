//! The four long-running services, one folder each: `r_proxy` (MQTT
//! clients in, gRPC line out), `s_proxy` (gRPC line in, broker out),
//! `scion_quic` (MQTT over QUIC on SCION or UDP/IP in, broker out) and
//! `scion_udp` (SCION datagrams relayed to a QUIC broker on UDP/IP), with
//! the configuration file loading they share ([`settings`]).
//!
//! Layer rule: a service builds on `mqtt`, `net`, `line` and `ops`; one
//! service never imports another, and none imports `client`, `tools` or
//! `cli`.

mod declare;
mod frame;
pub mod r_proxy;
pub mod run;
pub mod s_proxy;
pub mod scion_quic;
pub mod scion_udp;
pub mod settings;

pub use frame::{InForce, Reload, Service, ServiceConfig, drain};
