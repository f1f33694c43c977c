//! Command-line interface: subcommands, flags that override config-file
//! keys, and `--help` text with examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    self, BrokerUrl, ConfigError, HostPort, QuicTransport, RProxyConfig, SProxyConfig,
    ScionQuicConfig, ScionUdpConfig, UpstreamUrl,
};

const EXAMPLES: &str = "\
Examples:
  # Edge side: MQTT clients connect to :1883, carried over gRPC to the cloud
  mqttbridge r-proxy --listen 0.0.0.0:1883 --upstream http://cloud.example:50516

  # Cloud side: accept gRPC on :50516, open MQTT/TCP to the broker
  mqttbridge s-proxy --listen [::]:50516 --broker 127.0.0.1:1883

  # Everything from a file, one flag overridden
  mqttbridge r-proxy --config config/edge.toml --listen 127.0.0.1:1884

  # MQTT over QUIC over SCION in front of a broker, client certificates required
  mqttbridge scion-quic --endhost-api http://10.0.0.1:48000 --listen '[1-ff00:0:110,10.0.0.2]:4433' \
      --cert server.pem --key server.key --client-ca ca.pem --broker 127.0.0.1:1883

  # The same on plain UDP/IP: MQTT over QUIC for brokers that lack it
  mqttbridge scion-quic --transport quic --listen 0.0.0.0:14567 --cert server.pem --key server.key

  # SCION clients reach a QUIC-capable broker on UDP/IP; QUIC stays end to end
  mqttbridge scion-udp --endhost-api http://10.0.0.1:48000 --broker broker.example:14567

  # Publish and subscribe, mosquitto_pub/sub style, over any transport
  mqttbridge sub -L quic://broker.example:14567 --cafile ca.pem -t 'sensors/#' -v
  mqttbridge pub -L scion-quic://[1-ff00:0:110,10.0.0.2]:4433 --endhost-api http://10.0.1.1:48000 \
      --cafile ca.pem -t sensors/1 -m 21.5 -q 1

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
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Admin HTTP endpoint (/metrics, /healthz, /readyz), e.g. 127.0.0.1:9090;
    /// overrides the config file's `admin`.
    #[arg(long, global = true, value_name = "ADDR")]
    pub admin: Option<HostPort>,
    /// Threads that run connections: 1 runs everything on one thread (the
    /// lowest latency: no hand-offs between threads), 0 one per core.
    /// [default: 1 for the proxy modes, 0 for bench, pub, sub and demo]
    #[arg(long, global = true, value_name = "N")]
    pub worker_threads: Option<usize>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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
    /// Publish one message (like mosquitto_pub) over tcp, quic or scion-quic.
    Pub(PubArgs),
    /// Subscribe and print messages (like mosquitto_sub) over tcp, quic or scion-quic.
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

/// Flags of `certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.pem, server.pem/.key and client.pem/.key into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Names the server certificate is valid for (repeatable).
    #[arg(long = "name", default_value = "localhost")]
    pub names: Vec<String>,
}

/// Flags of `pocketscion`.
#[derive(Debug, Args)]
pub struct PocketscionArgs {
    /// Which network to run: `minimal` (two core ASes, one link),
    /// `two-path` (three ASes in a triangle) or a topology file (TOML; see
    /// config/topology-*.toml).
    #[arg(long, default_value = "minimal", value_name = "NAME|FILE")]
    pub topology: crate::mode::pocketscion::Topology,
    /// Write a SNAP token for clients and proxies to this file; repeat for
    /// several, each a token of its own. Every process attached to an AS
    /// needs its own token: the AS authorises one identity per token, so a
    /// second process with the same token cuts the first one off.
    #[arg(long = "snap-token-file", value_name = "FILE")]
    pub snap_token_files: Vec<PathBuf>,
}

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub mode: BenchMode,
}

/// The bench modes.
#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// N publishers -> M subscribers, as fast as the path takes or at --rate; deliveries
    /// per second, loss, duplicates, order and latency under load.
    Throughput(ThroughputArgs),
    /// One message at a time, publish -> delivery; percentiles from an HDR histogram.
    Latency(LatencyArgs),
    /// Open N idle connections at a rate and hold them; optionally the RSS each costs.
    Connections(ConnectionsArgs),
}

/// How a bench run reports.
#[derive(Debug, Clone, Args)]
pub struct BenchOutput {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write a chart: deliveries or connections over time, or the latency CDF.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Flags of `bench throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Connection settings (-i sets the client id prefix).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Publishing connections.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribing connections; each receives every message.
    #[arg(short = 's', long, default_value_t = 1)]
    pub subscribers: usize,
    /// QoS to publish with; a list such as 0,1,2 gives publisher i the
    /// i-th (round-robin). Subscribers subscribe with the highest.
    #[arg(short = 'q', long, value_delimiter = ',', default_value = "0",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: Vec<u8>,
    /// Payload bytes (16 or more carry a stamp for latency, loss and order).
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Messages per publisher (instead of a duration).
    #[arg(short = 'n', long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Seconds to publish for [default: 10].
    #[arg(short = 'd', long)]
    pub duration: Option<f64>,
    /// Messages per second per publisher [default: as fast as the path takes]. An
    /// open-loop publisher outruns a slower path and the latency under load then
    /// measures its queue; a rate below capacity measures the path.
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Messages per second each subscriber takes at most [default: as fast
    /// as they come]: a slow consumer, so the queues on the way fill and
    /// back-pressure reaches the publishers.
    #[arg(long, value_parser = positive_rate)]
    pub subscriber_rate: Option<f64>,
    /// QoS 1/2 messages in flight per publisher (capped by the broker's receive maximum).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// Topic prefix; each run adds a random level.
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Seconds without a delivery after publishing ends before the rest count as lost.
    #[arg(long, default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Report settings.
    #[command(flatten)]
    pub output: BenchOutput,
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "expected a positive number of messages per second, got {s:?}"
        )),
    }
}

/// Flags of `bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Connection settings (-i sets the client id prefix).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Messages measured.
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub count: u32,
    /// Messages sent first and not measured.
    #[arg(long, default_value_t = 100)]
    pub warmup: u32,
    /// QoS to publish and subscribe with.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload bytes (at least 16, the stamp).
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Pause between messages, in milliseconds [default: none].
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// Topic prefix; each run adds a random level.
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Report settings.
    #[command(flatten)]
    pub output: BenchOutput,
}

/// Flags of `bench connections`.
#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// Connection settings (-i sets the client id prefix; connections are idle, keep-alive 0).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Connections to open.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub count: usize,
    /// Connections opened per second (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Connection attempts under way at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to hold the connections open.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Measure this process's RSS before and while holding (repeatable), e.g. r-proxy=1234.
    #[arg(long, value_name = "NAME=PID")]
    pub watch: Vec<crate::bench::Watched>,
    /// Report settings.
    #[command(flatten)]
    pub output: BenchOutput,
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

/// Connection flags shared by `pub` and `sub`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Where to connect: tcp://host:port, quic://host:port or
    /// scion-quic://[ISD-AS,IP]:port.
    #[arg(long, short = 'L', default_value = "tcp://127.0.0.1:1883")]
    pub url: String,
    /// MQTT version: 311 or 5.
    #[arg(short = 'V', long = "protocol-version", default_value = "5", value_parser = ["311", "5", "mqttv311", "mqttv5"])]
    pub protocol_version: String,
    /// Client id [default: mqttbridge-<random>].
    #[arg(short = 'i', long = "id")]
    pub client_id: Option<String>,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u64,
    /// PEM CA bundle to check the server's certificate (QUIC).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Do not check the server's certificate (QUIC; testing only).
    #[arg(long)]
    pub insecure: bool,
    /// PEM client certificate for mutual TLS (QUIC).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM client key for mutual TLS (QUIC).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name (or IP address) the server's certificate must carry [default: the
    /// URL's host; localhost for SCION]. An IP address is checked against the
    /// certificate's IP addresses, a name against its DNS names.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Endhost API of the local SCION AS (scion-quic).
    #[arg(long, value_name = "URL")]
    pub endhost_api: Option<url::Url>,
    /// File with the SNAP token for the endhost API (scion-quic).
    #[arg(long, value_name = "FILE")]
    pub snap_token_file: Option<PathBuf>,
}

/// Flags of `pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Message payload.
    #[arg(short = 'm', long, conflicts_with = "file")]
    pub message: Option<String>,
    /// Send the contents of a file as the payload.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// QoS 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// Publish the message this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Flags of `sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// Connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic filter; repeat for several.
    #[arg(short = 't', long = "topic", required = true)]
    pub topics: Vec<String>,
    /// QoS to subscribe with.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    pub count: Option<u64>,
    /// Exit after this many seconds without the expected messages (error).
    #[arg(short = 'W', long)]
    pub timeout: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Checks a config file for `mode`: it parses and holds what the mode needs.
pub fn check_config(mode: ConfigKind, file: &std::path::Path) -> anyhow::Result<()> {
    match mode {
        ConfigKind::RProxy => config::load::<RProxyConfig>(file)?.validate(),
        ConfigKind::SProxy => config::load::<SProxyConfig>(file)?.validate(),
        ConfigKind::ScionQuic => config::load::<ScionQuicConfig>(file)?.validate(),
        ConfigKind::ScionUdp => config::load::<ScionUdpConfig>(file)?.validate(),
        ConfigKind::Topology => config::load::<crate::topology::TopologyFile>(file)?
            .build()
            .map(|_| ()),
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
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
