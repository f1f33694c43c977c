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
use crate::mqtt::{PUBLISH, PublishBytes, RawPacket, Version, check_publish};

/// The PUBLISH in `raw` as a protobuf payload, or `None` when the general
/// path must decide (not a PUBLISH, MQTT 5 properties, anything unusual).
pub fn publish_to_payload(version: Version, raw: &RawPacket) -> Option<Payload> {
    if raw.packet_type() != PUBLISH {
        return None;
    }
    let body = raw.body();
    let publish = PublishBytes::parse(version, raw.flags(), body)?;
    let topic = std::str::from_utf8(publish.topic).ok()?;
    let (qos, message_id) = (publish.qos, publish.packet_id);
    // What the protocol forbids is the general path's to refuse.
    if check_publish(topic, false, (qos > 0).then_some(message_id)).is_err() {
        return None;
    }
    // MQTT 5: only an empty property list is plain.
    if !publish.properties.is_empty() {
        return None;
    }
    let at = body.len() - publish.payload.len();
    // The payload shares the buffer the packet was read into: no copy.
    let payload = body.slice(at..);
    Some(plain_payload(
        version,
        OwnedPublish {
            topic: topic.to_owned(),
            message_id: message_id.into(),
            qos: qos.into(),
            retain: publish.retain,
            dup: publish.dup,
            payload,
        },
    ))
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

/// The fields of a plain protobuf PUBLISH (MQTT 5: without properties),
/// as both versions' messages hold them.
pub(super) struct PlainPublish<'a> {
    pub topic: &'a str,
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
            Version::V5,
            PlainPublish {
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

/// Appends the MQTT bytes of the PUBLISH in `payload` to `out` and returns
/// their length, or `None` (nothing written) when the general path must
/// decide: another packet, the other MQTT version, MQTT 5 properties, or
/// fields the general path would refuse or treat specially.
pub fn encode_publish(payload: &Payload, version: Version, out: &mut BytesMut) -> Option<usize> {
    let (plain_version, plain) = plain_publish(payload)?;
    if plain_version != version {
        return None;
    }
    let qos = u8::try_from(plain.qos).ok().filter(|q| *q <= 2)?;
    let topic_len = u16::try_from(plain.topic.len()).ok()?;
    if topic_len == 0
        || plain.topic.contains(['+', '#'])
        || (qos == 0 && plain.dup)
        || (qos > 0 && !(1..=u32::from(u16::MAX)).contains(&plain.message_id))
    {
        return None;
    }
    PublishBytes {
        qos,
        retain: plain.retain,
        dup: plain.dup,
        topic: plain.topic.as_bytes(),
        // Checked above: 1..=65535 when there is one.
        packet_id: plain.message_id as u16,
        properties: &[],
        payload: plain.payload,
    }
    .put(version, out)
}
