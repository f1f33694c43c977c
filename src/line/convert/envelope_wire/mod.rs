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
    match plain_publish(envelope) {
        Some((field, fields)) => put_publish_envelope(&head_of(envelope), field, &fields, buf),
        None => envelope.encode_raw(buf),
    }
}

/// Writes, as prost would, the envelope with `head` holding the plain
/// PUBLISH `fields` of `version`: [`publish_envelope_len`] bytes.
pub fn encode_publish_envelope(
    head: &Head,
    version: Version,
    fields: &PlainPublish<'_>,
    buf: &mut impl BufMut,
) {
    put_publish_envelope(head, packet_field(version), fields, buf);
}

fn put_publish_envelope(
    head: &Head,
    packet_field: u64,
    f: &PlainPublish<'_>,
    buf: &mut impl BufMut,
) {
    let publish_len = publish_len(f);
    put_varint_field(buf, SEQUENCE_ID, head.sequence_id);
    put_varint_field(buf, DIRECTION, head.direction as i64 as u64);
    put_key(buf, packet_field, LEN);
    prost::encoding::encode_varint(len_field_len(publish_len, true) as u64, buf);
    put_key(buf, PACKET_PUBLISH, LEN);
    prost::encoding::encode_varint(publish_len as u64, buf);
    put_len_field(buf, TOPIC, f.topic);
    put_varint_field(buf, MESSAGE_ID, f.message_id.into());
    put_varint_field(buf, QOS, f.qos as i64 as u64);
    put_varint_field(buf, RETAIN, f.retain.into());
    put_varint_field(buf, DUP, f.dup.into());
    put_len_field(buf, PAYLOAD, f.payload);
    put_varint_field(buf, ACKNOWLEDGED, head.acknowledged);
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

    fn wire_encode(&self, buf: &mut impl BufMut) {
        encode_raw(self, buf);
    }

    fn wire_decode(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        decode(bytes)
    }
}
