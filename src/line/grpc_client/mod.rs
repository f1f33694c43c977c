//! The r-proxy's gRPC client, on HTTP/2 directly: one connection per
//! s-proxy address ([`Channel`]), calls started on it ([`Call`]), request
//! messages framed and written by the session's own task
//! ([`crate::line::outlet::CallSink`]) and responses decoded as they are
//! read ([`Responses`]). The wire is gRPC's (PROTOCOL-HTTP2): any gRPC
//! server, the seed system's s-proxy included, serves it.
//!
//! Why not tonic's client: it runs every streaming request body in a task
//! of its own (hyper's pipe) fed through a queue, which costs each idle
//! session about 1.8 KiB and each message a task wake-up on the way out
//! (BENCHMARKS.md). The s-proxy's side stays on tonic's server.

mod calls;
mod channel;
pub mod framing;
mod responses;
mod status;

pub use calls::{ActiveCall, Call, PendingResponse};
pub use channel::{Channel, ChannelSettings, Target};
pub use responses::Responses;
pub use status::from_h2 as status_of_h2;
