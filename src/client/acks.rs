//! What a packet from the broker answers, in either MQTT version: the
//! acknowledgement of which request, with its reason code, reason string
//! and user properties as the caller sees them ([`Ack`] or a refusal).

use mqtt_protocol_core::mqtt::packet::Property;

use super::options::{Ack, ClientError};
use crate::mqtt::{Packet, packet_type_name};

/// A packet from the broker other than PUBLISH.
pub(super) enum Answer {
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) ends a publish.
    Publish {
        id: u16,
        qos: u8,
        ack: Result<Ack, ClientError>,
    },
    /// PUBREC: the broker has a QoS 2 message.
    Received {
        id: u16,
        ack: Result<Ack, ClientError>,
    },
    /// PUBREL: a QoS 2 message to us may be forgotten.
    Release {
        id: u16,
    },
    Subscribe {
        id: u16,
        ack: Result<Ack, ClientError>,
    },
    Unsubscribe {
        id: u16,
        ack: Result<Ack, ClientError>,
    },
    Pong,
    /// MQTT 5 DISCONNECT from the broker.
    Disconnect {
        code: u8,
        reason: Option<String>,
    },
    /// Nothing a client expects; named for the log.
    Other(&'static str),
}

/// The reason string and user properties of an MQTT 5 acknowledgement.
fn details(code: u8, properties: &[Property]) -> Result<Ack, ClientError> {
    let mut ack = Ack {
        reason_code: code,
        ..Ack::default()
    };
    for property in properties {
        match property {
            Property::ReasonString(p) => ack.reason_string = Some(p.val().to_string()),
            Property::UserProperty(p) => ack
                .user_properties
                .push((p.key().to_string(), p.val().to_string())),
            _ => {}
        }
    }
    if code >= 0x80 {
        return Err(ClientError::Rejected {
            code,
            reason: ack.reason_string,
        });
    }
    Ok(ack)
}

fn plain(code: u8) -> Result<Ack, ClientError> {
    details(code, &[])
}

/// What `packet` answers.
pub(super) fn answer(packet: Packet) -> Answer {
    match packet {
        Packet::V3_1_1Puback(p) => Answer::Publish {
            id: p.packet_id(),
            qos: 1,
            ack: plain(0),
        },
        Packet::V5_0Puback(p) => Answer::Publish {
            id: p.packet_id(),
            qos: 1,
            ack: details(
                p.reason_code().map_or(0, |c| c as u8),
                p.props.as_deref().unwrap_or_default(),
            ),
        },
        Packet::V3_1_1Pubrec(p) => Answer::Received {
            id: p.packet_id(),
            ack: plain(0),
        },
        Packet::V5_0Pubrec(p) => Answer::Received {
            id: p.packet_id(),
            ack: details(
                p.reason_code().map_or(0, |c| c as u8),
                p.props.as_deref().unwrap_or_default(),
            ),
        },
        Packet::V3_1_1Pubcomp(p) => Answer::Publish {
            id: p.packet_id(),
            qos: 2,
            ack: plain(0),
        },
        Packet::V5_0Pubcomp(p) => Answer::Publish {
            id: p.packet_id(),
            qos: 2,
            ack: details(
                p.reason_code().map_or(0, |c| c as u8),
                p.props.as_deref().unwrap_or_default(),
            ),
        },
        Packet::V3_1_1Pubrel(p) => Answer::Release { id: p.packet_id() },
        Packet::V5_0Pubrel(p) => Answer::Release { id: p.packet_id() },
        Packet::V3_1_1Suback(s) => Answer::Subscribe {
            id: s.packet_id(),
            ack: plain(s.return_codes().first().map_or(0x80, |c| *c as u8)),
        },
        Packet::V5_0Suback(s) => Answer::Subscribe {
            id: s.packet_id(),
            ack: details(
                s.reason_codes().first().map_or(0x80, |c| *c as u8),
                &s.props,
            ),
        },
        Packet::V3_1_1Unsuback(u) => Answer::Unsubscribe {
            id: u.packet_id(),
            ack: plain(0),
        },
        Packet::V5_0Unsuback(u) => Answer::Unsubscribe {
            id: u.packet_id(),
            ack: details(u.reason_codes().first().map_or(0, |c| *c as u8), &u.props),
        },
        Packet::V3_1_1Pingresp(_) | Packet::V5_0Pingresp(_) => Answer::Pong,
        Packet::V5_0Disconnect(d) => Answer::Disconnect {
            code: d.reason_code().map_or(0, |c| c as u8),
            reason: d.props.as_deref().and_then(|list| {
                list.iter().find_map(|p| match p {
                    Property::ReasonString(r) => Some(r.val().to_string()),
                    _ => None,
                })
            }),
        },
        other => Answer::Other(packet_type_name(&other)),
    }
}

#[cfg(test)]
mod tests {
    use mqtt_protocol_core::mqtt::packet::{ReasonString, UserProperty, v5_0};
    use mqtt_protocol_core::mqtt::result_code::PubackReasonCode;

    use super::*;

    fn puback(code: PubackReasonCode) -> Packet {
        Packet::V5_0Puback(
            v5_0::Puback::builder()
                .packet_id(9u16)
                .reason_code(code)
                .props(vec![
                    Property::ReasonString(ReasonString::new("quota of 10/s").unwrap()),
                    Property::UserProperty(UserProperty::new("retry", "later").unwrap()),
                ])
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn reason_strings_and_user_properties_reach_the_caller() {
        let Answer::Publish { id, qos, ack } = answer(puback(PubackReasonCode::QuotaExceeded))
        else {
            panic!("a PUBACK answers a publish");
        };
        assert_eq!((id, qos), (9, 1));
        let error = ack.unwrap_err();
        assert_eq!(error.reason_code(), Some(0x97));
        assert_eq!(
            error.to_string(),
            "request refused by the broker: 0x97 quota exceeded (\"quota of 10/s\")"
        );

        let Answer::Publish { ack, .. } = answer(puback(PubackReasonCode::NoMatchingSubscribers))
        else {
            panic!("a PUBACK answers a publish");
        };
        let ack = ack.unwrap();
        assert_eq!(ack.reason_code, 0x10);
        assert_eq!(ack.reason_string.as_deref(), Some("quota of 10/s"));
        assert_eq!(ack.user_properties, [("retry".into(), "later".into())]);
    }
}
