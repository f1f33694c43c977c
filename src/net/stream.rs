//! The byte stream every transport yields and every service and the client
//! run MQTT on.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Any stream an MQTT connection can run on.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxedStream = Box<dyn ByteStream>;

/// A stream that keeps something alive for as long as it is used (the
/// SCION stack its socket came from).
pub struct Holding<S, K> {
    stream: S,
    _keep: K,
}

impl<S, K> Holding<S, K> {
    /// `stream`, keeping `keep` alive until it is dropped.
    pub fn new(stream: S, keep: K) -> Self {
        Self {
            stream,
            _keep: keep,
        }
    }
}

impl<S: AsyncRead + Unpin, K: Unpin> AsyncRead for Holding<S, K> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, K: Unpin> AsyncWrite for Holding<S, K> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
