//! The few packets a proxy writes on its own behalf: refusing a CONNECT and
//! telling an MQTT 5 client why its connection ends.

/// CONNACK return code 0x01: unacceptable protocol version (3.1.1 format,
/// which MQTT 3.1 clients also understand).
pub const CONNACK_UNSUPPORTED_VERSION: [u8; 4] = [0x20, 0x02, 0x00, 0x01];

/// A CONNACK that refuses the connection: `code` is a 3.1.1 return code or
/// an MQTT 5 reason code, written in the client's format.
pub fn connack_refusal(version: super::Version, code: u8) -> Vec<u8> {
    match version {
        super::Version::V3_1_1 => vec![0x20, 0x02, 0x00, code],
        super::Version::V5 => vec![0x20, 0x03, 0x00, code, 0x00],
    }
}

/// "Server unavailable" in the client's format (0x03 in 3.1.1, 0x88 in 5.0).
pub fn connack_server_unavailable(version: super::Version) -> Vec<u8> {
    match version {
        super::Version::V3_1_1 => connack_refusal(version, 0x03),
        super::Version::V5 => connack_refusal(version, REASON_SERVER_UNAVAILABLE),
    }
}

/// An MQTT 5 DISCONNECT with `reason` and no properties.
pub fn disconnect_v5(reason: u8) -> [u8; 3] {
    [0xe0, 0x01, reason]
}

/// MQTT 5 reason code 0x88: server unavailable.
pub const REASON_SERVER_UNAVAILABLE: u8 = 0x88;
