//! Reading an envelope that holds a plain PUBLISH, written in the order
//! prost writes it; `None` for anything else, which prost then reads.

use bytes::Bytes;

use super::{
    ACKNOWLEDGED, DIRECTION, DUP, Head, LEN, MESSAGE_ID, PACKET_PUBLISH, PAYLOAD, QOS, RETAIN,
    SEQUENCE_ID, TOPIC, V3_PACKET, V5_PACKET, VARINT,
};
use crate::line::convert::publish_fast_path::{OwnedPublish, PlainPublish, plain_payload};
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::mqtt::{Version, is_utf8};

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

/// An envelope holding a plain PUBLISH, as it was received: its own
/// fields, and the PUBLISH's, whose topic (checked to be UTF-8) and payload
/// stay in the bytes they came in.
#[derive(Debug, Clone)]
pub struct PublishEnvelope {
    head: Head,
    version: Version,
    publish: Extents,
    bytes: Bytes,
}

impl PublishEnvelope {
    /// The envelope's own fields.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The envelope's length as it was received.
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// The MQTT version of its packet (which field holds it).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The PUBLISH's fields, borrowed.
    pub fn fields(&self) -> PlainPublish<'_> {
        let p = &self.publish;
        // Both extents were found within `bytes` when it was read.
        PlainPublish {
            topic: &self.bytes[p.topic.0..p.topic.1],
            message_id: p.message_id,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            payload: &self.bytes[p.payload.0..p.payload.1],
        }
    }

    /// The envelope as prost reads it.
    pub fn to_envelope(&self) -> MqttStreamMessage {
        let p = &self.publish;
        MqttStreamMessage {
            sequence_id: self.head.sequence_id,
            direction: self.head.direction,
            acknowledged: self.head.acknowledged,
            payload: Some(plain_payload(
                self.version,
                OwnedPublish {
                    // Checked to be UTF-8 when read: nothing is replaced.
                    topic: String::from_utf8_lossy(&self.bytes[p.topic.0..p.topic.1]).into_owned(),
                    message_id: p.message_id,
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                    payload: self.bytes.slice(p.payload.0..p.payload.1),
                },
            )),
        }
    }
}

/// The envelope, when it is a plain PUBLISH written in prost's order with
/// every value in range; otherwise the bytes come back, for prost. Taken by
/// value: the envelope keeps them without another count on the buffer.
pub fn read_publish(bytes: Bytes) -> Result<PublishEnvelope, Bytes> {
    match extents(&bytes) {
        Some((head, version, publish)) => Ok(PublishEnvelope {
            head,
            version,
            publish,
            bytes,
        }),
        None => Err(bytes),
    }
}

/// The head, version and PUBLISH extents of a plain PUBLISH envelope.
fn extents(bytes: &[u8]) -> Option<(Head, Version, Extents)> {
    let mut envelope = Reader { bytes, at: 0 };
    let mut head = Head {
        sequence_id: 0,
        direction: 0,
        acknowledged: 0,
    };
    let mut publish = None;
    let mut after = 0;
    while let Some((field, wire_type)) = next_field(&mut envelope, &mut after)? {
        match (field, wire_type) {
            (SEQUENCE_ID, VARINT) => head.sequence_id = envelope.varint()?,
            (DIRECTION, VARINT) => {
                head.direction = i32::try_from(envelope.varint()?).ok()?;
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
            (ACKNOWLEDGED, VARINT) => head.acknowledged = envelope.varint()?,
            _ => return None,
        }
    }
    let (packet_field, publish) = publish?;
    if !is_utf8(&bytes[publish.topic.0..publish.topic.1]) {
        return None;
    }
    let version = if packet_field == V3_PACKET {
        Version::V3_1_1
    } else {
        Version::V5
    };
    Some((head, version, publish))
}

/// A PUBLISH's fields, its topic and payload as extents of the envelope.
#[derive(Debug, Clone, Default)]
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
