//! MQTT 5.0 packets <-> `mqttv5` protobuf messages.

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::{RetainHandling, SubEntry, SubOpts, v5_0 as mp};
use mqtt_protocol_core::mqtt::result_code::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, PubackReasonCode, PubcompReasonCode,
    PubrecReasonCode, PubrelReasonCode, SubackReasonCode, UnsubackReasonCode,
};

use super::properties;
use super::{ConvertError, invalid, packet_id, qos, u8_field, u16_field};
use crate::line::proto::mqttv5 as pb;
use crate::mqtt::Packet;
use pb::mqtt_packet::Packet as P;

/// Wire form of the optional reason code and property list of PUBACK,
/// PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH.
struct OptionalTail {
    reason_code: Option<u8>,
    properties: Option<Vec<mqtt_protocol_core::mqtt::packet::Property>>,
}

impl OptionalTail {
    /// Reads the tail from protobuf. A property list needs a reason code in
    /// front of it, and a peer that does not send the presence flags gets
    /// the shortest form that carries its values.
    fn from_proto(
        reason_code: u32,
        reason_code_present: bool,
        props: Vec<pb::Property>,
        properties_present: bool,
    ) -> Result<Self, ConvertError> {
        let has_props = properties_present || !props.is_empty();
        let has_code = reason_code_present || reason_code != 0 || has_props;
        Ok(Self {
            reason_code: if has_code {
                Some(u8_field(reason_code, "reason_code")?)
            } else {
                None
            },
            properties: if has_props {
                Some(properties::from_proto(props)?)
            } else {
                None
            },
        })
    }
}

/// Converts one of the four publish acknowledgements, which share a shape.
macro_rules! ack_to_proto {
    ($p:expr, $pb:ident) => {
        pb::$pb {
            message_id: $p.packet_id().into(),
            reason_code: $p.reason_code().map_or(0, |c| c as u32),
            properties: $p
                .props()
                .as_deref()
                .map(properties::to_proto)
                .unwrap_or_default(),
            reason_code_present: $p.reason_code().is_some(),
            properties_present: $p.props().is_some(),
        }
    };
}

macro_rules! ack_from_proto {
    ($m:expr, $packet:ident, $code:ident, $name:literal) => {{
        let m = $m;
        let tail = OptionalTail::from_proto(
            m.reason_code,
            m.reason_code_present,
            m.properties,
            m.properties_present,
        )?;
        let mut b = mp::$packet::builder().packet_id(packet_id(m.message_id)?);
        if let Some(code) = tail.reason_code {
            b = b.reason_code($code::try_from(code).map_err(invalid("reason_code"))?);
        }
        if let Some(props) = tail.properties {
            b = b.props(props);
        }
        b.build().map_err(invalid($name))?
    }};
}

/// The protobuf form of a 5.0 packet.
///
/// Only called for 5.0 packets; a 3.1.1 packet (handled by `v3`) maps to an
/// empty message rather than a panic.
pub fn to_proto(packet: &Packet) -> pb::MqttPacket {
    let p = match packet {
        Packet::V5_0Connect(c) => P::Connect(pb::Connect {
            client_id: c.client_id().to_owned(),
            protocol_name: c.protocol_name().to_owned(),
            protocol_version: c.protocol_version().into(),
            clean_start: c.clean_start(),
            keep_alive: c.keep_alive().into(),
            username: c.user_name().unwrap_or_default().to_owned(),
            password: Bytes::copy_from_slice(c.password().unwrap_or_default()),
            will: c.will_flag().then(|| pb::Will {
                topic: c.will_topic().unwrap_or_default().to_owned(),
                payload: Bytes::copy_from_slice(c.will_payload().unwrap_or_default()),
                qos: c.will_qos() as i32,
                retain: c.will_retain(),
                properties: properties::to_proto(&c.will_props),
            }),
            properties: properties::to_proto(&c.props),
            username_present: c.user_name_flag(),
            password_present: c.password_flag(),
        }),
        Packet::V5_0Connack(c) => P::Connack(pb::Connack {
            session_present: c.session_present(),
            reason_code: c.reason_code() as u32,
            properties: properties::to_proto(&c.props),
        }),
        Packet::V5_0Publish(p) => P::Publish(pb::Publish {
            topic: p.topic_name().to_owned(),
            message_id: p.packet_id().unwrap_or(0).into(),
            qos: p.qos() as i32,
            retain: p.retain(),
            dup: p.dup(),
            payload: Bytes::copy_from_slice(p.payload().as_slice()),
            properties: properties::to_proto(&p.props),
        }),
        Packet::V5_0Puback(p) => P::Puback(ack_to_proto!(p, Puback)),
        Packet::V5_0Pubrec(p) => P::Pubrec(ack_to_proto!(p, Pubrec)),
        Packet::V5_0Pubrel(p) => P::Pubrel(ack_to_proto!(p, Pubrel)),
        Packet::V5_0Pubcomp(p) => P::Pubcomp(ack_to_proto!(p, Pubcomp)),
        Packet::V5_0Subscribe(s) => P::Subscribe(pb::Subscribe {
            message_id: s.packet_id().into(),
            subscriptions: s
                .entries()
                .iter()
                .map(|e| {
                    let o = e.sub_opts();
                    pb::TopicSubscription {
                        topic_filter: e.topic_filter().to_owned(),
                        qos: o.qos() as u32,
                        no_local: o.nl(),
                        retain_as_published: o.rap(),
                        retain_handling: o.rh() as u32,
                    }
                })
                .collect(),
            properties: properties::to_proto(&s.props),
        }),
        Packet::V5_0Suback(s) => P::Suback(pb::Suback {
            message_id: s.packet_id().into(),
            reason_codes: s.reason_codes().into_iter().map(|c| c as u32).collect(),
            properties: properties::to_proto(&s.props),
        }),
        Packet::V5_0Unsubscribe(u) => P::Unsubscribe(pb::Unsubscribe {
            message_id: u.packet_id().into(),
            topic_filters: u.entries().iter().map(|t| t.as_str().to_owned()).collect(),
            properties: properties::to_proto(&u.props),
        }),
        Packet::V5_0Unsuback(u) => P::Unsuback(pb::Unsuback {
            message_id: u.packet_id().into(),
            reason_codes: u.reason_codes().into_iter().map(|c| c as u32).collect(),
            properties: properties::to_proto(&u.props),
        }),
        Packet::V5_0Pingreq(_) => P::Pingreq(pb::Pingreq {}),
        Packet::V5_0Pingresp(_) => P::Pingresp(pb::Pingresp {}),
        Packet::V5_0Disconnect(d) => P::Disconnect(pb::Disconnect {
            reason_code: d.reason_code().map_or(0, |c| c as u32),
            properties: d
                .props()
                .as_deref()
                .map(properties::to_proto)
                .unwrap_or_default(),
            reason_code_present: d.reason_code().is_some(),
            properties_present: d.props().is_some(),
        }),
        Packet::V5_0Auth(a) => P::Auth(pb::Auth {
            reason_code: a.reason_code().map_or(0, |c| c as u32),
            properties: a
                .props()
                .as_deref()
                .map(properties::to_proto)
                .unwrap_or_default(),
            reason_code_present: a.reason_code().is_some(),
            properties_present: a.props().is_some(),
        }),
        _ => return pb::MqttPacket { packet: None },
    };
    pb::MqttPacket { packet: Some(p) }
}

/// The 5.0 packet a protobuf message describes.
pub fn from_proto(message: pb::MqttPacket) -> Result<Packet, ConvertError> {
    let packet = message.packet.ok_or(ConvertError::MissingPacket)?;
    Ok(match packet {
        P::Connect(c) => Packet::V5_0Connect(connect(c)?),
        P::Connack(c) => {
            let code = ConnectReasonCode::try_from(u8_field(c.reason_code, "reason_code")?)
                .map_err(invalid("reason_code"))?;
            Packet::V5_0Connack(
                mp::Connack::builder()
                    .session_present(c.session_present)
                    .reason_code(code)
                    .props(properties::from_proto(c.properties)?)
                    .build()
                    .map_err(invalid("connack"))?,
            )
        }
        P::Publish(p) => Packet::V5_0Publish(publish(p)?),
        P::Puback(m) => Packet::V5_0Puback(ack_from_proto!(m, Puback, PubackReasonCode, "puback")),
        P::Pubrec(m) => Packet::V5_0Pubrec(ack_from_proto!(m, Pubrec, PubrecReasonCode, "pubrec")),
        P::Pubrel(m) => Packet::V5_0Pubrel(ack_from_proto!(m, Pubrel, PubrelReasonCode, "pubrel")),
        P::Pubcomp(m) => {
            Packet::V5_0Pubcomp(ack_from_proto!(m, Pubcomp, PubcompReasonCode, "pubcomp"))
        }
        P::Subscribe(s) => {
            let entries = s
                .subscriptions
                .into_iter()
                .map(|t| {
                    let rh =
                        RetainHandling::try_from(u8_field(t.retain_handling, "retain_handling")?)
                            .map_err(invalid("retain_handling"))?;
                    let opts = SubOpts::new()
                        .set_qos(qos(t.qos as i32)?)
                        .set_nl(t.no_local)
                        .set_rap(t.retain_as_published)
                        .set_rh(rh);
                    SubEntry::new(t.topic_filter, opts).map_err(invalid("topic_filter"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Packet::V5_0Subscribe(
                mp::Subscribe::builder()
                    .packet_id(packet_id(s.message_id)?)
                    .entries(entries)
                    .props(properties::from_proto(s.properties)?)
                    .build()
                    .map_err(invalid("subscribe"))?,
            )
        }
        P::Suback(s) => {
            let codes = s
                .reason_codes
                .into_iter()
                .map(|c| {
                    SubackReasonCode::try_from(u8_field(c, "reason_code")?)
                        .map_err(invalid("reason_code"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Packet::V5_0Suback(
                mp::Suback::builder()
                    .packet_id(packet_id(s.message_id)?)
                    .reason_codes(codes)
                    .props(properties::from_proto(s.properties)?)
                    .build()
                    .map_err(invalid("suback"))?,
            )
        }
        P::Unsubscribe(u) => Packet::V5_0Unsubscribe(
            mp::Unsubscribe::builder()
                .packet_id(packet_id(u.message_id)?)
                .entries(u.topic_filters)
                .map_err(invalid("topic_filters"))?
                .props(properties::from_proto(u.properties)?)
                .build()
                .map_err(invalid("unsubscribe"))?,
        ),
        P::Unsuback(u) => {
            let codes = u
                .reason_codes
                .into_iter()
                .map(|c| {
                    UnsubackReasonCode::try_from(u8_field(c, "reason_code")?)
                        .map_err(invalid("reason_code"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Packet::V5_0Unsuback(
                mp::Unsuback::builder()
                    .packet_id(packet_id(u.message_id)?)
                    .reason_codes(codes)
                    .props(properties::from_proto(u.properties)?)
                    .build()
                    .map_err(invalid("unsuback"))?,
            )
        }
        P::Pingreq(_) => Packet::V5_0Pingreq(mp::Pingreq::new()),
        P::Pingresp(_) => Packet::V5_0Pingresp(mp::Pingresp::new()),
        P::Disconnect(d) => {
            let tail = OptionalTail::from_proto(
                d.reason_code,
                d.reason_code_present,
                d.properties,
                d.properties_present,
            )?;
            let mut b = mp::Disconnect::builder();
            if let Some(code) = tail.reason_code {
                b = b.reason_code(
                    DisconnectReasonCode::try_from(code).map_err(invalid("reason_code"))?,
                );
            }
            if let Some(props) = tail.properties {
                b = b.props(props);
            }
            Packet::V5_0Disconnect(b.build().map_err(invalid("disconnect"))?)
        }
        P::Auth(a) => {
            let tail = OptionalTail::from_proto(
                a.reason_code,
                a.reason_code_present,
                a.properties,
                a.properties_present,
            )?;
            let mut b = mp::Auth::builder();
            if let Some(code) = tail.reason_code {
                b = b.reason_code(AuthReasonCode::try_from(code).map_err(invalid("reason_code"))?);
            }
            if let Some(props) = tail.properties {
                b = b.props(props);
            }
            Packet::V5_0Auth(b.build().map_err(invalid("auth"))?)
        }
    })
}

fn connect(c: pb::Connect) -> Result<mp::Connect, ConvertError> {
    if c.protocol_name != "MQTT" || c.protocol_version != 5 {
        return Err(ConvertError::Invalid("protocol_version"));
    }
    let mut b = mp::Connect::builder()
        .client_id(c.client_id)
        .map_err(invalid("client_id"))?
        .clean_start(c.clean_start)
        .keep_alive(u16_field(c.keep_alive, "keep_alive")?)
        .props(properties::from_proto(c.properties)?);
    if let Some(w) = c.will {
        b = b
            .will_message(w.topic, w.payload.to_vec(), qos(w.qos)?, w.retain)
            .map_err(invalid("will"))?
            .will_props(properties::from_proto(w.properties)?);
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
        .payload(p.payload.to_vec())
        .props(properties::from_proto(p.properties)?);
    if qos as u8 > 0 {
        b = b.packet_id(packet_id(p.message_id)?);
    }
    b.build().map_err(invalid("publish"))
}
