//! One HTTP/2 connection to one s-proxy address, shared by every call the
//! r-proxy makes there: made on first use (TCP, TLS with ALPN `h2` for
//! `https://`), made again on the next call after it broke, and watched
//! with HTTP/2 pings while calls are open, so that a silent network cut
//! ends them within the keep-alive timeout instead of TCP's minutes.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tonic::Status;

use super::{CONNECTION_WINDOW, MAX_HEADER_LIST, STREAM_WINDOW, pings};
use crate::line::Keepalive;
use crate::net::connector::BoxedStream;
use crate::net::http2;
use crate::net::woken::OnWake;

/// How an s-proxy is reached.
pub struct Target {
    /// The address to connect to; `None` resolves `host_port` at connect.
    pub addr: Option<SocketAddr>,
    /// `host:port` of the URL: the `:authority` of every call.
    pub host_port: String,
    /// TLS, with the name the certificate must carry; `None` is plaintext.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// How every channel of an r-proxy connects and watches its connection.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSettings {
    /// How long the TCP, TLS and HTTP/2 handshakes may take together.
    pub connect_timeout: Duration,
    /// Pings while calls are open.
    pub keepalive: Keepalive,
    /// Bytes a stream may have waiting to be written before its sender
    /// waits (besides what the peer's flow-control window takes).
    pub send_buffer: usize,
}

/// A lazily made, remade-when-broken HTTP/2 connection to one s-proxy.
pub struct Channel {
    target: Target,
    settings: ChannelSettings,
    /// The connection in use; the lock is held while one is made, so a
    /// burst of new sessions makes one connection, not one each.
    connection: tokio::sync::Mutex<Option<Connection>>,
}

/// A connection's handle for new streams, and what its driver reports.
#[derive(Clone)]
pub(super) struct Connection {
    pub requests: http2::client::SendRequest,
    /// Cleared by the driver when the connection ended.
    alive: Arc<AtomicBool>,
    /// Calls open on it (the keep-alive pings only while there are some).
    pub calls: Arc<AtomicUsize>,
}

impl Connection {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl Channel {
    /// A channel to `target`; nothing connects until the first call.
    pub fn new(target: Target, settings: ChannelSettings) -> Self {
        Self {
            target,
            settings,
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether calls go over TLS (`:scheme: https`).
    pub(super) fn target_is_tls(&self) -> bool {
        self.target.tls.is_some()
    }

    /// The `:authority` of calls.
    pub(super) fn authority(&self) -> &str {
        &self.target.host_port
    }

    /// The live connection, made now if there is none or it broke, and
    /// whether it was made for this call.
    pub(super) async fn connection(&self) -> Result<(Connection, bool), Status> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| c.is_alive()) {
            return Ok((connection.clone(), false));
        }
        *slot = None;
        let made = tokio::time::timeout(self.settings.connect_timeout, self.connect())
            .await
            .unwrap_or_else(|_| {
                Err(Status::unavailable(format!(
                    "connecting to {} took over {:?}",
                    self.target.host_port, self.settings.connect_timeout
                )))
            })?;
        *slot = Some(made.clone());
        Ok((made, true))
    }

    /// Forgets `broken` (if it is still the one in use): the next call
    /// connects afresh.
    pub(super) async fn forget(&self, broken: &Connection) {
        let mut slot = self.connection.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.alive, &broken.alive))
        {
            *slot = None;
        }
    }

    async fn connect(&self) -> Result<Connection, Status> {
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            Status::unavailable(format!("{what} {}: {e}", self.target.host_port))
        };
        let tcp = match self.target.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(self.target.host_port.as_str()).await,
        }
        .map_err(|e| unreachable("connecting to", &e))?;
        let _ = tcp.set_nodelay(true);
        let io: BoxedStream = match &self.target.tls {
            Some((config, name)) => Box::new(
                TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| unreachable("TLS with", &e))?,
            ),
            None => Box::new(tcp),
        };
        let config = http2::Config {
            // Streams the server may open: none (no push).
            max_streams: 0,
            stream_window: STREAM_WINDOW,
            connection_window: CONNECTION_WINDOW,
            max_header_list: MAX_HEADER_LIST,
            send_buffer: self.settings.send_buffer,
        };
        let (requests, connection) = http2::client::handshake(io, config)
            .await
            .map_err(|e| unreachable("HTTP/2 with", &e))?;
        let made = Connection {
            requests,
            alive: Arc::new(AtomicBool::new(true)),
            calls: Arc::new(AtomicUsize::new(0)),
        };
        tokio::spawn(drive(
            connection,
            self.settings.keepalive,
            made.alive.clone(),
            made.calls.clone(),
            self.target.host_port.clone(),
        ));
        tracing::debug!(upstream = %self.target.host_port, "connected to the s-proxy");
        Ok(made)
    }
}

/// Runs the connection until it ends or a ping goes unanswered, which
/// ends it: every call on it fails, and the next call connects afresh.
async fn drive(
    mut connection: http2::client::Connection,
    keepalive: Keepalive,
    alive: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    upstream: String,
) {
    let calls_open = || calls.load(Ordering::Relaxed) > 0;
    let watch = pin!(pings::unanswered(
        connection.pinger(),
        keepalive,
        calls_open
    ));
    tokio::select! {
        // In order: polled on every turn of the connection, a random draw
        // each time would cost more than the ping watch it picks between.
        // The ping watch's timer is looked at only when it fires.
        biased;
        ended = &mut connection => match ended {
            Ok(()) => tracing::debug!(%upstream, "connection to the s-proxy closed"),
            Err(e) => tracing::debug!(%upstream, error = %e, "connection to the s-proxy failed"),
        },
        why = OnWake::new(watch) => tracing::warn!(%upstream, "{why}; closing the connection to the s-proxy"),
    }
    alive.store(false, Ordering::Release);
    // Dropping the connection fails every stream still open on it.
    drop(connection);
}
