//! Decoding raw packets into mqtt-protocol-core packets and encoding them back.

use bytes::BytesMut;
use mqtt_protocol_core::mqtt::packet::{GenericPacketTrait, Property, v3_1_1 as v3, v5_0 as v5};
use mqtt_protocol_core::mqtt::result_code::MqttError;

pub use mqtt_protocol_core::mqtt::packet::Packet;

use super::Version;
use super::framer::RawPacket;

/// Why bytes could not be turned into a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes break the packet format.
    #[error("malformed packet")]
    Malformed,
    /// Well-formed bytes that the protocol forbids here.
    #[error("protocol error")]
    Protocol,
    /// The packet is larger than the configured maximum packet size.
    #[error("packet too large")]
    PacketTooLarge,
}

impl CodecError {
    pub(crate) fn from_mqtt(e: MqttError) -> Self {
        match e {
            MqttError::PacketTooLarge => CodecError::PacketTooLarge,
            MqttError::ProtocolError => CodecError::Protocol,
            _ => CodecError::Malformed,
        }
    }

    /// The MQTT 5 DISCONNECT reason code that reports this error to a peer.
    pub fn v5_reason_code(self) -> u8 {
        match self {
            CodecError::Malformed => 0x81,
            CodecError::Protocol => 0x82,
            CodecError::PacketTooLarge => 0x95,
        }
    }
}

impl From<MqttError> for CodecError {
    fn from(e: MqttError) -> Self {
        CodecError::from_mqtt(e)
    }
}

/// Fixed-header flags the spec requires for each packet type; PUBLISH
/// carries its own flags and is checked by its parser.
fn required_flags(packet_type: u8) -> Option<u8> {
    match packet_type {
        3 => None,
        6 | 8 | 10 => Some(0b0010),
        _ => Some(0),
    }
}

/// Decodes one framed packet of a connection that speaks `version`.
pub fn decode(version: Version, raw: &RawPacket) -> Result<Packet, CodecError> {
    let packet_type = raw.packet_type();
    if let Some(flags) = required_flags(packet_type)
        && raw.flags() != flags
    {
        return Err(CodecError::Malformed);
    }
    // PUBACK .. UNSUBACK start with a packet identifier, which is never 0
    // (the parser lets 0 through; the packet builders refuse it).
    if (4..=11).contains(&packet_type) && raw.data_as_slice().starts_with(&[0, 0]) {
        return Err(CodecError::Protocol);
    }
    let packet = match (version, packet_type) {
        (_, 3) => decode_publish(version, raw)?,
        (Version::V3_1_1, 1) => Packet::V3_1_1Connect(raw.parse_exact(v3::Connect::parse)?),
        (Version::V3_1_1, 2) => Packet::V3_1_1Connack(raw.parse_exact(v3::Connack::parse)?),
        (Version::V3_1_1, 4) => Packet::V3_1_1Puback(raw.parse_exact(v3::Puback::parse)?),
        (Version::V3_1_1, 5) => Packet::V3_1_1Pubrec(raw.parse_exact(v3::Pubrec::parse)?),
        (Version::V3_1_1, 6) => Packet::V3_1_1Pubrel(raw.parse_exact(v3::Pubrel::parse)?),
        (Version::V3_1_1, 7) => Packet::V3_1_1Pubcomp(raw.parse_exact(v3::Pubcomp::parse)?),
        (Version::V3_1_1, 8) => Packet::V3_1_1Subscribe(raw.parse_exact(v3::Subscribe::parse)?),
        (Version::V3_1_1, 9) => Packet::V3_1_1Suback(raw.parse_exact(v3::Suback::parse)?),
        (Version::V3_1_1, 10) => {
            Packet::V3_1_1Unsubscribe(raw.parse_exact(v3::Unsubscribe::parse)?)
        }
        (Version::V3_1_1, 11) => Packet::V3_1_1Unsuback(raw.parse_exact(v3::Unsuback::parse)?),
        (Version::V3_1_1, 12) => Packet::V3_1_1Pingreq(raw.parse_exact(v3::Pingreq::parse)?),
        (Version::V3_1_1, 13) => Packet::V3_1_1Pingresp(raw.parse_exact(v3::Pingresp::parse)?),
        (Version::V3_1_1, 14) => Packet::V3_1_1Disconnect(raw.parse_exact(v3::Disconnect::parse)?),
        (Version::V5, 1) => Packet::V5_0Connect(raw.parse_exact(v5::Connect::parse)?),
        (Version::V5, 2) => Packet::V5_0Connack(raw.parse_exact(v5::Connack::parse)?),
        (Version::V5, 4) => Packet::V5_0Puback(raw.parse_exact(v5::Puback::parse)?),
        (Version::V5, 5) => Packet::V5_0Pubrec(raw.parse_exact(v5::Pubrec::parse)?),
        (Version::V5, 6) => Packet::V5_0Pubrel(raw.parse_exact(v5::Pubrel::parse)?),
        (Version::V5, 7) => Packet::V5_0Pubcomp(raw.parse_exact(v5::Pubcomp::parse)?),
        (Version::V5, 8) => Packet::V5_0Subscribe(raw.parse_exact(v5::Subscribe::parse)?),
        (Version::V5, 9) => Packet::V5_0Suback(raw.parse_exact(v5::Suback::parse)?),
        (Version::V5, 10) => Packet::V5_0Unsubscribe(raw.parse_exact(v5::Unsubscribe::parse)?),
        (Version::V5, 11) => Packet::V5_0Unsuback(raw.parse_exact(v5::Unsuback::parse)?),
        (Version::V5, 12) => Packet::V5_0Pingreq(raw.parse_exact(v5::Pingreq::parse)?),
        (Version::V5, 13) => Packet::V5_0Pingresp(raw.parse_exact(v5::Pingresp::parse)?),
        (Version::V5, 14) => Packet::V5_0Disconnect(raw.parse_exact(v5::Disconnect::parse)?),
        (Version::V5, 15) => Packet::V5_0Auth(raw.parse_exact(v5::Auth::parse)?),
        _ => return Err(CodecError::Malformed),
    };
    Ok(packet)
}

fn decode_publish(version: Version, raw: &RawPacket) -> Result<Packet, CodecError> {
    // The parser keeps its payload as an `Arc<[u8]>`: a copy of the body
    // (the PUBLISH fast path, which most packets take, needs none).
    let body: std::sync::Arc<[u8]> = raw.data_as_slice().into();
    let len = body.len();
    let flags = raw.flags();
    let (packet, consumed) = match version {
        Version::V3_1_1 => {
            let (p, n) = v3::Publish::parse(flags, body.clone())?;
            check_publish(p.topic_name().as_bytes(), false, p.packet_id())?;
            (Packet::V3_1_1Publish(p), n)
        }
        Version::V5 => {
            let (p, n) = v5::Publish::parse(flags, body.clone())?;
            let alias = p
                .props
                .iter()
                .any(|prop| matches!(prop, Property::TopicAlias(_)));
            check_publish(p.topic_name().as_bytes(), alias, p.packet_id())?;
            (Packet::V5_0Publish(p), n)
        }
    };
    if consumed != len {
        return Err(CodecError::Malformed);
    }
    Ok(packet)
}

/// What the parser lets through but the protocol forbids in a PUBLISH (and
/// the packet builders refuse, so it could not be relayed): wildcards in
/// the topic, an empty topic without an MQTT 5 topic alias, packet id 0.
pub(crate) fn check_publish(
    topic: &[u8],
    alias: bool,
    packet_id: Option<u16>,
) -> Result<(), CodecError> {
    if has_wildcard(topic) {
        return Err(CodecError::Malformed);
    }
    if (topic.is_empty() && !alias) || packet_id == Some(0) {
        return Err(CodecError::Protocol);
    }
    Ok(())
}

/// Whether a topic holds a wildcard (`+` or `#`). Both are ASCII, so no
/// byte of a multi-byte UTF-8 character can be one; looks at every byte
/// without stopping early, which the compiler turns into a few wide
/// compares for a topic of a few dozen bytes.
pub(crate) fn has_wildcard(topic: &[u8]) -> bool {
    topic
        .iter()
        .fold(false, |found, &b| found | (b == b'+') | (b == b'#'))
}

/// Whether `topic` can name a PUBLISH's topic as far as its bytes go:
/// UTF-8 without a wildcard. Most topics are ASCII without one, which one
/// pass finds: each byte's high bit, set for a wildcard too, gathered into
/// one byte (every byte looked at, without stopping early: a few wide
/// operations for a topic of a few dozen bytes). Anything else is looked
/// at again in full.
pub(crate) fn is_topic_name(topic: &[u8]) -> bool {
    let marks = topic.iter().fold(0u8, |marks, &b| {
        marks | b | (u8::from((b == b'+') | (b == b'#')) << 7)
    });
    marks.is_ascii() || (!has_wildcard(topic) && std::str::from_utf8(topic).is_ok())
}

/// Appends the wire form of `packet` to `out`.
pub fn encode(packet: &Packet, out: &mut BytesMut) {
    out.reserve(packet.size());
    for slice in packet.to_buffers() {
        out.extend_from_slice(&slice);
    }
}

/// The size of a framed packet on the wire: fixed header byte, Remaining
/// Length bytes and body.
pub fn wire_size(raw: &RawPacket) -> usize {
    let body = raw.remaining_length();
    1 + super::remaining_length::encoded_len(body) + body
}

/// A short lower-case name of the packet's type, for logs and metrics.
pub fn packet_type_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::V3_1_1Connect(_) | Packet::V5_0Connect(_) => "connect",
        Packet::V3_1_1Connack(_) | Packet::V5_0Connack(_) => "connack",
        Packet::V3_1_1Publish(_) | Packet::V5_0Publish(_) => "publish",
        Packet::V3_1_1Puback(_) | Packet::V5_0Puback(_) => "puback",
        Packet::V3_1_1Pubrec(_) | Packet::V5_0Pubrec(_) => "pubrec",
        Packet::V3_1_1Pubrel(_) | Packet::V5_0Pubrel(_) => "pubrel",
        Packet::V3_1_1Pubcomp(_) | Packet::V5_0Pubcomp(_) => "pubcomp",
        Packet::V3_1_1Subscribe(_) | Packet::V5_0Subscribe(_) => "subscribe",
        Packet::V3_1_1Suback(_) | Packet::V5_0Suback(_) => "suback",
        Packet::V3_1_1Unsubscribe(_) | Packet::V5_0Unsubscribe(_) => "unsubscribe",
        Packet::V3_1_1Unsuback(_) | Packet::V5_0Unsuback(_) => "unsuback",
        Packet::V3_1_1Pingreq(_) | Packet::V5_0Pingreq(_) => "pingreq",
        Packet::V3_1_1Pingresp(_) | Packet::V5_0Pingresp(_) => "pingresp",
        Packet::V3_1_1Disconnect(_) | Packet::V5_0Disconnect(_) => "disconnect",
        Packet::V5_0Auth(_) => "auth",
    }
}

/// Packet type names by type code (0 is reserved), as logs and metrics
/// name them.
pub const PACKET_TYPE_NAMES: [&str; 16] = [
    "reserved",
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
    "auth",
];

/// The packet type named by the first byte of an encoded packet.
pub fn packet_type_name_of(first_byte: u8) -> &'static str {
    PACKET_TYPE_NAMES[usize::from(first_byte >> 4)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::Framer;

    fn decode_bytes(version: Version, bytes: &[u8]) -> Result<Packet, CodecError> {
        let mut buf = BytesMut::from(bytes);
        let raw = Framer::new(1024)
            .next_packet(&mut buf)
            .expect("well framed")
            .expect("a whole packet");
        decode(version, &raw)
    }

    #[test]
    fn topic_bytes_are_checked_like_text() {
        for topic in [
            "a/b",
            "sensors/+",
            "#",
            "a+b",
            "caf\u{e9}/x",
            "caf\u{e9}/+",
            "\u{1f600}#",
        ] {
            let wildcard = topic.contains(['+', '#']);
            assert_eq!(has_wildcard(topic.as_bytes()), wildcard, "{topic}");
            assert_eq!(is_topic_name(topic.as_bytes()), !wildcard, "{topic}");
        }
        // Not UTF-8: a lone continuation byte, a truncated two-byte form, an
        // encoded surrogate; each also after an ASCII prefix.
        for bytes in [&b"\x80"[..], b"ab\xc3", b"\xed\xa0\x80", b"topic/\xff"] {
            assert!(!is_topic_name(bytes), "{bytes:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_topic_name_is_utf8_without_a_wildcard(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'+'),
                    proptest::prelude::Just(b'#'),
                    0x20u8..0x7f,
                    proptest::prelude::any::<u8>(),
                ],
                0..40,
            )
        ) {
            let text = std::str::from_utf8(&bytes);
            let expected = text.is_ok_and(|t| !t.contains(['+', '#']));
            proptest::prop_assert_eq!(is_topic_name(&bytes), expected);
        }
    }

    /// Inputs found by the `mqtt_framer` fuzz target: packets the parser
    /// accepts but the protocol (and the far proxy's builder) refuses.
    #[test]
    fn refuses_what_could_not_be_relayed() {
        let empty_topic = [0x30, 2, 0, 0];
        let wildcard_topic = [0x30, 4, 0, 2, b'a', b'#'];
        let publish_id_0 = [0x32, 5, 0, 1, b'a', 0, 0];
        let suback_id_0 = [0x90, 3, 0, 0, 0];
        for version in [Version::V3_1_1, Version::V5] {
            assert_eq!(
                decode_bytes(version, &empty_topic).err(),
                Some(CodecError::Protocol)
            );
            assert_eq!(
                decode_bytes(version, &publish_id_0).err(),
                Some(CodecError::Protocol)
            );
            assert_eq!(
                decode_bytes(version, &wildcard_topic).err(),
                Some(CodecError::Malformed)
            );
        }
        assert_eq!(
            decode_bytes(Version::V3_1_1, &suback_id_0).err(),
            Some(CodecError::Protocol)
        );
        // An MQTT 5 PUBLISH may leave the topic empty when it names an alias.
        let alias_only = [0x30, 6, 0, 0, 3, 0x23, 0, 1];
        assert!(decode_bytes(Version::V5, &alias_only).is_ok());
        assert!(decode_bytes(Version::V3_1_1, &[0x30, 3, 0, 1, b'a']).is_ok());
    }
}
