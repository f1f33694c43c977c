//! A byte stream that counts what is read from it and written to it, for
//! the "closed" log line of a session (bytes each way).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The counts of one [`Counted`] stream; cheap to clone.
#[derive(Clone, Default)]
pub struct ByteCounts(Arc<[AtomicU64; 2]>);

impl ByteCounts {
    /// Bytes read from the stream so far.
    pub fn read(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Bytes written to the stream so far.
    pub fn written(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }
}

/// `S`, counting bytes each way into its [`ByteCounts`].
pub struct Counted<S> {
    stream: S,
    counts: ByteCounts,
}

impl<S> Counted<S> {
    /// Wraps `stream`; `counts` reads the totals while it is used.
    pub fn new(stream: S) -> (Self, ByteCounts) {
        let counts = ByteCounts::default();
        let counted = Self {
            stream,
            counts: counts.clone(),
        };
        (counted, counts)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.counts.0[0].fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.counts.0[1].fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            self.counts.0[1].fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn counts_each_way() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let (mut counted, counts) = Counted::new(ours);
        counted.write_all(b"hello").await.unwrap();
        theirs.write_all(b"hi").await.unwrap();
        let mut got = [0u8; 2];
        counted.read_exact(&mut got).await.unwrap();
        assert_eq!((counts.read(), counts.written()), (2, 5));
    }
}
