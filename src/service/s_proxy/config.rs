//! The s-proxy's settings: the config file (config/cloud.toml) and the
//! flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::broker::{BrokerTls, BrokerUrl};
use crate::service::frame::ServiceConfig;
use crate::service::settings::{ConfigError, Millis, file_or_default, nonzero, nonzero32};

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
            listen: HostPort::literal("[::]:50516"),
            admin: None,
            broker: BrokerUrl {
                addr: HostPort::literal("127.0.0.1:1883"),
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

/// Flags of `s-proxy`.
#[derive(Debug, Clone, Args)]
pub struct SProxyArgs {
    /// TOML config file (see config/cloud.toml); flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where r-proxies connect over gRPC [default: [::]:50516].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<HostPort>,
    /// The MQTT broker, host:port or mqtts://host:port [default: 127.0.0.1:1883].
    #[arg(long, value_name = "URL")]
    pub broker: Option<BrokerUrl>,
}

impl SProxyArgs {
    /// The file's settings (or the defaults) with the flags applied.
    pub fn resolve(&self) -> Result<SProxyConfig, ConfigError> {
        let mut config: SProxyConfig = file_or_default(&self.config)?;
        if let Some(listen) = &self.listen {
            config.listen = listen.clone();
        }
        if let Some(broker) = &self.broker {
            config.broker = broker.clone();
        }
        Ok(config)
    }
}

impl ServiceConfig for SProxyConfig {
    fn validate(&self) -> anyhow::Result<()> {
        SProxyConfig::validate(self)
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
        let defaults = SProxyConfig::default();
        assert_eq!(
            defaults
                .broker
                .addr
                .as_str()
                .parse::<HostPort>()
                .map(|h| h.to_string()),
            Ok(defaults.broker.addr.to_string())
        );
        assert_eq!(
            defaults
                .listen
                .as_str()
                .parse::<HostPort>()
                .map(|h| h.to_string()),
            Ok(defaults.listen.to_string())
        );
    }
}
