//! Reads whole raw MQTT packets from a byte stream.
//!
//! A reader holds no buffer while its connection is idle: it reads into a
//! scratch buffer shared by all connections on the same thread, and keeps
//! its own copy only of bytes that arrived but were not yet taken (the
//! framer holds a partly received packet itself). Thousands of idle
//! connections thus cost no read buffers at all.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::BytesMut;
use mqtt_protocol_core::mqtt::connection::RawPacket;
use tokio::io::{AsyncRead, ReadBuf};

use crate::mqtt::{CodecError, Framer};

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where every reader on this thread reads into; it is only borrowed for
    /// the duration of one `poll_read`, which never keeps it.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Why no packet could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not MQTT.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A framer over an async byte stream.
pub struct PacketReader<R> {
    io: R,
    /// Bytes read but not yet framed; empty (no allocation) when idle.
    pending: BytesMut,
    framer: Framer,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Reads packets of at most `max_packet_size` bytes from `io`.
    pub fn new(io: R, max_packet_size: u32) -> Self {
        Self {
            io,
            pending: BytesMut::new(),
            framer: Framer::new(max_packet_size),
        }
    }

    /// The next whole packet; `Ok(None)` at end of stream. Cancel-safe:
    /// bytes already read stay with the reader.
    pub async fn next(&mut self) -> Result<Option<RawPacket>, ReadError> {
        std::future::poll_fn(|cx| {
            loop {
                if let Some(raw) = self.framer.next_packet(&mut self.pending)? {
                    return Poll::Ready(Ok(Some(raw)));
                }
                let read = SCRATCH.with(|scratch| {
                    // A reader inside another reader's poll_read on this
                    // thread (no stream here does that) gets its own buffer.
                    let mut own = Vec::new();
                    let mut shared = scratch.try_borrow_mut();
                    let space = match shared.as_deref_mut() {
                        Ok(s) => &mut s[..],
                        Err(_) => {
                            own.resize(READ_CHUNK, 0);
                            &mut own[..]
                        }
                    };
                    let mut buf = ReadBuf::new(space);
                    match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) => {
                            self.pending.extend_from_slice(buf.filled());
                            Poll::Ready(Ok(buf.filled().len()))
                        }
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => {
                            // Idle: the framer took every pending byte, so
                            // the buffer can go until data arrives.
                            if self.pending.capacity() > 0 {
                                self.pending = BytesMut::new();
                            }
                            Poll::Pending
                        }
                    }
                });
                if ready!(read)? == 0 {
                    return Poll::Ready(Ok(None));
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_packets_split_across_reads_and_holds_nothing_when_idle() {
        let (mut peer, io) = tokio::io::duplex(64);
        let mut reader = PacketReader::new(io, 1024);
        // Two PINGREQs and the first half of a PUBLISH in one write.
        peer.write_all(&[0xc0, 0x00, 0xc0, 0x00, 0x30, 0x05, 0x00])
            .await
            .unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap().packet_type(), 12);
        assert!(reader.pending.capacity() > 0, "the rest is kept");
        assert_eq!(reader.next().await.unwrap().unwrap().packet_type(), 12);
        let waiting = tokio::spawn(async move {
            let publish = reader.next().await.unwrap().unwrap();
            (publish.data_as_slice().to_vec(), reader)
        });
        peer.write_all(&[0x01, b't', b'h', b'i']).await.unwrap();
        let (body, mut reader) = waiting.await.unwrap();
        assert_eq!(body, b"\x00\x01thi");
        // Idle: a read is pending and no buffer is held.
        assert!(
            futures_util::FutureExt::now_or_never(reader.next()).is_none(),
            "nothing to read"
        );
        assert_eq!(reader.pending.capacity(), 0);
        drop(peer);
        assert!(reader.next().await.unwrap().is_none());
    }
}
