//! scion-quic's settings: the config file (config/scion-quic.toml) and
//! the flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::broker::{BrokerTls, BrokerUrl};
use crate::net::listener::{ListenSettings, ListenUrl, ScionAttach, Transport};
use crate::net::quic::QuicLimits;
use crate::net::scion::PathAcl;
use crate::net::tls::ServerTls;
use crate::service::frame::ServiceConfig;
use crate::service::settings::{ConfigError, Millis, file_or_default, nonzero, nonzero32};

/// Where `transport = "quic"` listens when `listen` is unset.
const DEFAULT_QUIC_LISTEN: &str = "0.0.0.0:14567";

/// How `scion-quic` receives QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum QuicTransport {
    /// QUIC over SCION (scion-stack).
    Scion,
    /// QUIC over plain UDP/IP.
    Quic,
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
    /// More listeners by URL besides `transport`/`listen`, any transport:
    /// `quic://`, `scion-quic://`, `tcp://`, `tls://`, `ws://`, `wss://`.
    /// All but tcp and ws use `cert`/`key` (and `client_ca`).
    pub listeners: Vec<ListenUrl>,
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
                addr: HostPort::literal("127.0.0.1:1883"),
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
            listeners: Vec::new(),
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
        ListenSettings {
            tls: match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => Some(ServerTls {
                    cert_chain: cert.clone(),
                    private_key: key.clone(),
                    client_ca: self.client_ca.clone(),
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

/// Flags of `scion-quic`.
#[derive(Debug, Args)]
pub struct ScionQuicArgs {
    /// TOML config file (see config/scion-quic.toml); flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `scion` (default) or `quic` (plain UDP/IP).
    #[arg(long, value_enum)]
    pub transport: Option<QuicTransport>,
    /// Where to receive: `[ISD-AS,IP]:port` for scion, `IP:port` for quic
    /// [default: any port (scion), 0.0.0.0:14567 (quic)].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The MQTT broker, host:port or mqtts://host:port [default: 127.0.0.1:1883].
    #[arg(long, value_name = "URL")]
    pub broker: Option<BrokerUrl>,
    /// Endhost API of the local SCION AS, e.g. http://10.0.0.1:48000.
    #[arg(long, value_name = "URL")]
    pub endhost_api: Option<url::Url>,
    /// File with the SNAP token for the endhost API.
    #[arg(long, value_name = "FILE")]
    pub snap_token_file: Option<PathBuf>,
    /// PEM certificate chain of this server.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM private key of this server.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// PEM CA bundle; clients must present a certificate it signed.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
}

impl ScionQuicArgs {
    /// The file's settings (or the defaults) with the flags applied.
    pub fn resolve(&self) -> Result<ScionQuicConfig, ConfigError> {
        let mut config: ScionQuicConfig = file_or_default(&self.config)?;
        if let Some(v) = self.transport {
            config.transport = v;
        }
        if let Some(v) = &self.listen {
            config.listen = Some(v.clone());
        }
        if let Some(v) = &self.broker {
            config.broker = v.clone();
        }
        if let Some(v) = &self.endhost_api {
            config.endhost_api = Some(v.clone());
        }
        if let Some(v) = &self.snap_token_file {
            config.snap_token_file = Some(v.clone());
        }
        if let Some(v) = &self.cert {
            config.cert = Some(v.clone());
        }
        if let Some(v) = &self.key {
            config.key = Some(v.clone());
        }
        if let Some(v) = &self.client_ca {
            config.client_ca = Some(v.clone());
        }
        Ok(config)
    }
}

impl ServiceConfig for ScionQuicConfig {
    fn validate(&self) -> anyhow::Result<()> {
        ScionQuicConfig::validate(self)
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
