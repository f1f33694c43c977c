//! One open connection of a client session: the stream split into a packet
//! reader and a writer, and the CONNECT/CONNACK that opens it.

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tracing::debug;

use super::handshake::{self, Connected, Credentials};
use crate::mqtt::PacketReader;
use crate::mqtt::{self, Packet, Version};
use crate::net::connector::{self as transport, BoxedStream, Endpoint};

use super::options::{ClientError, ClientOptions};

/// One open connection.
pub(super) struct Link {
    pub(super) reader: PacketReader<ReadHalf<BoxedStream>>,
    pub(super) writer: WriteHalf<BoxedStream>,
    /// Requests the broker lets us have in flight (MQTT 5 receive maximum).
    pub(super) max_in_flight: usize,
    /// What the broker's CONNACK granted.
    pub(super) connected: Connected,
}

impl Link {
    /// Opens the transport and the MQTT session on it; `clean_start` as in
    /// [`handshake::connect_packet`].
    pub(super) async fn open(
        endpoint: &Endpoint,
        options: &ClientOptions,
        credentials: &Credentials,
        clean_start: bool,
    ) -> Result<Self, ClientError> {
        let connect = handshake::connect_packet(options, credentials, clean_start)?;
        let stream = transport::open(endpoint, &options.transport)
            .await
            .map_err(ClientError::Transport)?;
        let (rd, writer) = tokio::io::split(stream);
        let mut link = Link {
            reader: PacketReader::new(rd, options.maximum_packet_size),
            writer,
            max_in_flight: options.max_in_flight.max(1),
            connected: Connected::default(),
        };
        link.write(&connect).await?;
        let timeout = options.connect_timeout;
        let reply = tokio::time::timeout(timeout, link.read(options.version))
            .await
            .map_err(|_| {
                ClientError::Transport(anyhow::anyhow!("no CONNACK within {timeout:?}"))
            })??;
        link.connected = handshake::connack(reply)?;
        link.max_in_flight = link
            .max_in_flight
            .min(link.connected.receive_maximum.into());
        Ok(link)
    }

    pub(super) async fn write(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let mut buf = BytesMut::new();
        mqtt::encode(packet, &mut buf);
        self.write_bytes(&buf).await
    }

    /// Writes an encoded packet.
    pub(super) async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        if let Some(first) = bytes.first() {
            debug!(
                packet = mqtt::packet_type_name_of(*first),
                bytes = bytes.len(),
                "sending"
            );
        }
        let written = async {
            self.writer.write_all(bytes).await?;
            // TLS and WebSocket streams buffer until flushed.
            self.writer.flush().await
        };
        written.await.map_err(|_| ClientError::ConnectionLost)
    }

    pub(super) async fn read(&mut self, version: Version) -> Result<Option<Packet>, ClientError> {
        match self.reader.next().await {
            Ok(Some(raw)) => {
                let packet = mqtt::decode(version, &raw)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                debug!(
                    packet = mqtt::packet_type_name(&packet),
                    bytes = raw.remaining_length(),
                    "received"
                );
                Ok(Some(packet))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(ClientError::ConnectionLost),
        }
    }
}
