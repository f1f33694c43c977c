//! The protobuf bytes of an envelope holding a plain PUBLISH, written and
//! read by hand.
//!
//! prost's generated code walks the four nested messages of such an
//! envelope (envelope, packet, PUBLISH, then its fields) through a generic
//! merge loop, and to encode computes the length of each nested message
//! again at every level above it. For the one shape nearly every envelope
//! has, that was a tenth of each proxy's instructions per message. Here it
//! is one pass each way: the PUBLISH message's length is counted once per
//! envelope sent (see `line::outgoing`), and reading compares each key with
//! the one byte prost writes for it. Anything else (another packet, MQTT 5
//! properties, and on reading any field out of order, repeated, unknown or
//! out of range, or a key written in more bytes than it needs) goes to
//! prost, so bytes and values are the same either way: the tests compare
//! both on arbitrary envelopes and arbitrary bytes.

use prost::Message;
use prost::encoding::encoded_len_varint;

use super::publish_fast_path::{self, PlainPublish};
use crate::line::grpc::WireMessage;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::mqtt::{SliceWriter, Version};

mod read;
#[cfg(test)]
mod tests;

pub use read::{PublishEnvelope, read_publish};

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

/// The plain PUBLISH `envelope` holds, with its packet's field number, or
/// `None` for any other envelope.
fn plain_publish(envelope: &MqttStreamMessage) -> Option<(u64, PlainPublish<'_>)> {
    let (version, publish) = publish_fast_path::plain_publish(envelope.payload.as_ref()?)?;
    Some((packet_field(version), publish))
}

/// The envelope's field that holds a packet of `version`.
fn packet_field(version: Version) -> u64 {
    match version {
        Version::V3_1_1 => V3_PACKET,
        Version::V5 => V5_PACKET,
    }
}

/// An envelope's own fields, apart from its packet.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// The sender's sequence number.
    pub sequence_id: u64,
    /// The direction, as the protobuf enum's value.
    pub direction: i32,
    /// The acknowledgement it carries (0: none).
    pub acknowledged: u64,
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

/// The encoded length of the PUBLISH message holding `f` (within its
/// packet message).
pub fn publish_len(f: &PlainPublish<'_>) -> usize {
    len_field_len(f.topic.len(), false)
        + varint_field_len(f.message_id.into())
        + varint_field_len(f.qos as i64 as u64)
        + varint_field_len(f.retain.into())
        + varint_field_len(f.dup.into())
        + len_field_len(f.payload.len(), false)
}

/// The envelope's encoded length without prefix, as prost counts it.
pub fn encoded_len(envelope: &MqttStreamMessage) -> usize {
    match plain_publish(envelope) {
        Some((_, fields)) => publish_envelope_len(&head_of(envelope), publish_len(&fields)),
        None => envelope.encoded_len(),
    }
}

fn head_of(envelope: &MqttStreamMessage) -> Head {
    Head {
        sequence_id: envelope.sequence_id,
        direction: envelope.direction,
        acknowledged: envelope.acknowledged,
    }
}

/// The encoded length of an envelope with `head` holding a plain PUBLISH
/// whose own message is `publish_len` bytes ([`publish_len`]; of either
/// version: the packet's field number is one byte).
pub fn publish_envelope_len(head: &Head, publish_len: usize) -> usize {
    let packet_len = len_field_len(publish_len, true);
    varint_field_len(head.sequence_id)
        + varint_field_len(head.direction as i64 as u64)
        + len_field_len(packet_len, true)
        // Field 100 has a two-byte key.
        + if head.acknowledged == 0 {
            0
        } else {
            2 + encoded_len_varint(head.acknowledged)
        }
}

/// A field's key as prost writes it: its number and wire type in one byte
/// (numbers up to 15).
const fn key(field: u64, wire_type: u8) -> u8 {
    (field << 3) as u8 | wire_type
}

/// The acknowledgement's key: field 100 takes two bytes.
const ACKNOWLEDGED_KEY: [u8; 2] = [
    (ACKNOWLEDGED << 3) as u8 & 0x7f | 0x80 | VARINT,
    (ACKNOWLEDGED << 3 >> 7) as u8,
];

#[inline]
fn put_varint_field(w: &mut SliceWriter<'_>, key: u8, value: u64) {
    if value != 0 {
        w.byte(key);
        w.varint(value);
    }
}

#[inline]
fn put_len_field(w: &mut SliceWriter<'_>, key: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        w.byte(key);
        w.varint(bytes.len() as u64);
        w.bytes(bytes);
    }
}

/// Writes the envelope as prost would into `out`, which is [`encoded_len`]
/// bytes long.
pub fn write(envelope: &MqttStreamMessage, out: &mut [u8]) {
    match plain_publish(envelope) {
        Some((field, fields)) => {
            let len = publish_len(&fields);
            put_publish_envelope(&head_of(envelope), field, &fields, len, out);
        }
        None => envelope.encode_raw(&mut &mut out[..]),
    }
}

/// Writes, as prost would, the envelope with `head` holding the plain
/// PUBLISH `fields` of `version`, whose own message is `publish_len`
/// bytes, into `out`, which is [`publish_envelope_len`] bytes long.
pub fn write_publish_envelope(
    head: &Head,
    version: Version,
    fields: &PlainPublish<'_>,
    publish_len: usize,
    out: &mut [u8],
) {
    put_publish_envelope(head, packet_field(version), fields, publish_len, out);
}

fn put_publish_envelope(
    head: &Head,
    packet_field: u64,
    f: &PlainPublish<'_>,
    publish_len: usize,
    out: &mut [u8],
) {
    let mut w = SliceWriter::new(out);
    put_varint_field(&mut w, key(SEQUENCE_ID, VARINT), head.sequence_id);
    put_varint_field(&mut w, key(DIRECTION, VARINT), head.direction as i64 as u64);
    w.byte(key(packet_field, LEN));
    w.varint(len_field_len(publish_len, true) as u64);
    w.byte(key(PACKET_PUBLISH, LEN));
    w.varint(publish_len as u64);
    put_len_field(&mut w, key(TOPIC, LEN), f.topic);
    put_varint_field(&mut w, key(MESSAGE_ID, VARINT), f.message_id.into());
    put_varint_field(&mut w, key(QOS, VARINT), f.qos as i64 as u64);
    put_varint_field(&mut w, key(RETAIN, VARINT), f.retain.into());
    put_varint_field(&mut w, key(DUP, VARINT), f.dup.into());
    put_len_field(&mut w, key(PAYLOAD, LEN), f.payload);
    if head.acknowledged != 0 {
        w.bytes(&ACKNOWLEDGED_KEY);
        w.varint(head.acknowledged);
    }
    debug_assert!(w.is_full(), "the envelope's length was counted");
}

/// The gRPC layer frames and reads envelopes through the functions above.
impl WireMessage for MqttStreamMessage {
    fn wire_len(&self) -> usize {
        encoded_len(self)
    }

    fn wire_write(&self, out: &mut [u8]) {
        write(self, out);
    }
}
