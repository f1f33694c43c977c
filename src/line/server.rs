//! The s-proxy's side of the line, what any `MqttRelayService` server must
//! do with a new stream before its session starts: check the bearer token,
//! read where the stream comes from (request metadata), and wait for the
//! session's CONNECT.

use std::net::SocketAddr;

use futures_util::{Stream, StreamExt};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::Received;
use super::convert::payload_to_packet;
use super::grpc::PeerInfo;
use super::proto::mqtt::mqtt_stream_message::Payload;
use super::{CLIENT_ADDR_KEY, SESSION_ID_KEY};
use crate::mqtt::{Packet, Version};

/// Refuses a stream without one of `tokens` in its `authorization`
/// metadata; with no tokens configured every stream passes.
pub fn check_token(metadata: &MetadataMap, tokens: &[String]) -> Result<(), Status> {
    if tokens.is_empty() {
        return Ok(());
    }
    let presented = metadata.get("authorization").and_then(|v| v.to_str().ok());
    if token_accepted(tokens, presented) {
        Ok(())
    } else {
        Err(Status::unauthenticated("a valid bearer token is required"))
    }
}

/// Where a stream comes from, as its request metadata says.
pub struct StreamOrigin {
    /// The r-proxy's session id (at most 64 characters), for logs only:
    /// the s-proxy's own stays unique.
    pub peer_session: String,
    /// The MQTT client's address as the r-proxy saw it; else the r-proxy's.
    pub client: SocketAddr,
}

impl StreamOrigin {
    /// Reads the request's `metadata`; what is missing or malformed falls
    /// back (empty session id, the r-proxy's own address, `peer`'s).
    pub fn of(metadata: &MetadataMap, peer: &PeerInfo) -> Self {
        let peer_session = metadata
            .get(SESSION_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(64)
            .collect::<String>();
        let client = metadata
            .get(CLIENT_ADDR_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<SocketAddr>().ok())
            .or(peer.remote)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Self {
            peer_session,
            client,
        }
    }
}

/// Waits for the session's CONNECT: an optional SessionControl first, then
/// the CONNECT packet, whose envelope kind (v3 or v5) gives the version.
pub async fn read_connect<S>(inbound: &mut S) -> Result<(Version, Packet), Status>
where
    S: Stream<Item = Result<Received<'static>, Status>> + Unpin,
{
    loop {
        let message = inbound
            .next()
            .await
            .transpose()?
            .ok_or_else(|| Status::cancelled("stream ended before CONNECT"))?
            .into_envelope();
        let payload = message
            .payload
            .ok_or_else(|| Status::invalid_argument("message without payload"))?;
        let version = match &payload {
            Payload::SessionControl(_) => continue,
            Payload::MqttV3Packet(_) => Version::V3_1_1,
            Payload::MqttV5Packet(_) => Version::V5,
        };
        let packet = payload_to_packet(payload, version)
            .map_err(|e| Status::invalid_argument(format!("first packet: {e}")))?;
        if !matches!(packet, Packet::V3_1_1Connect(_) | Packet::V5_0Connect(_)) {
            return Err(Status::invalid_argument("first packet is not CONNECT"));
        }
        return Ok((version, packet));
    }
}

/// Whether `presented` (an `authorization` header) carries one of `tokens`,
/// compared in constant time.
fn token_accepted(tokens: &[String], presented: Option<&str>) -> bool {
    let Some(token) = presented.and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    tokens.iter().fold(false, |ok, t| {
        ok | constant_time_eq(t.as_bytes(), token.as_bytes())
    })
}

/// Constant-time equality for equal lengths (a length mismatch says nothing
/// about the content).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_matched_whole() {
        let tokens = vec!["secret".to_string(), "other".to_string()];
        assert!(token_accepted(&tokens, Some("Bearer secret")));
        assert!(token_accepted(&tokens, Some("Bearer other")));
        assert!(!token_accepted(&tokens, Some("Bearer secre")));
        assert!(!token_accepted(&tokens, Some("secret")));
        assert!(!token_accepted(&tokens, None));
        let mut metadata = MetadataMap::new();
        assert!(check_token(&metadata, &tokens).is_err());
        metadata.insert("authorization", "Bearer secret".parse().unwrap());
        assert!(check_token(&metadata, &tokens).is_ok());
        assert!(
            check_token(&MetadataMap::new(), &[]).is_ok(),
            "no tokens, no check"
        );
    }
}
