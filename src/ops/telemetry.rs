//! Process-wide Prometheus metrics: sessions, packets and bytes each way by
//! packet type, connect latency, refused connections, upstream errors and
//! full queues, resumes, the build, live tasks and the standard `process_*`
//! metrics. Every series a mode can produce exists from its start (at
//! zero, [`Metrics::prepare`]), with labels from fixed lists and the
//! configured upstreams only. Served by [`crate::ops::admin`] at `/metrics`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::labels::BuildLabels;
pub use super::labels::{
    CLOSE_REASONS, CloseLabels, ModeLabel, OutcomeLabels, Prepared, REFUSAL_REASONS,
    RESUME_OUTCOMES, RefusalLabels, TrafficLabels, UpstreamLabels,
};
use super::process::ProcessMetrics;
pub use super::traffic::TrafficCounters;

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
    /// From a client's CONNECT to the upstream side being ready, for
    /// those that got there (failures are `upstream_errors`).
    pub connect_seconds: Family<ModeLabel, Histogram>,
    /// Upstream (s-proxy or broker) connections that failed, by upstream.
    pub upstream_errors: Family<UpstreamLabels, Counter>,
    /// Connections refused before they became sessions, by reason.
    pub refused: Family<RefusalLabels, Counter>,
    /// Packets that waited for room on the line (its stream or, on a
    /// resumable line, its replay buffer full) while reading paused.
    pub queue_full: Family<TrafficLabels, Counter>,
    /// Attempts to resume a broken gRPC stream, by outcome.
    pub resumes: Family<OutcomeLabels, Counter>,
    /// How long resumed gaps lasted.
    pub resume_gap_seconds: Family<ModeLabel, Histogram>,
    /// Bytes in replay buffers, awaiting the peer's acknowledgement.
    pub replay_buffer_bytes: Family<ModeLabel, Gauge>,
    /// Tokio tasks alive, read when rendered.
    tasks_alive: Gauge,
    /// `process_*`, read when rendered.
    process: ProcessMetrics,
}

impl Metrics {
    fn new() -> Self {
        let mut root = Registry::default();
        let process = ProcessMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("mqttbridge");
        let sessions_active = Family::<ModeLabel, Gauge>::default();
        let sessions_opened = Family::<ModeLabel, Counter>::default();
        let sessions_closed = Family::<CloseLabels, Counter>::default();
        let packets = Family::<TrafficLabels, Counter>::default();
        let bytes = Family::<TrafficLabels, Counter>::default();
        // 0.5 ms to 32.8 s: past every connect timeout (5 s by default).
        let connect_seconds = Family::<ModeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 17))
        });
        let upstream_errors = Family::<UpstreamLabels, Counter>::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
            })
            .set(1);
        registry.register(
            "build_info",
            "The running build: always 1, with its version",
            build_info,
        );
        registry.register(
            "connections_refused",
            "Connections refused before they became sessions, by reason",
            refused.clone(),
        );
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
            "From a client's CONNECT to the upstream side being ready (successful connects only)",
            connect_seconds.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream connections that failed, by upstream",
            upstream_errors.clone(),
        );
        registry.register(
            "queue_full",
            "Packets that waited for room on the line (stream or replay buffer full)",
            queue_full.clone(),
        );
        let tasks_alive = Gauge::default();
        registry.register("tasks_alive", "Tokio tasks alive", tasks_alive.clone());
        Self {
            registry: root,
            sessions_active,
            sessions_opened,
            sessions_closed,
            packets,
            bytes,
            connect_seconds,
            upstream_errors,
            refused,
            queue_full,
            resumes,
            resume_gap_seconds,
            replay_buffer_bytes,
            tasks_alive,
            process,
        }
    }

    /// Makes every series `prepared.mode` can produce, at zero, so that
    /// dashboards and alerts see them before the first event.
    pub fn prepare(&self, prepared: &Prepared<'_>) {
        let mode = prepared.mode;
        let label = ModeLabel { mode };
        let _ = self.sessions_active.get_or_create_owned(&label);
        let _ = self.sessions_opened.get_or_create_owned(&label);
        let _ = self.connect_seconds.get_or_create_owned(&label);
        for reason in CLOSE_REASONS {
            let _ = self
                .sessions_closed
                .get_or_create_owned(&CloseLabels { mode, reason });
        }
        for reason in REFUSAL_REASONS {
            let _ = self
                .refused
                .get_or_create_owned(&RefusalLabels { mode, reason });
        }
        for upstream in prepared.upstreams {
            let _ = self.upstream_errors.get_or_create_owned(&UpstreamLabels {
                mode,
                upstream: upstream.clone(),
            });
        }
        for direction in [CLIENT_TO_BROKER, BROKER_TO_CLIENT] {
            let all = TrafficLabels {
                mode,
                direction,
                packet_type: "all",
            };
            let _ = self.bytes.get_or_create_owned(&all);
            let _ = self.queue_full.get_or_create_owned(&all);
            for packet_type in prepared.packet_types {
                let _ = self.packets.get_or_create_owned(&TrafficLabels {
                    mode,
                    direction,
                    packet_type,
                });
            }
        }
        if prepared.resumes {
            for outcome in RESUME_OUTCOMES {
                let _ = self
                    .resumes
                    .get_or_create_owned(&OutcomeLabels { mode, outcome });
            }
            let _ = self.resume_gap_seconds.get_or_create_owned(&label);
            let _ = self.replay_buffer_bytes.get_or_create_owned(&label);
        }
    }

    /// Counts a connection refused for `reason` (one of [`REFUSAL_REASONS`]).
    pub fn refused(&self, mode: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusalLabels { mode, reason })
            .inc();
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
        self.process.refresh();
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

    /// Counts a failure of `upstream` (as configured).
    pub fn upstream_error(&self, mode: &'static str, upstream: &str) {
        self.upstream_errors
            .get_or_create(&UpstreamLabels {
                mode,
                upstream: upstream.to_string(),
            })
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

    /// The reason last set (for the "closed" log line).
    pub fn reason(&self) -> &'static str {
        self.reason
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

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Direction label: from the client towards the broker.
pub const CLIENT_TO_BROKER: &str = "client_to_broker";
/// Direction label: from the broker towards the client.
pub const BROKER_TO_CLIENT: &str = "broker_to_client";
