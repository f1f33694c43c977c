//! Builders for the common client packets in either MQTT version, so code
//! that speaks both versions writes each exchange once.

use mqtt_protocol_core::mqtt::packet::{
    Property, Qos, RetainHandling as CoreRetainHandling, SubEntry, SubOpts, v3_1_1, v5_0,
};
use mqtt_protocol_core::mqtt::result_code::{DisconnectReasonCode, MqttError};

use super::properties::{DisconnectOptions, RetainHandling, SubscribeOptions};
use crate::mqtt::{Packet, Version};

/// A QoS from its number (values above 2 are treated as 2).
pub fn qos(level: u8) -> Qos {
    match level {
        0 => Qos::AtMostOnce,
        1 => Qos::AtLeastOnce,
        _ => Qos::ExactlyOnce,
    }
}

/// CONNECT with a client id, clean session/start and a keep-alive.
pub fn connect(
    version: Version,
    client_id: &str,
    clean: bool,
    keep_alive: u16,
) -> Result<Packet, MqttError> {
    connect_keeping_session(version, client_id, clean, keep_alive, 0)
}

/// CONNECT that, in MQTT 5, asks the broker to keep the session for
/// `session_expiry` seconds after the connection ends (0: it ends with the
/// connection). MQTT 3.1.1 keeps a session exactly when `clean` is false.
pub fn connect_keeping_session(
    version: Version,
    client_id: &str,
    clean: bool,
    keep_alive: u16,
    session_expiry: u32,
) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => Packet::V3_1_1Connect(
            v3_1_1::Connect::builder()
                .client_id(client_id)?
                .clean_session(clean)
                .keep_alive(keep_alive)
                .build()?,
        ),
        Version::V5 => {
            let mut builder = v5_0::Connect::builder()
                .client_id(client_id)?
                .clean_start(clean)
                .keep_alive(keep_alive);
            if session_expiry > 0 {
                builder = builder.props(vec![Property::SessionExpiryInterval(
                    mqtt_protocol_core::mqtt::packet::SessionExpiryInterval::new(session_expiry)?,
                )]);
            }
            Packet::V5_0Connect(builder.build()?)
        }
    })
}

/// CONNECT with a will message.
pub fn connect_with_will(
    version: Version,
    client_id: &str,
    will_topic: &str,
    will_payload: &[u8],
) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => Packet::V3_1_1Connect(
            v3_1_1::Connect::builder()
                .client_id(client_id)?
                .clean_session(true)
                .will_message(will_topic, will_payload.to_vec(), Qos::AtLeastOnce, false)?
                .build()?,
        ),
        Version::V5 => Packet::V5_0Connect(
            v5_0::Connect::builder()
                .client_id(client_id)?
                .clean_start(true)
                .will_message(will_topic, will_payload.to_vec(), Qos::AtLeastOnce, false)?
                .build()?,
        ),
    })
}

/// SUBSCRIBE to one filter.
pub fn subscribe(
    version: Version,
    packet_id: u16,
    filter: &str,
    level: u8,
) -> Result<Packet, MqttError> {
    subscribe_with(version, packet_id, filter, &SubscribeOptions::qos(level))
}

/// SUBSCRIBE to one filter with MQTT 5 subscription options and
/// properties (MQTT 3.1.1 sends the QoS alone).
pub fn subscribe_with(
    version: Version,
    packet_id: u16,
    filter: &str,
    options: &SubscribeOptions,
) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => {
            let opts = SubOpts::new().set_qos(qos(options.qos));
            Packet::V3_1_1Subscribe(
                v3_1_1::Subscribe::builder()
                    .packet_id(packet_id)
                    .entries(vec![SubEntry::new(filter, opts)?])
                    .build()?,
            )
        }
        Version::V5 => {
            let rh = match options.retain_handling {
                RetainHandling::SendAtSubscribe => CoreRetainHandling::SendRetained,
                RetainHandling::SendAtNewSubscribe => CoreRetainHandling::SendRetainedIfNotExists,
                RetainHandling::DoNotSend => CoreRetainHandling::DoNotSendRetained,
            };
            let opts = SubOpts::new()
                .set_qos(qos(options.qos))
                .set_nl(options.no_local)
                .set_rap(options.retain_as_published)
                .set_rh(rh);
            Packet::V5_0Subscribe(
                v5_0::Subscribe::builder()
                    .packet_id(packet_id)
                    .entries(vec![SubEntry::new(filter, opts)?])
                    .props(options.to_list()?)
                    .build()?,
            )
        }
    })
}

/// UNSUBSCRIBE from one filter; `user_properties` only apply to MQTT 5.
pub fn unsubscribe(
    version: Version,
    packet_id: u16,
    filter: &str,
    user_properties: &[(String, String)],
) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => Packet::V3_1_1Unsubscribe(
            v3_1_1::Unsubscribe::builder()
                .packet_id(packet_id)
                .entries(vec![filter])?
                .build()?,
        ),
        Version::V5 => {
            let mut builder = v5_0::Unsubscribe::builder()
                .packet_id(packet_id)
                .entries(vec![filter])?;
            if !user_properties.is_empty() {
                let mut list = Vec::with_capacity(user_properties.len());
                for (name, value) in user_properties {
                    list.push(Property::UserProperty(
                        mqtt_protocol_core::mqtt::packet::UserProperty::new(name, value)?,
                    ));
                }
                builder = builder.props(list);
            }
            Packet::V5_0Unsubscribe(builder.build()?)
        }
    })
}

/// PUBLISH; `packet_id` is used for QoS 1 and 2 only. `properties` only
/// apply to MQTT 5.
pub fn publish(
    version: Version,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    level: u8,
    retain: bool,
    packet_id: u16,
    properties: Vec<Property>,
) -> Result<Packet, MqttError> {
    let payload: Vec<u8> = payload.into();
    Ok(match version {
        Version::V3_1_1 => {
            let mut b = v3_1_1::Publish::builder()
                .topic_name(topic)?
                .qos(qos(level))
                .retain(retain)
                .payload(payload);
            if level > 0 {
                b = b.packet_id(packet_id);
            }
            Packet::V3_1_1Publish(b.build()?)
        }
        Version::V5 => {
            let mut b = v5_0::Publish::builder()
                .topic_name(topic)?
                .qos(qos(level))
                .retain(retain)
                .payload(payload)
                .props(properties);
            if level > 0 {
                b = b.packet_id(packet_id);
            }
            Packet::V5_0Publish(b.build()?)
        }
    })
}

/// The acknowledgement a receiver sends for a PUBLISH of `level` (PUBACK
/// for QoS 1, PUBREC for QoS 2), or `None` for QoS 0.
pub fn publish_ack(
    version: Version,
    level: u8,
    packet_id: u16,
) -> Result<Option<Packet>, MqttError> {
    Ok(match (version, level) {
        (_, 0) => None,
        (Version::V3_1_1, 1) => Some(Packet::V3_1_1Puback(
            v3_1_1::Puback::builder().packet_id(packet_id).build()?,
        )),
        (Version::V5, 1) => Some(Packet::V5_0Puback(
            v5_0::Puback::builder().packet_id(packet_id).build()?,
        )),
        (Version::V3_1_1, _) => Some(Packet::V3_1_1Pubrec(
            v3_1_1::Pubrec::builder().packet_id(packet_id).build()?,
        )),
        (Version::V5, _) => Some(Packet::V5_0Pubrec(
            v5_0::Pubrec::builder().packet_id(packet_id).build()?,
        )),
    })
}

/// PUBREL, the sender's second step of QoS 2.
pub fn pubrel(version: Version, packet_id: u16) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => {
            Packet::V3_1_1Pubrel(v3_1_1::Pubrel::builder().packet_id(packet_id).build()?)
        }
        Version::V5 => Packet::V5_0Pubrel(v5_0::Pubrel::builder().packet_id(packet_id).build()?),
    })
}

/// PUBCOMP, the receiver's last step of QoS 2.
pub fn pubcomp(version: Version, packet_id: u16) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => {
            Packet::V3_1_1Pubcomp(v3_1_1::Pubcomp::builder().packet_id(packet_id).build()?)
        }
        Version::V5 => Packet::V5_0Pubcomp(v5_0::Pubcomp::builder().packet_id(packet_id).build()?),
    })
}

/// PINGREQ.
pub fn pingreq(version: Version) -> Packet {
    match version {
        Version::V3_1_1 => Packet::V3_1_1Pingreq(v3_1_1::Pingreq::new()),
        Version::V5 => Packet::V5_0Pingreq(v5_0::Pingreq::new()),
    }
}

/// DISCONNECT (normal disconnection).
pub fn disconnect(version: Version) -> Packet {
    match version {
        Version::V3_1_1 => Packet::V3_1_1Disconnect(v3_1_1::Disconnect::new()),
        Version::V5 => Packet::V5_0Disconnect(
            // A DISCONNECT without reason code or properties always builds.
            v5_0::Disconnect::builder()
                .build()
                .unwrap_or_else(|_| unreachable!("empty DISCONNECT is valid")),
        ),
    }
}

/// DISCONNECT (normal disconnection) with `options`' properties (MQTT 5).
pub fn disconnect_with(version: Version, options: &DisconnectOptions) -> Result<Packet, MqttError> {
    Ok(match version {
        Version::V3_1_1 => disconnect(version),
        Version::V5 => {
            let list = options.to_list()?;
            let mut builder = v5_0::Disconnect::builder();
            if !list.is_empty() {
                // Properties need the reason code before them.
                builder = builder
                    .reason_code(DisconnectReasonCode::NormalDisconnection)
                    .props(list);
            }
            Packet::V5_0Disconnect(builder.build()?)
        }
    })
}

/// The pieces of a received PUBLISH: topic, payload, QoS, packet id, retain.
pub struct Received {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS level.
    pub qos: u8,
    /// Packet id (0 for QoS 0).
    pub packet_id: u16,
    /// Retain flag.
    pub retain: bool,
    /// DUP flag: the sender may have sent it before.
    pub dup: bool,
    /// MQTT 5 properties (empty for 3.1.1).
    pub properties: Vec<Property>,
}

/// The PUBLISH in `packet`, if it is one.
pub fn received(packet: &Packet) -> Option<Received> {
    match packet {
        Packet::V3_1_1Publish(p) => Some(Received {
            topic: p.topic_name().to_string(),
            payload: p.payload().as_slice().to_vec(),
            qos: p.qos() as u8,
            packet_id: p.packet_id().unwrap_or(0),
            retain: p.retain(),
            dup: p.dup(),
            properties: Vec::new(),
        }),
        Packet::V5_0Publish(p) => Some(Received {
            topic: p.topic_name().to_string(),
            payload: p.payload().as_slice().to_vec(),
            qos: p.qos() as u8,
            packet_id: p.packet_id().unwrap_or(0),
            retain: p.retain(),
            dup: p.dup(),
            properties: p.props.clone(),
        }),
        _ => None,
    }
}
