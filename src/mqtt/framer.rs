//! Splits a byte stream into raw MQTT packets.
//!
//! A thin wrapper over mqtt-protocol-core's `PacketBuilder`: the size limit
//! is checked as soon as the Remaining Length is known, before any buffer for
//! the body is allocated, so a declared 256 MiB packet costs nothing.

use bytes::{Buf, BytesMut};
use mqtt_protocol_core::mqtt::common::Cursor;
use mqtt_protocol_core::mqtt::connection::{PacketBuildResult, PacketBuilder, RawPacket};

use super::packet::CodecError;

/// Incremental framer for one direction of one connection.
pub struct Framer {
    builder: PacketBuilder,
}

impl Framer {
    /// A framer that refuses packets larger than `max_packet_size` bytes
    /// (fixed header included).
    pub fn new(max_packet_size: u32) -> Self {
        Self {
            builder: PacketBuilder::with_maximum_packet_size(max_packet_size),
        }
    }

    /// Takes bytes from the front of `buf` until one packet is complete.
    /// Returns `Ok(None)` once `buf` is used up without completing a packet;
    /// the partial packet is kept for the next call.
    pub fn next_packet(&mut self, buf: &mut BytesMut) -> Result<Option<RawPacket>, CodecError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let mut cursor = Cursor::new(&buf[..]);
        let result = self.builder.feed(&mut cursor);
        let consumed = cursor.position() as usize;
        buf.advance(consumed);
        match result {
            PacketBuildResult::Complete(raw) => Ok(Some(raw)),
            PacketBuildResult::Incomplete => Ok(None),
            PacketBuildResult::Error(e) => Err(CodecError::from_mqtt(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_across_reads() {
        let mut framer = Framer::new(1024);
        // PINGREQ then half of a PUBLISH.
        let mut buf = BytesMut::from(&b"\xc0\x00\x30\x05\x00\x01a"[..]);
        let ping = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(ping.packet_type(), 12);
        assert!(framer.next_packet(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"xy");
        let publish = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(publish.packet_type(), 3);
        assert_eq!(publish.data_as_slice(), b"\x00\x01axy");
    }

    #[test]
    fn refuses_oversized_before_allocating() {
        let mut framer = Framer::new(1024);
        // PUBLISH declaring 256 MiB - 1 of body.
        let mut buf = BytesMut::from(&b"\x30\xff\xff\xff\x7f"[..]);
        assert_eq!(
            framer.next_packet(&mut buf).unwrap_err(),
            CodecError::PacketTooLarge
        );
    }
}
