//! Checking a connection's first packet: it must be a CONNECT of a version
//! we carry. Shared by every mode that accepts MQTT clients.

use super::{
    CodecError, Packet, ProtocolLevel, RawPacket, Version, connect_protocol, decode, replies,
};

/// Why a first packet is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// Not a CONNECT (or too short to tell): close without answering.
    NotConnect,
    /// MQTT 3.1 (`MQIsdp`) or an unknown protocol level.
    UnsupportedVersion,
    /// A CONNECT that does not decode.
    Malformed(Version, CodecError),
}

impl ConnectRefusal {
    /// The bytes to send before closing, if any: CONNACK 0x01 for an
    /// unsupported version, a CONNACK with the reason code for a broken
    /// MQTT 5 CONNECT.
    pub fn reply(&self) -> Option<Vec<u8>> {
        match self {
            ConnectRefusal::NotConnect => None,
            ConnectRefusal::UnsupportedVersion => {
                Some(replies::CONNACK_UNSUPPORTED_VERSION.to_vec())
            }
            ConnectRefusal::Malformed(Version::V5, e) => {
                Some(replies::connack_refusal(Version::V5, e.v5_reason_code()))
            }
            ConnectRefusal::Malformed(Version::V3_1_1, _) => None,
        }
    }
}

/// The version and the decoded CONNECT, or why the packet is refused.
pub fn accept_connect(raw: &RawPacket) -> Result<(Version, Packet), ConnectRefusal> {
    if raw.packet_type() != 1 {
        return Err(ConnectRefusal::NotConnect);
    }
    let version = match connect_protocol(raw.data_as_slice()) {
        Some(ProtocolLevel::Supported(v)) => v,
        Some(ProtocolLevel::Unsupported) => return Err(ConnectRefusal::UnsupportedVersion),
        None => return Err(ConnectRefusal::NotConnect),
    };
    decode(version, raw)
        .map(|packet| (version, packet))
        .map_err(|e| ConnectRefusal::Malformed(version, e))
}

/// The keep-alive of a CONNECT packet in seconds (0 for any other packet).
pub fn keep_alive(packet: &Packet) -> u16 {
    match packet {
        Packet::V3_1_1Connect(c) => c.keep_alive(),
        Packet::V5_0Connect(c) => c.keep_alive(),
        _ => 0,
    }
}

/// The Server Keep Alive of an MQTT 5 CONNACK: the keep-alive in seconds
/// the broker holds the client to instead of the one in its CONNECT.
pub fn server_keep_alive(packet: &Packet) -> Option<u16> {
    let Packet::V5_0Connack(connack) = packet else {
        return None;
    };
    connack.props.iter().find_map(|property| match property {
        mqtt_protocol_core::mqtt::packet::Property::ServerKeepAlive(p) => Some(p.val()),
        _ => None,
    })
}

/// The client id of a CONNECT packet ("" for any other packet).
pub fn client_id(packet: &Packet) -> &str {
    match packet {
        Packet::V3_1_1Connect(c) => c.client_id(),
        Packet::V5_0Connect(c) => c.client_id(),
        _ => "",
    }
}
