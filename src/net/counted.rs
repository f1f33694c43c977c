//! A byte stream split into a reading half and a writing half that count
//! what passes each way, for the "closed" log line of a session (bytes each
//! way). The counts sit beside the stream, under the lock the halves share
//! anyway, so a read or a write adds to a plain number in memory it already
//! touches: no counter of its own to fetch, no atomic addition.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The bytes a stream has carried so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteCounts {
    /// Bytes read from the stream.
    pub read: u64,
    /// Bytes written to the stream.
    pub written: u64,
}

struct Counting<S> {
    stream: S,
    counts: ByteCounts,
}

/// The reading half of a [`split`] stream.
pub struct CountedReader<S>(Arc<Mutex<Counting<S>>>);

/// The writing half of a [`split`] stream.
pub struct CountedWriter<S> {
    shared: Arc<Mutex<Counting<S>>>,
    /// The stream's answer, asked once (it does not change).
    is_write_vectored: bool,
}

/// Splits `stream` into halves that can be used apart (each locks the
/// stream for the length of one call) and count what passes each way. The
/// stream is closed when both halves are gone.
pub fn split<S: AsyncWrite>(stream: S) -> (CountedReader<S>, CountedWriter<S>) {
    let is_write_vectored = stream.is_write_vectored();
    let shared = Arc::new(Mutex::new(Counting {
        stream,
        counts: ByteCounts::default(),
    }));
    let writer = CountedWriter {
        shared: shared.clone(),
        is_write_vectored,
    };
    (CountedReader(shared), writer)
}

impl<S> CountedWriter<S> {
    /// What the stream has carried so far, either way.
    pub fn counts(&self) -> ByteCounts {
        self.shared.lock().counts
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountedReader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut inner = self.0.lock();
        let before = buf.filled().len();
        let polled = Pin::new(&mut inner.stream).poll_read(cx, buf);
        inner.counts.read += (buf.filled().len() - before) as u64;
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountedWriter<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut inner = self.shared.lock();
        let polled = Pin::new(&mut inner.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            inner.counts.written += *n as u64;
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let mut inner = self.shared.lock();
        let polled = Pin::new(&mut inner.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            inner.counts.written += *n as u64;
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.is_write_vectored
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.shared.lock().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.shared.lock().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn counts_each_way_and_closes_when_both_halves_go() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let (mut reader, mut writer) = split(ours);
        writer.write_all(b"hello").await.unwrap();
        theirs.write_all(b"hi").await.unwrap();
        let mut got = [0u8; 2];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
        let vectored = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"c")];
        let n = writer.write_vectored(&vectored).await.unwrap();
        assert_eq!(
            writer.counts(),
            ByteCounts {
                read: 2,
                written: 5 + n as u64
            }
        );
        let mut heard = vec![0u8; 5 + n];
        theirs.read_exact(&mut heard).await.unwrap();
        assert_eq!(&heard[..5], b"hello");
        drop(reader);
        drop(writer);
        // Both halves gone: the peer reads the end of the stream.
        assert_eq!(theirs.read(&mut [0u8; 1]).await.unwrap(), 0);
    }
}
