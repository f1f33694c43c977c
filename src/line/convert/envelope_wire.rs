//! The protobuf bytes of an envelope holding a plain PUBLISH, written and
//! read by hand.
//!
//! prost's generated code walks the four nested messages of such an
//! envelope (envelope, packet, PUBLISH, then its fields) through a generic
//! merge loop, and to encode computes the length of each nested message
//! again at every level above it. For the one shape nearly every envelope
//! has, that was a tenth of each proxy's instructions per message. Here it
//! is one pass each way. Anything else (another packet, MQTT 5 properties,
//! and on reading any field out of order, repeated, unknown or out of
//! range) goes to prost, so bytes and values are the same either way: the
//! tests compare both on arbitrary envelopes and arbitrary bytes.

use bytes::{BufMut, Bytes};
use prost::Message;
use prost::encoding::encoded_len_varint;

use crate::line::grpc::WireMessage;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::{mqttv3, mqttv5};

/// Wire types of the protobuf encoding.
const VARINT: u8 = 0;
const LEN: u8 = 2;

/// Field numbers: the envelope's, then the packet's and the PUBLISH's.
const SEQUENCE_ID: u64 = 2;
const DIRECTION: u64 = 3;
const V3_PACKET: u64 = 4;
const V5_PACKET: u64 = 5;
const ACKNOWLEDGED: u64 = 100;
const PACKET_PUBLISH: u64 = 3;
const TOPIC: u64 = 1;
const MESSAGE_ID: u64 = 2;
const QOS: u64 = 3;
const RETAIN: u64 = 4;
const DUP: u64 = 5;
const PAYLOAD: u64 = 6;

/// The fields of a PUBLISH as both versions' messages hold them.
struct Fields<'a> {
    topic: &'a str,
    message_id: u32,
    qos: i32,
    retain: bool,
    dup: bool,
    payload: &'a [u8],
}

/// The plain PUBLISH `envelope` holds, with its packet's field number, or
/// `None` for any other envelope.
fn plain_publish(envelope: &MqttStreamMessage) -> Option<(u64, Fields<'_>)> {
    match envelope.payload.as_ref()? {
        Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(mqttv3::mqtt_packet::Packet::Publish(p)),
        }) => Some((
            V3_PACKET,
            Fields {
                topic: &p.topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload: &p.payload,
            },
        )),
        Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(p)),
        }) if p.properties.is_empty() => Some((
            V5_PACKET,
            Fields {
                topic: &p.topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload: &p.payload,
            },
        )),
        _ => None,
    }
}

/// How long a field `value` (a varint, as protobuf writes an `int32`:
/// a negative one takes ten bytes) is with its one-byte key, or 0 when it
/// is the default and left out.
fn varint_field_len(value: u64) -> usize {
    if value == 0 {
        0
    } else {
        1 + encoded_len_varint(value)
    }
}

/// How long a length-delimited field of `len` bytes is with its one-byte
/// key; `always` for a message field, which is written even when empty.
fn len_field_len(len: usize, always: bool) -> usize {
    if len == 0 && !always {
        0
    } else {
        1 + encoded_len_varint(len as u64) + len
    }
}

fn publish_len(f: &Fields<'_>) -> usize {
    len_field_len(f.topic.len(), false)
        + varint_field_len(f.message_id.into())
        + varint_field_len(f.qos as i64 as u64)
        + varint_field_len(f.retain.into())
        + varint_field_len(f.dup.into())
        + len_field_len(f.payload.len(), false)
}

/// The envelope's encoded length without prefix, as prost counts it.
pub fn encoded_len(envelope: &MqttStreamMessage) -> usize {
    let Some((_, fields)) = plain_publish(envelope) else {
        return envelope.encoded_len();
    };
    let packet_len = len_field_len(publish_len(&fields), true);
    varint_field_len(envelope.sequence_id)
        + varint_field_len(envelope.direction as i64 as u64)
        + len_field_len(packet_len, true)
        // Field 100 has a two-byte key.
        + if envelope.acknowledged == 0 {
            0
        } else {
            2 + encoded_len_varint(envelope.acknowledged)
        }
}

fn put_key(buf: &mut impl BufMut, field: u64, wire_type: u8) {
    prost::encoding::encode_varint(field << 3 | u64::from(wire_type), buf);
}

fn put_varint_field(buf: &mut impl BufMut, field: u64, value: u64) {
    if value != 0 {
        put_key(buf, field, VARINT);
        prost::encoding::encode_varint(value, buf);
    }
}

fn put_len_field(buf: &mut impl BufMut, field: u64, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_key(buf, field, LEN);
        prost::encoding::encode_varint(bytes.len() as u64, buf);
        buf.put_slice(bytes);
    }
}

/// Writes the envelope as prost would, [`encoded_len`] bytes of it.
pub fn encode_raw(envelope: &MqttStreamMessage, buf: &mut impl BufMut) {
    let Some((packet_field, f)) = plain_publish(envelope) else {
        envelope.encode_raw(buf);
        return;
    };
    let publish_len = publish_len(&f);
    put_varint_field(buf, SEQUENCE_ID, envelope.sequence_id);
    put_varint_field(buf, DIRECTION, envelope.direction as i64 as u64);
    put_key(buf, packet_field, LEN);
    prost::encoding::encode_varint(len_field_len(publish_len, true) as u64, buf);
    put_key(buf, PACKET_PUBLISH, LEN);
    prost::encoding::encode_varint(publish_len as u64, buf);
    put_len_field(buf, TOPIC, f.topic.as_bytes());
    put_varint_field(buf, MESSAGE_ID, f.message_id.into());
    put_varint_field(buf, QOS, f.qos as i64 as u64);
    put_varint_field(buf, RETAIN, f.retain.into());
    put_varint_field(buf, DUP, f.dup.into());
    put_len_field(buf, PAYLOAD, f.payload);
    put_varint_field(buf, ACKNOWLEDGED, envelope.acknowledged);
}

/// Reads an envelope; one holding a plain PUBLISH in the order prost
/// writes it is read here, anything else by prost.
pub fn decode(bytes: Bytes) -> Result<MqttStreamMessage, prost::DecodeError> {
    match decode_plain(&bytes) {
        Some(envelope) => Ok(envelope),
        None => MqttStreamMessage::decode(bytes),
    }
}

/// The gRPC layer frames and reads envelopes through the functions above.
impl WireMessage for MqttStreamMessage {
    fn wire_len(&self) -> usize {
        encoded_len(self)
    }

    fn wire_encode(&self, buf: &mut impl BufMut) {
        encode_raw(self, buf);
    }

    fn wire_decode(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        decode(bytes)
    }
}

/// Reads the protobuf fields of one message: `bytes[at..]`, where `bytes`
/// ends with the message and `at` counts from the envelope's start.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// A varint of at most ten bytes within the message; most are one.
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let first = *self.bytes.get(self.at)?;
        if first < 0x80 {
            self.at += 1;
            return Some(first.into());
        }
        self.long_varint()
    }

    fn long_varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // A tenth byte may carry one bit only.
                return (i < 9 || byte <= 1).then_some(value);
            }
        }
        None
    }

    /// The next field's number and wire type.
    #[inline]
    fn key(&mut self) -> Option<(u64, u8)> {
        let key = self.varint()?;
        Some((key >> 3, (key & 7) as u8))
    }

    /// The extent of a length-delimited field's bytes.
    fn len_delimited(&mut self) -> Option<(usize, usize)> {
        let len = usize::try_from(self.varint()?).ok()?;
        let start = self.at;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())?;
        self.at = end;
        Some((start, end))
    }

    /// A length-delimited field's reader.
    fn inner(&mut self) -> Option<Reader<'_>> {
        let (at, end) = self.len_delimited()?;
        Some(Reader {
            bytes: &self.bytes[..end],
            at,
        })
    }
}

/// Fields of one message in strictly rising order, each once: the next
/// field as long as its number is above `after`.
fn next_field(reader: &mut Reader<'_>, after: &mut u64) -> Option<Option<(u64, u8)>> {
    if reader.is_done() {
        return Some(None);
    }
    let (field, wire_type) = reader.key()?;
    if field <= *after {
        return None;
    }
    *after = field;
    Some(Some((field, wire_type)))
}

/// The envelope, when it is a plain PUBLISH written in prost's order with
/// every value in range; `None` leaves it to prost.
fn decode_plain(bytes: &Bytes) -> Option<MqttStreamMessage> {
    let mut envelope = Reader { bytes, at: 0 };
    let mut message = MqttStreamMessage::default();
    let mut publish = None;
    let mut after = 0;
    while let Some((field, wire_type)) = next_field(&mut envelope, &mut after)? {
        match (field, wire_type) {
            (SEQUENCE_ID, VARINT) => message.sequence_id = envelope.varint()?,
            (DIRECTION, VARINT) => {
                message.direction = i32::try_from(envelope.varint()?).ok()?;
            }
            (V3_PACKET | V5_PACKET, LEN) if publish.is_none() => {
                let mut packet = envelope.inner()?;
                let mut after = 0;
                let Some((PACKET_PUBLISH, LEN)) = next_field(&mut packet, &mut after)? else {
                    return None;
                };
                let fields = decode_publish(packet.inner()?)?;
                if !packet.is_done() {
                    return None;
                }
                publish = Some((field, fields));
            }
            (ACKNOWLEDGED, VARINT) => message.acknowledged = envelope.varint()?,
            _ => return None,
        }
    }
    let (packet_field, p) = publish?;
    let topic = std::str::from_utf8(&bytes[p.topic.0..p.topic.1])
        .ok()?
        .to_owned();
    let payload = bytes.slice(p.payload.0..p.payload.1);
    message.payload = Some(if packet_field == V3_PACKET {
        Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(mqttv3::mqtt_packet::Packet::Publish(mqttv3::Publish {
                topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload,
            })),
        })
    } else {
        Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(mqttv5::Publish {
                topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload,
                properties: Vec::new(),
            })),
        })
    });
    Some(message)
}

/// A PUBLISH's fields, its topic and payload as extents of the envelope.
#[derive(Default)]
struct Extents {
    topic: (usize, usize),
    message_id: u32,
    qos: i32,
    retain: bool,
    dup: bool,
    payload: (usize, usize),
}

fn decode_publish(mut reader: Reader<'_>) -> Option<Extents> {
    let mut p = Extents::default();
    let mut after = 0;
    while let Some((field, wire_type)) = next_field(&mut reader, &mut after)? {
        match (field, wire_type) {
            (TOPIC, LEN) => p.topic = reader.len_delimited()?,
            (MESSAGE_ID, VARINT) => p.message_id = u32::try_from(reader.varint()?).ok()?,
            (QOS, VARINT) => p.qos = i32::try_from(reader.varint()?).ok()?,
            (RETAIN, VARINT) => p.retain = flag(reader.varint()?)?,
            (DUP, VARINT) => p.dup = flag(reader.varint()?)?,
            (PAYLOAD, LEN) => p.payload = reader.len_delimited()?,
            _ => return None,
        }
    }
    Some(p)
}

fn flag(value: u64) -> Option<bool> {
    match value {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::line::proto::mqtt::SessionControl;

    fn publish_envelope(
        v5: bool,
        (sequence_id, direction, acknowledged): (u64, i32, u64),
        (topic, message_id, qos, retain, dup): (String, u32, i32, bool, bool),
        payload: Vec<u8>,
    ) -> MqttStreamMessage {
        let payload = Bytes::from(payload);
        MqttStreamMessage {
            sequence_id,
            direction,
            acknowledged,
            payload: Some(if v5 {
                Payload::MqttV5Packet(mqttv5::MqttPacket {
                    packet: Some(mqttv5::mqtt_packet::Packet::Publish(mqttv5::Publish {
                        topic,
                        message_id,
                        qos,
                        retain,
                        dup,
                        payload,
                        properties: Vec::new(),
                    })),
                })
            } else {
                Payload::MqttV3Packet(mqttv3::MqttPacket {
                    packet: Some(mqttv3::mqtt_packet::Packet::Publish(mqttv3::Publish {
                        topic,
                        message_id,
                        qos,
                        retain,
                        dup,
                        payload,
                    })),
                })
            }),
        }
    }

    fn by_hand(envelope: &MqttStreamMessage) -> Vec<u8> {
        let mut out = Vec::new();
        encode_raw(envelope, &mut out);
        assert_eq!(out.len(), encoded_len(envelope), "the length told");
        out
    }

    fn envelopes() -> impl Strategy<Value = MqttStreamMessage> {
        (
            any::<bool>(),
            (
                prop_oneof![Just(0u64), any::<u64>()],
                prop_oneof![Just(0i32), Just(1), any::<i32>()],
                prop_oneof![Just(0u64), 1u64..300, any::<u64>()],
            ),
            (
                ".{0,40}",
                prop_oneof![Just(0u32), 1u32..=65535, any::<u32>()],
                prop_oneof![0i32..=2, any::<i32>()],
                any::<bool>(),
                any::<bool>(),
            ),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(v5, head, fields, payload)| publish_envelope(v5, head, fields, payload))
    }

    proptest! {
        #[test]
        fn writes_what_prost_writes(envelope in envelopes()) {
            prop_assert_eq!(by_hand(&envelope), envelope.encode_to_vec());
        }

        #[test]
        fn reads_what_prost_reads(envelope in envelopes()) {
            let bytes = Bytes::from(envelope.encode_to_vec());
            // A negative enum value (ten bytes on the wire) is prost's to read.
            let negative = plain_publish(&envelope)
                .is_some_and(|(_, f)| f.qos < 0 || envelope.direction < 0);
            prop_assert_eq!(decode_plain(&bytes).is_some(), !negative, "read here, not by prost");
            prop_assert_eq!(decode(bytes).ok(), Some(envelope));
        }

        #[test]
        fn any_bytes_read_as_prost_reads_them(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let bytes = Bytes::from(bytes);
            prop_assert_eq!(decode(bytes.clone()).ok(), MqttStreamMessage::decode(bytes).ok());
        }

        #[test]
        fn changed_bytes_read_as_prost_reads_them(
            envelope in envelopes(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = envelope.encode_to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let changed = Bytes::from(bytes.clone());
            prop_assert_eq!(decode(changed.clone()).ok(), MqttStreamMessage::decode(changed).ok());
            bytes.truncate(cut.index(bytes.len() + 1));
            let cut = Bytes::from(bytes);
            prop_assert_eq!(decode(cut.clone()).ok(), MqttStreamMessage::decode(cut).ok());
        }
    }

    #[test]
    fn other_envelopes_go_to_prost_both_ways() {
        let control = MqttStreamMessage {
            sequence_id: 1,
            direction: 0,
            acknowledged: 7,
            payload: Some(Payload::SessionControl(SessionControl::default())),
        };
        let mut with_property = publish_envelope(
            true,
            (5, 1, 0),
            ("a/b".into(), 0, 0, false, false),
            b"x".to_vec(),
        );
        if let Some(Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(p)),
        })) = &mut with_property.payload
        {
            p.properties.push(mqttv5::Property {
                property_type: Some(mqttv5::property::PropertyType::MessageExpiryInterval(9)),
            });
        }
        for envelope in [control, with_property, MqttStreamMessage::default()] {
            let bytes = envelope.encode_to_vec();
            assert_eq!(by_hand(&envelope), bytes);
            let bytes = Bytes::from(bytes);
            assert!(decode_plain(&bytes).is_none());
            assert_eq!(decode(bytes).ok(), Some(envelope));
        }
    }

    #[test]
    fn a_field_twice_or_out_of_order_goes_to_prost() {
        let envelope = publish_envelope(
            false,
            (3, 0, 0),
            ("t".into(), 0, 0, false, false),
            b"p".to_vec(),
        );
        let bytes = envelope.encode_to_vec();
        // The sequence number again after the packet: prost takes the last.
        let mut twice = bytes.clone();
        twice.extend_from_slice(&[0x10, 0x09]);
        let twice = Bytes::from(twice);
        assert!(decode_plain(&twice).is_none());
        assert_eq!(decode(twice).map(|m| m.sequence_id).ok(), Some(9));
        // The sequence number after the packet instead of before it.
        let mut reordered = bytes[2..].to_vec();
        reordered.extend_from_slice(&bytes[..2]);
        let reordered = Bytes::from(reordered);
        assert!(decode_plain(&reordered).is_none());
        assert_eq!(decode(reordered).ok(), Some(envelope));
    }

    #[test]
    fn the_payload_is_shared_with_the_bytes_read() {
        let envelope = publish_envelope(
            true,
            (1, 0, 0),
            ("t".into(), 0, 0, false, false),
            vec![7; 100],
        );
        let bytes = Bytes::from(envelope.encode_to_vec());
        let read = decode(bytes.clone()).expect("valid");
        let Some(Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(p)),
        })) = read.payload
        else {
            panic!("a PUBLISH envelope");
        };
        let within = bytes.as_ptr_range();
        assert!(within.contains(&p.payload.as_ptr()), "not a copy");
    }
}
