//! Stateless retry tokens (RFC 9000 8.1.2), bound to the client's full
//! address (for SCION: ISD-AS, IP and port) and valid for a limited time.
//!
//! Token: expiry (8 bytes, seconds since the Unix epoch) | original
//! destination connection id length (1) | the id | HMAC-SHA256 over the
//! address, the expiry and the id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

/// Mints and checks retry tokens with a key of its own.
pub struct RetryTokens {
    key: hmac::Key,
    lifetime: Duration,
}

impl RetryTokens {
    /// A fresh random key; tokens expire after `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            lifetime,
        }
    }

    /// A token for `peer` (its full address, as text) and the client's
    /// original destination connection id.
    pub fn mint(&self, peer: &str, odcid: &[u8], now: SystemTime) -> Vec<u8> {
        let expiry = unix_seconds(now + self.lifetime);
        let mut token = Vec::with_capacity(8 + 1 + odcid.len() + 32);
        token.extend_from_slice(&expiry.to_be_bytes());
        token.push(odcid.len() as u8);
        token.extend_from_slice(odcid);
        token.extend_from_slice(hmac::sign(&self.key, &signed_bytes(peer, expiry, odcid)).as_ref());
        token
    }

    /// The original destination connection id, if `token` was minted by us
    /// for this exact `peer` and has not expired.
    pub fn validate<'t>(&self, peer: &str, token: &'t [u8], now: SystemTime) -> Option<&'t [u8]> {
        let expiry = u64::from_be_bytes(token.get(..8)?.try_into().ok()?);
        let len = *token.get(8)? as usize;
        let odcid = token.get(9..9 + len)?;
        let mac = token.get(9 + len..)?;
        hmac::verify(&self.key, &signed_bytes(peer, expiry, odcid), mac).ok()?;
        (unix_seconds(now) <= expiry).then_some(odcid)
    }
}

/// What the MAC covers; the address is length-prefixed so that no two
/// (address, expiry, id) triples give the same bytes.
fn signed_bytes(peer: &str, expiry: u64, odcid: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + peer.len() + 8 + odcid.len());
    bytes.extend_from_slice(&(peer.len() as u64).to_be_bytes());
    bytes.extend_from_slice(peer.as_bytes());
    bytes.extend_from_slice(&expiry.to_be_bytes());
    bytes.extend_from_slice(odcid);
    bytes
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "1-ff00:0:132,[10.0.0.1]:4433";

    #[test]
    fn accepts_own_token_for_same_peer() {
        let tokens = RetryTokens::new(Duration::from_secs(30));
        let now = SystemTime::now();
        let token = tokens.mint(PEER, b"odcid-123", now);
        assert_eq!(tokens.validate(PEER, &token, now), Some(&b"odcid-123"[..]));
    }

    #[test]
    fn refuses_other_port_ip_or_isd_as() {
        let tokens = RetryTokens::new(Duration::from_secs(30));
        let now = SystemTime::now();
        let token = tokens.mint(PEER, b"id", now);
        for other in [
            "1-ff00:0:132,[10.0.0.1]:4434",
            "1-ff00:0:132,[10.0.0.2]:4433",
            "2-ff00:0:132,[10.0.0.1]:4433",
        ] {
            assert_eq!(tokens.validate(other, &token, now), None, "{other}");
        }
    }

    #[test]
    fn refuses_expired_forged_and_truncated() {
        let tokens = RetryTokens::new(Duration::from_secs(30));
        let now = SystemTime::now();
        let token = tokens.mint(PEER, b"id", now);
        assert_eq!(
            tokens.validate(PEER, &token, now + Duration::from_secs(31)),
            None
        );
        let mut forged = token.clone();
        forged[0] ^= 1;
        assert_eq!(tokens.validate(PEER, &forged, now), None);
        let other_key = RetryTokens::new(Duration::from_secs(30));
        assert_eq!(other_key.validate(PEER, &token, now), None);
        for cut in 0..token.len() {
            assert_eq!(tokens.validate(PEER, &token[..cut], now), None);
        }
    }
}
