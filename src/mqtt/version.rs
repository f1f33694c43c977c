//! Which MQTT protocol a connection speaks, read from its CONNECT packet.

use std::fmt;

/// The two MQTT versions mqttbridge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V3_1_1,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_1_1 => "3.1.1",
            Version::V5 => "5.0",
        })
    }
}

/// What the protocol name and level of a CONNECT packet announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolLevel {
    /// A version mqttbridge carries.
    Supported(Version),
    /// MQTT 3.1 (`MQIsdp`, level 3) or an unknown name/level: refused with
    /// CONNACK return code 0x01 (unacceptable protocol version).
    Unsupported,
}

/// Reads the protocol name and level from the body of a CONNECT packet
/// (the bytes after the fixed header). `None` when the body is too short to
/// hold them, which makes the packet malformed.
pub fn connect_protocol(body: &[u8]) -> Option<ProtocolLevel> {
    let name_len = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let name = body.get(2..2 + name_len)?;
    let level = *body.get(2 + name_len)?;
    Some(match (name, level) {
        (b"MQTT", 4) => ProtocolLevel::Supported(Version::V3_1_1),
        (b"MQTT", 5) => ProtocolLevel::Supported(Version::V5),
        _ => ProtocolLevel::Unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_levels() {
        assert_eq!(
            connect_protocol(b"\x00\x04MQTT\x04\x02\x00\x3c"),
            Some(ProtocolLevel::Supported(Version::V3_1_1))
        );
        assert_eq!(
            connect_protocol(b"\x00\x04MQTT\x05"),
            Some(ProtocolLevel::Supported(Version::V5))
        );
        assert_eq!(
            connect_protocol(b"\x00\x06MQIsdp\x03"),
            Some(ProtocolLevel::Unsupported)
        );
        assert_eq!(connect_protocol(b"\x00\x04MQ"), None);
        assert_eq!(connect_protocol(b""), None);
    }
}
