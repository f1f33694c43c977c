//! How the two ends agree on resumption, in request and response metadata
//! (peers that know nothing of it ignore these keys and relay as before):
//!
//! - a new stream from an r-proxy that can resume carries
//!   `mqttbridge-resume: 1`; an s-proxy that grants it answers with
//!   `mqttbridge-resume-token`, an unguessable token for this session;
//! - with the offer and with the grant, each side names its replay buffer
//!   (`mqttbridge-resume-buffer`, bytes), so the other acknowledges before
//!   half of it is waiting; a side that does not name it is taken to hold
//!   at least 128 KiB;
//! - a resume is a new stream carrying `mqttbridge-resume-token` and
//!   `mqttbridge-resume-received` (the last sequence the r-proxy received);
//!   the s-proxy answers with its own `mqttbridge-resume-received` and the
//!   session's next token (each token works once).
//!
//! A token is bound to the peer that opened the session: its client
//! certificate, else its bearer token ([`Owner`]).

use std::fmt::Write;

use tonic::metadata::MetadataMap;

/// Request metadata: the r-proxy can resume this session.
pub const RESUME_OFFER_KEY: &str = "mqttbridge-resume";
/// Response metadata: the session's resume token; request metadata: the
/// session to resume.
pub const RESUME_TOKEN_KEY: &str = "mqttbridge-resume-token";
/// With the offer (request) and the grant (response): the sender's replay
/// buffer in bytes.
pub const RESUME_BUFFER_KEY: &str = "mqttbridge-resume-buffer";
/// Both ways on a resume: the highest sequence the sender of the metadata
/// has received; the other end replays what follows.
pub const RESUME_RECEIVED_KEY: &str = "mqttbridge-resume-received";

/// A fresh resume token: 256 random bits, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut token = String::with_capacity(64);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(token, "{b:02x}");
    }
    token
}

/// Who opened a session, as far as the s-proxy can tell: a digest of the
/// client certificate the r-proxy presented, else of its bearer token.
/// `None` (plaintext without tokens) binds to nothing but the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner([u8; 32]);

impl Owner {
    /// The owner of a stream with `certificate` (DER of the peer's
    /// end-entity certificate) and `metadata`.
    pub fn of(certificate: Option<&[u8]>, metadata: &MetadataMap) -> Option<Owner> {
        let identity = match certificate {
            Some(der) => [b"certificate:".as_slice(), der].concat(),
            None => {
                let bearer = metadata.get("authorization")?.as_bytes();
                [b"bearer:".as_slice(), bearer].concat()
            }
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &identity);
        let mut owner = [0; 32];
        owner.copy_from_slice(digest.as_ref());
        Some(Owner(owner))
    }
}

/// A number from metadata `key`, if present and well formed.
pub fn read_number(metadata: &MetadataMap, key: &str) -> Option<u64> {
    metadata.get(key)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn owners_differ_by_certificate_or_token() {
        let mut first = MetadataMap::new();
        first.insert("authorization", "Bearer one".parse().unwrap());
        let mut second = MetadataMap::new();
        second.insert("authorization", "Bearer two".parse().unwrap());
        let nobody = MetadataMap::new();
        assert_eq!(Owner::of(None, &nobody), None);
        assert_ne!(Owner::of(None, &first), Owner::of(None, &second));
        assert_eq!(Owner::of(None, &first), Owner::of(None, &first.clone()));
        assert_ne!(
            Owner::of(Some(b"cert-a"), &first),
            Owner::of(Some(b"cert-b"), &first),
            "the certificate decides when there is one"
        );
    }
}
