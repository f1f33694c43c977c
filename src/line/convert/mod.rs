//! Lossless conversion between MQTT packets and the protobuf messages of the
//! `MqttRelayService` contract.
//!
//! For every well-formed packet, bytes -> [`Packet`] -> protobuf -> [`Packet`]
//! -> bytes gives back the same bytes: property order, empty versus absent
//! user names and passwords, and the short forms MQTT 5 allows for reason
//! codes and properties are all kept (the last two in mqttbridge's additive
//! fields, see `proto/mqttv5.proto`).
//!
//! Protobuf arrives from the network, so the way back checks every value and
//! answers a [`ConvertError`] instead of building a packet MQTT forbids.

pub mod envelope_wire;
mod properties;
mod publish_fast_path;
mod v3;
mod v5;

pub use publish_fast_path::{PlainPublish, ReadPublish, encode_publish};

use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::mqtt::{Packet, Version, replies};

/// A protobuf message that does not describe a valid MQTT packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The message carries no packet at all.
    #[error("message carries no MQTT packet")]
    MissingPacket,
    /// A packet of the other MQTT version than the stream's.
    #[error("packet of MQTT {got} on an MQTT {expected} stream")]
    WrongVersion {
        /// The stream's version.
        expected: Version,
        /// The packet's version.
        got: Version,
    },
    /// A field holds a value MQTT does not allow.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The protobuf form of `packet`, ready for the envelope's `payload`.
pub fn packet_to_payload(packet: &Packet) -> Payload {
    match v3::to_proto(packet) {
        Some(p) => Payload::MqttV3Packet(p),
        None => Payload::MqttV5Packet(v5::to_proto(packet)),
    }
}

/// The packet an envelope's `payload` carries, checked against the version
/// of the stream. Session control messages are not packets: `MissingPacket`.
pub fn payload_to_packet(payload: Payload, version: Version) -> Result<Packet, ConvertError> {
    match (payload, version) {
        (Payload::MqttV3Packet(p), Version::V3_1_1) => v3::from_proto(p),
        (Payload::MqttV5Packet(p), Version::V5) => v5::from_proto(p),
        (Payload::MqttV3Packet(_), expected) => Err(ConvertError::WrongVersion {
            expected,
            got: Version::V3_1_1,
        }),
        (Payload::MqttV5Packet(_), expected) => Err(ConvertError::WrongVersion {
            expected,
            got: Version::V5,
        }),
        (Payload::SessionControl(_), _) => Err(ConvertError::MissingPacket),
    }
}

/// A CONNACK refusing the connection with "server unavailable" (0x03 in
/// 3.1.1, 0x88 in 5.0), for when the broker cannot be reached.
pub fn connack_server_unavailable(version: Version) -> Payload {
    packet_to_payload(&replies::packet(
        version,
        &replies::connack_server_unavailable(version),
    ))
}

/// An MQTT 5 DISCONNECT "server shutting down" (0x8B), for sessions the
/// s-proxy ends when its shutdown grace period is over.
pub fn disconnect_server_shutting_down() -> Payload {
    packet_to_payload(&replies::packet(
        Version::V5,
        &replies::disconnect_v5(replies::REASON_SERVER_SHUTTING_DOWN),
    ))
}

/// Narrows a protobuf `uint32` to a 16-bit MQTT field.
fn u16_field(value: u32, name: &'static str) -> Result<u16, ConvertError> {
    u16::try_from(value).map_err(|_| ConvertError::Invalid(name))
}

/// Narrows a protobuf `uint32` to an 8-bit MQTT field.
fn u8_field(value: u32, name: &'static str) -> Result<u8, ConvertError> {
    u8::try_from(value).map_err(|_| ConvertError::Invalid(name))
}

/// A packet identifier: 16 bits and never zero.
fn packet_id(value: u32) -> Result<u16, ConvertError> {
    match u16_field(value, "message_id")? {
        0 => Err(ConvertError::Invalid("message_id")),
        id => Ok(id),
    }
}

/// A QoS from the proto enum (an `i32` on the wire).
fn qos(value: i32) -> Result<mqtt_protocol_core::mqtt::packet::Qos, ConvertError> {
    u8::try_from(value)
        .ok()
        .and_then(|v| mqtt_protocol_core::mqtt::packet::Qos::try_from(v).ok())
        .ok_or(ConvertError::Invalid("qos"))
}

/// Maps an mqtt-protocol-core builder error onto the field being built.
fn invalid<E>(name: &'static str) -> impl FnOnce(E) -> ConvertError {
    move |_| ConvertError::Invalid(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::proto::{mqttv3, mqttv5};

    #[test]
    fn proxy_replies_convert_to_the_fields_peers_expect() {
        assert_eq!(
            connack_server_unavailable(Version::V3_1_1),
            Payload::MqttV3Packet(mqttv3::MqttPacket {
                packet: Some(mqttv3::mqtt_packet::Packet::Connack(mqttv3::Connack {
                    session_present: false,
                    return_code: 0x03,
                })),
            })
        );
        let Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Connack(connack)),
        }) = connack_server_unavailable(Version::V5)
        else {
            panic!("not a v5 CONNACK");
        };
        assert_eq!(
            (connack.reason_code, connack.session_present),
            (0x88, false)
        );
        assert!(connack.properties.is_empty());
        let Payload::MqttV5Packet(mqttv5::MqttPacket {
            packet: Some(mqttv5::mqtt_packet::Packet::Disconnect(disconnect)),
        }) = disconnect_server_shutting_down()
        else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(disconnect.reason_code, 0x8b);
        assert!(disconnect.reason_code_present && !disconnect.properties_present);
        assert!(disconnect.properties.is_empty());
    }
}
