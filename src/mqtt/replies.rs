//! The few packets a proxy writes on its own behalf: refusing a CONNECT and
//! telling an MQTT 5 client why its connection ends. Each is defined once,
//! as bytes; the gRPC line sends the same packets converted ([`packet`]).

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Framer, Packet, Version, decode};

/// CONNACK return code 0x01: unacceptable protocol version (3.1.1 format,
/// which MQTT 3.1 clients also understand).
pub const CONNACK_UNSUPPORTED_VERSION: [u8; 4] = [0x20, 0x02, 0x00, 0x01];

/// A CONNACK that refuses the connection: `code` is a 3.1.1 return code or
/// an MQTT 5 reason code, written in the client's format.
pub fn connack_refusal(version: Version, code: u8) -> Vec<u8> {
    match version {
        Version::V3_1_1 => vec![0x20, 0x02, 0x00, code],
        Version::V5 => vec![0x20, 0x03, 0x00, code, 0x00],
    }
}

/// "Server unavailable" in the client's format (0x03 in 3.1.1, 0x88 in 5.0).
pub fn connack_server_unavailable(version: Version) -> Vec<u8> {
    match version {
        Version::V3_1_1 => connack_refusal(version, 0x03),
        Version::V5 => connack_refusal(version, REASON_SERVER_UNAVAILABLE),
    }
}

/// An MQTT 5 DISCONNECT with `reason` and no properties.
pub fn disconnect_v5(reason: u8) -> [u8; 3] {
    [0xe0, 0x01, reason]
}

/// MQTT 5 reason code 0x8B: server shutting down.
pub const REASON_SERVER_SHUTTING_DOWN: u8 = 0x8b;

/// MQTT 5 reason code 0x88: server unavailable (valid in CONNACK only).
pub const REASON_SERVER_UNAVAILABLE: u8 = 0x88;

/// The MQTT 5 DISCONNECT sent when the way to the broker is lost: reason
/// 0x80 (unspecified error) with the reason string "upstream unavailable".
/// 0x88 would say it better, but MQTT 5 allows 0x88 only in CONNACK and
/// strict clients treat a DISCONNECT carrying it as malformed.
pub const DISCONNECT_UPSTREAM_LOST: &[u8] = b"\xe0\x19\x80\x17\x1f\x00\x14upstream unavailable";

/// The MQTT 5 DISCONNECT sent when the stream to the s-proxy broke and the
/// s-proxy refused to resume the session (unknown, expired, restarted):
/// reason 0x80 with the reason string "session could not be resumed".
pub const DISCONNECT_NOT_RESUMED: &[u8] =
    b"\xe0\x21\x80\x1f\x1f\x00\x1csession could not be resumed";

/// Refuses a client whose broker (or s-proxy) cannot be reached: CONNACK
/// "server unavailable" in its format, then the stream is closed. Write
/// errors are ignored: the client may be gone already.
pub async fn refuse_server_unavailable<W: AsyncWrite + Unpin>(wr: &mut W, version: Version) {
    let _ = wr.write_all(&connack_server_unavailable(version)).await;
    let _ = wr.shutdown().await;
}

/// One of this module's replies as a decoded packet, for paths that carry
/// packets rather than bytes.
pub fn packet(version: Version, reply: &[u8]) -> Packet {
    // Every reply here decodes; `replies_are_valid_packets` checks each.
    try_packet(version, reply).expect("replies are valid MQTT packets")
}

fn try_packet(version: Version, bytes: &[u8]) -> Option<Packet> {
    let mut buf = BytesMut::from(bytes);
    let raw = Framer::new(1024).next_packet(&mut buf).ok()??;
    if !buf.is_empty() {
        return None;
    }
    decode(version, &raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(version: Version, bytes: &[u8]) -> Packet {
        try_packet(version, bytes).expect("a valid packet")
    }

    #[test]
    fn replies_are_valid_packets() {
        assert!(matches!(
            parse(Version::V3_1_1, &CONNACK_UNSUPPORTED_VERSION),
            Packet::V3_1_1Connack(_)
        ));
        for version in [Version::V3_1_1, Version::V5] {
            assert!(matches!(
                parse(version, &connack_server_unavailable(version)),
                Packet::V3_1_1Connack(_) | Packet::V5_0Connack(_)
            ));
        }
        assert!(matches!(
            parse(Version::V5, &disconnect_v5(0x81)),
            Packet::V5_0Disconnect(_)
        ));
        let Packet::V5_0Disconnect(d) = parse(Version::V5, DISCONNECT_UPSTREAM_LOST) else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(d.reason_code().map(|c| c as u8), Some(0x80));
        let Packet::V5_0Disconnect(d) = parse(Version::V5, DISCONNECT_NOT_RESUMED) else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(d.reason_code().map(|c| c as u8), Some(0x80));
        assert!(format!("{d:?}").contains("session could not be resumed"));
    }
}
