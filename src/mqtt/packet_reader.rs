//! Reads whole raw MQTT packets from a byte stream.
//!
//! A reader holds no buffer while its connection is idle
//! ([`super::scratch_read`]): it keeps its own copy only of bytes that
//! arrived but were not yet taken (the framer holds a partly received packet
//! itself).

use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::AsyncRead;

use super::scratch_read::poll_read_into;
use crate::mqtt::{CodecError, Framer, RawPacket};

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
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next whole packet among the bytes read already, without reading:
    /// what a caller handling a burst together takes after
    /// [`PacketReader::poll_next`] gave it the burst's first.
    pub fn next_read(&mut self) -> Result<Option<RawPacket>, CodecError> {
        self.framer.next_packet(&mut self.pending)
    }

    /// [`PacketReader::next`] as a poll: `Pending` once every byte that
    /// arrived is taken and the socket has no more.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<RawPacket>, ReadError>> {
        loop {
            if let Some(raw) = self.framer.next_packet(&mut self.pending)? {
                return Poll::Ready(Ok(Some(raw)));
            }
            // The framer took every pending byte: while the read waits,
            // the buffer can go.
            let read = poll_read_into(&mut self.io, cx, &mut self.pending);
            if ready!(read)? == 0 {
                return Poll::Ready(Ok(None));
            }
        }
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
