//! How a QUIC client checks who it reached, and how a failed handshake is
//! told to a user.
//!
//! BoringSSL checks the chain, the validity period and, for a DNS name, the
//! certificate's DNS names (quiche sets the name for SNI and for the check).
//! An IP literal is no server name (RFC 6066 forbids it in SNI), so for one
//! the certificate's IP addresses are compared here, on the leaf, inside the
//! verification callback: still before the handshake completes, never
//! skipped. The callback also writes down why a certificate was refused, so
//! the error names the cause (unknown CA, name or IP mismatch with both
//! sides, expiry) instead of a TLS alert number.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use boring::ssl::{SslContextBuilder, SslVerifyMode};
use boring::x509::{X509Ref, X509StoreContextRef, X509VerifyError};

/// What the client expects the server's certificate to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerIdentity {
    /// A DNS name: sent as SNI and matched against the DNS names.
    Dns(String),
    /// An IP literal: matched against the IP addresses; no SNI.
    Ip(IpAddr),
}

impl ServerIdentity {
    /// An IP literal (with or without IPv6 brackets) or else a DNS name.
    pub fn parse(name: &str) -> Self {
        match name.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => ServerIdentity::Ip(ip),
            Err(_) => ServerIdentity::Dns(name.to_string()),
        }
    }

    /// The name to send as SNI and to check, if any.
    pub fn sni(&self) -> Option<&str> {
        match self {
            ServerIdentity::Dns(name) => Some(name),
            ServerIdentity::Ip(_) => None,
        }
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerIdentity::Dns(name) => write!(f, "name '{name}'"),
            ServerIdentity::Ip(ip) => write!(f, "IP {ip}"),
        }
    }
}

/// Why this client refused the server's certificate, written by the
/// verification callback and read when the handshake fails.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport(Arc<Mutex<Option<String>>>);

impl VerifyReport {
    /// The first refusal, if any.
    pub fn refusal(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn refuse(&self, why: String) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(why);
    }
}

/// Where trusted CAs come from, for messages.
#[derive(Debug, Clone)]
pub enum TrustSource {
    /// A CA bundle file.
    File(String),
    /// The system's trust store.
    System,
}

/// Turns on verification of the server on `builder`: chain and validity by
/// BoringSSL, `identity` as described in the module doc. Returns where the
/// reason of a refusal will be found.
pub fn verify_server(
    builder: &mut SslContextBuilder,
    identity: ServerIdentity,
    trust: TrustSource,
) -> VerifyReport {
    let report = VerifyReport::default();
    let sink = report.clone();
    builder.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
        let verdict = check(ok, ctx, &identity, &trust);
        if let Err(why) = &verdict {
            sink.refuse(why.clone());
        }
        verdict.is_ok()
    });
    report
}

fn check(
    preverified: bool,
    ctx: &mut X509StoreContextRef,
    identity: &ServerIdentity,
    trust: &TrustSource,
) -> Result<(), String> {
    let at_leaf = ctx.error_depth() == 0;
    let subject = ctx.current_cert().map(describe_subject).unwrap_or_default();
    if !preverified {
        let words = match ctx.verify_result() {
            Err(error) => refusal_words(error, ctx.current_cert(), &subject, identity, trust),
            Ok(()) => format!("the server's certificate{subject} was refused"),
        };
        return Err(words);
    }
    if let (true, ServerIdentity::Ip(ip)) = (at_leaf, identity) {
        let leaf = ctx
            .current_cert()
            .ok_or_else(|| "the server sent no certificate".to_string())?;
        if !ip_addresses(leaf).contains(ip) {
            return Err(format!(
                "IP mismatch: connected to {ip}, but the server's certificate{subject} is for {}",
                names_of(Some(leaf))
            ));
        }
    }
    Ok(())
}

fn refusal_words(
    error: X509VerifyError,
    cert: Option<&X509Ref>,
    subject: &str,
    identity: &ServerIdentity,
    trust: &TrustSource,
) -> String {
    let trusted = match trust {
        TrustSource::File(path) => format!("the CA file {path}"),
        TrustSource::System => "the system's trust store".to_string(),
    };
    match error {
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT
        | X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | X509VerifyError::UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | X509VerifyError::SELF_SIGNED_CERT_IN_CHAIN
        | X509VerifyError::DEPTH_ZERO_SELF_SIGNED_CERT => format!(
            "unknown CA: the server's certificate{subject} is not signed by a CA in {trusted}"
        ),
        // An issuer of the same name is trusted, but its key did not sign it.
        X509VerifyError::CERT_SIGNATURE_FAILURE => format!(
            "unknown CA: the server's certificate{subject} is not signed by a CA in {trusted} \
             (one there has the issuer's name, but not its key)"
        ),
        X509VerifyError::CERT_HAS_EXPIRED => format!(
            "the server's certificate{subject} expired on {}",
            cert.map(|c| c.not_after().to_string()).unwrap_or_default()
        ),
        X509VerifyError::CERT_NOT_YET_VALID => format!(
            "the server's certificate{subject} is not valid before {}",
            cert.map(|c| c.not_before().to_string()).unwrap_or_default()
        ),
        X509VerifyError::HOSTNAME_MISMATCH | X509VerifyError::IP_ADDRESS_MISMATCH => format!(
            "name mismatch: connected to {identity}, but the server's certificate{subject} is for {}",
            names_of(cert)
        ),
        other => format!(
            "the server's certificate{subject} was refused: {}",
            other.error_string()
        ),
    }
}

fn describe_subject(cert: &X509Ref) -> String {
    let cn = cert
        .subject_name()
        .entries_by_nid(boring::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().as_utf8().ok().map(|s| s.to_string()));
    match cn {
        Some(cn) => format!(" (CN={cn})"),
        None => String::new(),
    }
}

fn ip_addresses(cert: &X509Ref) -> Vec<IpAddr> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|n| n.ipaddress())
        .filter_map(|raw| match raw.len() {
            4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
            _ => None,
        })
        .collect()
}

/// "DNS:a, IP:1.2.3.4", or a note that it names nothing.
fn names_of(cert: Option<&X509Ref>) -> String {
    let Some(cert) = cert else {
        return "nothing (no certificate)".to_string();
    };
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(|d| format!("DNS:{d}")))
                .collect()
        })
        .unwrap_or_default();
    names.extend(ip_addresses(cert).iter().map(|ip| format!("IP:{ip}")));
    if names.is_empty() {
        "no name or IP address (no subjectAltName)".to_string()
    } else {
        names.join(", ")
    }
}

/// Words for a connection closed with a TLS alert (QUIC codes 0x100 +
/// alert); `by_peer` when the other side sent it. `None` for other codes.
pub fn alert_words(by_peer: bool, code: u64) -> Option<String> {
    let alert = code.checked_sub(0x100).filter(|a| *a < 0x100)?;
    let name = match alert {
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        48 => "unknown_ca",
        49 => "access_denied",
        70 => "protocol_version",
        80 => "internal_error",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "",
    };
    let alert_label = if name.is_empty() {
        format!("TLS alert {alert}")
    } else {
        format!("TLS alert {alert} {name}")
    };
    let words = match (by_peer, alert) {
        (_, 120) => {
            "ALPN mismatch: the two sides share no application protocol (MQTT over QUIC uses 'mqtt')"
        }
        (true, 116) => "the peer requires a client certificate (give --cert and --key)",
        (true, 42..=46 | 48) => "the peer refused our certificate",
        (false, 48) => "unknown CA: the peer's certificate is not signed by a trusted CA",
        (false, 45) => "the peer's certificate has expired",
        (false, 42..=46) => "the peer's certificate was refused",
        (_, 40) => "the TLS handshake failed (no common parameters)",
        (true, _) => "the peer ended the TLS handshake",
        (false, _) => "the TLS handshake was ended here",
    };
    Some(format!("{words} ({alert_label})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_are_not_server_names() {
        assert_eq!(
            ServerIdentity::parse("127.0.0.1"),
            ServerIdentity::Ip([127, 0, 0, 1].into())
        );
        assert_eq!(
            ServerIdentity::parse("[::1]"),
            ServerIdentity::Ip(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(ServerIdentity::parse("::1").sni(), None);
        assert_eq!(
            ServerIdentity::parse("broker.example").sni(),
            Some("broker.example")
        );
    }

    #[test]
    fn alerts_read_as_words() {
        let words = alert_words(true, 0x174).unwrap();
        assert!(words.contains("requires a client certificate"), "{words}");
        let words = alert_words(false, 0x130).unwrap();
        assert!(words.starts_with("unknown CA"), "{words}");
        assert!(alert_words(true, 0x178).unwrap().contains("ALPN mismatch"));
        assert_eq!(alert_words(false, 0x0a), None);
    }
}
