//! Opening an MQTT session on a fresh connection: the CONNECT built from
//! the client's options (identity, credentials, Will, session and flow
//! limits) and what the broker's CONNACK grants or refuses.

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::{
    MaximumPacketSize, Property, ReceiveMaximum, SessionExpiryInterval, TopicAliasMaximum,
    UserProperty, v3_1_1, v5_0,
};

use super::options::{ClientError, ClientOptions};
use super::packets::qos;
use crate::mqtt::{self, Packet, Version, packet_type_name};

/// Who connects: the options' credentials, or else the URL's.
pub(super) struct Credentials {
    pub(super) username: Option<String>,
    pub(super) password: Option<Bytes>,
}

/// The CONNECT for `options`; `clean_start` is the first connection's
/// choice, false on reconnections that resume a kept session.
pub(super) fn connect_packet(
    options: &ClientOptions,
    credentials: &Credentials,
    clean_start: bool,
) -> Result<Packet, ClientError> {
    let keep_alive = options.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
    if let Some(will) = &options.will {
        mqtt::check_topic_name(&will.topic)?;
    }
    Ok(match options.version {
        Version::V3_1_1 => {
            if credentials.password.is_some() && credentials.username.is_none() {
                return Err(ClientError::Invalid(
                    "MQTT 3.1.1 cannot send a password without a user name".into(),
                ));
            }
            let mut b = v3_1_1::Connect::builder()
                .client_id(options.client_id.as_str())?
                .clean_session(clean_start)
                .keep_alive(keep_alive);
            if let Some(will) = &options.will {
                b = b.will_message(
                    will.topic.as_str(),
                    will.payload.to_vec(),
                    qos(will.qos),
                    will.retain,
                )?;
            }
            if let Some(user) = &credentials.username {
                b = b.user_name(user.as_str())?;
            }
            if let Some(password) = &credentials.password {
                b = b.password(password.to_vec())?;
            }
            Packet::V3_1_1Connect(b.build()?)
        }
        Version::V5 => {
            let mut b = v5_0::Connect::builder()
                .client_id(options.client_id.as_str())?
                .clean_start(clean_start)
                .keep_alive(keep_alive)
                .props(connect_properties(options)?);
            if let Some(will) = &options.will {
                b = b
                    .will_message(
                        will.topic.as_str(),
                        will.payload.to_vec(),
                        qos(will.qos),
                        will.retain,
                    )?
                    .will_props(will.property_list()?);
            }
            if let Some(user) = &credentials.username {
                b = b.user_name(user.as_str())?;
            }
            if let Some(password) = &credentials.password {
                b = b.password(password.to_vec())?;
            }
            Packet::V5_0Connect(b.build()?)
        }
    })
}

fn connect_properties(options: &ClientOptions) -> Result<Vec<Property>, ClientError> {
    let mut list = Vec::new();
    let expiry = u32::try_from(options.session_expiry.as_secs()).unwrap_or(u32::MAX);
    if expiry > 0 {
        list.push(Property::SessionExpiryInterval(SessionExpiryInterval::new(
            expiry,
        )?));
    }
    if let Some(maximum) = options.receive_maximum {
        if maximum == 0 {
            return Err(ClientError::Invalid(
                "receive maximum must be at least 1".into(),
            ));
        }
        list.push(Property::ReceiveMaximum(ReceiveMaximum::new(maximum)?));
    }
    if options.maximum_packet_size < mqtt::DEFAULT_MAX_PACKET_SIZE * 4 {
        list.push(Property::MaximumPacketSize(MaximumPacketSize::new(
            options.maximum_packet_size,
        )?));
    }
    if options.topic_alias_maximum > 0 {
        list.push(Property::TopicAliasMaximum(TopicAliasMaximum::new(
            options.topic_alias_maximum,
        )?));
    }
    for (name, value) in &options.user_properties {
        list.push(Property::UserProperty(UserProperty::new(name, value)?));
    }
    Ok(list)
}

/// What the broker granted in its CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// Whether the broker resumed a session it kept.
    pub session_present: bool,
    /// MQTT 5: the client id the broker assigned (when ours was empty).
    pub assigned_client_id: Option<String>,
    /// MQTT 5: QoS 1/2 messages the broker takes before acknowledging.
    pub receive_maximum: u16,
    /// MQTT 5: highest QoS the broker accepts.
    pub maximum_qos: u8,
    /// MQTT 5: whether the broker keeps retained messages.
    pub retain_available: bool,
    /// MQTT 5: largest packet the broker takes (`None`: no limit).
    pub maximum_packet_size: Option<u32>,
    /// MQTT 5: topic aliases the client may use (0: none).
    pub topic_alias_maximum: u16,
    /// MQTT 5: keep-alive the broker wants instead of ours, in seconds.
    pub server_keep_alive: Option<u16>,
    /// MQTT 5: the broker's reason string.
    pub reason_string: Option<String>,
    /// MQTT 5: the broker's user properties.
    pub user_properties: Vec<(String, String)>,
}

impl Default for Connected {
    fn default() -> Self {
        Self {
            session_present: false,
            assigned_client_id: None,
            receive_maximum: u16::MAX,
            maximum_qos: 2,
            retain_available: true,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            server_keep_alive: None,
            reason_string: None,
            user_properties: Vec::new(),
        }
    }
}

/// The broker's answer to CONNECT: what it granted, or the refusal.
pub(super) fn connack(reply: Option<Packet>) -> Result<Connected, ClientError> {
    match reply {
        Some(Packet::V3_1_1Connack(c)) => {
            let code = c.return_code() as u8;
            if code != 0 {
                return Err(ClientError::Refused { code, reason: None });
            }
            Ok(Connected {
                session_present: c.session_present(),
                ..Connected::default()
            })
        }
        Some(Packet::V5_0Connack(c)) => {
            let mut connected = Connected {
                session_present: c.session_present(),
                ..Connected::default()
            };
            for property in &c.props {
                match property {
                    Property::AssignedClientIdentifier(p) => {
                        connected.assigned_client_id = Some(p.val().to_string());
                    }
                    Property::ReceiveMaximum(p) => connected.receive_maximum = p.val(),
                    Property::MaximumQos(p) => connected.maximum_qos = p.val(),
                    Property::RetainAvailable(p) => connected.retain_available = p.val() == 1,
                    Property::MaximumPacketSize(p) => {
                        connected.maximum_packet_size = Some(p.val());
                    }
                    Property::TopicAliasMaximum(p) => connected.topic_alias_maximum = p.val(),
                    Property::ServerKeepAlive(p) => connected.server_keep_alive = Some(p.val()),
                    Property::ReasonString(p) => {
                        connected.reason_string = Some(p.val().to_string());
                    }
                    Property::UserProperty(p) => connected
                        .user_properties
                        .push((p.key().to_string(), p.val().to_string())),
                    _ => {}
                }
            }
            let code = c.reason_code() as u8;
            if code >= 0x80 {
                return Err(ClientError::Refused {
                    code,
                    reason: connected.reason_string,
                });
            }
            Ok(connected)
        }
        Some(other) => Err(ClientError::Protocol(format!(
            "expected CONNACK, got {}",
            packet_type_name(&other)
        ))),
        None => Err(ClientError::ConnectionLost),
    }
}
