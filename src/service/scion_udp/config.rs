//! scion-udp's settings: the config file (config/scion-udp.toml) and the
//! flags that override its keys.

use std::num::NonZeroUsize;

use crate::net::HostPort;
use crate::net::broker::QuicBroker;
use crate::net::scion::PathAcl;
use crate::service::settings::{Millis, nonzero};

crate::settings! {
    /// `scion-udp`: relays datagrams between SCION clients and a QUIC-capable
    /// broker on UDP/IP, so QUIC runs end to end.
    pub struct ScionUdpConfig, flags ScionUdpArgs (example "config/scion-udp.toml") {
        /// SCION address to receive on, `[ISD-AS,IP]:port` (unset: any port).
        listen: option String = None,
        /// The SCION endhost API of the local AS.
        endhost_api: option url::Url = None,
        /// File holding the SNAP token for the endhost API.
        snap_token_file: option std::path::PathBuf = None,
        /// Which SCION paths replies may take.
        path_acl: option PathAcl = None,
        /// The QUIC-capable broker on UDP/IP: `host:port` or `quic://host:port`.
        broker: value QuicBroker = QuicBroker(HostPort::literal("127.0.0.1:14567")),
        /// SCION clients relayed at once (one UDP socket each).
        max_peers: value NonZeroUsize = const { nonzero(10_000) },
        /// A client silent for this long loses its mapping and socket.
        idle_timeout_ms: value Millis = const { Millis::of(120_000) },
    }
    file_only {
        /// Admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`); off when unset.
        admin: Option<HostPort> = None,
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
    fn defaults_are_valid_settings() {
        let defaults = ScionUdpConfig::default();
        assert_eq!(
            defaults
                .broker
                .as_str()
                .parse::<QuicBroker>()
                .map(|h| h.to_string()),
            Ok(defaults.broker.to_string())
        );
    }
}
