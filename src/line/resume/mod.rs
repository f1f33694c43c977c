//! Resumable sessions on the gRPC line: a break of the stream between
//! r-proxy and s-proxy is hidden from the MQTT client and the broker.
//!
//! Both ends number the envelopes they send (`sequence_id`, from 1) and
//! acknowledge what they receive (`acknowledged`, cumulative; riding on
//! envelopes going the other way, or alone). What awaits acknowledgement is
//! kept in a [`replay`] buffer bounded in bytes; a full buffer stops the
//! side from reading its MQTT socket.
//!
//! ```text
//!            break (error, or an end without TERMINATE)
//! attached --------------------------------------------> gap
//!    ^                                                    |  r-proxy: new stream to the same
//!    |   replayed everything after the peer's "received"  |  s-proxy, with backoff; answers
//!    +------------------------ replaying <----------------+  the client's PINGREQ itself.
//!                                                         |  s-proxy: holds the broker
//!       window over, or resume refused: close as before   |  connection, pings the broker.
//!                         <-------------------------------+
//! ```
//!
//! A session ends on purpose with TERMINATE, after which each end waits
//! (bounded), reading the line, for the other to acknowledge it or to end
//! the session too. Resumption is agreed per stream in metadata
//! ([`grant`]); without it the line behaves exactly as
//! the seed system's: the plain variants of [`LinkSender`] and
//! [`LinkReceiver`]. Either kind sends the PUBLISHes of one socket read in
//! one [`Burst`] and receives a DATA chunk's envelopes in one call.

mod burst;
mod end;
pub mod envelopes;
pub mod grant;
mod hold;
mod link;
mod receiver;
mod reconnect;
mod replay;
mod sender;
mod sessions;

pub use burst::Burst;
pub use hold::{keep_cloud, take_resume};
pub use link::{Attached, Closed, End, Inbound, Link, Outlet};
pub use receiver::LinkReceiver;
pub use reconnect::{ResumeError, Resumed, keep_edge};
pub use sender::LinkSender;
pub use sessions::{Registration, ResumableSessions};
