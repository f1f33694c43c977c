//! The flags of `bench` and its three measurements.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::tools::pubsub::ClientArgs;

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
    /// With --rate: every publisher sends at the same instants, so the path
    /// takes bursts of one message per publisher at once. By default each
    /// publisher's sends are offset by an equal share of the interval, as
    /// independent devices' would be, and the load arrives evenly.
    #[arg(long, requires = "rate")]
    pub aligned: bool,
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
    pub watch: Vec<super::Watched>,
    /// Report settings.
    #[command(flatten)]
    pub output: BenchOutput,
}
