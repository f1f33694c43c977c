//! One open connection of a client session: the stream split into a packet
//! reader and a writer, and the CONNECT/CONNACK that opens it.

use std::time::Duration;

use bytes::BytesMut;
use mqtt_protocol_core::mqtt::packet::Property;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

use super::packets;
use crate::mqtt::PacketReader;
use crate::mqtt::{self, Packet, Version, packet_type_name};
use crate::net::connector::{self as transport, BoxedStream, Endpoint};

use super::options::{ClientError, ClientOptions};

/// One open connection.
pub(super) struct Link {
    pub(super) reader: PacketReader<ReadHalf<BoxedStream>>,
    pub(super) writer: WriteHalf<BoxedStream>,
    /// Requests the broker lets us have in flight (MQTT 5 receive maximum).
    pub(super) max_in_flight: usize,
    pub(super) session_present: bool,
}

impl Link {
    pub(super) async fn open(
        endpoint: &Endpoint,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let stream = transport::open(endpoint, &options.transport)
            .await
            .map_err(ClientError::Transport)?;
        let (rd, writer) = tokio::io::split(stream);
        let mut link = Link {
            reader: PacketReader::new(rd, mqtt::DEFAULT_MAX_PACKET_SIZE * 4),
            writer,
            max_in_flight: options.max_in_flight.max(1),
            session_present: false,
        };
        let keep_alive = options.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
        let connect = packets::connect_keeping_session(
            options.version,
            &options.client_id,
            options.clean_start,
            keep_alive,
            u32::try_from(options.session_expiry.as_secs()).unwrap_or(u32::MAX),
        )?;
        link.write(&connect).await?;
        let reply = tokio::time::timeout(Duration::from_secs(30), link.read(options.version))
            .await
            .map_err(|_| ClientError::Transport(anyhow::anyhow!("no CONNACK within 30 s")))??;
        match reply {
            Some(Packet::V3_1_1Connack(c)) => {
                let code = c.return_code() as u8;
                if code != 0 {
                    return Err(ClientError::Refused(code));
                }
                link.session_present = c.session_present();
            }
            Some(Packet::V5_0Connack(c)) => {
                let code = c.reason_code() as u8;
                if code >= 0x80 {
                    return Err(ClientError::Refused(code));
                }
                link.session_present = c.session_present();
                for p in &c.props {
                    if let Property::ReceiveMaximum(m) = p {
                        link.max_in_flight = link.max_in_flight.min(m.val().into());
                    }
                }
            }
            Some(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected CONNACK, got {}",
                    packet_type_name(&other)
                )));
            }
            None => return Err(ClientError::ConnectionLost),
        }
        Ok(link)
    }

    pub(super) async fn write(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let mut buf = BytesMut::new();
        mqtt::encode(packet, &mut buf);
        let written = async {
            self.writer.write_all(&buf).await?;
            // TLS and WebSocket streams buffer until flushed.
            self.writer.flush().await
        };
        written.await.map_err(|_| ClientError::ConnectionLost)
    }

    pub(super) async fn read(&mut self, version: Version) -> Result<Option<Packet>, ClientError> {
        match self.reader.next().await {
            Ok(Some(raw)) => mqtt::decode(version, &raw)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
            Ok(None) => Ok(None),
            Err(_) => Err(ClientError::ConnectionLost),
        }
    }
}
