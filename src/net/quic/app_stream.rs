//! The MQTT stream as the application sees it: an `AsyncRead + AsyncWrite`
//! whose bytes the connection task moves to and from quiche.
//!
//! There is one buffer per direction, shared by the application's
//! [`QuicStream`] and the connection task's [`ConnectionEnd`] under a mutex.
//! Each holds at most [`STREAM_BUFFER`] bytes (the application waits for
//! room; quiche's flow control holds the peer back while the application
//! does not read) and gives its memory back as soon as it is empty, so an
//! idle connection keeps no stream buffer at all.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::keep_waker;

/// Bytes buffered between quiche and the application in each direction.
pub const STREAM_BUFFER: usize = 64 * 1024;

/// What the two ends share.
#[derive(Default)]
struct Shared {
    pipe: Mutex<Pipe>,
    /// The application changed the pipe since the connection task last
    /// looked.
    changed: AtomicBool,
    /// Wakes the connection task when `changed` is set. (A flag and a
    /// waker rather than tokio's `Notify`, whose waiter list costs a lock
    /// to join and another to leave on every turn of the connection.)
    connection: AtomicWaker,
}

/// Both directions of the stream.
#[derive(Default)]
pub(crate) struct Pipe {
    /// Peer bytes the application has not read yet.
    pub inbound: BytesMut,
    /// The peer finished its side: after `inbound`, end of stream.
    pub peer_finished: bool,
    /// Application bytes quiche has not taken yet.
    pub outbound: BytesMut,
    /// The application shut down its writing side or dropped the stream.
    pub app_finished: bool,
    /// The application dropped the stream: nobody will read `inbound`.
    pub app_gone: bool,
    /// The connection ended: nothing moves any more.
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    /// Peer bytes for the application (and whether they are the last).
    pub fn deliver(&mut self, bytes: &[u8], fin: bool) {
        self.inbound.extend_from_slice(bytes);
        self.peer_finished |= fin;
        wake(&mut self.reader);
    }

    /// The peer's side ended without all its bytes (reset, or closed).
    pub fn peer_stopped(&mut self) {
        self.peer_finished = true;
        wake(&mut self.reader);
    }

    /// quiche took the first `n` bytes of `outbound`.
    pub fn took_outbound(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.outbound.advance(n);
        release_if_empty(&mut self.outbound);
        wake(&mut self.writer);
    }

    /// Nothing more can be sent: pending bytes are dropped and the
    /// application's next write fails.
    pub fn sending_failed(&mut self) {
        self.outbound = BytesMut::new();
        self.app_finished = true;
        wake(&mut self.writer);
    }

    /// Whether the application read everything, end of stream included.
    pub fn app_read_all(&self) -> bool {
        self.peer_finished && self.inbound.is_empty()
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

/// An empty buffer gives its memory back.
fn release_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = BytesMut::new();
    }
}

/// The MQTT stream of an established QUIC connection. Dropping it finishes
/// the stream (after the bytes written so far) and discards what the peer
/// still sends.
pub struct QuicStream {
    shared: Arc<Shared>,
}

/// The connection task's end of a [`QuicStream`]. Dropping it (the
/// connection ended) gives the application end of stream on reading, after
/// what was delivered, and an error on writing.
pub(crate) struct ConnectionEnd {
    shared: Arc<Shared>,
}

/// A new stream and the connection task's end of it.
pub(crate) fn stream_pair() -> (QuicStream, ConnectionEnd) {
    let shared = Arc::new(Shared::default());
    (
        QuicStream {
            shared: shared.clone(),
        },
        ConnectionEnd { shared },
    )
}

/// The pipe stays consistent even if a holder panicked.
fn lock(shared: &Shared) -> MutexGuard<'_, Pipe> {
    shared.pipe.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnectionEnd {
    /// Both directions, for moving bytes to and from quiche.
    pub fn pipe(&self) -> MutexGuard<'_, Pipe> {
        lock(&self.shared)
    }

    /// Resolves once the application changed the pipe since the last time
    /// (wrote into an empty buffer, made room, finished, or went away).
    pub async fn app_changed(&self) {
        std::future::poll_fn(|cx| {
            let shared = &self.shared;
            if shared.changed.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            shared.connection.register(cx.waker());
            // A change between the look above and the registration.
            if shared.changed.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl Drop for ConnectionEnd {
    fn drop(&mut self) {
        let mut pipe = self.pipe();
        pipe.closed = true;
        pipe.outbound = BytesMut::new();
        wake(&mut pipe.reader);
        wake(&mut pipe.writer);
    }
}

impl QuicStream {
    fn pipe(&self) -> MutexGuard<'_, Pipe> {
        lock(&self.shared)
    }

    fn tell_connection(&self) {
        self.shared.changed.store(true, Ordering::Release);
        self.shared.connection.wake();
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut pipe = self.pipe();
        if pipe.inbound.is_empty() {
            if pipe.peer_finished || pipe.closed {
                return Poll::Ready(Ok(()));
            }
            keep_waker(&mut pipe.reader, cx.waker());
            return Poll::Pending;
        }
        let was_full = pipe.inbound.len() >= STREAM_BUFFER;
        let n = pipe.inbound.len().min(buf.remaining());
        buf.put_slice(&pipe.inbound[..n]);
        pipe.inbound.advance(n);
        release_if_empty(&mut pipe.inbound);
        // The connection stopped reading from quiche while the buffer was
        // full, and closes once everything was read.
        let tell = was_full || pipe.app_read_all();
        drop(pipe);
        if tell {
            self.tell_connection();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.pipe();
        if pipe.closed || pipe.app_finished {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = STREAM_BUFFER.saturating_sub(pipe.outbound.len());
        if room == 0 {
            keep_waker(&mut pipe.writer, cx.waker());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        let was_empty = pipe.outbound.is_empty();
        pipe.outbound.extend_from_slice(&buf[..n]);
        drop(pipe);
        // A non-empty buffer is taken from on every turn of the connection.
        if was_empty && n > 0 {
            self.tell_connection();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let newly = !std::mem::replace(&mut self.pipe().app_finished, true);
        if newly {
            self.tell_connection();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        {
            let mut pipe = self.pipe();
            pipe.app_finished = true;
            pipe.app_gone = true;
            pipe.inbound = BytesMut::new();
        }
        self.tell_connection();
    }
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_pass_both_ways_and_buffers_are_released_when_empty() {
        let (mut app, conn) = stream_pair();
        app.write_all(b"hello").await.unwrap();
        assert_eq!(&conn.pipe().outbound[..], b"hello");
        assert!(conn.app_changed().now_or_never().is_some(), "told");
        conn.pipe().took_outbound(5);
        assert_eq!(conn.pipe().outbound.capacity(), 0);

        conn.pipe().deliver(b"world", false);
        let mut got = [0u8; 16];
        let n = app.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"world");
        assert_eq!(conn.pipe().inbound.capacity(), 0);
        assert!(app.read(&mut got).now_or_never().is_none(), "waits");

        conn.pipe().deliver(b"!", true);
        assert_eq!(app.read(&mut got).await.unwrap(), 1);
        assert_eq!(app.read(&mut got).await.unwrap(), 0, "end of stream");
    }

    #[tokio::test]
    async fn a_full_buffer_holds_the_writer_until_quiche_takes_bytes() {
        let (mut app, conn) = stream_pair();
        let big = vec![7u8; STREAM_BUFFER + 10];
        assert_eq!(app.write(&big).await.unwrap(), STREAM_BUFFER);
        assert!(app.write(&big).now_or_never().is_none(), "full");
        conn.pipe().took_outbound(10);
        assert_eq!(app.write(&big).await.unwrap(), 10);
    }

    #[tokio::test]
    async fn the_connection_ending_is_end_of_stream_and_a_broken_pipe() {
        let (mut app, conn) = stream_pair();
        conn.pipe().deliver(b"last", false);
        drop(conn);
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        let err = app.write(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn dropping_the_stream_finishes_it_and_tells_the_connection() {
        let (app, conn) = stream_pair();
        conn.pipe().deliver(b"unread", false);
        drop(app);
        assert!(conn.app_changed().now_or_never().is_some());
        let pipe = conn.pipe();
        assert!(pipe.app_finished && pipe.app_gone);
        assert_eq!(pipe.inbound.capacity(), 0);
    }
}
