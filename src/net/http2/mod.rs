//! HTTP/2 (RFC 9113) for the gRPC line, written for it: one task per
//! connection reads and writes the socket ([`driver`]), and each stream's
//! users write their frames into the connection's output buffer
//! themselves under one short lock ([`state`]), so a message costs no
//! queue and no task of its own, and write it to the socket too when the
//! connection is idle ([`output`]). The server side
//! ([`server::handshake`], [`server::Connection::accept`]) serves the
//! s-proxy's gRPC calls, the client side ([`client::handshake`],
//! [`client::SendRequest`]) makes the r-proxy's; headers use HPACK
//! ([`hpack`], [`huffman`]).
//!
//! What a peer can make it hold is bounded: frames up to 16 KiB, header
//! blocks up to the configured list size, received data up to the windows
//! we grant, streams up to the configured concurrency, and output: it
//! stops reading while its output waits to be written.

pub mod client;
mod driver;
mod entry;
pub mod frame;
mod hpack;
mod huffman;
mod id_hasher;
mod output;
mod ping;
pub mod server;
mod state;
mod stream;
#[cfg(test)]
mod tests;
mod windows;

use std::sync::Arc;

pub use frame::Reason;
pub use output::unparked;
pub use ping::Pinger;
pub use server::{Incoming, RequestHead};
pub use stream::{RecvStream, SendStream};

/// How a connection is run.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Streams the peer may have open at once.
    pub max_streams: u32,
    /// What the peer may send ahead on each stream, and on the connection.
    pub stream_window: u32,
    pub connection_window: u32,
    /// The largest header block accepted (names, values and 32 bytes a
    /// field).
    pub max_header_list: u32,
    /// Bytes a stream may have waiting to be sent before its sender waits;
    /// also what the connection's output holds before data waits.
    pub send_buffer: usize,
}

/// Why a stream or connection ended.
#[derive(Debug, Clone)]
pub enum Error {
    /// The stream was reset, by the peer (`remote`) or here.
    Reset { reason: Reason, remote: bool },
    /// The connection was ended with GOAWAY, by the peer or here (`detail`
    /// says what the peer did wrong); on a client, also a stream the
    /// server's GOAWAY said it would not process.
    GoAway {
        reason: Reason,
        remote: bool,
        detail: &'static str,
    },
    /// The connection's I/O failed or the peer closed it.
    Io(Arc<str>),
    /// Our side of the stream had already ended.
    Closed,
}

impl Error {
    /// The HTTP/2 error code, if the end had one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Error::Reset { reason, .. } | Error::GoAway { reason, .. } => Some(*reason),
            Error::Io(_) | Error::Closed => None,
        }
    }

    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io(_))
    }

    pub fn is_go_away(&self) -> bool {
        matches!(self, Error::GoAway { .. })
    }

    /// Ended by the peer's GOAWAY.
    pub fn is_remote_go_away(&self) -> bool {
        matches!(self, Error::GoAway { remote: true, .. })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Reset { reason, remote } => {
                let by = if *remote { "the peer" } else { "us" };
                write!(f, "stream reset by {by}: {reason}")
            }
            Error::GoAway {
                reason,
                remote: true,
                ..
            } => write!(f, "connection ended by the peer: {reason}"),
            Error::GoAway { reason, detail, .. } => {
                write!(f, "connection ended: {reason} ({detail})")
            }
            Error::Io(e) => write!(f, "connection failed: {e}"),
            Error::Closed => f.write_str("the stream has ended"),
        }
    }
}

impl std::error::Error for Error {}
