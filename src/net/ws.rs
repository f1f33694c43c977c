//! MQTT over WebSocket: the `mqtt` subprotocol, binary frames carrying the
//! MQTT byte stream ([`WsByteStream`]), on either side of a connection
//! (the ws/wss listeners and connectors).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The WebSocket subprotocol of MQTT.
const SUBPROTOCOL: &str = "mqtt";

/// The server side of the handshake on an accepted stream.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
) -> std::io::Result<WsByteStream<S>> {
    let ws = tokio_tungstenite::accept_hdr_async(stream, choose_mqtt_subprotocol)
        .await
        .map_err(std::io::Error::other)?;
    Ok(WsByteStream::new(ws))
}

/// The client side of the handshake on an open stream: `url` is the
/// `ws://` or `wss://` URL (its host and path go into the request), the
/// `mqtt` subprotocol is asked for.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
) -> std::io::Result<WsByteStream<S>> {
    let mut request = url.into_client_request().map_err(std::io::Error::other)?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(std::io::Error::other)?;
    Ok(WsByteStream::new(ws))
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
        .any(|p| p.eq_ignore_ascii_case(SUBPROTOCOL));
    if offered {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
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
