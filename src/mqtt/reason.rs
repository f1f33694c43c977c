//! Names for the codes a broker answers with: MQTT 3.1.1 CONNACK return
//! codes (1 to 5) and MQTT 5 reason codes (0x80 and up), so that a refusal
//! reads "0x87 not authorized" rather than a bare number.
//!
//! The two ranges do not overlap for failures, so one table serves both
//! versions. 3.1.1's SUBACK failure, 0x80, reads as MQTT 5's "unspecified
//! error", which is what it means.

/// The name of a failure code from CONNACK, PUBACK, PUBREC, SUBACK or
/// UNSUBACK; "unknown code" for a value neither version defines.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        // MQTT 3.1.1 CONNACK return codes.
        0x01 => "unacceptable protocol version",
        0x02 => "identifier rejected",
        0x03 => "server unavailable",
        0x04 => "bad user name or password",
        0x05 => "not authorized",
        // MQTT 5 reason codes.
        0x10 => "no matching subscribers",
        0x11 => "no subscription existed",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8C => "bad authentication method",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x95 => "packet too large",
        0x97 => "quota exceeded",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "QoS not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9E => "shared subscriptions not supported",
        0x9F => "connection rate exceeded",
        0xA1 => "subscription identifiers not supported",
        0xA2 => "wildcard subscriptions not supported",
        _ => "unknown code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_have_names() {
        assert_eq!(reason_name(0x05), "not authorized");
        assert_eq!(reason_name(0x87), "not authorized");
        assert_eq!(reason_name(0x80), "unspecified error");
        assert_eq!(reason_name(0x97), "quota exceeded");
        assert_eq!(reason_name(0x42), "unknown code");
    }
}
