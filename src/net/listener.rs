//! The ways MQTT clients reach an r-proxy: plain TCP, TLS (the 8883
//! convention, optionally with client certificates) and WebSocket (the
//! `mqtt` subprotocol, binary frames carrying the MQTT byte stream).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use anyhow::Context as _;
use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::net::connector::BoxedStream;

/// How a listener's connections become MQTT byte streams.
#[derive(Clone)]
pub enum Ingress {
    /// MQTT over TCP.
    Tcp,
    /// MQTT over TLS.
    Tls(TlsAcceptor),
    /// MQTT over WebSocket.
    WebSocket,
}

impl Ingress {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Ingress::Tcp => "tcp",
            Ingress::Tls(_) => "tls",
            Ingress::WebSocket => "websocket",
        }
    }

    /// Completes the TLS or WebSocket handshake on an accepted connection.
    pub async fn upgrade(&self, tcp: TcpStream) -> std::io::Result<BoxedStream> {
        tcp.set_nodelay(true)?;
        match self {
            Ingress::Tcp => Ok(Box::new(tcp)),
            Ingress::Tls(acceptor) => Ok(Box::new(acceptor.accept(tcp).await?)),
            Ingress::WebSocket => {
                let ws = tokio_tungstenite::accept_hdr_async(tcp, choose_mqtt_subprotocol)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok(Box::new(WsByteStream::new(ws)))
            }
        }
    }
}

/// Answers the handshake with the `mqtt` subprotocol when the client offers
/// it (MQTT over WebSocket requires it; clients that offer none still work).
// The signature is tungstenite's handshake callback.
#[allow(clippy::result_large_err)]
fn choose_mqtt_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|p| p.eq_ignore_ascii_case("mqtt"));
    if offered {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
    }
    Ok(response)
}

/// A TLS acceptor for `cert`/`key`; with `client_ca`, clients must present
/// a certificate it signed.
pub fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(Arc::new(tls_server_config(
        cert, key, client_ca,
    )?)))
}

/// The rustls server settings behind [`tls_acceptor`], for callers that add
/// to them (ALPN).
pub fn tls_server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading {}", ca.display()))?
            {
                roots.add(c.with_context(|| format!("parsing {}", ca.display()))?)?;
            }
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .context("server certificate and key")
}

/// The MQTT byte stream inside WebSocket binary frames.
pub struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    /// Bytes of the current frame not yet read.
    pending: Bytes,
}

impl<S> WsByteStream<S> {
    /// Wraps an established WebSocket (server or client side).
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                // Ping/pong are answered by tungstenite; text frames are not MQTT.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "text frame on an MQTT WebSocket",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut ws = Pin::new(&mut self.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(std::io::Error::other)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(std::io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_flush(cx)
            .map_err(std::io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_close(cx)
            .map_err(std::io::Error::other)
    }
}
