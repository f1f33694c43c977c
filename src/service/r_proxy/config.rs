//! The r-proxy's settings: the `[r-proxy]` config file (config/edge.toml)
//! and the flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::line::UpstreamUrl;
use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::listener::{ListenSettings, ListenUrl, ScionAttach, Transport};
use crate::net::quic::QuicLimits;
use crate::net::scion::PathAcl;
use crate::net::tls::ServerTls;
use crate::service::frame::ServiceConfig;
use crate::service::settings::{ConfigError, Millis, file_or_default, nonzero, nonzero32};

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
    /// More listeners by URL, any transport: `tcp://`, `tls://`, `ws://`,
    /// `wss://`, `quic://HOST:PORT`, `scion-quic://[ISD-AS,IP]:PORT`. All
    /// but tcp and ws use `tls_cert`/`tls_key` (and `tls_client_ca`).
    pub listeners: Vec<ListenUrl>,
    /// The SCION endhost API of the local AS (scion-quic listeners).
    pub endhost_api: Option<url::Url>,
    /// File holding the SNAP token for the endhost API.
    pub snap_token_file: Option<PathBuf>,
    /// Which SCION paths replies to clients may take.
    pub path_acl: Option<PathAcl>,
    /// A QUIC connection silent for this long is closed.
    pub idle_timeout_ms: Millis,
    /// Receive window per QUIC stream, in bytes.
    pub stream_window: NonZeroU32,
    /// How long a QUIC stateless-retry token stays valid.
    pub retry_token_lifetime_ms: Millis,
}

impl Default for RProxyConfig {
    fn default() -> Self {
        Self {
            listen: HostPort::literal("0.0.0.0:1883"),
            admin: None,
            upstream: vec![UpstreamUrl::literal("http://127.0.0.1:50516")],
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
            listeners: Vec::new(),
            endhost_api: None,
            snap_token_file: None,
            path_acl: None,
            idle_timeout_ms: const { Millis::of(120_000) },
            stream_window: const { nonzero32(2 * 1024 * 1024) },
            retry_token_lifetime_ms: const { Millis::of(30_000) },
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
        for url in &self.listeners {
            anyhow::ensure!(
                !url.transport.needs_certificate()
                    || (self.tls_cert.is_some() && self.tls_key.is_some()),
                "listener {url} needs `tls_cert` and `tls_key`"
            );
            anyhow::ensure!(
                url.transport != Transport::ScionQuic || self.endhost_api.is_some(),
                "listener {url} needs `endhost_api`"
            );
        }
        Ok(())
    }

    /// Every listener: `listen` (tcp), then `tls_listen`, `ws_listen` and
    /// `listeners` in that order.
    pub fn listen_urls(&self) -> Vec<ListenUrl> {
        let mut urls = vec![ListenUrl::new(Transport::Tcp, self.listen.as_str())];
        if let Some(addr) = &self.tls_listen {
            urls.push(ListenUrl::new(Transport::Tls, addr.as_str()));
        }
        if let Some(addr) = &self.ws_listen {
            urls.push(ListenUrl::new(Transport::Ws, addr.as_str()));
        }
        urls.extend(self.listeners.iter().cloned());
        urls
    }

    /// What the listeners share: the certificate, QUIC and SCION settings.
    pub fn listen_settings(&self) -> ListenSettings {
        ListenSettings {
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(ServerTls {
                    cert_chain: cert.clone(),
                    private_key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                _ => None,
            },
            quic: QuicLimits {
                idle_timeout: self.idle_timeout_ms.duration(),
                stream_window: self.stream_window.get().into(),
                connection_window: u64::from(self.stream_window.get()) * 2,
                ..QuicLimits::default()
            },
            retry_token_lifetime: self.retry_token_lifetime_ms.duration(),
            max_quic_connections: self.max_connections.get(),
            scion: ScionAttach {
                endhost_api: self.endhost_api.clone(),
                snap_token_file: self.snap_token_file.clone(),
                path_acl: self.path_acl.clone(),
            },
        }
    }
}

/// Flags of `r-proxy`.
#[derive(Debug, Clone, Args)]
pub struct RProxyArgs {
    /// TOML config file (see config/edge.toml); flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where MQTT clients connect [default: 0.0.0.0:1883].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<HostPort>,
    /// s-proxy endpoint, e.g. http://127.0.0.1:50516; repeat for several
    /// [default: http://127.0.0.1:50516].
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<UpstreamUrl>,
}

impl RProxyArgs {
    /// The file's settings (or the defaults) with the flags applied.
    pub fn resolve(&self) -> Result<RProxyConfig, ConfigError> {
        let mut config: RProxyConfig = file_or_default(&self.config)?;
        if let Some(listen) = &self.listen {
            config.listen = listen.clone();
        }
        if !self.upstream.is_empty() {
            config.upstream = self.upstream.clone();
        }
        Ok(config)
    }
}

impl ServiceConfig for RProxyConfig {
    fn validate(&self) -> anyhow::Result<()> {
        RProxyConfig::validate(self)
    }

    fn admin(&self) -> Option<&HostPort> {
        self.admin.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_settings() {
        let defaults = RProxyConfig::default();
        assert_eq!(
            defaults
                .listen
                .as_str()
                .parse::<HostPort>()
                .map(|h| h.to_string()),
            Ok(defaults.listen.to_string())
        );
        for url in &defaults.upstream {
            assert!(url.as_str().parse::<UpstreamUrl>().is_ok(), "{url}");
        }
    }
}
