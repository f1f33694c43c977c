//! Reads exactly one MQTT packet from a byte stream and nothing after it,
//! for modes that inspect the CONNECT and then relay the stream's bytes
//! untouched.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::ReadError;
use super::remaining_length::{self, Step};
use super::{CodecError, Framer, Packet, RawPacket, Version, accept_connect};

/// A client's accepted CONNECT.
pub struct ClientConnect {
    /// Its bytes as the client sent them.
    pub wire: Vec<u8>,
    /// The MQTT version it asks for.
    pub version: Version,
    /// The decoded packet.
    pub packet: Packet,
}

/// Why a new client's connection brought no acceptable CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoConnect {
    /// It closed before sending anything.
    Closed,
    /// Nothing complete within the time limit.
    TimedOut,
    /// A first packet that is not a CONNECT, or one that does not decode.
    Malformed,
    /// MQTT 3.1 or an unknown protocol level.
    UnsupportedVersion,
}

impl NoConnect {
    /// The refusal reason metrics count it under; `None` for a client that
    /// only closed.
    pub fn refusal_reason(self) -> Option<&'static str> {
        match self {
            NoConnect::Closed => None,
            NoConnect::TimedOut => Some("connect_timeout"),
            NoConnect::Malformed => Some("malformed_first_packet"),
            NoConnect::UnsupportedVersion => Some("protocol_version"),
        }
    }
}

/// Reads a new client's CONNECT within `time_limit` and checks it. A
/// refused CONNECT gets its answer (CONNACK 0x01, or a v5 reason code) on
/// `wr`; the error says why there is no CONNECT to go on with.
pub async fn receive_connect<R, W>(
    rd: &mut R,
    wr: &mut W,
    time_limit: Duration,
    max_packet_size: u32,
) -> Result<ClientConnect, NoConnect>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (wire, raw) =
        match tokio::time::timeout(time_limit, read_first_packet(rd, max_packet_size)).await {
            Ok(Ok(Some(first))) => first,
            Ok(Ok(None)) => return Err(NoConnect::Closed),
            Ok(Err(e)) => {
                debug!(error = %e, "bad first packet");
                return Err(NoConnect::Malformed);
            }
            Err(_) => {
                debug!("no CONNECT in time");
                return Err(NoConnect::TimedOut);
            }
        };
    match accept_connect(&raw) {
        Ok((version, packet)) => Ok(ClientConnect {
            wire,
            version,
            packet,
        }),
        Err(refusal) => {
            debug!(?refusal, "first packet refused");
            if let Some(reply) = refusal.reply() {
                let _ = wr.write_all(&reply).await;
                let _ = wr.shutdown().await;
            }
            Err(match refusal {
                super::ConnectRefusal::UnsupportedVersion => NoConnect::UnsupportedVersion,
                super::ConnectRefusal::NotConnect | super::ConnectRefusal::Malformed(..) => {
                    NoConnect::Malformed
                }
            })
        }
    }
}

/// The first packet: its wire bytes and the framed packet. `Ok(None)` when
/// the stream ends before the first byte.
pub async fn read_first_packet<R: AsyncRead + Unpin>(
    io: &mut R,
    max_packet_size: u32,
) -> Result<Option<(Vec<u8>, RawPacket)>, ReadError> {
    let mut wire = Vec::with_capacity(8);
    let mut byte = [0u8; 1];
    if io.read(&mut byte).await? == 0 {
        return Ok(None);
    }
    wire.push(byte[0]);
    // The fixed header a byte at a time, so nothing after the packet is read.
    let mut length = remaining_length::Decoder::default();
    let remaining = loop {
        io.read_exact(&mut byte).await?;
        wire.push(byte[0]);
        match length.push(byte[0]) {
            Step::More => {}
            Step::Done(value) => break value,
            Step::Malformed => return Err(CodecError::Malformed.into()),
        }
    };
    let total = wire.len() as u64 + u64::from(remaining);
    if total > u64::from(max_packet_size) {
        return Err(CodecError::PacketTooLarge.into());
    }
    let header_len = wire.len();
    wire.resize(header_len + remaining as usize, 0);
    io.read_exact(&mut wire[header_len..]).await?;
    let mut buf = bytes::BytesMut::from(&wire[..]);
    let raw = Framer::new(max_packet_size)
        .next_packet(&mut buf)?
        .ok_or(CodecError::Malformed)?;
    Ok(Some((wire, raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_one_packet_and_leaves_the_rest() {
        let mut input: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\xc0\x00";
        let (wire, raw) = read_first_packet(&mut input, 1024).await.unwrap().unwrap();
        assert_eq!(raw.packet_type(), 1);
        assert_eq!(wire.len(), 14);
        assert_eq!(input, b"\xc0\x00", "the PINGREQ after it is not read");
    }

    #[tokio::test]
    async fn refuses_oversized_and_overlong() {
        let mut big: &[u8] = b"\x10\xff\xff\xff\x7f";
        assert!(matches!(
            read_first_packet(&mut big, 1024).await,
            Err(ReadError::Codec(CodecError::PacketTooLarge))
        ));
        let mut overlong: &[u8] = b"\x10\xff\xff\xff\xff\x01";
        assert!(matches!(
            read_first_packet(&mut overlong, u32::MAX).await,
            Err(ReadError::Codec(CodecError::Malformed))
        ));
        let mut empty: &[u8] = b"";
        assert!(read_first_packet(&mut empty, 1024).await.unwrap().is_none());
    }
}
