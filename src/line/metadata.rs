//! What both ends of the gRPC line agree on besides the envelopes: request
//! metadata keys and their encoding, session ids, HTTP/2 keep-alive,
//! message size limits and bearer tokens.

use std::fmt::Write;

/// The gRPC service name the relay serves, as `grpc.health.v1` names it.
pub const RELAY_SERVICE: &str = "mqtt.MqttRelayService";

/// The relay's one method (see `proto/`).
pub const RELAY_METHOD: &str = "/mqtt.MqttRelayService/StreamMqttMessages";

/// Request metadata key holding the stream's unique session id.
pub const SESSION_ID_KEY: &str = "session-id";
/// Request metadata key holding the MQTT client's address as the r-proxy
/// saw it (`IP:port`), for logs and the PROXY protocol towards the broker.
pub const CLIENT_ADDR_KEY: &str = "client-addr";
/// Request metadata key holding the MQTT client id (percent-encoded outside
/// printable ASCII, since MQTT 5 allows any UTF-8).
pub const CLIENT_ID_KEY: &str = "client-id";

/// HTTP/2 keep-alive on a gRPC connection: a PING after `interval` without
/// one, and the connection (with every stream on it) is closed when no
/// answer comes within `timeout`. This is how a proxy learns that the
/// network between the proxies is gone, which TCP alone may not notice for
/// many minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between pings.
    pub interval: std::time::Duration,
    /// How long a ping may go unanswered.
    pub timeout: std::time::Duration,
}

/// gRPC message size limit for a given MQTT packet limit: protobuf can be
/// larger than the packet it carries (field tags, one message per property),
/// never more than twice as large plus the envelope.
pub fn max_message_size(max_packet_size: u32) -> usize {
    (max_packet_size as usize).saturating_mul(2) + 64 * 1024
}

/// A fresh random session id (128 bits, hex).
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Percent-encodes every byte outside printable ASCII (and `%` itself), so
/// any client id fits an ASCII metadata value.
pub fn encode_client_id(client_id: &str) -> String {
    let mut out = String::with_capacity(client_id.len());
    for &b in client_id.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Bearer tokens, one per line; blank lines and `#` comments are skipped.
pub fn read_tokens(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    anyhow::ensure!(!tokens.is_empty(), "{} holds no token", path.display());
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_become_ascii() {
        assert_eq!(encode_client_id("dev-1"), "dev-1");
        assert_eq!(encode_client_id("a b%"), "a%20b%25");
        assert_eq!(encode_client_id("ü"), "%C3%BC");
        assert!(
            tonic::metadata::MetadataValue::try_from(encode_client_id("\u{0}€\n").as_str()).is_ok()
        );
    }
}
