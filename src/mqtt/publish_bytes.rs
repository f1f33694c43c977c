//! PUBLISH packets read and written straight from and to bytes, without
//! mqtt-protocol-core's packet types: the hot path of both proxies (the gRPC
//! line's fast conversion) and of the benchmark, which must cost less than
//! what it measures. Checks of what the protocol forbids stay with the
//! callers' general paths; this only knows the layout.

use bytes::BytesMut;

use super::{SliceWriter, Version, remaining_length};

/// The packet type of PUBLISH.
pub const PUBLISH: u8 = 3;

/// A PUBLISH's parts as they sit in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishBytes<'a> {
    /// 0, 1 or 2 (3 is refused by [`PublishBytes::parse`]).
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
    /// The DUP flag.
    pub dup: bool,
    /// The topic name, not yet checked to be UTF-8.
    pub topic: &'a [u8],
    /// The packet identifier; 0 at QoS 0, where there is none.
    pub packet_id: u16,
    /// MQTT 5: the property bytes (without their length); MQTT 3.1.1: empty.
    pub properties: &'a [u8],
    /// The application message.
    pub payload: &'a [u8],
}

impl<'a> PublishBytes<'a> {
    /// Reads the PUBLISH whose fixed-header `flags` (low four bits) and body
    /// (variable header and payload) are given; `None` when the body is too
    /// short to be one or the QoS is 3.
    pub fn parse(version: Version, flags: u8, body: &'a [u8]) -> Option<Self> {
        let qos = (flags >> 1) & 3;
        if qos == 3 {
            return None;
        }
        let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let topic = body.get(2..2 + topic_len)?;
        let mut at = 2 + topic_len;
        let mut packet_id = 0;
        if qos > 0 {
            packet_id = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
            at += 2;
        }
        let mut properties: &[u8] = &[];
        if version == Version::V5 {
            let (len, used) = remaining_length::parse(body.get(at..)?)?;
            at += used;
            let end = at.checked_add(usize::try_from(len).ok()?)?;
            properties = body.get(at..end)?;
            at = end;
        }
        Some(Self {
            qos,
            retain: flags & 1 == 1,
            dup: flags & 8 == 8,
            topic,
            packet_id,
            properties,
            payload: body.get(at..)?,
        })
    }

    /// Appends the packet to `out` and returns its length, or `None`
    /// (nothing written) when a part is too long for MQTT.
    pub fn put(&self, version: Version, out: &mut BytesMut) -> Option<usize> {
        let topic_len = u16::try_from(self.topic.len()).ok()?;
        let id_len = if self.qos > 0 { 2 } else { 0 };
        let properties_len = match version {
            Version::V5 => {
                remaining_length::encoded_len(self.properties.len()) + self.properties.len()
            }
            Version::V3_1_1 => 0,
        };
        let remaining = 2 + self.topic.len() + id_len + properties_len + self.payload.len();
        if remaining > super::MAX_REMAINING_LENGTH {
            return None;
        }
        let len = 1 + remaining_length::encoded_len(remaining) + remaining;
        let start = out.len();
        out.resize(start + len, 0);
        let mut w = SliceWriter::new(&mut out[start..]);
        w.byte(
            PUBLISH << 4 | u8::from(self.dup) << 3 | (self.qos & 3) << 1 | u8::from(self.retain),
        );
        // Both within MAX_REMAINING_LENGTH, checked above.
        w.varint(remaining as u64);
        w.u16(topic_len);
        w.bytes(self.topic);
        if self.qos > 0 {
            w.u16(self.packet_id);
        }
        if version == Version::V5 {
            w.varint(self.properties.len() as u64);
            w.bytes(self.properties);
        }
        w.bytes(self.payload);
        debug_assert!(w.is_full(), "the packet's length was counted");
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Framer, Packet, decode};

    fn sample(qos: u8, properties: &'static [u8]) -> PublishBytes<'static> {
        PublishBytes {
            qos,
            retain: true,
            dup: qos > 0,
            topic: b"a/b",
            packet_id: if qos > 0 { 7 } else { 0 },
            properties,
            payload: b"hello",
        }
    }

    #[test]
    fn written_bytes_decode_with_the_general_codec_and_parse_back() {
        for version in [Version::V3_1_1, Version::V5] {
            for qos in 0..=2 {
                // MQTT 5 Content Type "t" as a property.
                let properties: &[u8] = if version == Version::V5 {
                    b"\x03\x00\x01t"
                } else {
                    b""
                };
                let publish = sample(qos, properties);
                let mut out = BytesMut::new();
                let len = publish.put(version, &mut out).unwrap();
                assert_eq!(len, out.len());
                let raw = Framer::new(1024)
                    .next_packet(&mut out.clone())
                    .unwrap()
                    .unwrap();
                let packet = decode(version, &raw).unwrap();
                assert!(
                    matches!(packet, Packet::V3_1_1Publish(_) | Packet::V5_0Publish(_)),
                    "{packet:?}"
                );
                let back = PublishBytes::parse(version, raw.flags(), raw.data_as_slice()).unwrap();
                assert_eq!(back, publish, "{version:?} qos {qos}");
            }
        }
    }

    #[test]
    fn short_or_qos3_bodies_are_refused() {
        assert_eq!(PublishBytes::parse(Version::V3_1_1, 0, b"\x00"), None);
        assert_eq!(PublishBytes::parse(Version::V3_1_1, 0, b"\x00\x05ab"), None);
        assert_eq!(
            PublishBytes::parse(Version::V3_1_1, 0b0110, b"\x00\x01a"),
            None
        );
        assert_eq!(PublishBytes::parse(Version::V5, 0, b"\x00\x01a\x05"), None);
    }
}
