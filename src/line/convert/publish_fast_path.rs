//! PUBLISH in its common form, converted straight between MQTT bytes and
//! protobuf without the intermediate packet types of the general path.
//!
//! Nearly every packet a tunnel carries is a PUBLISH, so this is the hot
//! path of both proxies. It handles exactly the PUBLISHes whose conversion
//! is plain (MQTT 5: no properties) and that the general path accepts; for
//! anything else it answers `None` and the general path decides, so
//! behaviour and bytes are the same either way (see the tests, which
//! compare both paths).

use bytes::BytesMut;

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
    let topic = topic.to_owned();
    let (retain, dup) = (publish.retain, publish.dup);
    Some(match version {
        Version::V3_1_1 => Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(mqttv3::mqtt_packet::Packet::Publish(mqttv3::Publish {
                topic,
                message_id: message_id.into(),
                qos: qos.into(),
                retain,
                dup,
                payload,
            })),
        }),
        Version::V5 => Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Publish(mqttv5::Publish {
                topic,
                message_id: message_id.into(),
                qos: qos.into(),
                retain,
                dup,
                payload,
                properties: Vec::new(),
            })),
        }),
    })
}

/// The fields of a protobuf PUBLISH the fast path writes.
struct Plain<'a> {
    topic: &'a str,
    message_id: u32,
    qos: i32,
    retain: bool,
    dup: bool,
    payload: &'a [u8],
}

/// Appends the MQTT bytes of the PUBLISH in `payload` to `out` and returns
/// their length, or `None` (nothing written) when the general path must
/// decide: another packet, the other MQTT version, MQTT 5 properties, or
/// fields the general path would refuse or treat specially.
pub fn encode_publish(payload: &Payload, version: Version, out: &mut BytesMut) -> Option<usize> {
    let plain = match (payload, version) {
        (Payload::MqttV3Packet(p), Version::V3_1_1) => match &p.packet {
            Some(mqttv3::mqtt_packet::Packet::Publish(p)) => Plain {
                topic: &p.topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload: &p.payload,
            },
            _ => return None,
        },
        (Payload::MqttV5Packet(p), Version::V5) => match &p.packet {
            Some(mqttv5::mqtt_packet::Packet::Publish(p)) if p.properties.is_empty() => Plain {
                topic: &p.topic,
                message_id: p.message_id,
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                payload: &p.payload,
            },
            _ => return None,
        },
        _ => return None,
    };
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
