//! MQTT 3.1.1 packets <-> `mqttv3` protobuf messages.

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::{SubEntry, SubOpts, v3_1_1 as mp};
use mqtt_protocol_core::mqtt::result_code::{ConnectReturnCode, SubackReturnCode};

use super::{ConvertError, invalid, packet_id, qos, u8_field, u16_field};
use crate::line::proto::mqttv3 as pb;
use crate::mqtt::Packet;
use pb::mqtt_packet::Packet as P;

/// The protobuf form of a 3.1.1 packet; `None` for a 5.0 packet.
pub fn to_proto(packet: &Packet) -> Option<pb::MqttPacket> {
    let p = match packet {
        Packet::V3_1_1Connect(c) => P::Connect(pb::Connect {
            client_id: c.client_id().to_owned(),
            protocol_name: c.protocol_name().to_owned(),
            protocol_version: c.protocol_version().into(),
            clean_session: c.clean_session(),
            keep_alive: c.keep_alive().into(),
            username: c.user_name().unwrap_or_default().to_owned(),
            password: Bytes::copy_from_slice(c.password().unwrap_or_default()),
            will: c.will_flag().then(|| pb::Will {
                topic: c.will_topic().unwrap_or_default().to_owned(),
                payload: Bytes::copy_from_slice(c.will_payload().unwrap_or_default()),
                qos: c.will_qos() as i32,
                retain: c.will_retain(),
            }),
            username_present: c.user_name_flag(),
            password_present: c.password_flag(),
        }),
        Packet::V3_1_1Connack(c) => P::Connack(pb::Connack {
            session_present: c.session_present(),
            return_code: c.return_code() as u32,
        }),
        Packet::V3_1_1Publish(p) => P::Publish(pb::Publish {
            topic: p.topic_name().to_owned(),
            message_id: p.packet_id().unwrap_or(0).into(),
            qos: p.qos() as i32,
            retain: p.retain(),
            dup: p.dup(),
            payload: Bytes::copy_from_slice(p.payload().as_slice()),
        }),
        Packet::V3_1_1Puback(p) => P::Puback(pb::Puback {
            message_id: p.packet_id().into(),
        }),
        Packet::V3_1_1Pubrec(p) => P::Pubrec(pb::Pubrec {
            message_id: p.packet_id().into(),
        }),
        Packet::V3_1_1Pubrel(p) => P::Pubrel(pb::Pubrel {
            message_id: p.packet_id().into(),
        }),
        Packet::V3_1_1Pubcomp(p) => P::Pubcomp(pb::Pubcomp {
            message_id: p.packet_id().into(),
        }),
        Packet::V3_1_1Subscribe(s) => P::Subscribe(pb::Subscribe {
            message_id: s.packet_id().into(),
            subscriptions: s
                .entries()
                .iter()
                .map(|e| pb::TopicSubscription {
                    topic_filter: e.topic_filter().to_owned(),
                    qos: e.sub_opts().qos() as u32,
                })
                .collect(),
        }),
        Packet::V3_1_1Suback(s) => P::Suback(pb::Suback {
            message_id: s.packet_id().into(),
            return_codes: s.return_codes().into_iter().map(|c| c as u32).collect(),
        }),
        Packet::V3_1_1Unsubscribe(u) => P::Unsubscribe(pb::Unsubscribe {
            message_id: u.packet_id().into(),
            topic_filters: u.entries().iter().map(|t| t.as_str().to_owned()).collect(),
        }),
        Packet::V3_1_1Unsuback(u) => P::Unsuback(pb::Unsuback {
            message_id: u.packet_id().into(),
        }),
        Packet::V3_1_1Pingreq(_) => P::Pingreq(pb::Pingreq {}),
        Packet::V3_1_1Pingresp(_) => P::Pingresp(pb::Pingresp {}),
        Packet::V3_1_1Disconnect(_) => P::Disconnect(pb::Disconnect {}),
        _ => return None,
    };
    Some(pb::MqttPacket { packet: Some(p) })
}

/// The 3.1.1 packet a protobuf message describes.
pub fn from_proto(message: pb::MqttPacket) -> Result<Packet, ConvertError> {
    let packet = message.packet.ok_or(ConvertError::MissingPacket)?;
    Ok(match packet {
        P::Connect(c) => Packet::V3_1_1Connect(connect(c)?),
        P::Connack(c) => {
            let code = ConnectReturnCode::try_from(u8_field(c.return_code, "return_code")?)
                .map_err(invalid("return_code"))?;
            Packet::V3_1_1Connack(
                mp::Connack::builder()
                    .session_present(c.session_present)
                    .return_code(code)
                    .build()
                    .map_err(invalid("connack"))?,
            )
        }
        P::Publish(p) => Packet::V3_1_1Publish(publish(p)?),
        P::Puback(p) => Packet::V3_1_1Puback(
            mp::Puback::builder()
                .packet_id(packet_id(p.message_id)?)
                .build()
                .map_err(invalid("puback"))?,
        ),
        P::Pubrec(p) => Packet::V3_1_1Pubrec(
            mp::Pubrec::builder()
                .packet_id(packet_id(p.message_id)?)
                .build()
                .map_err(invalid("pubrec"))?,
        ),
        P::Pubrel(p) => Packet::V3_1_1Pubrel(
            mp::Pubrel::builder()
                .packet_id(packet_id(p.message_id)?)
                .build()
                .map_err(invalid("pubrel"))?,
        ),
        P::Pubcomp(p) => Packet::V3_1_1Pubcomp(
            mp::Pubcomp::builder()
                .packet_id(packet_id(p.message_id)?)
                .build()
                .map_err(invalid("pubcomp"))?,
        ),
        P::Subscribe(s) => {
            let entries = s
                .subscriptions
                .into_iter()
                .map(|t| {
                    let opts = SubOpts::new().set_qos(qos(t.qos as i32)?);
                    SubEntry::new(t.topic_filter, opts).map_err(invalid("topic_filter"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Packet::V3_1_1Subscribe(
                mp::Subscribe::builder()
                    .packet_id(packet_id(s.message_id)?)
                    .entries(entries)
                    .build()
                    .map_err(invalid("subscribe"))?,
            )
        }
        P::Suback(s) => {
            let codes = s
                .return_codes
                .into_iter()
                .map(|c| {
                    SubackReturnCode::try_from(u8_field(c, "return_code")?)
                        .map_err(invalid("return_code"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Packet::V3_1_1Suback(
                mp::Suback::builder()
                    .packet_id(packet_id(s.message_id)?)
                    .return_codes(codes)
                    .build()
                    .map_err(invalid("suback"))?,
            )
        }
        P::Unsubscribe(u) => Packet::V3_1_1Unsubscribe(
            mp::Unsubscribe::builder()
                .packet_id(packet_id(u.message_id)?)
                .entries(u.topic_filters)
                .map_err(invalid("topic_filters"))?
                .build()
                .map_err(invalid("unsubscribe"))?,
        ),
        P::Unsuback(u) => Packet::V3_1_1Unsuback(
            mp::Unsuback::builder()
                .packet_id(packet_id(u.message_id)?)
                .build()
                .map_err(invalid("unsuback"))?,
        ),
        P::Pingreq(_) => Packet::V3_1_1Pingreq(mp::Pingreq::new()),
        P::Pingresp(_) => Packet::V3_1_1Pingresp(mp::Pingresp::new()),
        P::Disconnect(_) => Packet::V3_1_1Disconnect(mp::Disconnect::new()),
    })
}

fn connect(c: pb::Connect) -> Result<mp::Connect, ConvertError> {
    if c.protocol_name != "MQTT" || c.protocol_version != 4 {
        return Err(ConvertError::Invalid("protocol_version"));
    }
    let mut b = mp::Connect::builder()
        .client_id(c.client_id)
        .map_err(invalid("client_id"))?
        .clean_session(c.clean_session)
        .keep_alive(u16_field(c.keep_alive, "keep_alive")?);
    if let Some(w) = c.will {
        b = b
            .will_message(w.topic, w.payload.to_vec(), qos(w.qos)?, w.retain)
            .map_err(invalid("will"))?;
    }
    if c.username_present || !c.username.is_empty() {
        b = b.user_name(c.username).map_err(invalid("username"))?;
    }
    if c.password_present || !c.password.is_empty() {
        b = b
            .password(c.password.to_vec())
            .map_err(invalid("password"))?;
    }
    b.build().map_err(invalid("connect"))
}

fn publish(p: pb::Publish) -> Result<mp::Publish, ConvertError> {
    let qos = qos(p.qos)?;
    let mut b = mp::Publish::builder()
        .topic_name(p.topic)
        .map_err(invalid("topic"))?
        .qos(qos)
        .retain(p.retain)
        .dup(p.dup)
        .payload(p.payload.to_vec());
    if qos as u8 > 0 {
        b = b.packet_id(packet_id(p.message_id)?);
    }
    b.build().map_err(invalid("publish"))
}
