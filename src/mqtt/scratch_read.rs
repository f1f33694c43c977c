//! Reading from a byte stream without keeping a buffer while it waits.
//!
//! A read goes into a scratch buffer shared by every connection on the same
//! thread and only the bytes that arrived are copied out, into the caller's
//! `pending` buffer; while the stream has nothing to give, an empty
//! `pending` gives its memory back. Thousands of idle connections thus cost
//! no read buffers at all.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes read from a stream per call.
pub const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where every read on this thread goes; it is only borrowed for the
    /// duration of one `poll_read`, which never keeps it.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Polls one read of `io`, appending what arrived to `pending`: the number
/// of bytes, 0 at end of stream. While the read waits and `pending` is
/// empty, `pending` releases its memory.
pub fn poll_read_into<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    pending: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    with_scratch(|space| {
        let mut buf = ReadBuf::new(space);
        match Pin::new(io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                pending.extend_from_slice(buf.filled());
                Poll::Ready(Ok(buf.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if pending.is_empty() && pending.capacity() > 0 {
                    *pending = BytesMut::new();
                }
                Poll::Pending
            }
        }
    })
}

/// Runs `f` with this thread's scratch buffer ([`READ_CHUNK`] bytes, of
/// no particular content), which `f` must not keep: where bytes are read
/// before they are copied out (a socket here, a QUIC stream out of quiche
/// elsewhere), so no connection holds a read buffer of its own.
pub fn with_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut shared) => f(&mut shared),
        // Used inside another use on this thread (nothing here does that):
        // a buffer of its own.
        Err(_) => f(&mut vec![0; READ_CHUNK]),
    })
}

/// One read of `io` appended to `pending` (see [`poll_read_into`]).
/// Cancel-safe: bytes read are in `pending`.
pub async fn read_into<R: AsyncRead + Unpin>(
    io: &mut R,
    pending: &mut BytesMut,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_into(io, cx, pending)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn appends_what_arrived_and_holds_nothing_while_waiting() {
        let (mut peer, mut io) = tokio::io::duplex(64);
        let mut pending = BytesMut::new();
        peer.write_all(b"abc").await.unwrap();
        assert_eq!(read_into(&mut io, &mut pending).await.unwrap(), 3);
        assert_eq!(&pending[..], b"abc");
        pending.clear();
        assert!(pending.capacity() > 0);
        assert!(read_into(&mut io, &mut pending).now_or_never().is_none());
        assert_eq!(pending.capacity(), 0, "released while waiting");
        drop(peer);
        assert_eq!(read_into(&mut io, &mut pending).await.unwrap(), 0);
    }
}
