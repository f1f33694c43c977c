//! The modes of the `mqttbridge` binary. Each wires an ingress to an egress
//! using the shared codec, conversion and relay pumps.

pub mod demo;
pub mod pocketscion;
pub mod pubsub;
pub mod r_proxy;
pub mod s_proxy;
pub mod scion_quic;
pub mod scion_udp;
