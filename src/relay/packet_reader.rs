//! Reads whole raw MQTT packets from a byte stream.

use bytes::BytesMut;
use mqtt_protocol_core::mqtt::connection::RawPacket;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::codec::{CodecError, Framer};

/// Bytes read from the socket per call; the buffer only grows past this for
/// a packet that is larger.
const READ_CHUNK: usize = 4096;

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
    buf: BytesMut,
    framer: Framer,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Reads packets of at most `max_packet_size` bytes from `io`.
    pub fn new(io: R, max_packet_size: u32) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            framer: Framer::new(max_packet_size),
        }
    }

    /// The next whole packet; `Ok(None)` at end of stream.
    pub async fn next(&mut self) -> Result<Option<RawPacket>, ReadError> {
        loop {
            if let Some(raw) = self.framer.next_packet(&mut self.buf)? {
                return Ok(Some(raw));
            }
            if self.buf.capacity() < READ_CHUNK {
                // The buffer is empty here: the framer took every byte.
                self.buf = BytesMut::with_capacity(READ_CHUNK);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}
