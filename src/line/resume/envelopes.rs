//! The envelopes a resumable line reads or makes itself: pings it answers
//! or sends during a gap, TERMINATE that ends a session on purpose, and the
//! acknowledgement that carries nothing else.

use super::replay::ENVELOPE_OVERHEAD;
use crate::line::Received;
use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::mqtt::session_control::ControlType;
use crate::line::proto::mqtt::{MessageDirection, MqttStreamMessage, SessionControl};
use crate::line::proto::{mqttv3, mqttv5};
use crate::mqtt::Version;

/// Which ping an envelope holds, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    Request,
    Response,
}

/// The ping `message` carries, in either MQTT version.
pub fn ping_of(message: &MqttStreamMessage) -> Option<Ping> {
    use mqttv3::mqtt_packet::Packet as P3;
    use mqttv5::mqtt_packet::Packet as P5;
    match message.payload.as_ref()? {
        Payload::MqttV3Packet(p) => match p.packet.as_ref()? {
            P3::Pingreq(_) => Some(Ping::Request),
            P3::Pingresp(_) => Some(Ping::Response),
            _ => None,
        },
        Payload::MqttV5Packet(p) => match p.packet.as_ref()? {
            P5::Pingreq(_) => Some(Ping::Request),
            P5::Pingresp(_) => Some(Ping::Response),
            _ => None,
        },
        Payload::SessionControl(_) => None,
    }
}

/// An unnumbered envelope holding `ping` in `version`'s form.
pub fn ping(version: Version, ping: Ping, direction: MessageDirection) -> MqttStreamMessage {
    use mqttv3::mqtt_packet::Packet as P3;
    use mqttv5::mqtt_packet::Packet as P5;
    let payload = match (version, ping) {
        (Version::V3_1_1, Ping::Request) => Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(P3::Pingreq(mqttv3::Pingreq {})),
        }),
        (Version::V3_1_1, Ping::Response) => Payload::MqttV3Packet(mqttv3::MqttPacket {
            packet: Some(P3::Pingresp(mqttv3::Pingresp {})),
        }),
        (Version::V5, Ping::Request) => Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(P5::Pingreq(mqttv5::Pingreq {})),
        }),
        (Version::V5, Ping::Response) => Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(P5::Pingresp(mqttv5::Pingresp {})),
        }),
    };
    MqttStreamMessage {
        sequence_id: 0,
        direction: direction as i32,
        payload: Some(payload),
        acknowledged: 0,
    }
}

/// Whether `message` is a TERMINATE: the peer ends the session on purpose.
pub fn is_terminate(message: &MqttStreamMessage) -> bool {
    matches!(&message.payload, Some(Payload::SessionControl(c))
        if c.control_type() == ControlType::Terminate)
}

/// The TERMINATE payload that ends a session on purpose.
pub fn terminate() -> Payload {
    Payload::SessionControl(SessionControl {
        control_type: ControlType::Terminate as i32,
        client_id: String::new(),
    })
}

/// An acknowledgement alone: unnumbered, a HEARTBEAT carrying `received`.
pub fn acknowledgement(direction: MessageDirection, received: u64) -> MqttStreamMessage {
    MqttStreamMessage {
        sequence_id: 0,
        direction: direction as i32,
        payload: Some(Payload::SessionControl(SessionControl {
            control_type: ControlType::Heartbeat as i32,
            client_id: String::new(),
        })),
        acknowledged: received,
    }
}

/// What `message` weighs, to pace acknowledgements: its encoded length
/// and [`ENVELOPE_OVERHEAD`], about what the sender's replay buffer counts
/// for it (its MQTT packet's bytes and the same overhead): an envelope's
/// fields carry all that its packet does, properties included, in about as
/// many bytes.
pub fn weight(message: &MqttStreamMessage) -> usize {
    ENVELOPE_OVERHEAD + prost::Message::encoded_len(message)
}

/// [`weight`] of a received envelope, whichever kind.
pub fn weight_received(message: &Received<'_>) -> usize {
    match message {
        Received::Envelope(envelope) => weight(envelope),
        Received::Publish(publish) => ENVELOPE_OVERHEAD + publish.wire_len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_recognised_in_both_versions() {
        for version in [Version::V3_1_1, Version::V5] {
            for kind in [Ping::Request, Ping::Response] {
                let message = ping(version, kind, MessageDirection::BrokerToClient);
                assert_eq!(ping_of(&message), Some(kind));
                assert!(!is_terminate(&message));
            }
        }
        let ack = acknowledgement(MessageDirection::ClientToBroker, 7);
        assert_eq!(
            (ping_of(&ack), ack.sequence_id, ack.acknowledged),
            (None, 0, 7)
        );
        let end = MqttStreamMessage {
            payload: Some(terminate()),
            ..Default::default()
        };
        assert!(is_terminate(&end));
    }
}
