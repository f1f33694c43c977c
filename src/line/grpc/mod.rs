//! gRPC on our own HTTP/2 ([`crate::net::http2`]), both ends of the line: the r-proxy's client,
//! one connection per s-proxy address ([`Channel`]) with calls started on
//! it ([`Call`]); the s-proxy's server ([`Server`]), which hands each call
//! to its method's handler ([`ServedCall`]) and serves the standard health
//! service ([`serve_health`]). Either way the messages a session sends are
//! framed and handed to HTTP/2 by the session's own task
//! ([`crate::line::outlet::Outlet`]) and the peer's are decoded as they
//! are read ([`Messages`]). The wire is gRPC's (PROTOCOL-HTTP2): any gRPC
//! peer, the seed system's proxies included, speaks it.
//!
//! Why not tonic's client and server: they run every streaming body in a
//! task of its own (hyper's pipe on the client, hyper's stream task on the
//! server) fed through a queue, which costs each idle session kilobytes
//! and each message a task wake-up; and why not h2 under our own gRPC: its
//! connection task and stream handles were a third of each proxy's
//! instructions per message (BENCHMARKS.md). tonic is kept for its types
//! (status, metadata) and the generated protobuf messages.

mod calls;
mod channel;
pub mod framing;
mod health;
mod messages;
mod pings;
mod served;
mod server;
mod status;
#[cfg(test)]
pub mod testing;
mod wire_message;

pub use calls::{ActiveCall, Call, PendingResponse};
pub use channel::{Channel, ChannelSettings, Target};
pub use health::{HEALTH_CHECK, HEALTH_WATCH, serve_health};
pub use messages::{Messages, undecodable};
pub use served::{PeerInfo, ServedCall, trailers};
pub use server::{Handler, Server, ServerSettings};
pub use status::from_http2 as status_of_http2;
pub use wire_message::{WireDecode, WireEncode, WireMessage};

/// Our receive window per stream and per connection, at both ends
/// (hyper's defaults, which the line used before): a stream's peer may
/// send this far ahead.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// The largest header block accepted from the peer.
const MAX_HEADER_LIST: u32 = 16 * 1024;
