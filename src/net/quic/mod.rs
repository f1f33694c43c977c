//! MQTT over QUIC on quiche: ALPN `mqtt`, one client-initiated bidirectional
//! stream carrying the MQTT byte stream, TLS 1.3 with optional client
//! certificates.
//!
//! quiche is a sans-I/O state machine; this module is its thin async driver,
//! generic over a [`DatagramSocket`] so the same code runs over UDP/IP and
//! over SCION. Each connection is one task that owns its `quiche::Connection`
//! and a single timer re-armed from `timeout_instant()`; a server's listener
//! task only demultiplexes datagrams by connection id and answers version
//! negotiation and stateless retry. The application sees the MQTT stream as
//! an ordinary `AsyncRead + AsyncWrite` ([`QuicStream`]).

mod app_stream;
mod connection;
mod datagram_queue;
mod delayed_ack;
mod dialer;
mod listener;
mod retry;
mod server_identity;
mod settings;
mod socket;

pub use app_stream::{QuicStream, STREAM_BUFFER};
pub use dialer::{DialError, dial};
pub use listener::{Accepted, QuicListener, ServerConfigSlot};
pub use retry::RetryTokens;
pub use server_identity::{ServerIdentity, VerifyReport, alert_words};
pub use settings::{ClientConfig, QuicLimits, client_config, server_config};
pub use socket::DatagramSocket;

/// The ALPN protocol id of MQTT over QUIC.
pub const ALPN: &[u8] = b"mqtt";

/// Consecutive receive errors after which a socket is taken as broken
/// (single bad datagrams only cost one error each).
const MAX_RECV_ERRORS: u32 = 1000;

/// Largest UDP payload we receive (quiche may coalesce packets up to this).
pub const MAX_DATAGRAM: usize = 65_535;
