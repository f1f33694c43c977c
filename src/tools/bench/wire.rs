//! The few packets the load generator writes and reads on its hot path,
//! encoded and parsed by hand: a benchmark client must cost less than what
//! it measures, so PUBLISH bytes are built straight into the write buffer
//! and received PUBLISHes are read in place.
//!
//! The acknowledgements use the short form both MQTT versions share
//! (reason "success", no properties).

use bytes::{BufMut, BytesMut};

pub use crate::mqtt::PUBLISH;
use crate::mqtt::{PublishBytes, Version};

/// Packet types (the high nibble of the first byte).
pub const CONNACK: u8 = 2;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBACK: u8 = 9;

/// Appends a PUBLISH (not retained, not a duplicate, no properties).
pub fn put_publish(
    buf: &mut BytesMut,
    version: Version,
    topic: &str,
    qos: u8,
    packet_id: u16,
    payload: &[u8],
) {
    let publish = PublishBytes {
        qos,
        retain: false,
        dup: false,
        topic: topic.as_bytes(),
        packet_id,
        properties: &[],
        payload,
    };
    // Topic lengths are checked when the plan is made (at most 65535) and
    // payloads are far below MQTT's limit, so nothing is refused here.
    let _ = publish.put(version, buf);
}

/// Appends a two-byte acknowledgement: PUBACK, PUBREC, PUBREL or PUBCOMP.
pub fn put_ack(buf: &mut BytesMut, packet_type: u8, packet_id: u16) {
    // PUBREL carries the fixed flags 0b0010.
    let flags = if packet_type == PUBREL { 0b0010 } else { 0 };
    buf.put_u8(packet_type << 4 | flags);
    buf.put_u8(2);
    buf.put_u16(packet_id);
}

/// Reads a received PUBLISH in place.
pub fn parse_publish(version: Version, flags: u8, body: &[u8]) -> Option<PublishBytes<'_>> {
    PublishBytes::parse(version, flags, body)
}

/// The packet id of a two-byte acknowledgement body.
pub fn ack_id(body: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::packets;
    use crate::mqtt::{self, Framer, Packet};

    #[test]
    fn hand_made_publish_matches_the_codec_both_ways() {
        for version in [Version::V3_1_1, Version::V5] {
            for qos in 0..=2u8 {
                let mut ours = BytesMut::new();
                put_publish(&mut ours, version, "bench/t", qos, 7, b"0123456789abcdef");
                let id = if qos > 0 { 7 } else { 0 };
                let packet = packets::publish(
                    version,
                    "bench/t",
                    &b"0123456789abcdef"[..],
                    qos,
                    false,
                    id,
                    vec![],
                )
                .unwrap();
                let mut theirs = BytesMut::new();
                mqtt::encode(&packet, &mut theirs);
                assert_eq!(ours, theirs, "{version} QoS {qos}");
                let raw = Framer::new(1024).next_packet(&mut ours).unwrap().unwrap();
                let view = parse_publish(version, raw.flags(), raw.data_as_slice()).unwrap();
                assert_eq!(
                    (view.qos, view.packet_id, view.payload),
                    (qos, id, &b"0123456789abcdef"[..])
                );
            }
        }
    }

    #[test]
    fn acks_are_valid_packets() {
        for (kind, version) in [
            (PUBACK, Version::V3_1_1),
            (PUBREC, Version::V5),
            (PUBREL, Version::V5),
            (PUBCOMP, Version::V3_1_1),
        ] {
            let mut buf = BytesMut::new();
            put_ack(&mut buf, kind, 513);
            let raw = Framer::new(1024).next_packet(&mut buf).unwrap().unwrap();
            assert_eq!(raw.packet_type(), kind);
            assert_eq!(ack_id(raw.data_as_slice()), Some(513));
            assert!(!matches!(
                mqtt::decode(version, &raw),
                Err(_) | Ok(Packet::V3_1_1Publish(_))
            ));
        }
    }

    #[test]
    fn truncated_publish_is_none() {
        assert!(parse_publish(Version::V5, 2, &[0, 5, b'a']).is_none());
        assert!(parse_publish(Version::V5, 0, &[0, 1, b'a', 0xff]).is_none());
    }
}
