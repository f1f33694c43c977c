//! scion-quic's settings: the config file (config/scion-quic.toml) and
//! the flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};

use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::broker::{BrokerTls, BrokerUrl};
use crate::net::listener::{ListenSettings, ListenUrl, Transport};
use crate::net::scion::PathAcl;
use crate::service::settings::{ListenKeys, Millis, nonzero, nonzero32};

/// Where `transport = "quic"` listens when `listen` is unset.
const DEFAULT_QUIC_LISTEN: &str = "0.0.0.0:14567";

/// How `scion-quic` receives QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum QuicTransport {
    /// QUIC over SCION (scion-stack).
    Scion,
    /// QUIC over plain UDP/IP.
    Quic,
}

crate::settings! {
    /// `scion-quic`: terminates MQTT over QUIC (over SCION or UDP/IP) and opens
    /// MQTT/TCP to the broker.
    pub struct ScionQuicConfig, flags ScionQuicArgs (example "config/scion-quic.toml") {
        /// `scion` or `quic`.
        transport: value QuicTransport = QuicTransport::Scion,
        /// Where to receive: for `quic` an IP `host:port`; for `scion` a SCION
        /// address `[ISD-AS,IP]:port` (unset: any port the stack picks).
        listen: option String = None,
        /// The SCION endhost API of the local AS (`scion` only).
        endhost_api: option url::Url = None,
        /// File holding the SNAP token for the endhost API (`scion` only).
        snap_token_file: option std::path::PathBuf = None,
        /// Which SCION paths replies may take, e.g. `"- 2-ff00:0:222 +"`.
        path_acl: option PathAcl = None,
        /// The broker every session is opened to (`host:port` or
        /// `mqtts://host:port`).
        broker: value BrokerUrl = BrokerUrl { addr: HostPort::literal("127.0.0.1:1883"), tls: false, },
        /// PEM certificate chain of this server.
        cert: option std::path::PathBuf = None,
        /// PEM private key of this server.
        key: option std::path::PathBuf = None,
        /// PEM CA bundle: when set, clients must present a certificate it signed,
        /// checked before anything is opened towards the broker.
        client_ca: option std::path::PathBuf = None,
        /// Live QUIC connections at most.
        max_connections: value NonZeroUsize = const { nonzero(10_000) },
        /// Largest CONNECT packet accepted, in bytes (later packets pass through
        /// untouched and are limited by the broker).
        max_packet_size: value NonZeroU32 = const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
        /// How long a new client has to send its CONNECT.
        connect_timeout_ms: value Millis = const { Millis::of(10_000) },
        /// How long opening TCP to the broker may take.
        broker_connect_timeout_ms: value Millis = const { Millis::of(5_000) },
        /// How often the broker is probed (a TCP connection, TLS when
        /// configured, closed at once; skipped when a client's
        /// connection to the broker opened meanwhile): `/readyz` fails while it does not answer.
        broker_probe_ms: value Millis = const { Millis::of(5_000) },
        /// A QUIC connection silent for this long is closed.
        idle_timeout_ms: value Millis = const { Millis::of(120_000) },
        /// Receive window per MQTT stream, in bytes.
        stream_window: value NonZeroU32 = const { nonzero32(2 * 1024 * 1024) },
        /// How long a stateless-retry token stays valid.
        retry_token_lifetime_ms: value Millis = const { Millis::of(30_000) },
        /// Start each broker connection with a PROXY protocol v2 header carrying
        /// the client's IP address and port.
        proxy_protocol: switch = false,
        /// On SIGTERM, how long open sessions may go on before they are ended
        /// (MQTT 5 clients get DISCONNECT 0x8B).
        shutdown_grace_ms: value Millis = const { Millis::of(10_000) },
        /// More listeners by URL besides `transport`/`listen`, any transport:
        /// `quic://`, `scion-quic://`, `tcp://`, `tls://`, `ws://`, `wss://`.
        /// All but tcp and ws use `cert`/`key` (and `client_ca`).
        listeners: list ListenUrl = Vec::new(),
    }
    file_only {
        /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
        admin: Option<HostPort> = None,
        /// TLS towards an `mqtts://` broker.
        broker_tls: BrokerTls = BrokerTls::default(),
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
        for url in &self.listeners {
            anyhow::ensure!(
                url.transport != Transport::ScionQuic || self.endhost_api.is_some(),
                "listener {url} needs `endhost_api`"
            );
        }
        Ok(())
    }

    /// Every listener: the QUIC one of `transport` and `listen` first, then
    /// `listeners`.
    pub fn listen_urls(&self) -> Vec<ListenUrl> {
        let main = match self.transport {
            QuicTransport::Quic => ListenUrl::new(
                Transport::Quic,
                self.listen.as_deref().unwrap_or(DEFAULT_QUIC_LISTEN),
            ),
            QuicTransport::Scion => ListenUrl {
                transport: Transport::ScionQuic,
                addr: self.listen.clone(),
            },
        };
        let mut urls = vec![main];
        urls.extend(self.listeners.iter().cloned());
        urls
    }

    /// What the listeners share: the certificate, QUIC and SCION settings.
    pub fn listen_settings(&self) -> ListenSettings {
        ListenKeys {
            cert: self.cert.as_ref(),
            key: self.key.as_ref(),
            client_ca: self.client_ca.as_ref(),
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
        let defaults = ScionQuicConfig::default();
        assert_eq!(
            defaults
                .broker
                .addr
                .as_str()
                .parse::<HostPort>()
                .map(|h| h.to_string()),
            Ok(defaults.broker.addr.to_string())
        );
    }

    #[test]
    fn path_acl_is_checked_on_read() {
        let ok = crate::service::settings::parse::<ScionQuicConfig>(
            "path_acl = \"- 2-ff00:0:222 +\"\n",
            "q.toml",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = crate::service::settings::parse::<ScionQuicConfig>(
            "\npath_acl = \"no such thing\"\n",
            "q.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains("path_acl"), "{err}");
    }
}
