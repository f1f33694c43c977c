//! mqttbridge: carries MQTT 3.1.1 and 5.0 between ordinary clients and
//! brokers across networks where plain MQTT/TCP does not fit.
//!
//! Layers, each knowing only the one below: [`config`] turns TOML and flags
//! into typed settings; a mode in [`mode`] wires an ingress transport to an
//! egress transport; [`relay`] pumps MQTT packets between them; [`codec`]
//! (framing, decoding, encoding) and [`convert`] (MQTT <-> protobuf) are
//! shared by all.

pub mod admin;
pub mod bench;
pub mod broker;
pub mod certs;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod convert;
pub mod gauge;
pub mod grpc;
pub mod ingress;
pub mod mode;
pub mod mosquitto;
pub mod proto;
pub mod proxy_protocol;
pub mod quic;
pub mod relay;
pub mod scion;
pub mod systemd;
pub mod telemetry;
pub mod topology;
pub mod udp_relay;
