//! Reading an envelope that holds a plain PUBLISH, written in the order
//! prost writes it; `None` for anything else, which prost then reads.

use bytes::{Bytes, BytesMut};

use super::{
    ACKNOWLEDGED_KEY, DIRECTION, DUP, Head, LEN, MESSAGE_ID, PACKET_PUBLISH, PAYLOAD, QOS, RETAIN,
    SEQUENCE_ID, TOPIC, V3_PACKET, V5_PACKET, VARINT, key,
};
use crate::line::convert::publish_fast_path::{
    OwnedPublish, PlainPublish, encode_named_publish, plain_payload,
};
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::mqtt::{Version, is_topic_name};

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

    /// A varint of at most ten bytes within the message; most are one or
    /// two (a sequence number under 16,384).
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let first = *self.bytes.get(self.at)?;
        if first < 0x80 {
            self.at += 1;
            return Some(first.into());
        }
        if let Some(&second) = self.bytes.get(self.at + 1)
            && second < 0x80
        {
            self.at += 2;
            return Some(u64::from(first & 0x7f) | u64::from(second) << 7);
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

    /// Whether the next byte is `key` (a field's one-byte key as prost
    /// writes it), taking it if so.
    #[inline]
    fn takes(&mut self, key: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&key);
        self.at += usize::from(found);
        found
    }

    /// The varint field with one-byte key `key` when it comes next, else 0
    /// (left out, as prost leaves out a default).
    #[inline]
    fn optional_varint(&mut self, key: u8) -> Option<u64> {
        if self.takes(key) {
            self.varint()
        } else {
            Some(0)
        }
    }

    /// The length-delimited field with one-byte key `key` when it comes
    /// next, else an empty extent at the reader's position.
    #[inline]
    fn optional_len(&mut self, key: u8) -> Option<(usize, usize)> {
        if self.takes(key) {
            self.len_delimited()
        } else {
            Some((self.at, self.at))
        }
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

/// An envelope holding a plain PUBLISH, where it was received: its own
/// fields, and the PUBLISH's, whose topic (checked to be UTF-8) and payload
/// stay in the bytes they came in.
#[derive(Debug, Clone)]
pub struct PublishEnvelope<'a> {
    head: Head,
    version: Version,
    publish: Extents,
    bytes: &'a [u8],
}

impl PublishEnvelope<'_> {
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

    /// Appends its PUBLISH to `out` as MQTT `version` writes it and returns
    /// the packet's length, or `None` (nothing written) when the general
    /// path must decide (see [`encode_named_publish`]).
    pub fn put_mqtt(&self, version: Version, out: &mut BytesMut) -> Option<usize> {
        // Its topic was found to be a topic name when it was read.
        encode_named_publish(self.version, &self.fields(), version, out)
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
                    payload: Bytes::copy_from_slice(&self.bytes[p.payload.0..p.payload.1]),
                },
            )),
        }
    }
}

/// The envelope, when it is a plain PUBLISH written in prost's order with
/// every value in range; otherwise `None`, for prost.
pub fn read_publish(bytes: &[u8]) -> Option<PublishEnvelope<'_>> {
    let (head, version, publish) = extents(bytes)?;
    Some(PublishEnvelope {
        head,
        version,
        publish,
        bytes,
    })
}

/// The head, version and PUBLISH extents of a plain PUBLISH envelope: its
/// fields in prost's order, each at most once, a default one left out, and
/// nothing else. Read field by field in that order (one comparison of a key
/// byte each); anything else, including keys written longer than they need
/// and fields prost would merge, is prost's to read.
fn extents(bytes: &[u8]) -> Option<(Head, Version, Extents)> {
    let mut envelope = Reader { bytes, at: 0 };
    let sequence_id = envelope.optional_varint(key(SEQUENCE_ID, VARINT))?;
    let direction = i32::try_from(envelope.optional_varint(key(DIRECTION, VARINT))?).ok()?;
    let version = if envelope.takes(key(V3_PACKET, LEN)) {
        Version::V3_1_1
    } else if envelope.takes(key(V5_PACKET, LEN)) {
        Version::V5
    } else {
        return None;
    };
    let mut packet = envelope.inner()?;
    if !packet.takes(key(PACKET_PUBLISH, LEN)) {
        return None;
    }
    let publish = decode_publish(packet.inner()?)?;
    if !packet.is_done() {
        return None;
    }
    let acknowledged =
        if envelope.bytes.get(envelope.at..envelope.at + 2) == Some(&ACKNOWLEDGED_KEY[..]) {
            envelope.at += 2;
            envelope.varint()?
        } else {
            0
        };
    if !envelope.is_done() || !is_topic_name(&bytes[publish.topic.0..publish.topic.1]) {
        return None;
    }
    let head = Head {
        sequence_id,
        direction,
        acknowledged,
    };
    Some((head, version, publish))
}

/// A PUBLISH's fields, its topic and payload as extents of the envelope.
#[derive(Debug, Clone)]
struct Extents {
    topic: (usize, usize),
    message_id: u32,
    qos: i32,
    retain: bool,
    dup: bool,
    payload: (usize, usize),
}

fn decode_publish(mut reader: Reader<'_>) -> Option<Extents> {
    let p = Extents {
        topic: reader.optional_len(key(TOPIC, LEN))?,
        message_id: u32::try_from(reader.optional_varint(key(MESSAGE_ID, VARINT))?).ok()?,
        qos: i32::try_from(reader.optional_varint(key(QOS, VARINT))?).ok()?,
        retain: flag(reader.optional_varint(key(RETAIN, VARINT))?)?,
        dup: flag(reader.optional_varint(key(DUP, VARINT))?)?,
        payload: reader.optional_len(key(PAYLOAD, LEN))?,
    };
    reader.is_done().then_some(p)
}

fn flag(value: u64) -> Option<bool> {
    match value {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}
