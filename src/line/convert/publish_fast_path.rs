//! PUBLISH in its common form, converted straight between MQTT bytes and
//! protobuf without the intermediate packet types of the general path.
//!
//! Nearly every packet a tunnel carries is a PUBLISH, so this is the hot
//! path of both proxies. It handles exactly the PUBLISHes whose conversion
//! is plain (MQTT 5: no properties) and that the general path accepts; for
//! anything else it answers `None` and the general path decides, so
//! behaviour and bytes are the same either way (see the tests, which
//! compare both paths).

use bytes::{Bytes, BytesMut};

use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::{mqttv3, mqttv5};
use crate::mqtt::{PUBLISH, PublishBytes, RawPacket, Version, has_wildcard, is_topic_name};

/// A plain PUBLISH as it was read from MQTT: checked as the general path
/// would accept it, and kept as the bytes it came in (its payload is not
/// copied). A session sends it as its envelope, written straight from these
/// bytes.
#[derive(Debug, Clone)]
pub struct ReadPublish {
    version: Version,
    qos: u8,
    retain: bool,
    dup: bool,
    message_id: u16,
    topic_len: u16,
    /// Where the payload begins in `body`.
    payload_at: usize,
    /// The packet's bytes after its fixed header.
    body: Bytes,
}

impl ReadPublish {
    /// The PUBLISH in `raw`, or `raw` back when the general path must
    /// decide (not a PUBLISH, MQTT 5 properties, anything unusual).
    pub fn read(version: Version, raw: RawPacket) -> Result<Self, RawPacket> {
        match Self::plain(version, &raw) {
            // Keeps the buffer the packet was read into: no copy.
            Some(read) => Ok(Self {
                body: raw.into_body(),
                ..read
            }),
            None => Err(raw),
        }
    }

    /// What `read` finds, with an empty body.
    fn plain(version: Version, raw: &RawPacket) -> Option<Self> {
        if raw.packet_type() != PUBLISH {
            return None;
        }
        let body = raw.body();
        let publish = PublishBytes::parse(version, raw.flags(), body)?;
        let (qos, message_id) = (publish.qos, publish.packet_id);
        // What the protocol forbids (a topic that is no topic name, an
        // empty one, packet id 0) is the general path's to refuse.
        if !is_topic_name(publish.topic) || publish.topic.is_empty() || (qos > 0 && message_id == 0)
        {
            return None;
        }
        // MQTT 5: only an empty property list is plain.
        if !publish.properties.is_empty() {
            return None;
        }
        Some(Self {
            version,
            qos,
            retain: publish.retain,
            dup: publish.dup,
            message_id,
            // The topic is at most 65,535 bytes: its length is two bytes.
            topic_len: publish.topic.len() as u16,
            payload_at: body.len() - publish.payload.len(),
            body: Bytes::new(),
        })
    }

    /// The MQTT version it was read as.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Its fields, borrowed.
    pub fn fields(&self) -> PlainPublish<'_> {
        // A PUBLISH body begins with the topic's two-byte length and the
        // topic, which `read` found whole.
        PlainPublish {
            topic: &self.body[2..2 + usize::from(self.topic_len)],
            message_id: self.message_id.into(),
            qos: self.qos.into(),
            retain: self.retain,
            dup: self.dup,
            payload: &self.body[self.payload_at..],
        }
    }

    /// The protobuf payload holding it.
    pub fn to_payload(&self) -> Payload {
        let fields = self.fields();
        plain_payload(
            self.version,
            OwnedPublish {
                // Checked to be UTF-8 when read: nothing is replaced.
                topic: String::from_utf8_lossy(fields.topic).into_owned(),
                message_id: fields.message_id,
                qos: fields.qos,
                retain: fields.retain,
                dup: fields.dup,
                payload: self.body.slice(self.payload_at..),
            },
        )
    }
}

/// A plain PUBLISH's fields, owned.
pub(super) struct OwnedPublish {
    pub topic: String,
    pub message_id: u32,
    pub qos: i32,
    pub retain: bool,
    pub dup: bool,
    pub payload: Bytes,
}

/// `publish` as the protobuf payload of `version` (MQTT 5: no properties).
pub(super) fn plain_payload(version: Version, publish: OwnedPublish) -> Payload {
    let OwnedPublish {
        topic,
        message_id,
        qos,
        retain,
        dup,
        payload,
    } = publish;
    match version {
        Version::V3_1_1 => Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(mqttv3::mqtt_packet::Packet::Publish(mqttv3::Publish {
                topic,
                message_id,
                qos,
                retain,
                dup,
                payload,
            })),
        }),
        Version::V5 => Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(mqttv5::Publish {
                topic,
                message_id,
                qos,
                retain,
                dup,
                payload,
                properties: Vec::new(),
            })),
        }),
    }
}

/// The fields of a plain PUBLISH (MQTT 5: without properties), as both
/// versions' protobuf messages hold them, borrowed from one of them or from
/// the MQTT bytes.
pub struct PlainPublish<'a> {
    /// The topic name, valid UTF-8.
    pub topic: &'a [u8],
    pub message_id: u32,
    pub qos: i32,
    pub retain: bool,
    pub dup: bool,
    pub payload: &'a [u8],
}

/// The plain PUBLISH in `payload` and its MQTT version, or `None` for any
/// other packet and for an MQTT 5 PUBLISH with properties.
pub(super) fn plain_publish(payload: &Payload) -> Option<(Version, PlainPublish<'_>)> {
    match payload {
        Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(mqttv3::mqtt_packet::Packet::Publish(p)),
        }) => Some((
            Version::V3_1_1,
            PlainPublish {
                topic: p.topic.as_bytes(),
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
            Version::V5,
            PlainPublish {
                topic: p.topic.as_bytes(),
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

/// Appends the MQTT bytes of the PUBLISH in `payload` to `out` and returns
/// their length, or `None` (nothing written) when the general path must
/// decide: another packet, the other MQTT version, MQTT 5 properties, or
/// fields the general path would refuse or treat specially.
pub fn encode_publish(payload: &Payload, version: Version, out: &mut BytesMut) -> Option<usize> {
    let (plain_version, plain) = plain_publish(payload)?;
    // prost read the topic as text; wildcards are the general path's.
    if has_wildcard(plain.topic) {
        return None;
    }
    encode_named_publish(plain_version, &plain, version, out)
}

/// As [`encode_publish`], for the fields of a plain PUBLISH of
/// `plain_version` wherever they are, whose topic is known to be a topic
/// name as far as its bytes go ([`is_topic_name`]): the envelopes
/// [`read_publish`](super::envelope_wire::read_publish) reads.
pub(super) fn encode_named_publish(
    plain_version: Version,
    plain: &PlainPublish<'_>,
    version: Version,
    out: &mut BytesMut,
) -> Option<usize> {
    if plain_version != version {
        return None;
    }
    let qos = u8::try_from(plain.qos).ok().filter(|q| *q <= 2)?;
    let topic_len = u16::try_from(plain.topic.len()).ok()?;
    if topic_len == 0
        || (qos == 0 && plain.dup)
        || (qos > 0 && !(1..=u32::from(u16::MAX)).contains(&plain.message_id))
    {
        return None;
    }
    PublishBytes {
        qos,
        retain: plain.retain,
        dup: plain.dup,
        topic: plain.topic,
        // Checked above: 1..=65535 when there is one.
        packet_id: plain.message_id as u16,
        properties: &[],
        payload: plain.payload,
    }
    .put(version, out)
}
