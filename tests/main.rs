//! Every integration test, linked as one test binary (`cargo test --test
//! integration`): each module was its own binary once, and each of those
//! linked the whole crate with BoringSSL, quiche and SCION again. Filter by
//! module as by name: `cargo test --test integration grpc_line::`.

mod common;

mod admin;
mod bench;
mod broker_tls;
mod cli_examples;
mod client_library;
mod config_files;
mod convert_roundtrip;
mod demo;
mod faults;
mod grpc_line;
mod grpc_line_failures;
mod grpc_security;
mod ingress;
mod no_loss;
mod pocketscion_topology;
mod proxy_protocol;
mod pubsub_cli;
mod quic_scion;
mod quic_transport;
mod readiness;
mod readme_examples;
mod reload;
mod resumable_line;
mod scion_quic;
mod scion_udp;
mod shutdown;
mod snap_identity;
mod systemd_units;
mod tonic_server;
mod upstream_discovery;
