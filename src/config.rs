//! TOML configuration for each mode, typed and validated while it is parsed,
//! so a bad file is reported with its path, the key and the line.
//!
//! Every limit has a default; command-line flags override file values
//! (see `cli`).

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use crate::broker::{BrokerTls, BrokerUrl};
use crate::codec::DEFAULT_MAX_PACKET_SIZE;

/// A configuration file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid for this mode. The message names the key and
    /// the line.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What toml and the validators said, with line and key.
        message: String,
    },
}

/// Reads and validates a mode's configuration file.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses configuration text; `origin` names it in errors.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, origin: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: origin.to_string(),
        message: describe_toml_error(&e, text),
    })
}

/// toml's message with the line number made explicit, e.g.
/// "line 3, key `max_packet_size`: invalid value ...".
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let key = e
        .span()
        .and_then(|span| key_on_line(text, span.start))
        .map(|k| format!(", key `{k}`"))
        .unwrap_or_default();
    match line {
        Some(line) => format!("line {line}{key}: {}", e.message()),
        None => e.message().to_string(),
    }
}

/// The key assigned on the line that holds byte `offset`, if that line is a
/// `key = value` line.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

/// A `host:port` that may be a name (resolved when used) or an IP address,
/// IPv6 in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(String);

impl HostPort {
    /// The text form, as `tokio::net` accepts it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        let host = self.0.rsplit_once(':').map_or("", |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not host:port"))?;
        port.parse::<u16>()
            .map_err(|_| format!("`{s}` has no valid port"))?;
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty() && !host.contains(':')
        };
        if !host_ok {
            return Err(format!(
                "`{s}` has no valid host (write IPv6 addresses in brackets)"
            ));
        }
        Ok(HostPort(s.to_string()))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An s-proxy endpoint URL: `https://host:port` (TLS) or `http://host:port`
/// (plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl(String);

impl UpstreamUrl {
    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UpstreamUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| format!("`{s}` must start with https:// or http://"))?;
        HostPort::from_str(rest.trim_end_matches('/'))
            .map_err(|e| format!("upstream `{s}`: {e}"))?;
        Ok(UpstreamUrl(s.to_string()))
    }
}

impl UpstreamUrl {
    /// Whether the URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A duration written in milliseconds in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub NonZeroU32);

impl Millis {
    /// Only used in `const` blocks, so a zero is a compile error.
    const fn of(ms: u32) -> Self {
        match NonZeroU32::new(ms) {
            Some(v) => Millis(v),
            None => panic!("zero duration default"),
        }
    }

    /// As a `Duration`.
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0.get().into())
    }
}

/// Only used in `const` blocks, so a zero is a compile error.
const fn nonzero(v: usize) -> NonZeroUsize {
    match NonZeroUsize::new(v) {
        Some(v) => v,
        None => panic!("zero default"),
    }
}

/// Only used in `const` blocks, so a zero is a compile error.
const fn nonzero32(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(v) => v,
        None => panic!("zero default"),
    }
}

/// `r-proxy`: accepts MQTT/TCP and carries each connection to an s-proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RProxyConfig {
    /// Where MQTT clients connect.
    pub listen: HostPort,
    /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
    pub admin: Option<HostPort>,
    /// s-proxy endpoints; new connections are balanced across the healthy ones.
    pub upstream: Vec<UpstreamUrl>,
    /// Open client connections at most; more are closed on accept.
    pub max_connections: NonZeroUsize,
    /// Largest MQTT packet accepted from a client or an s-proxy, in bytes.
    pub max_packet_size: NonZeroU32,
    /// How long a new client has to send its CONNECT.
    pub connect_timeout_ms: Millis,
    /// How long opening a stream to one s-proxy may take.
    pub upstream_connect_timeout_ms: Millis,
    /// How long an s-proxy that failed is skipped for new connections.
    pub upstream_retry_ms: Millis,
    /// After a client leaves, how long to wait for the s-proxy to confirm
    /// that everything the client sent reached the broker.
    pub drain_timeout_ms: Millis,
    /// Packets buffered per connection and direction before reading pauses.
    pub queue_depth: NonZeroUsize,
    /// HTTP/2 PING towards each s-proxy after this long without one.
    pub keepalive_interval_ms: Millis,
    /// An s-proxy that leaves a PING unanswered this long is taken as gone:
    /// its streams end and their clients are closed.
    pub keepalive_timeout_ms: Millis,
    /// On SIGTERM, how long open connections may go on before they are
    /// closed (MQTT 5 clients get DISCONNECT 0x8B).
    pub shutdown_grace_ms: Millis,
    /// PEM CA bundle that `https://` s-proxies must chain to (unset: the
    /// system's roots).
    pub upstream_ca: Option<std::path::PathBuf>,
    /// TLS name to expect from s-proxies (unset: the URL's host).
    pub upstream_server_name: Option<String>,
    /// PEM client certificate presented to s-proxies (mutual TLS).
    pub upstream_cert: Option<std::path::PathBuf>,
    /// PEM key of `upstream_cert`.
    pub upstream_key: Option<std::path::PathBuf>,
    /// File holding the bearer token sent to s-proxies.
    pub auth_token_file: Option<std::path::PathBuf>,
    /// Where MQTT clients connect over TLS (e.g. `0.0.0.0:8883`).
    pub tls_listen: Option<HostPort>,
    /// PEM certificate chain of the TLS listener.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA bundle: TLS clients must present a certificate it signed.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Where MQTT clients connect over WebSocket (subprotocol `mqtt`).
    pub ws_listen: Option<HostPort>,
}

impl Default for RProxyConfig {
    fn default() -> Self {
        Self {
            listen: HostPort("0.0.0.0:1883".into()),
            admin: None,
            upstream: vec![UpstreamUrl("http://127.0.0.1:50516".into())],
            max_connections: const { nonzero(10_000) },
            max_packet_size: const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
            connect_timeout_ms: const { Millis::of(10_000) },
            upstream_connect_timeout_ms: const { Millis::of(5_000) },
            upstream_retry_ms: const { Millis::of(2_000) },
            drain_timeout_ms: const { Millis::of(5_000) },
            queue_depth: const { nonzero(64) },
            keepalive_interval_ms: const { Millis::of(20_000) },
            keepalive_timeout_ms: const { Millis::of(10_000) },
            shutdown_grace_ms: const { Millis::of(10_000) },
            upstream_ca: None,
            upstream_server_name: None,
            upstream_cert: None,
            upstream_key: None,
            auth_token_file: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            ws_listen: None,
        }
    }
}

impl RProxyConfig {
    /// Checks what parsing cannot: there is somewhere to send clients, and a
    /// client certificate comes with its key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.upstream.is_empty(), "`upstream` lists no s-proxy");
        anyhow::ensure!(
            self.upstream_cert.is_some() == self.upstream_key.is_some(),
            "`upstream_cert` and `upstream_key` go together"
        );
        anyhow::ensure!(
            self.tls_listen.is_none() || (self.tls_cert.is_some() && self.tls_key.is_some()),
            "`tls_listen` needs `tls_cert` and `tls_key`"
        );
        Ok(())
    }
}

/// `s-proxy`: serves `MqttRelayService` and opens MQTT/TCP to the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SProxyConfig {
    /// Where r-proxies (gRPC) connect.
    pub listen: HostPort,
    /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
    pub admin: Option<HostPort>,
    /// The broker every session is opened to (`host:port` or
    /// `mqtts://host:port`); never taken from the peer.
    pub broker: BrokerUrl,
    /// TLS towards an `mqtts://` broker.
    pub broker_tls: BrokerTls,
    /// Concurrent sessions at most; more streams are refused.
    pub max_sessions: NonZeroU32,
    /// Largest MQTT packet accepted from the broker or an r-proxy, in bytes.
    pub max_packet_size: NonZeroU32,
    /// How long an r-proxy has to send the session's CONNECT.
    pub connect_timeout_ms: Millis,
    /// How long opening the TCP connection to the broker may take.
    pub broker_connect_timeout_ms: Millis,
    /// Packets buffered per session and direction before reading pauses.
    pub queue_depth: NonZeroUsize,
    /// HTTP/2 PING towards each r-proxy after this long without one.
    pub keepalive_interval_ms: Millis,
    /// An r-proxy that leaves a PING unanswered this long is taken as gone:
    /// its sessions end and their broker connections are closed.
    pub keepalive_timeout_ms: Millis,
    /// On SIGTERM, how long open sessions may go on before they are ended
    /// (MQTT 5 clients get DISCONNECT 0x8B).
    pub shutdown_grace_ms: Millis,
    /// After the r-proxy ends a session, how long to wait for the broker to
    /// close its side (having read everything the client sent).
    pub drain_timeout_ms: Millis,
    /// PEM certificate chain for gRPC over TLS (unset: plaintext).
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA bundle: r-proxies must present a certificate it signed.
    pub client_ca: Option<std::path::PathBuf>,
    /// File of accepted bearer tokens, one per line: r-proxies must send one.
    pub auth_token_file: Option<std::path::PathBuf>,
    /// Allow plaintext gRPC without authentication on a non-loopback address.
    pub insecure: bool,
    /// Start each broker connection with a PROXY protocol v2 header carrying
    /// the MQTT client's address (the broker must expect it).
    pub proxy_protocol: bool,
}

impl Default for SProxyConfig {
    fn default() -> Self {
        Self {
            listen: HostPort("[::]:50516".into()),
            admin: None,
            broker: BrokerUrl {
                addr: HostPort("127.0.0.1:1883".into()),
                tls: false,
            },
            broker_tls: BrokerTls::default(),
            max_sessions: const { nonzero32(10_000) },
            max_packet_size: const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
            connect_timeout_ms: const { Millis::of(10_000) },
            broker_connect_timeout_ms: const { Millis::of(5_000) },
            queue_depth: const { nonzero(64) },
            keepalive_interval_ms: const { Millis::of(20_000) },
            keepalive_timeout_ms: const { Millis::of(10_000) },
            shutdown_grace_ms: const { Millis::of(10_000) },
            drain_timeout_ms: const { Millis::of(3_000) },
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            auth_token_file: None,
            insecure: false,
            proxy_protocol: false,
        }
    }
}

impl SProxyConfig {
    /// Checks what parsing cannot: TLS settings that fit together, and no
    /// open relay: plaintext gRPC without authentication is refused on a
    /// non-loopback address unless `insecure = true`.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "`tls_cert` and `tls_key` go together"
        );
        anyhow::ensure!(
            self.client_ca.is_none() || self.tls_cert.is_some(),
            "`client_ca` (mutual TLS) needs `tls_cert` and `tls_key`"
        );
        let authenticated = self.client_ca.is_some() || self.auth_token_file.is_some();
        if !authenticated && !self.insecure && !self.listen.is_loopback() {
            anyhow::bail!(
                "refusing to serve gRPC without authentication on {}: anyone could reach the broker \
                 through it. Set `client_ca` (mutual TLS) or `auth_token_file`, listen on loopback, \
                 or set `insecure = true`",
                self.listen
            );
        }
        Ok(())
    }
}

/// How `scion-quic` receives QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum QuicTransport {
    /// QUIC over SCION (scion-stack).
    Scion,
    /// QUIC over plain UDP/IP.
    Quic,
}

/// A SCION path ACL such as `"- 2-ff00:0:222 +"` (deny paths through that
/// AS, allow the rest), checked when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct PathAcl(pub sciparse::path::policy::acl::AclPolicy);

impl FromStr for PathAcl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        sciparse::path::policy::acl::AclPolicy::parse(s)
            .map(PathAcl)
            .map_err(|e| format!("path ACL `{s}`: {e}"))
    }
}

impl<'de> Deserialize<'de> for PathAcl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `scion-quic`: terminates MQTT over QUIC (over SCION or UDP/IP) and opens
/// MQTT/TCP to the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScionQuicConfig {
    /// `scion` or `quic`.
    pub transport: QuicTransport,
    /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
    pub admin: Option<HostPort>,
    /// Where to receive: for `quic` an IP `host:port`; for `scion` a SCION
    /// address `[ISD-AS,IP]:port` (unset: any port the stack picks).
    pub listen: Option<String>,
    /// The SCION endhost API of the local AS (`scion` only).
    pub endhost_api: Option<url::Url>,
    /// File holding the SNAP token for the endhost API (`scion` only).
    pub snap_token_file: Option<std::path::PathBuf>,
    /// Which SCION paths replies may take, e.g. `"- 2-ff00:0:222 +"`.
    pub path_acl: Option<PathAcl>,
    /// The broker every session is opened to (`host:port` or
    /// `mqtts://host:port`).
    pub broker: BrokerUrl,
    /// TLS towards an `mqtts://` broker.
    pub broker_tls: BrokerTls,
    /// PEM certificate chain of this server.
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of this server.
    pub key: Option<std::path::PathBuf>,
    /// PEM CA bundle: when set, clients must present a certificate it signed,
    /// checked before anything is opened towards the broker.
    pub client_ca: Option<std::path::PathBuf>,
    /// Live QUIC connections at most.
    pub max_connections: NonZeroUsize,
    /// Largest CONNECT packet accepted, in bytes (later packets pass through
    /// untouched and are limited by the broker).
    pub max_packet_size: NonZeroU32,
    /// How long a new client has to send its CONNECT.
    pub connect_timeout_ms: Millis,
    /// How long opening TCP to the broker may take.
    pub broker_connect_timeout_ms: Millis,
    /// A QUIC connection silent for this long is closed.
    pub idle_timeout_ms: Millis,
    /// Receive window per MQTT stream, in bytes.
    pub stream_window: NonZeroU32,
    /// How long a stateless-retry token stays valid.
    pub retry_token_lifetime_ms: Millis,
    /// Start each broker connection with a PROXY protocol v2 header carrying
    /// the client's IP address and port.
    pub proxy_protocol: bool,
    /// On SIGTERM, how long open sessions may go on before they are ended
    /// (MQTT 5 clients get DISCONNECT 0x8B).
    pub shutdown_grace_ms: Millis,
}

impl Default for ScionQuicConfig {
    fn default() -> Self {
        Self {
            transport: QuicTransport::Scion,
            admin: None,
            listen: None,
            endhost_api: None,
            snap_token_file: None,
            path_acl: None,
            broker: BrokerUrl {
                addr: HostPort("127.0.0.1:1883".into()),
                tls: false,
            },
            broker_tls: BrokerTls::default(),
            cert: None,
            key: None,
            client_ca: None,
            max_connections: const { nonzero(10_000) },
            max_packet_size: const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
            connect_timeout_ms: const { Millis::of(10_000) },
            broker_connect_timeout_ms: const { Millis::of(5_000) },
            idle_timeout_ms: const { Millis::of(120_000) },
            stream_window: const { nonzero32(2 * 1024 * 1024) },
            retry_token_lifetime_ms: const { Millis::of(30_000) },
            proxy_protocol: false,
            shutdown_grace_ms: const { Millis::of(10_000) },
        }
    }
}

impl ScionQuicConfig {
    /// Checks what parsing cannot: certificate files named, SCION settings
    /// present for the SCION transport.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cert.is_some() && self.key.is_some(),
            "scion-quic needs a server certificate: set `cert` and `key` (or --cert/--key)"
        );
        if self.transport == QuicTransport::Scion {
            anyhow::ensure!(
                self.endhost_api.is_some(),
                "transport = \"scion\" needs `endhost_api` (or --endhost-api)"
            );
        }
        Ok(())
    }
}

/// `scion-udp`: relays datagrams between SCION clients and a QUIC-capable
/// broker on UDP/IP, so QUIC runs end to end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScionUdpConfig {
    /// SCION address to receive on, `[ISD-AS,IP]:port` (unset: any port).
    pub listen: Option<String>,
    /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
    pub admin: Option<HostPort>,
    /// The SCION endhost API of the local AS.
    pub endhost_api: Option<url::Url>,
    /// File holding the SNAP token for the endhost API.
    pub snap_token_file: Option<std::path::PathBuf>,
    /// Which SCION paths replies may take.
    pub path_acl: Option<PathAcl>,
    /// The QUIC-capable broker, UDP `host:port`.
    pub broker: HostPort,
    /// SCION clients relayed at once (one UDP socket each).
    pub max_peers: NonZeroUsize,
    /// A client silent for this long loses its mapping and socket.
    pub idle_timeout_ms: Millis,
}

impl Default for ScionUdpConfig {
    fn default() -> Self {
        Self {
            listen: None,
            admin: None,
            endhost_api: None,
            snap_token_file: None,
            path_acl: None,
            broker: HostPort("127.0.0.1:14567".into()),
            max_peers: const { nonzero(10_000) },
            idle_timeout_ms: const { Millis::of(120_000) },
        }
    }
}

impl ScionUdpConfig {
    /// Checks what parsing cannot: the SCION endhost API is set.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.endhost_api.is_some(),
            "scion-udp needs `endhost_api` (or --endhost-api)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for ok in [
            "127.0.0.1:1883",
            "[::]:1883",
            "[::1]:8883",
            "broker.example:1883",
        ] {
            assert!(ok.parse::<HostPort>().is_ok(), "{ok}");
        }
        for bad in [
            "1883",
            "host",
            "::1:1883",
            ":1883",
            "host:99999",
            "[::1:1883",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }

    #[test]
    fn error_names_key_and_line() {
        let err = parse::<RProxyConfig>(
            "listen = \"0.0.0.0:1883\"\n\nmax_packet_size = 0\n",
            "edge.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("edge.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("max_packet_size"), "{err}");
    }

    #[test]
    fn path_acl_is_checked_on_read() {
        let ok = parse::<ScionQuicConfig>("path_acl = \"- 2-ff00:0:222 +\"\n", "q.toml");
        assert!(ok.is_ok(), "{ok:?}");
        let err = parse::<ScionQuicConfig>("\npath_acl = \"no such thing\"\n", "q.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("path_acl"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = parse::<SProxyConfig>("brokr = \"x:1\"\n", "cloud.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("brokr"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }
}
