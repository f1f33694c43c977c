//! The gRPC line: everything that knows protobuf. MQTT packets become
//! `MqttRelayService` envelopes ([`convert`], [`envelope`]) and back; each
//! direction of a session is its own pump, bounded on its own (the
//! HTTP/2 stream's send buffer and window, [`outlet`]), so a slow reader
//! on one side stalls only that direction and two-way floods cannot
//! deadlock. Both ends speak gRPC on HTTP/2 themselves ([`grpc`]). The
//! r-proxy's side opens streams ([`Upstreams`]), the s-proxy's side
//! accepts them ([`incoming`]) and admits them ([`server`]).
//!
//! Layer rule: `line` builds on `mqtt`, `net` and `ops`; it never imports
//! `service`, `client` or `tools`.

pub mod convert;
mod discovery;
pub mod grpc;
pub mod incoming;
mod metadata;
mod outgoing;
pub mod outlet;
pub mod proto;
mod pumps;
mod received;
pub mod resume;
pub mod server;
mod upstreams;

pub use metadata::{
    CLIENT_ADDR_KEY, CLIENT_ID_KEY, Keepalive, RELAY_METHOD, RELAY_SERVICE, SESSION_ID_KEY,
    encode_client_id, max_message_size, new_session_id, read_tokens,
};
pub use pumps::{
    InboundEnd, OutboundEnd, Step, Traffic, encode_received, envelope,
    pump_envelopes_noting_disconnect, pump_envelopes_to_writer, pump_reader_to_envelopes,
};
pub use upstreams::{OpenError, Opened, UpstreamEndpoint, UpstreamTiming, UpstreamUrl, Upstreams};

pub use outgoing::Outgoing;
pub use received::{ReceiveEach, Received};

/// The peer's envelopes on a session's gRPC call, whichever end made it.
pub type Inbound = grpc::Messages<Received<'static>>;
