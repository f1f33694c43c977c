//! Process-wide Prometheus metrics: sessions, packets and bytes each way by
//! packet type, connect latency, upstream errors and full queues, and the
//! process's live tasks and open file descriptors (what a leak would grow).
//! Served by [`crate::ops::admin`] at `/metrics`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: which mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    /// r-proxy, s-proxy, scion-quic, scion-udp.
    pub mode: &'static str,
}

/// Labels: why a session closed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The mode.
    pub mode: &'static str,
    /// What ended it.
    pub reason: &'static str,
}

/// Labels: one direction of traffic, optionally per packet type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    /// The mode.
    pub mode: &'static str,
    /// `client_to_broker` or `broker_to_client`.
    pub direction: &'static str,
    /// Packet type (`publish`, `puback`, ...), or `all` for bytes.
    pub packet_type: &'static str,
}

/// Labels: how an attempt ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The mode.
    pub mode: &'static str,
    /// `resumed`, `refused` or `expired`.
    pub outcome: &'static str,
}

/// Every metric the binary exports.
pub struct Metrics {
    registry: Registry,
    /// Sessions open now.
    pub sessions_active: Family<ModeLabel, Gauge>,
    /// Sessions opened.
    pub sessions_opened: Family<ModeLabel, Counter>,
    /// Sessions closed, by reason.
    pub sessions_closed: Family<CloseLabels, Counter>,
    /// MQTT packets relayed.
    pub packets: Family<TrafficLabels, Counter>,
    /// Bytes relayed.
    pub bytes: Family<TrafficLabels, Counter>,
    /// From a client's CONNECT to the upstream side being ready.
    pub connect_seconds: Family<ModeLabel, Histogram>,
    /// Upstream (s-proxy or broker) connections that failed.
    pub upstream_errors: Family<ModeLabel, Counter>,
    /// Times a relay queue was full and reading paused.
    pub queue_full: Family<TrafficLabels, Counter>,
    /// Attempts to resume a broken gRPC stream, by outcome.
    pub resumes: Family<OutcomeLabels, Counter>,
    /// How long resumed gaps lasted.
    pub resume_gap_seconds: Family<ModeLabel, Histogram>,
    /// Bytes in replay buffers, awaiting the peer's acknowledgement.
    pub replay_buffer_bytes: Family<ModeLabel, Gauge>,
    /// Tokio tasks alive, read when rendered.
    tasks_alive: Gauge,
    /// Open file descriptors (sockets among them), read when rendered.
    open_fds: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mqttbridge");
        let sessions_active = Family::<ModeLabel, Gauge>::default();
        let sessions_opened = Family::<ModeLabel, Counter>::default();
        let sessions_closed = Family::<CloseLabels, Counter>::default();
        let packets = Family::<TrafficLabels, Counter>::default();
        let bytes = Family::<TrafficLabels, Counter>::default();
        let connect_seconds = Family::<ModeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let upstream_errors = Family::<ModeLabel, Counter>::default();
        let queue_full = Family::<TrafficLabels, Counter>::default();
        let resumes = Family::<OutcomeLabels, Counter>::default();
        let resume_gap_seconds = Family::<ModeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        let replay_buffer_bytes = Family::<ModeLabel, Gauge>::default();
        registry.register(
            "resumes",
            "Broken gRPC streams whose sessions were resumed, refused or expired",
            resumes.clone(),
        );
        registry.register(
            "resume_gap_seconds",
            "From a gRPC stream breaking to its session resuming",
            resume_gap_seconds.clone(),
        );
        registry.register(
            "replay_buffer_bytes",
            "Bytes sent on resumable streams and not yet acknowledged",
            replay_buffer_bytes.clone(),
        );
        registry.register(
            "sessions_active",
            "Sessions open now",
            sessions_active.clone(),
        );
        registry.register(
            "sessions_opened",
            "Sessions opened",
            sessions_opened.clone(),
        );
        registry.register(
            "sessions_closed",
            "Sessions closed, by reason",
            sessions_closed.clone(),
        );
        registry.register("packets", "MQTT packets relayed", packets.clone());
        registry.register("bytes", "Bytes relayed", bytes.clone());
        registry.register(
            "connect_seconds",
            "From a client's CONNECT to the upstream side being ready",
            connect_seconds.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream connections that failed",
            upstream_errors.clone(),
        );
        registry.register(
            "queue_full",
            "Times a relay queue was full",
            queue_full.clone(),
        );
        let tasks_alive = Gauge::default();
        let open_fds = Gauge::default();
        registry.register("tasks_alive", "Tokio tasks alive", tasks_alive.clone());
        registry.register(
            "open_fds",
            "Open file descriptors of the process",
            open_fds.clone(),
        );
        Self {
            registry,
            sessions_active,
            sessions_opened,
            sessions_closed,
            packets,
            bytes,
            connect_seconds,
            upstream_errors,
            queue_full,
            resumes,
            resume_gap_seconds,
            replay_buffer_bytes,
            tasks_alive,
            open_fds,
        }
    }

    /// Counts a resume attempt's `outcome`, with the gap it closed.
    pub fn resumed(&self, mode: &'static str, outcome: &'static str, gap: Option<Duration>) {
        self.resumes
            .get_or_create(&OutcomeLabels { mode, outcome })
            .inc();
        if let Some(gap) = gap {
            self.resume_gap_seconds
                .get_or_create(&ModeLabel { mode })
                .observe(gap.as_secs_f64());
        }
    }

    /// The replay buffer bytes of `mode`, a handle kept per session so that
    /// counting each envelope is one atomic add.
    pub fn replay_buffer_gauge(&self, mode: &'static str) -> Gauge {
        self.replay_buffer_bytes
            .get_or_create(&ModeLabel { mode })
            .clone()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = runtime.metrics().num_alive_tasks();
            self.tasks_alive
                .set(i64::try_from(tasks).unwrap_or(i64::MAX));
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A session opened; the guard counts it closed with its reason.
    pub fn session(&'static self, mode: &'static str) -> SessionGuard {
        self.sessions_opened
            .get_or_create(&ModeLabel { mode })
            .inc();
        self.sessions_active
            .get_or_create(&ModeLabel { mode })
            .inc();
        SessionGuard {
            metrics: self,
            mode,
            reason: "unknown",
        }
    }

    /// Records how long connecting took.
    pub fn connected_after(&self, mode: &'static str, elapsed: Duration) {
        self.connect_seconds
            .get_or_create(&ModeLabel { mode })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts bytes relayed untouched (modes that do not see packets).
    pub fn relayed_bytes(&self, mode: &'static str, direction: &'static str, n: u64) {
        self.bytes
            .get_or_create(&TrafficLabels {
                mode,
                direction,
                packet_type: "all",
            })
            .inc_by(n);
    }

    /// Counts an upstream failure.
    pub fn upstream_error(&self, mode: &'static str) {
        self.upstream_errors
            .get_or_create(&ModeLabel { mode })
            .inc();
    }

    /// Counts a full queue.
    pub fn queue_was_full(&self, mode: &'static str, direction: &'static str) {
        self.queue_full
            .get_or_create(&TrafficLabels {
                mode,
                direction,
                packet_type: "all",
            })
            .inc();
    }
}

/// Counts a session as active until dropped, then as closed with the
/// reason last set.
pub struct SessionGuard {
    metrics: &'static Metrics,
    mode: &'static str,
    reason: &'static str,
}

impl SessionGuard {
    /// Why the session is ending.
    pub fn close_reason(&mut self, reason: &'static str) {
        self.reason = reason;
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mode = self.mode;
        self.metrics
            .sessions_active
            .get_or_create(&ModeLabel { mode })
            .dec();
        self.metrics
            .sessions_closed
            .get_or_create(&CloseLabels {
                mode,
                reason: self.reason,
            })
            .inc();
    }
}

/// Packet and byte counters of one relay direction, looked up once and then
/// only incremented (the hot path takes no lock).
pub struct TrafficCounters {
    mode: &'static str,
    direction: &'static str,
    bytes: Counter,
    /// By MQTT packet type code (1..=15), created on first use.
    packets: [Option<Counter>; 16],
}

impl TrafficCounters {
    /// Counters for `mode` and `direction`.
    pub fn new(mode: &'static str, direction: &'static str) -> Self {
        Self {
            mode,
            direction,
            bytes: METRICS.bytes.get_or_create_owned(&TrafficLabels {
                mode,
                direction,
                packet_type: "all",
            }),
            packets: Default::default(),
        }
    }

    /// Counts one packet of type `code` (named `name`) and `bytes` bytes.
    pub fn count(&mut self, code: u8, name: &'static str, bytes: usize) {
        self.bytes.inc_by(bytes as u64);
        let (mode, direction) = (self.mode, self.direction);
        self.packets[usize::from(code & 0x0f)]
            .get_or_insert_with(|| {
                METRICS.packets.get_or_create_owned(&TrafficLabels {
                    mode,
                    direction,
                    packet_type: name,
                })
            })
            .inc();
    }
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Direction label: from the client towards the broker.
pub const CLIENT_TO_BROKER: &str = "client_to_broker";
/// Direction label: from the broker towards the client.
pub const BROKER_TO_CLIENT: &str = "broker_to_client";
