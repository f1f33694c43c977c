//! The few packets the load generator writes and reads on its hot path,
//! encoded and parsed by hand: a benchmark client must cost less than what
//! it measures, so PUBLISH bytes are built straight into the write buffer
//! and received PUBLISHes are read in place.
//!
//! The acknowledgements use the short form both MQTT versions share
//! (reason "success", no properties).

use bytes::{BufMut, BytesMut};

use crate::mqtt::Version;

/// Packet types (the high nibble of the first byte).
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBACK: u8 = 9;

/// Appends a PUBLISH (not retained, not a duplicate).
pub fn put_publish(
    buf: &mut BytesMut,
    version: Version,
    topic: &str,
    qos: u8,
    packet_id: u16,
    payload: &[u8],
) {
    let properties = usize::from(version == Version::V5);
    let id = if qos > 0 { 2 } else { 0 };
    let remaining = 2 + topic.len() + id + properties + payload.len();
    buf.reserve(5 + remaining);
    buf.put_u8(PUBLISH << 4 | (qos & 3) << 1);
    put_remaining_length(buf, remaining);
    // Topic lengths are checked when the plan is made (at most 65535).
    buf.put_u16(topic.len() as u16);
    buf.put_slice(topic.as_bytes());
    if qos > 0 {
        buf.put_u16(packet_id);
    }
    if properties == 1 {
        buf.put_u8(0);
    }
    buf.put_slice(payload);
}

/// Appends a two-byte acknowledgement: PUBACK, PUBREC, PUBREL or PUBCOMP.
pub fn put_ack(buf: &mut BytesMut, packet_type: u8, packet_id: u16) {
    // PUBREL carries the fixed flags 0b0010.
    let flags = if packet_type == PUBREL { 0b0010 } else { 0 };
    buf.put_u8(packet_type << 4 | flags);
    buf.put_u8(2);
    buf.put_u16(packet_id);
}

fn put_remaining_length(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            return;
        }
    }
}

/// A received PUBLISH, read in place.
#[derive(Debug, PartialEq, Eq)]
pub struct PublishView<'a> {
    pub qos: u8,
    pub packet_id: u16,
    pub payload: &'a [u8],
}

/// Reads the PUBLISH whose fixed-header `flags` and body (variable header
/// and payload) are given; `None` when the body is too short to be one.
pub fn parse_publish(version: Version, flags: u8, body: &[u8]) -> Option<PublishView<'_>> {
    let qos = (flags >> 1) & 3;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let mut at = 2 + topic_len;
    let mut packet_id = 0;
    if qos > 0 {
        packet_id = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
        at += 2;
    }
    if version == Version::V5 {
        let (len, used) = variable_int(body.get(at..)?)?;
        at += used + len;
    }
    Some(PublishView {
        qos,
        packet_id,
        payload: body.get(at..)?,
    })
}

/// The packet id of a two-byte acknowledgement body.
pub fn ack_id(body: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
}

/// An MQTT variable byte integer: its value and how many bytes it took.
fn variable_int(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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
                    view,
                    PublishView {
                        qos,
                        packet_id: id,
                        payload: b"0123456789abcdef"
                    }
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
        assert_eq!(parse_publish(Version::V5, 2, &[0, 5, b'a']), None);
        assert_eq!(parse_publish(Version::V5, 0, &[0, 1, b'a', 0xff]), None);
    }
}
