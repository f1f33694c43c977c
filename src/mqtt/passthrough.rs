//! Relaying MQTT bytes untouched while knowing where packets end.
//!
//! `scion-quic` passes the broker's bytes to the client as they come, without
//! parsing packets. To end a session politely (DISCONNECT 0x8B on shutdown)
//! it must still write its DISCONNECT between two packets, never inside one.
//! [`PacketBounds`] follows the fixed headers in the byte stream at a cost of
//! a few comparisons per packet; the session relay
//! ([`super::session_relay`]) uses it to stop at a packet boundary.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::remaining_length::{Decoder, Step};
use super::scratch_read::read_into;

/// Where the stream is relative to the packet it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Between packets: the next byte is a packet type.
    Boundary,
    /// In the Remaining Length.
    Length(Decoder),
    /// In the variable header or payload, with this many bytes to go.
    Body(u32),
    /// The stream is not MQTT (a Remaining Length longer than four bytes);
    /// no boundary will be found again.
    Lost,
}

/// Follows packet boundaries in an MQTT byte stream.
#[derive(Debug, Clone, Copy)]
pub struct PacketBounds(Position);

impl Default for PacketBounds {
    fn default() -> Self {
        Self(Position::Boundary)
    }
}

impl PacketBounds {
    /// True between two packets.
    pub fn at_boundary(&self) -> bool {
        self.0 == Position::Boundary
    }

    /// Takes bytes until the end of the packet in progress (or, at a
    /// boundary, of the next one). Returns how many bytes of `bytes`
    /// complete it, or `None` if all of them were taken without reaching it.
    pub fn until_boundary(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut taken = 0;
        while taken < bytes.len() {
            match self.0 {
                Position::Lost => return None,
                Position::Boundary => {
                    // The packet type and flags.
                    taken += 1;
                    self.0 = Position::Length(Decoder::default());
                }
                Position::Length(mut length) => {
                    let byte = bytes[taken];
                    taken += 1;
                    self.0 = match length.push(byte) {
                        Step::Done(0) => Position::Boundary,
                        Step::Done(value) => Position::Body(value),
                        Step::Malformed => Position::Lost,
                        Step::More => Position::Length(length),
                    };
                    if self.0 == Position::Boundary {
                        return Some(taken);
                    }
                }
                Position::Body(remaining) => {
                    let available = bytes.len() - taken;
                    let step = available.min(remaining as usize);
                    taken += step;
                    // `step` is at most `remaining`, a u32.
                    let left = remaining - step as u32;
                    if left == 0 {
                        self.0 = Position::Boundary;
                        return Some(taken);
                    }
                    self.0 = Position::Body(left);
                }
            }
        }
        None
    }

    /// Takes all of `bytes`.
    pub fn advance(&mut self, mut bytes: &[u8]) {
        while let Some(n) = self.until_boundary(bytes) {
            bytes = &bytes[n..];
        }
    }
}

/// How [`relay_to_client`] ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The source ended; `bytes` were relayed.
    Eof { bytes: u64 },
    /// Reading or writing failed.
    Failed(std::io::Error),
    /// `stop` became true. `at_boundary` says whether the writer was left
    /// between two packets, so the caller may write a packet of its own.
    Stopped { bytes: u64, at_boundary: bool },
}

/// Stopping: relays the rest of the packet in progress, if it arrives
/// within `finish_within`.
pub(super) async fn finish_packet<R, W>(
    from: &mut R,
    to: &mut W,
    mut bounds: PacketBounds,
    mut bytes: u64,
    finish_within: std::time::Duration,
) -> RelayEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut pending = BytesMut::new();
    let deadline = Instant::now() + finish_within;
    while !bounds.at_boundary() {
        pending.clear();
        match timeout_at(deadline, read_into(from, &mut pending)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
        let end = bounds.until_boundary(&pending).unwrap_or(pending.len());
        if let Err(e) = write_flushed(to, &pending[..end]).await {
            return RelayEnd::Failed(e);
        }
        bytes += end as u64;
    }
    RelayEnd::Stopped {
        bytes,
        at_boundary: bounds.at_boundary(),
    }
}

async fn write_flushed<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_packets_split_anywhere() {
        // PINGRESP, a PUBLISH with a two-byte Remaining Length (200), SUBACK.
        let mut stream = vec![0xd0, 0x00, 0x30, 0xc8, 0x01];
        stream.extend(std::iter::repeat_n(b'x', 200));
        stream.extend([0x90, 0x03, 0x00, 0x01, 0x00]);
        let ends = [2, 2 + 3 + 200, stream.len()];
        for split in 0..=stream.len() {
            let mut bounds = PacketBounds::default();
            let mut seen = Vec::new();
            let mut offset = 0;
            for chunk in [&stream[..split], &stream[split..]] {
                let mut rest = chunk;
                while let Some(n) = bounds.until_boundary(rest) {
                    offset += n;
                    seen.push(offset);
                    rest = &rest[n..];
                }
                offset += rest.len();
            }
            assert_eq!(seen, ends, "split at {split}");
            assert!(bounds.at_boundary());
        }
    }

    #[test]
    fn a_five_byte_length_is_not_mqtt() {
        let mut bounds = PacketBounds::default();
        bounds.advance(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]);
        assert!(!bounds.at_boundary());
        assert_eq!(bounds.until_boundary(&[0xd0, 0x00]), None);
    }
}
