//! A count of live things (connections, sessions) that can be watched, so
//! tests and health checks see it change without polling.

use tokio::sync::watch;

/// The count; clone the receiver from [`Gauge::watch`] to observe it.
#[derive(Clone)]
pub struct Gauge(watch::Sender<usize>);

impl Default for Gauge {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Gauge {
    /// Counts one more until the guard is dropped.
    pub fn enter(&self) -> GaugeGuard {
        self.0.send_modify(|n| *n += 1);
        GaugeGuard(self.0.clone())
    }

    /// Observes the count.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.0.subscribe()
    }
}

/// Holds one unit of a [`Gauge`].
pub struct GaugeGuard(watch::Sender<usize>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}
