//! Splits a byte stream into raw MQTT packets.
//!
//! A packet's bytes stay in the buffer they were read into until the whole
//! packet is there; it then leaves as a slice of that buffer, without a copy.
//! The size limit is checked as soon as the Remaining Length is known, so a
//! declared 256 MiB packet is refused before any of its body is held.

use bytes::{Buf, Bytes, BytesMut};
use mqtt_protocol_core::mqtt::result_code::MqttError;

use super::packet::CodecError;
use super::remaining_length::{Decoder, Step};

/// One framed MQTT packet: the first byte of its fixed header and its body
/// (everything after the Remaining Length), sharing the buffer it was read
/// into.
#[derive(Debug, Clone)]
pub struct RawPacket {
    header: u8,
    body: Bytes,
}

impl RawPacket {
    /// The packet type (the fixed header's upper four bits).
    pub fn packet_type(&self) -> u8 {
        self.header >> 4
    }

    /// The fixed header's flags (its lower four bits).
    pub fn flags(&self) -> u8 {
        self.header & 0x0f
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The bytes after the fixed header, taken.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The body as a slice.
    pub fn data_as_slice(&self) -> &[u8] {
        &self.body
    }

    /// The length of the body (the Remaining Length).
    pub fn remaining_length(&self) -> usize {
        self.body.len()
    }

    /// Parses the body with `parse`, which must consume all of it: bytes
    /// left over are not part of the packet's format (Malformed Packet).
    pub fn parse_exact<T>(
        &self,
        parse: impl FnOnce(&[u8]) -> Result<(T, usize), MqttError>,
    ) -> Result<T, MqttError> {
        let (packet, consumed) = parse(&self.body)?;
        if consumed != self.body.len() {
            return Err(MqttError::MalformedPacket);
        }
        Ok(packet)
    }
}

/// Framing for one direction of one connection.
pub struct Framer {
    max_packet_size: u32,
}

impl Framer {
    /// A framer that refuses packets larger than `max_packet_size` bytes
    /// (fixed header included).
    pub fn new(max_packet_size: u32) -> Self {
        Self { max_packet_size }
    }

    /// Takes the first packet from the front of `buf` once it is whole.
    /// `Ok(None)` while `buf` holds no whole packet; the bytes of a partial
    /// one stay in `buf` for the next call.
    pub fn next_packet(&mut self, buf: &mut BytesMut) -> Result<Option<RawPacket>, CodecError> {
        let Some(&header) = buf.first() else {
            return Ok(None);
        };
        let mut length = Decoder::default();
        let mut header_len = 1;
        let remaining = loop {
            let Some(&byte) = buf.get(header_len) else {
                return Ok(None);
            };
            header_len += 1;
            match length.push(byte) {
                Step::More => {}
                Step::Done(value) => break value as usize,
                Step::Malformed => return Err(CodecError::Malformed),
            }
        };
        let total = header_len + remaining;
        if total as u64 > u64::from(self.max_packet_size) {
            return Err(CodecError::PacketTooLarge);
        }
        if buf.len() < total {
            return Ok(None);
        }
        // A packet that is all of `buf` (one packet a read, the common
        // case) is taken whole: splitting would make `buf` shared, and
        // that costs an allocation.
        let mut packet = if total == buf.len() {
            std::mem::take(buf)
        } else {
            buf.split_to(total)
        };
        packet.advance(header_len);
        Ok(Some(RawPacket {
            header,
            body: packet.freeze(),
        }))
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
        assert!(buf.is_empty());
    }

    #[test]
    fn a_packet_that_is_the_whole_buffer_takes_it() {
        let mut framer = Framer::new(1024);
        let mut buf = BytesMut::from(&b"\x30\x04\x00\x01ab"[..]);
        let publish = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(publish.data_as_slice(), b"\x00\x01ab");
        assert_eq!((buf.len(), buf.capacity()), (0, 0), "taken, not split");
        // The buffer goes on being read into.
        buf.extend_from_slice(b"\xc0\x00");
        let ping = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!((ping.packet_type(), publish.into_body().len()), (12, 4));
    }

    #[test]
    fn a_remaining_length_cut_between_reads_waits_for_its_last_byte() {
        let mut framer = Framer::new(1024);
        // PUBLISH of 200 bytes of body: Remaining Length 0xc8 0x01.
        let mut buf = BytesMut::from(&b"\x30\xc8"[..]);
        assert!(framer.next_packet(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\x01");
        buf.extend_from_slice(&[7; 199]);
        assert!(framer.next_packet(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[7, 0xe0, 0x00]);
        let publish = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(publish.remaining_length(), 200);
        let disconnect = framer.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!((disconnect.packet_type(), disconnect.flags()), (14, 0));
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
        // The limit counts the fixed header: 1 + 2 + 1021 is 1024 bytes.
        let mut at_limit = BytesMut::from(&b"\x30\xfd\x07"[..]);
        assert!(framer.next_packet(&mut at_limit).unwrap().is_none());
        let mut over = BytesMut::from(&b"\x30\xfe\x07"[..]);
        assert_eq!(
            framer.next_packet(&mut over).unwrap_err(),
            CodecError::PacketTooLarge
        );
    }

    #[test]
    fn a_fifth_remaining_length_byte_is_malformed() {
        let mut buf = BytesMut::from(&b"\x30\xff\xff\xff\xff\x01"[..]);
        assert_eq!(
            Framer::new(u32::MAX).next_packet(&mut buf).unwrap_err(),
            CodecError::Malformed
        );
    }
}
