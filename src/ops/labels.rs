//! The label sets of the metrics and the fixed lists their values come
//! from (close and refusal reasons, resume outcomes): every label value is
//! one of these or a configured upstream, so series stay bounded.

use prometheus_client::encoding::EncodeLabelSet;

/// Labels: which mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    /// r-proxy, s-proxy, scion-quic, scion-udp.
    pub mode: &'static str,
}

/// Labels: why a session closed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The mode.
    pub mode: &'static str,
    /// What ended it.
    pub reason: &'static str,
}

/// Labels: one direction of traffic, optionally per packet type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    /// The mode.
    pub mode: &'static str,
    /// `client_to_broker` or `broker_to_client`.
    pub direction: &'static str,
    /// Packet type (`publish`, `puback`, ...), or `all` for bytes.
    pub packet_type: &'static str,
}

/// Labels: which upstream (a configured s-proxy URL, or the broker).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The mode.
    pub mode: &'static str,
    /// The upstream as configured.
    pub upstream: String,
}

/// Labels: why a connection was refused before it became a session.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The mode.
    pub mode: &'static str,
    /// One of [`REFUSAL_REASONS`].
    pub reason: &'static str,
}

/// Labels of `build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    /// The crate's version.
    pub version: &'static str,
    /// `release` or `debug`.
    pub profile: &'static str,
}

/// Every reason a session closes for (the `reason` of
/// `sessions_closed_total`).
pub const CLOSE_REASONS: &[&str] = &[
    "client_closed",
    "client_lost",
    "client_error",
    "client_bad_packet",
    "broker_closed",
    "broker_error",
    "broker_bad_packet",
    "upstream_closed",
    "upstream_lost",
    "not_resumed",
    "taken_over",
    "shutdown",
    "idle",
];

/// Every reason a connection or stream is refused before it becomes a
/// session (the `reason` of `connections_refused_total`).
pub const REFUSAL_REASONS: &[&str] = &[
    "connection_limit",
    "tls_handshake",
    "connect_timeout",
    "malformed_first_packet",
    "protocol_version",
    "not_authorized",
    "upstream_unavailable",
];

/// Every outcome of a resume (the `outcome` of `resumes_total`).
pub const RESUME_OUTCOMES: &[&str] = &["resumed", "refused", "expired"];

/// What a mode's series are made for at start.
pub struct Prepared<'a> {
    /// The mode label.
    pub mode: &'static str,
    /// Packet type names it counts (none for modes that relay bytes).
    pub packet_types: &'a [&'static str],
    /// Its upstreams as configured (s-proxy URLs, or the broker).
    pub upstreams: &'a [String],
    /// Whether it resumes sessions (r-proxy, s-proxy).
    pub resumes: bool,
}

/// Labels: how an attempt ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The mode.
    pub mode: &'static str,
    /// `resumed`, `refused` or `expired`.
    pub outcome: &'static str,
}
