//! The s-proxy's settings: the config file (config/cloud.toml) and the
//! flags that override its keys.

use std::num::{NonZeroU32, NonZeroUsize};

use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;
use crate::net::HostPort;
use crate::net::broker::{BrokerTls, BrokerUrl};
use crate::service::settings::{Millis, nonzero, nonzero32};

crate::settings! {
    /// `s-proxy`: serves `MqttRelayService` and opens MQTT/TCP to the broker.
    pub struct SProxyConfig, flags SProxyArgs (example "config/cloud.toml") {
        /// Where r-proxies (gRPC) connect.
        listen: value HostPort = HostPort::literal("[::]:50516"),
        /// The broker every session is opened to (`host:port` or
        /// `mqtts://host:port`); never taken from the peer.
        broker: value BrokerUrl = BrokerUrl { addr: HostPort::literal("127.0.0.1:1883"), tls: false, },
        /// Concurrent sessions at most; more streams are refused.
        max_sessions: value NonZeroU32 = const { nonzero32(10_000) },
        /// Largest MQTT packet accepted from the broker or an r-proxy, in bytes.
        max_packet_size: value NonZeroU32 = const { nonzero32(DEFAULT_MAX_PACKET_SIZE) },
        /// How long an r-proxy has to send the session's CONNECT.
        connect_timeout_ms: value Millis = const { Millis::of(10_000) },
        /// How long opening the TCP connection to the broker may take.
        broker_connect_timeout_ms: value Millis = const { Millis::of(5_000) },
        /// How often the broker is probed (a TCP connection, TLS when
        /// configured, closed at once; skipped when a client's
        /// connection to the broker opened meanwhile): `/readyz` and the gRPC health service
        /// say not serving while it does not answer.
        broker_probe_ms: value Millis = const { Millis::of(5_000) },
        /// Bytes per session waiting to be written to the r-proxy before
        /// reading from the broker pauses (besides what the r-proxy's HTTP/2
        /// flow-control window takes).
        send_buffer_bytes: value NonZeroUsize = const { nonzero(64 * 1024) },
        /// How long a session whose stream from the r-proxy broke keeps its
        /// broker connection, waiting for the r-proxy to resume it.
        resume_window_ms: value Millis = const { Millis::of(30_000) },
        /// Bytes sent to the r-proxy and not yet acknowledged, kept per session
        /// for a resume; when full, reading from the broker pauses.
        replay_buffer_bytes: value NonZeroUsize = const { nonzero(1024 * 1024) },
        /// Do not grant resumable sessions: a break closes the broker connection.
        no_resume: switch = false,
        /// HTTP/2 PING towards each r-proxy after this long without one.
        keepalive_interval_ms: value Millis = const { Millis::of(20_000) },
        /// An r-proxy that leaves a PING unanswered this long is taken as gone:
        /// its sessions end and their broker connections are closed.
        keepalive_timeout_ms: value Millis = const { Millis::of(10_000) },
        /// On SIGTERM, how long open sessions may go on before they are ended
        /// (MQTT 5 clients get DISCONNECT 0x8B).
        shutdown_grace_ms: value Millis = const { Millis::of(10_000) },
        /// After the r-proxy ends a session, how long to wait for the broker to
        /// close its side (having read everything the client sent); when the
        /// s-proxy ends a resumable session, how long the r-proxy gets to
        /// acknowledge the end (or end the session too).
        drain_timeout_ms: value Millis = const { Millis::of(3_000) },
        /// PEM certificate chain for gRPC over TLS (unset: plaintext).
        tls_cert: option std::path::PathBuf = None,
        /// PEM key of `tls_cert`.
        tls_key: option std::path::PathBuf = None,
        /// PEM CA bundle: r-proxies must present a certificate it signed.
        client_ca: option std::path::PathBuf = None,
        /// File of accepted bearer tokens, one per line: r-proxies must send one.
        auth_token_file: option std::path::PathBuf = None,
        /// Allow plaintext gRPC without authentication on a non-loopback address.
        insecure: switch = false,
        /// Start each broker connection with a PROXY protocol v2 header carrying
        /// the MQTT client's address (the broker must expect it).
        proxy_protocol: switch = false,
    }
    file_only {
        /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
        admin: Option<HostPort> = None,
        /// TLS towards an `mqtts://` broker.
        broker_tls: BrokerTls = BrokerTls::default(),
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
                 through it. Set `client_ca` (mutual TLS, --client-ca) or `auth_token_file` \
                 (--auth-token-file), listen on loopback, or set `insecure = true` (--insecure)",
                self.listen
            );
        }
        Ok(())
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
