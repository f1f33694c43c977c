//! Command-line interface: the command enum (each variant wraps the Args
//! its owner defines: a service's flags come from its settings, a tool's
//! from the tool), the global flags, and `--help` text with examples.
//!
//! Layer rule: nothing imports `cli` but `main`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::service::r_proxy::RProxyArgs;
use crate::service::s_proxy::SProxyArgs;
use crate::service::scion_quic::ScionQuicArgs;
use crate::service::scion_udp::ScionUdpArgs;
use crate::service::settings::{ProcessFlags, load};
use crate::tools::bench::BenchArgs;
use crate::tools::certs::CertsArgs;
use crate::tools::demo::DemoArgs;
use crate::tools::pocketscion::PocketscionArgs;
use crate::tools::pubsub::{PubArgs, SubArgs};
use crate::tools::topology::TopologyFile;

/// The examples under `mqttbridge --help` (a test runs them).
pub const EXAMPLES: &str = "\
Examples:
  # Edge side: MQTT clients connect to :1883, carried over gRPC to the cloud
  mqttbridge r-proxy --listen 0.0.0.0:1883 --upstream http://cloud.example:50516 --auth-token-file token

  # Cloud side: accept gRPC on :50516 from r-proxies holding a token (one per
  # line in the file), open MQTT/TCP to the broker
  mqttbridge s-proxy --listen [::]:50516 --broker 127.0.0.1:1883 --auth-token-file token

  # Everything from a file; every key is also a flag that overrides it
  mqttbridge r-proxy --config config/edge.toml --listen 127.0.0.1:1884 --max-connections 500

  # The edge also takes MQTT over QUIC and over WebSocket with TLS
  mqttbridge r-proxy --upstream http://cloud.example:50516 --tls-cert edge.pem --tls-key edge.key \
      --listeners quic://0.0.0.0:14567 --listeners wss://0.0.0.0:8084

  # MQTT over QUIC over SCION in front of a broker, client certificates required
  # (every process attached to an AS presents a SNAP token of its own)
  mqttbridge scion-quic --endhost-api http://10.0.0.1:48000 --snap-token-file snap.token \
      --listen '[1-ff00:0:110,10.0.0.2]:4433' --cert server.pem --key server.key \
      --client-ca ca.pem --broker 127.0.0.1:1883

  # The same on plain UDP/IP: MQTT over QUIC for brokers that lack it
  mqttbridge scion-quic --transport quic --listen 0.0.0.0:14567 --cert server.pem --key server.key \
      --broker 127.0.0.1:1883

  # SCION clients reach a QUIC-capable broker on UDP/IP; QUIC stays end to end
  mqttbridge scion-udp --endhost-api http://10.0.0.1:48000 --snap-token-file relay.token \
      --broker broker.example:14567

  # Publish and subscribe with mosquitto_pub/sub's flags, over any transport
  mqttbridge pub -h broker.example -u alice -P secret -t sensors/1 -m 21.5 -q 1 -r
  mqttbridge sub -L quic://broker.example:14567 --cafile ca.pem -t 'sensors/#' -v
  mqttbridge pub -L wss://broker.example:8084/mqtt --cafile ca.pem -t sensors/1 -m 21.5
  mqttbridge pub -L scion-quic://[1-ff00:0:110,10.0.0.2]:4433 --endhost-api http://10.0.1.1:48000 \
      --snap-token-file client.token --cafile ca.pem -t sensors/1 -m 21.5 -q 1

  # Load: 4 publishers -> 2 subscribers for 10 s at QoS 1, then sequential latency
  mqttbridge bench throughput -L tcp://127.0.0.1:1883 -p 4 -s 2 -q 1 -d 10
  mqttbridge bench latency -L quic://proxy.example:14567 --cafile ca.pem -n 2000 --plot cdf.svg
  mqttbridge bench connections -L tcp://127.0.0.1:1883 -n 10000 --rate 2000 --hold 10 --json

  # A local SCION network for trying the SCION modes; prints the endhost APIs
  mqttbridge pocketscion --topology minimal --snap-token-file /tmp/snap.token
  mqttbridge pocketscion --topology config/topology-three-as.toml

  # Certificates for trying TLS and QUIC: ca.pem, server.pem/.key, client.pem/.key
  mqttbridge certs --out /tmp/certs --name localhost --name proxy.example

  # Check a config file before (re)starting a service
  mqttbridge check-config scion-quic /etc/mqttbridge/scion-quic.toml

  # The whole chain on this machine with a mosquitto it starts itself
  mqttbridge demo

Logging follows RUST_LOG (default: info), e.g. RUST_LOG=mqttbridge=debug.";

/// MQTT tunnel: carries MQTT 3.1.1 and 5.0 between clients and brokers over
/// gRPC.
#[derive(Debug, Parser)]
#[command(name = "mqttbridge", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The process flags given before the mode (a proxy mode also takes
    /// them after it).
    #[command(flatten)]
    pub process: ProcessFlags,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The process flags in force: a proxy mode's own (given after it)
    /// over those given before the mode. `--admin` only applies to the
    /// proxy modes.
    pub fn process_flags(&self) -> Result<ProcessFlags, String> {
        let own = self.command.process_flags().cloned().unwrap_or_default();
        let before = &self.process;
        let flags = ProcessFlags {
            log_format: own.log_format.or(before.log_format),
            admin: own.admin.or_else(|| before.admin.clone()),
            worker_threads: own.worker_threads.or(before.worker_threads),
        };
        if flags.admin.is_some() && !self.command.is_service() {
            return Err(
                "--admin is for the proxy modes (r-proxy, s-proxy, scion-quic, scion-udp)".into(),
            );
        }
        Ok(flags)
    }
}

/// The modes a config file can be checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigKind {
    /// config/edge.toml
    RProxy,
    /// config/cloud.toml
    SProxy,
    /// config/scion-quic.toml
    ScionQuic,
    /// config/scion-udp.toml
    ScionUdp,
    /// A `pocketscion --topology` file (config/topology-three-as.toml)
    Topology,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept MQTT/TCP clients and carry each connection over gRPC to an s-proxy.
    RProxy(RProxyArgs),
    /// Serve the gRPC relay and open one MQTT/TCP connection to the broker per stream.
    SProxy(SProxyArgs),
    /// Terminate MQTT over QUIC (over SCION or UDP/IP) and open MQTT/TCP to the broker.
    ScionQuic(ScionQuicArgs),
    /// Relay datagrams between SCION clients and a QUIC-capable broker on UDP/IP.
    ScionUdp(ScionUdpArgs),
    /// Check a config file without starting anything.
    CheckConfig {
        /// Which mode the file is for.
        #[arg(value_enum)]
        mode: ConfigKind,
        /// The TOML file.
        file: PathBuf,
    },
    /// Publish messages with mosquitto_pub's flags, over tcp, mqtts, ws, wss, quic or scion-quic.
    Pub(PubArgs),
    /// Subscribe and print messages with mosquitto_sub's flags, over tcp, mqtts, ws, wss, quic or scion-quic.
    Sub(SubArgs),
    /// Run mosquitto, s-proxy and r-proxy on this machine and send messages through them.
    Demo(DemoArgs),
    /// Generate MQTT load against any URL and report throughput, latency or connection cost.
    Bench(BenchArgs),
    /// Run a local SCION network (pocketscion) and print its endhost API URLs.
    Pocketscion(PocketscionArgs),
    /// Write a private CA, a server and a client certificate (PEM) for trying TLS.
    Certs(CertsArgs),
}

impl Command {
    /// Whether `pub`/`sub` were asked to show every packet (`-d`).
    pub fn shows_packets(&self) -> bool {
        match self {
            Command::Pub(args) => args.session.debug,
            Command::Sub(args) => args.session.debug,
            _ => false,
        }
    }

    /// A proxy mode's process flags (`--admin`, `--log-format`,
    /// `--worker-threads` given after the mode).
    pub fn process_flags(&self) -> Option<&ProcessFlags> {
        match self {
            Command::RProxy(args) => Some(&args.process),
            Command::SProxy(args) => Some(&args.process),
            Command::ScionQuic(args) => Some(&args.process),
            Command::ScionUdp(args) => Some(&args.process),
            _ => None,
        }
    }

    /// Whether it runs one of the long-running services (rather than a
    /// tool that does its job and exits).
    pub fn is_service(&self) -> bool {
        matches!(
            self,
            Command::RProxy(_) | Command::SProxy(_) | Command::ScionQuic(_) | Command::ScionUdp(_)
        )
    }
}

/// Checks a config file for `mode`: it parses and holds what the mode needs.
pub fn check_config(mode: ConfigKind, file: &std::path::Path) -> anyhow::Result<()> {
    match mode {
        ConfigKind::RProxy => crate::service::r_proxy::check_files(&load(file)?),
        ConfigKind::SProxy => crate::service::s_proxy::check_files(&load(file)?),
        ConfigKind::ScionQuic => crate::service::scion_quic::check_files(&load(file)?),
        ConfigKind::ScionUdp => crate::service::scion_udp::check_files(&load(file)?),
        ConfigKind::Topology => load::<TopologyFile>(file)?.build().map(|_| ()),
    }
    .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))
}
