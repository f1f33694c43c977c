//! The s-proxy's incoming gRPC connections: TCP with `TCP_NODELAY`, then
//! TLS with the certificate in force when the connection arrived, so a
//! reload (SIGHUP) reaches every new connection without a restart.
//!
//! Handshakes run in their own tasks, bounded in number and in time, so a
//! slow or silent peer holds up nobody else.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use super::grpc::PeerInfo;

use crate::ops::telemetry::METRICS;

/// The mode label of the refusals counted here (only the s-proxy accepts
/// gRPC connections).
const MODE: &str = "s-proxy";

/// One accepted gRPC connection, in the clear or over TLS.
pub enum GrpcConnection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What a new connection gets, read when it arrives.
pub struct Admission {
    /// TLS to run first; `None` for plaintext gRPC.
    pub tls: Option<TlsAcceptor>,
    /// How long the TLS handshake may take.
    pub handshake_timeout: Duration,
}

/// Accepts connections on `listener` until the returned stream is dropped;
/// each comes with what calls on it know of it.
/// `admission` is asked once per connection; at most `max_handshakes` TLS
/// handshakes run at once (more connections wait in the kernel's backlog).
pub fn accept(
    listener: TcpListener,
    admission: impl Fn() -> Admission + Send + 'static,
    max_handshakes: usize,
) -> impl Stream<Item = (GrpcConnection, PeerInfo)> {
    let (tx, rx) = mpsc::channel(max_handshakes.max(1));
    let handshakes = Arc::new(Semaphore::new(max_handshakes.max(1)));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = handshakes.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning on the error.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            let Admission {
                tls,
                handshake_timeout,
            } = admission();
            let tx = tx.clone();
            tokio::spawn(async move {
                let connection = match tls {
                    None => GrpcConnection::Plain(tcp),
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => GrpcConnection::Tls(Box::new(tls)),
                            Ok(Err(e)) => {
                                METRICS.refused(MODE, "tls_handshake");
                                warn!(%peer, error = %e, "gRPC TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                METRICS.refused(MODE, "tls_handshake");
                                warn!(%peer, "gRPC TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                drop(permit);
                let info = connection.peer_info(peer);
                let _ = tx.send((connection, info)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

impl GrpcConnection {
    /// The peer at `remote`, with the client certificate it presented
    /// (mutual TLS): the identity a resumable session is bound to.
    fn peer_info(&self, remote: std::net::SocketAddr) -> PeerInfo {
        let certificate = match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| der.as_ref().to_vec()),
        };
        PeerInfo {
            remote: Some(remote),
            certificate,
        }
    }
}

impl AsyncRead for GrpcConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for GrpcConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
