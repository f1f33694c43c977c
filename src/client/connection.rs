//! One MQTT connection at the packet level: send a packet, receive the next.
//! No session logic: the caller decides every packet, which is what a test
//! of a proxy needs.

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::net::connector::BoxedStream;

use crate::mqtt::{self, CodecError, DEFAULT_MAX_PACKET_SIZE, Packet, Version};
use crate::mqtt::{PacketReader, ReadError};

/// A connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not MQTT.
    #[error("peer sent {0}")]
    Codec(#[from] CodecError),
}

impl From<ReadError> for ConnectionError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Codec(e) => ConnectionError::Codec(e),
            ReadError::Io(e) => ConnectionError::Io(e),
        }
    }
}

/// An MQTT connection of a known version over any byte stream.
pub struct Connection {
    reader: PacketReader<ReadHalf<BoxedStream>>,
    writer: WriteHalf<BoxedStream>,
    version: Version,
}

impl Connection {
    /// Opens TCP to `addr` (host:port) for a client speaking `version`.
    pub async fn open(addr: &str, version: Version) -> Result<Self, ConnectionError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::over(Box::new(stream), version))
    }

    /// Speaks `version` over an already open stream (see `transport::open`).
    pub fn over(stream: BoxedStream, version: Version) -> Self {
        let (rd, writer) = tokio::io::split(stream);
        Self {
            reader: PacketReader::new(rd, DEFAULT_MAX_PACKET_SIZE * 4),
            writer,
            version,
        }
    }

    /// The version this connection speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Writes one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), ConnectionError> {
        let mut buf = BytesMut::new();
        mqtt::encode(packet, &mut buf);
        self.send_bytes(&buf).await
    }

    /// Writes raw bytes, well-formed or not.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.writer.write_all(bytes).await?;
        // TLS and WebSocket streams buffer until flushed.
        self.writer.flush().await?;
        Ok(())
    }

    /// The next packet; `Ok(None)` when the peer closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Packet>, ConnectionError> {
        match self.reader.next().await? {
            Some(raw) => Ok(Some(mqtt::decode(self.version, &raw)?)),
            None => Ok(None),
        }
    }

    /// Closes the sending side (TCP FIN) without a DISCONNECT.
    pub async fn shutdown(&mut self) -> Result<(), ConnectionError> {
        self.writer.shutdown().await?;
        Ok(())
    }
}
