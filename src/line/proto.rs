//! Generated protobuf types and gRPC stubs for the `MqttRelayService` wire
//! contract (see `proto/`). Module names follow the proto packages because
//! the generated code refers to its siblings by package name.

#![allow(clippy::all, missing_docs)]

/// Envelope, session control and the relay service (package `mqtt`).
pub mod mqtt {
    tonic::include_proto!("mqtt");
}

/// MQTT 3.1.1 packets (package `mqttv3`).
pub mod mqttv3 {
    tonic::include_proto!("mqttv3");
}

/// MQTT 5.0 packets (package `mqttv5`).
pub mod mqttv5 {
    tonic::include_proto!("mqttv5");
}

#[cfg(test)]
impl mqtt::MqttStreamMessage {
    /// An envelope with only its sequence number set, for tests.
    pub fn numbered(sequence_id: u64) -> Self {
        Self {
            sequence_id,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod wire_contract {
    //! Golden bytes for the control messages, written out by hand from the
    //! upstream numbering (ESTABLISHV3 = 0, ESTABLISHV5 = 1, TERMINATE = 2,
    //! HEARTBEAT = 3). A round trip through our own types would pass
    //! whatever the numbers were; these bytes are what the seed system's
    //! proxies read and write.

    use prost::Message;

    use super::mqtt::mqtt_stream_message::Payload;
    use super::mqtt::session_control::ControlType;
    use super::mqtt::{MqttStreamMessage, SessionControl};

    fn control(control_type: ControlType) -> Vec<u8> {
        MqttStreamMessage {
            payload: Some(Payload::SessionControl(SessionControl {
                control_type: control_type as i32,
                client_id: String::new(),
            })),
            ..Default::default()
        }
        .encode_to_vec()
    }

    // Field 50, length-delimited: tag (50 << 3 | 2) = 402 = varint 92 03.
    #[test]
    fn control_types_encode_with_the_upstream_numbers() {
        // Field 1 = varint 1.
        assert_eq!(
            control(ControlType::Establishv5),
            [0x92, 0x03, 0x02, 0x08, 0x01]
        );
        assert_eq!(
            control(ControlType::Terminate),
            [0x92, 0x03, 0x02, 0x08, 0x02]
        );
        assert_eq!(
            control(ControlType::Heartbeat),
            [0x92, 0x03, 0x02, 0x08, 0x03]
        );
        // 0 is proto3's default: an empty SessionControl.
        assert_eq!(control(ControlType::Establishv3), [0x92, 0x03, 0x00]);
    }

    #[test]
    fn a_session_id_from_an_older_peer_is_ignored() {
        // Field 1 = "s1" (the old envelope layout), then a HEARTBEAT.
        let old = [0x0a, 0x02, b's', b'1', 0x92, 0x03, 0x02, 0x08, 0x03];
        let message = MqttStreamMessage::decode(&old[..]).expect("decodes");
        let Some(Payload::SessionControl(control)) = message.payload else {
            panic!("expected a session control, got {:?}", message.payload);
        };
        assert_eq!(control.control_type(), ControlType::Heartbeat);
    }
}
