//! Command-line interface: subcommands, flags that override config-file
//! keys, and `--help` text with examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, HostPort, RProxyConfig, SProxyConfig, UpstreamUrl};

const EXAMPLES: &str = "\
Examples:
  # Edge side: MQTT clients connect to :1883, carried over gRPC to the cloud
  mqttbridge r-proxy --listen 0.0.0.0:1883 --upstream http://cloud.example:50516

  # Cloud side: accept gRPC on :50516, open MQTT/TCP to the broker
  mqttbridge s-proxy --listen [::]:50516 --broker 127.0.0.1:1883

  # Everything from a file, one flag overridden
  mqttbridge r-proxy --config config/edge.toml --listen 127.0.0.1:1884

  # The whole chain on this machine with a mosquitto it starts itself
  mqttbridge demo

Logging follows RUST_LOG (default: info), e.g. RUST_LOG=mqttbridge=debug.";

/// MQTT tunnel: carries MQTT 3.1.1 and 5.0 between clients and brokers over
/// gRPC.
#[derive(Debug, Parser)]
#[command(name = "mqttbridge", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept MQTT/TCP clients and carry each connection over gRPC to an s-proxy.
    RProxy(RProxyArgs),
    /// Serve the gRPC relay and open one MQTT/TCP connection to the broker per stream.
    SProxy(SProxyArgs),
    /// Run mosquitto, s-proxy and r-proxy on this machine and send messages through them.
    Demo(DemoArgs),
}

/// Flags of `r-proxy`.
#[derive(Debug, Args)]
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

/// Flags of `s-proxy`.
#[derive(Debug, Args)]
pub struct SProxyArgs {
    /// TOML config file (see config/cloud.toml); flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where r-proxies connect over gRPC [default: [::]:50516].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<HostPort>,
    /// The MQTT broker, host:port [default: 127.0.0.1:1883].
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<HostPort>,
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Messages to send at each QoS level and MQTT version.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
}

fn file_or_default<T: Default + for<'de> serde::Deserialize<'de>>(
    path: &Option<PathBuf>,
) -> Result<T, ConfigError> {
    match path {
        Some(path) => config::load(path),
        None => Ok(T::default()),
    }
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
