//! scion-udp's settings: the config file (config/scion-udp.toml) and the
//! flags that override its keys.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::net::HostPort;
use crate::net::scion::PathAcl;
use crate::service::frame::ServiceConfig;
use crate::service::settings::{ConfigError, Millis, file_or_default, nonzero};

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
            broker: HostPort::literal("127.0.0.1:14567"),
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

/// Flags of `scion-udp`.
#[derive(Debug, Args)]
pub struct ScionUdpArgs {
    /// TOML config file (see config/scion-udp.toml); flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SCION address to receive on, `[ISD-AS,IP]:port` [default: any port].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The QUIC-capable broker, UDP host:port [default: 127.0.0.1:14567].
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<HostPort>,
    /// Endhost API of the local SCION AS.
    #[arg(long, value_name = "URL")]
    pub endhost_api: Option<url::Url>,
    /// File with the SNAP token for the endhost API.
    #[arg(long, value_name = "FILE")]
    pub snap_token_file: Option<PathBuf>,
}

impl ScionUdpArgs {
    /// The file's settings (or the defaults) with the flags applied.
    pub fn resolve(&self) -> Result<ScionUdpConfig, ConfigError> {
        let mut config: ScionUdpConfig = file_or_default(&self.config)?;
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
        Ok(config)
    }
}

impl ServiceConfig for ScionUdpConfig {
    fn validate(&self) -> anyhow::Result<()> {
        ScionUdpConfig::validate(self)
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
        let defaults = ScionUdpConfig::default();
        assert_eq!(
            defaults
                .broker
                .as_str()
                .parse::<HostPort>()
                .map(|h| h.to_string()),
            Ok(defaults.broker.to_string())
        );
    }
}
