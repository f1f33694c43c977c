//! What a bench run reports: a summary table for people, JSON for machines,
//! an SVG chart, and a live progress line while it runs.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::plot::{Axis, Chart};

/// The result of one run.
#[derive(Debug, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Report {
    Throughput(ThroughputReport),
    Latency(LatencyReport),
    Connections(ConnectionsReport),
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// A histogram of nanoseconds, 3 significant digits, up to a minute.
pub fn latency_histogram() -> Histogram<u64> {
    // Fixed, valid bounds: 1 ns .. 60 s with 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

impl LatencySummary {
    /// `None` for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        Some(Self {
            samples: h.len(),
            min_us: us(h.min()),
            mean_us: (h.mean() / 100.0).round() / 10.0,
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }

    fn rows(&self, out: &mut String, what: &str) {
        let _ = writeln!(
            out,
            "{what} (us, {} samples): min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            self.samples,
            self.min_us,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.mean_us
        );
    }
}

/// Points of a latency CDF: (microseconds, percent of samples at or below).
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    if h.is_empty() {
        return points;
    }
    let total = h.len() as f64;
    let mut below = 0u64;
    for v in h.iter_quantiles(2) {
        below += v.count_since_last_iteration();
        let point = (
            v.value_iterated_to() as f64 / 1000.0,
            100.0 * below as f64 / total,
        );
        if points.last() != Some(&point) {
            points.push(point);
        }
    }
    points
}

/// One second of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub t_s: f64,
    /// Messages delivered per second, or connections open.
    pub value: f64,
}

#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub url: String,
    pub version: String,
    /// Each publisher's QoS, round-robin over the publishers.
    pub qos: Vec<u8>,
    pub payload_bytes: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// From the first publish to the last delivery (or the drain timeout).
    pub seconds: f64,
    pub sent: u64,
    /// Deliveries expected: every message to every subscriber.
    pub expected: u64,
    pub received: u64,
    /// Expected deliveries that did not arrive (received duplicates do not
    /// make up for them).
    pub lost: u64,
    /// Deliveries of a message a subscriber already had.
    pub duplicates: u64,
    /// Deliveries that came after a later message of the same publisher.
    pub out_of_order: u64,
    pub publish_rate: f64,
    pub delivery_rate: f64,
    /// Publish -> delivery under load (payloads of 16 bytes or more).
    pub latency: Option<LatencySummary>,
    /// Deliveries per second over the run.
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub struct LatencyReport {
    pub url: String,
    pub version: String,
    pub qos: u8,
    pub payload_bytes: usize,
    pub latency: LatencySummary,
    /// (microseconds, percent at or below).
    pub cdf: Vec<(f64, f64)>,
}

/// RSS of a watched process before and after the connections opened.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessMemory {
    pub name: String,
    pub pid: u32,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after - before) / connections open, in bytes.
    pub per_connection_bytes: f64,
    /// (after - RSS when a tenth were open) / connections opened since, in
    /// bytes: what one more idle connection costs. None with fewer than
    /// two connections open.
    pub marginal_bytes: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionsReport {
    pub url: String,
    pub version: String,
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    /// Still open when the hold ended.
    pub alive_after_hold: usize,
    /// From the first attempt to the last connection open.
    pub open_seconds: f64,
    pub open_rate: f64,
    pub hold_seconds: f64,
    /// Connect -> CONNACK.
    pub connect_latency: Option<LatencySummary>,
    pub memory: Vec<ProcessMemory>,
    /// Connections open over time.
    pub timeline: Vec<Sample>,
}

impl Report {
    /// The summary a person reads.
    pub fn table(&self) -> String {
        let mut out = String::new();
        match self {
            Report::Throughput(r) => {
                let _ = writeln!(
                    out,
                    "throughput  {}  MQTT {}  QoS {}  {} B payloads  {} pub -> {} sub",
                    r.url,
                    r.version,
                    r.qos
                        .iter()
                        .map(u8::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    r.payload_bytes,
                    r.publishers,
                    r.subscribers
                );
                let _ = writeln!(
                    out,
                    "sent {}  expected {}  received {}  lost {}  duplicates {}  out of order {}",
                    r.sent, r.expected, r.received, r.lost, r.duplicates, r.out_of_order
                );
                let _ = writeln!(
                    out,
                    "{:.2} s  publish {:.0} msg/s  delivery {:.0} msg/s",
                    r.seconds, r.publish_rate, r.delivery_rate
                );
                if let Some(l) = &r.latency {
                    l.rows(&mut out, "latency under load");
                }
            }
            Report::Latency(r) => {
                let _ = writeln!(
                    out,
                    "latency  {}  MQTT {}  QoS {}  {} B payloads, one message at a time",
                    r.url, r.version, r.qos, r.payload_bytes
                );
                r.latency.rows(&mut out, "publish -> delivery");
            }
            Report::Connections(r) => {
                let _ = writeln!(out, "connections  {}  MQTT {}", r.url, r.version);
                let _ = writeln!(
                    out,
                    "requested {}  opened {}  failed {}  alive after {:.0} s hold {}",
                    r.requested, r.opened, r.failed, r.hold_seconds, r.alive_after_hold
                );
                let _ = writeln!(
                    out,
                    "opened in {:.2} s ({:.0} conn/s)",
                    r.open_seconds, r.open_rate
                );
                if let Some(l) = &r.connect_latency {
                    l.rows(&mut out, "connect -> CONNACK");
                }
                for m in &r.memory {
                    let _ = write!(
                        out,
                        "{} (pid {}): RSS {} KiB -> {} KiB, {:.0} bytes per connection",
                        m.name, m.pid, m.rss_before_kib, m.rss_after_kib, m.per_connection_bytes
                    );
                    if let Some(marginal) = m.marginal_bytes {
                        let _ = write!(out, ", {marginal:.0} after the first tenth");
                    }
                    let _ = writeln!(out);
                }
            }
        }
        out
    }

    /// A chart: throughput or open connections over time, or the latency
    /// CDF.
    pub fn svg(&self) -> String {
        let over_time = |samples: &[Sample]| samples.iter().map(|s| (s.t_s, s.value)).collect();
        match self {
            Report::Throughput(r) => Chart {
                title: format!("Deliveries per second, {}", r.url),
                x: Axis::linear("seconds"),
                y: Axis::linear("messages / s"),
                points: over_time(&r.timeline),
            }
            .svg(),
            Report::Latency(r) => Chart {
                title: format!("Publish -> delivery latency CDF, {}", r.url),
                x: Axis::log("microseconds"),
                y: Axis::linear("% of messages at or below"),
                points: r.cdf.clone(),
            }
            .svg(),
            Report::Connections(r) => Chart {
                title: format!("Open connections, {}", r.url),
                x: Axis::linear("seconds"),
                y: Axis::linear("connections"),
                points: over_time(&r.timeline),
            }
            .svg(),
        }
    }
}

/// A status line rewritten in place on a terminal; silent otherwise.
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn show(&self, line: &str) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }

    pub fn done(&self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
