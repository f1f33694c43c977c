//! The gRPC line: everything that knows protobuf. MQTT packets become
//! `MqttRelayService` envelopes ([`convert`], [`envelope`]) and back; each
//! direction of a session is its own pump with its own bounded queue, so a
//! slow reader on one side stalls only that direction and two-way floods
//! cannot deadlock. The r-proxy's side opens streams ([`Upstreams`]), the
//! s-proxy's side accepts them ([`incoming`]) and admits them ([`server`]).
//!
//! Layer rule: `line` builds on `mqtt`, `net` and `ops`; it never imports
//! `service`, `client` or `tools`.

pub mod codec;
pub mod convert;
mod discovery;
pub mod grpc_client;
pub mod inbound;
pub mod incoming;
mod metadata;
pub mod outlet;
pub mod proto;
mod pumps;
pub mod resume;
pub mod server;
mod upstreams;

pub use metadata::{
    CLIENT_ADDR_KEY, CLIENT_ID_KEY, Keepalive, SESSION_ID_KEY, encode_client_id, max_message_size,
    new_session_id, read_tokens,
};
pub use pumps::{
    InboundEnd, OutboundEnd, Traffic, envelope, pump_envelopes_to_writer, pump_reader_to_envelopes,
};
pub use upstreams::{
    OpenError, Opened, RELAY_SERVICE, UpstreamEndpoint, UpstreamTiming, UpstreamUrl, Upstreams,
};

/// An envelope waiting in a relay queue ([`outlet`]). Boxed so that a
/// slot costs 8 bytes instead of the envelope's 272.
pub type QueuedEnvelope = Box<proto::mqtt::MqttStreamMessage>;
