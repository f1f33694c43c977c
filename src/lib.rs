//! mqttbridge: carries MQTT 3.1.1 and 5.0 between ordinary clients and
//! brokers across networks where plain MQTT/TCP does not fit.
//!
//! Layers, imports running one way (a layer may use those listed after it):
//!
//! - [`cli`]: the command enum; each command wraps the Args its owner defines.
//! - [`tools`]: pub/sub, bench, demo, pocketscion, certs, the mosquitto runner.
//! - [`service`]: r-proxy, s-proxy, scion-quic, scion-udp.
//! - [`client`]: the client library.
//! - [`line`]: everything that knows protobuf (the gRPC line).
//! - [`net`]: byte streams, listeners, connectors, QUIC, SCION.
//! - [`ops`]: metrics, admin endpoint, systemd.
//! - [`mqtt`]: the packet codec; imports nothing else of the crate.

pub mod cli;
pub mod client;
pub mod line;
pub mod mqtt;
pub mod net;
pub mod ops;
pub mod service;
pub mod tools;

#[cfg(test)]
mod layering;
