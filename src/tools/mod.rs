//! Commands built on the client library and the services: `pub`/`sub`,
//! `bench`, `demo`, `pocketscion` (with its topology files), `certs`, and
//! the mosquitto runner that tests and the demo use.
//!
//! Layer rule: a tool may use any layer below; nothing but `cli` and
//! `main` imports a tool.

pub mod bench;
pub mod certs;
pub mod demo;
pub mod mosquitto;
pub mod pocketscion;
pub mod pubsub;
pub mod topology;
