//! The r-proxy's settings: the `[r-proxy]` config file (config/edge.toml)
//! and the flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use crate::line::UpstreamUrl;
use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::listener::{ListenSettings, ListenUrl, Transport};
use crate::net::scion::PathAcl;
use crate::service::settings::{ListenKeys, Millis, nonzero, nonzero32};

crate::settings! {
    /// `r-proxy`: accepts MQTT/TCP and carries each connection to an s-proxy.
    pub struct RProxyConfig, flags RProxyArgs (example "config/edge.toml") {
        /// Where MQTT clients connect.
        listen: value HostPort = HostPort::literal("0.0.0.0:1883"),
        /// s-proxy endpoints; new connections are balanced across the healthy ones.
        upstream: list UpstreamUrl = vec![UpstreamUrl::literal("http://127.0.0.1:50516")],
        /// Open client connections at most; more are closed on accept.
        max_connections: value NonZeroUsize = const { nonzero(10_000) },
        /// Largest MQTT packet accepted from a client or an s-proxy, in bytes.
        max_packet_size: value NonZeroU32 = const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
        /// How long a new client has to send its CONNECT.
        connect_timeout_ms: value Millis = const { Millis::of(10_000) },
        /// How long opening a stream to one s-proxy may take.
        upstream_connect_timeout_ms: value Millis = const { Millis::of(5_000) },
        /// How long an s-proxy that failed is skipped for new connections.
        upstream_retry_ms: value Millis = const { Millis::of(2_000) },
        /// How often each s-proxy's gRPC health service is asked whether it
        /// serves: new connections go to those that do, and `/readyz` fails
        /// while none does.
        upstream_probe_ms: value Millis = const { Millis::of(2_000) },
        /// How often each upstream's host name is resolved again: a name with
        /// several addresses (a headless Service, DNS round robin) is one
        /// s-proxy per address.
        upstream_resolve_ms: value Millis = const { Millis::of(30_000) },
        /// After a client leaves, how long to wait for the s-proxy to confirm
        /// that everything the client sent reached the broker.
        drain_timeout_ms: value Millis = const { Millis::of(5_000) },
        /// Bytes per connection waiting to be written to the s-proxy before
        /// reading from the client pauses (besides what the s-proxy's HTTP/2
        /// flow-control window takes).
        send_buffer_bytes: value NonZeroUsize = const { nonzero(64 * 1024) },
        /// How long a session whose stream to the s-proxy broke is kept while
        /// the r-proxy reconnects to resume it; the client stays connected.
        resume_window_ms: value Millis = const { Millis::of(30_000) },
        /// Bytes sent to the s-proxy and not yet acknowledged, kept per session
        /// for a resume; when full, reading from the client pauses.
        replay_buffer_bytes: value NonZeroUsize = const { nonzero(1024 * 1024) },
        /// Do not offer resumable sessions: a break closes the client at once.
        no_resume: switch = false,
        /// HTTP/2 PING towards each s-proxy after this long without one.
        keepalive_interval_ms: value Millis = const { Millis::of(20_000) },
        /// An s-proxy that leaves a PING unanswered this long is taken as gone:
        /// its streams end and their clients are closed.
        keepalive_timeout_ms: value Millis = const { Millis::of(10_000) },
        /// On SIGTERM, how long open connections may go on before they are
        /// closed (MQTT 5 clients get DISCONNECT 0x8B).
        shutdown_grace_ms: value Millis = const { Millis::of(10_000) },
        /// PEM CA bundle that `https://` s-proxies must chain to (unset: the
        /// system's roots).
        upstream_ca: option std::path::PathBuf = None,
        /// TLS name to expect from s-proxies (unset: the URL's host).
        upstream_server_name: option String = None,
        /// PEM client certificate presented to s-proxies (mutual TLS).
        upstream_cert: option std::path::PathBuf = None,
        /// PEM key of `upstream_cert`.
        upstream_key: option std::path::PathBuf = None,
        /// File holding the bearer token sent to s-proxies.
        auth_token_file: option std::path::PathBuf = None,
        /// Where MQTT clients connect over TLS (e.g. `0.0.0.0:8883`).
        tls_listen: option HostPort = None,
        /// PEM certificate chain of the TLS listener.
        tls_cert: option std::path::PathBuf = None,
        /// PEM key of `tls_cert`.
        tls_key: option std::path::PathBuf = None,
        /// PEM CA bundle: TLS clients must present a certificate it signed.
        tls_client_ca: option std::path::PathBuf = None,
        /// Where MQTT clients connect over WebSocket (subprotocol `mqtt`).
        ws_listen: option HostPort = None,
        /// More listeners by URL, any transport: `tcp://`, `tls://`, `ws://`,
        /// `wss://`, `quic://HOST:PORT`, `scion-quic://[ISD-AS,IP]:PORT`. All
        /// but tcp and ws use `tls_cert`/`tls_key` (and `tls_client_ca`).
        listeners: list ListenUrl = Vec::new(),
        /// The SCION endhost API of the local AS (scion-quic listeners).
        endhost_api: option url::Url = None,
        /// File holding the SNAP token for the endhost API.
        snap_token_file: option PathBuf = None,
        /// Which SCION paths replies to clients may take.
        path_acl: option PathAcl = None,
        /// A QUIC connection silent for this long is closed.
        idle_timeout_ms: value Millis = const { Millis::of(120_000) },
        /// Receive window per QUIC stream, in bytes.
        stream_window: value NonZeroU32 = const { nonzero32(2 * 1024 * 1024) },
        /// How long a QUIC stateless-retry token stays valid.
        retry_token_lifetime_ms: value Millis = const { Millis::of(30_000) },
    }
    file_only {
        /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
        admin: Option<HostPort> = None,
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
        ListenKeys {
            cert: self.tls_cert.as_ref(),
            key: self.tls_key.as_ref(),
            client_ca: self.tls_client_ca.as_ref(),
            idle_timeout_ms: self.idle_timeout_ms,
            stream_window: self.stream_window,
            retry_token_lifetime_ms: self.retry_token_lifetime_ms,
            max_connections: self.max_connections,
            endhost_api: self.endhost_api.as_ref(),
            snap_token_file: self.snap_token_file.as_ref(),
            path_acl: self.path_acl.as_ref(),
        }
        .settings()
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
