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

use bytes::Bytes;
use prost::Message;
use prost::encoding::encoded_len_varint;

use super::publish_fast_path::{self, PlainPublish};
use crate::line::grpc::WireMessage;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::mqtt::Version;

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

fn publish_len(f: &PlainPublish<'_>) -> usize {
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
        Some((_, fields)) => publish_envelope_len(&head_of(envelope), &fields),
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

/// The encoded length of an envelope with `head` holding the plain PUBLISH
/// `fields` (of either version: the packet's field number is one byte).
pub fn publish_envelope_len(head: &Head, fields: &PlainPublish<'_>) -> usize {
    let packet_len = len_field_len(publish_len(fields), true);
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

/// Protobuf bytes written into a slice as long as they were counted to be
/// beforehand: each byte is a store, not a call through `BufMut` (prost's
/// varints into a slice cost a call per byte: a third of what writing an
/// envelope cost).
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    // A write past the end is a miscount of ours, not anything a peer
    // sent: the slice's bounds check stops it.
    #[inline]
    fn byte(&mut self, byte: u8) {
        self.out[self.at] = byte;
        self.at += 1;
    }

    #[inline]
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    #[inline]
    fn key(&mut self, field: u64, wire_type: u8) {
        self.varint(field << 3 | u64::from(wire_type));
    }

    #[inline]
    fn varint_field(&mut self, field: u64, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    #[inline]
    fn len_field(&mut self, field: u64, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.key(field, LEN);
            self.varint(bytes.len() as u64);
            self.bytes(bytes);
        }
    }
}

/// Writes the envelope as prost would into `out`, which is [`encoded_len`]
/// bytes long.
pub fn write(envelope: &MqttStreamMessage, out: &mut [u8]) {
    match plain_publish(envelope) {
        Some((field, fields)) => put_publish_envelope(&head_of(envelope), field, &fields, out),
        None => envelope.encode_raw(&mut &mut out[..]),
    }
}

/// Writes, as prost would, the envelope with `head` holding the plain
/// PUBLISH `fields` of `version` into `out`, which is
/// [`publish_envelope_len`] bytes long.
pub fn write_publish_envelope(
    head: &Head,
    version: Version,
    fields: &PlainPublish<'_>,
    out: &mut [u8],
) {
    put_publish_envelope(head, packet_field(version), fields, out);
}

fn put_publish_envelope(head: &Head, packet_field: u64, f: &PlainPublish<'_>, out: &mut [u8]) {
    let publish_len = publish_len(f);
    let mut w = Writer { out, at: 0 };
    w.varint_field(SEQUENCE_ID, head.sequence_id);
    w.varint_field(DIRECTION, head.direction as i64 as u64);
    w.key(packet_field, LEN);
    w.varint(len_field_len(publish_len, true) as u64);
    w.key(PACKET_PUBLISH, LEN);
    w.varint(publish_len as u64);
    w.len_field(TOPIC, f.topic);
    w.varint_field(MESSAGE_ID, f.message_id.into());
    w.varint_field(QOS, f.qos as i64 as u64);
    w.varint_field(RETAIN, f.retain.into());
    w.varint_field(DUP, f.dup.into());
    w.len_field(PAYLOAD, f.payload);
    w.varint_field(ACKNOWLEDGED, head.acknowledged);
    debug_assert_eq!(w.at, w.out.len(), "the envelope's length was counted");
}

/// Reads an envelope; one holding a plain PUBLISH in the order prost
/// writes it is read here, anything else by prost.
pub fn decode(bytes: Bytes) -> Result<MqttStreamMessage, prost::DecodeError> {
    match read::read_publish(&bytes) {
        Some(publish) => Ok(publish.to_envelope()),
        None => MqttStreamMessage::decode(bytes),
    }
}

/// The gRPC layer frames and reads envelopes through the functions above.
impl WireMessage for MqttStreamMessage {
    fn wire_len(&self) -> usize {
        encoded_len(self)
    }

    fn wire_write(&self, out: &mut [u8]) {
        write(self, out);
    }

    fn wire_decode(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        decode(bytes)
    }
}
