//! The standard `process_*` metrics every Prometheus client library
//! exports (CPU seconds, resident and virtual memory, open and maximum file
//! descriptors, start time), read from `/proc/self` each time `/metrics`
//! is rendered, so dashboards and alerts written for any exporter work.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// The process metrics, registered without the `mqttbridge_` prefix.
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_memory: Gauge,
    virtual_memory: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    /// Registers them in `registry` (the root, unprefixed).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            cpu_seconds: Counter::default(),
            resident_memory: Gauge::default(),
            virtual_memory: Gauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            start_time: Gauge::default(),
        };
        registry.register_with_unit(
            "process_cpu",
            "Total user and system CPU time spent",
            Unit::Seconds,
            metrics.cpu_seconds.clone(),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            metrics.resident_memory.clone(),
        );
        registry.register_with_unit(
            "process_virtual_memory",
            "Virtual memory size",
            Unit::Bytes,
            metrics.virtual_memory.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            metrics.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            metrics.max_fds.clone(),
        );
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            metrics.start_time.clone(),
        );
        metrics
    }

    /// Reads the values now; what cannot be read keeps its last value.
    pub fn refresh(&self) {
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            self.max_fds
                .set(i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX));
        }
        let Some(stat) = Stat::read() else {
            return;
        };
        // A counter only goes up: add what was spent since the last read.
        let spent = stat.cpu_seconds - self.cpu_seconds.get();
        if spent > 0.0 {
            self.cpu_seconds.inc_by(spent);
        }
        self.resident_memory.set(stat.resident_bytes);
        self.virtual_memory.set(stat.virtual_bytes);
        if let Some(start) = stat.start_time {
            self.start_time.set(start);
        }
    }
}

/// What `/proc/self/stat` (and the boot time) say.
struct Stat {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    start_time: Option<f64>,
}

impl Stat {
    fn read() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name is in parentheses and may hold spaces: the
        // fields counted here start after its closing parenthesis.
        let after = text.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the name: state is field 3 of the stat line, so field N
        // is at index N - 3.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let (ticks, page) = (u64::try_from(ticks).ok()?, u64::try_from(page).ok()?);
        let cpu_ticks = field(14)? + field(15)?;
        let start_time = boot_time().and_then(|boot| {
            let started = field(22)? as f64 / ticks as f64;
            Some(boot + started)
        });
        Some(Stat {
            cpu_seconds: cpu_ticks as f64 / ticks as f64,
            resident_bytes: i64::try_from(field(24)? * page).unwrap_or(i64::MAX),
            virtual_bytes: i64::try_from(field(23)?).unwrap_or(i64::MAX),
            start_time,
        })
    }
}

/// When the machine booted, in seconds since the Unix epoch (`btime`).
fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_metrics_read_this_process() {
        let mut registry = Registry::default();
        let metrics = ProcessMetrics::register(&mut registry);
        metrics.refresh();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap();
            // CPU time may still be 0 ticks this early.
            let least = if name.starts_with("process_cpu") {
                0.0
            } else {
                1.0
            };
            assert!(value >= least, "{name}{value}");
        }
        let started = metrics.start_time.get();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started}"
        );
    }
}
