//! Whether a mode should get traffic: it is serving (listening, not
//! draining) and what it forwards to answers (an s-proxy for the r-proxy,
//! the broker for the s-proxy and scion-quic), as its probes last found.
//! `/readyz` and the s-proxy's gRPC health service both read it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// The readiness of one mode; cheap to clone, all clones share it.
#[derive(Clone)]
pub struct Readiness(Arc<State>);

struct State {
    inner: Mutex<Inner>,
    /// Whether ready, for those that follow changes (gRPC health).
    changes: watch::Sender<bool>,
}

struct Inner {
    serving: bool,
    /// Why what the mode forwards to cannot take traffic (None: it can).
    dependency: Option<String>,
}

impl Default for Readiness {
    /// A mode with nothing to probe: ready once serving.
    fn default() -> Self {
        Self::with_dependency(None)
    }
}

impl Readiness {
    /// A mode whose probes must first find `what` reachable.
    pub fn probing(what: &str) -> Self {
        Self::with_dependency(Some(format!("{what} not probed yet")))
    }

    fn with_dependency(dependency: Option<String>) -> Self {
        Self(Arc::new(State {
            inner: Mutex::new(Inner {
                serving: false,
                dependency,
            }),
            changes: watch::Sender::new(false),
        }))
    }

    fn update(&self, change: impl FnOnce(&mut Inner)) {
        // A panic while holding the lock cannot leave two plain fields torn.
        let mut inner = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut inner);
        let ready = inner.serving && inner.dependency.is_none();
        self.0.changes.send_if_modified(|was| {
            let changed = *was != ready;
            *was = ready;
            changed
        });
    }

    /// Marks the mode serving (listening) or not (starting, draining).
    pub fn set(&self, serving: bool) {
        self.update(|inner| inner.serving = serving);
    }

    /// What the probes found: `Ok` when the mode's dependency takes
    /// traffic, else why not. Returns whether this changed anything.
    pub fn set_dependency(&self, found: Result<(), String>) -> bool {
        let mut changed = false;
        self.update(|inner| {
            let now = found.err();
            changed = inner.dependency.is_some() != now.is_some();
            inner.dependency = now;
        });
        changed
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        let inner = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
        match (&inner.dependency, inner.serving) {
            (_, false) => Err("not serving (starting or draining)".into()),
            (Some(why), true) => Err(why.clone()),
            (None, true) => Ok(()),
        }
    }

    /// Follows whether the mode is ready.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.changes.subscribe()
    }
}

/// Probes running in the background; dropping this stops them.
pub struct Probing(tokio::task::JoinHandle<()>);

impl Drop for Probing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts [`keep_probing`] on the runtime until the returned [`Probing`]
/// is dropped (when the service stops serving).
pub fn start_probing<F, Fut>(readiness: Readiness, every: Duration, probe: F) -> Probing
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Probing(tokio::spawn(keep_probing(readiness, every, probe)))
}

/// Runs `probe` every `every` for as long as it is polled, telling
/// `readiness` what it finds and logging each change once.
pub async fn keep_probing<F, Fut>(readiness: Readiness, every: Duration, probe: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let found = probe().await;
        let why = found.as_ref().err().cloned();
        if readiness.set_dependency(found) {
            match why {
                Some(why) => tracing::warn!(%why, "not ready"),
                None => tracing::info!("ready: the probe found the path up"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_serving_and_the_dependency_answers() {
        let readiness = Readiness::probing("the broker");
        let changes = readiness.watch();
        readiness.set(true);
        assert_eq!(readiness.check(), Err("the broker not probed yet".into()));
        assert!(readiness.set_dependency(Ok(())));
        assert_eq!(readiness.check(), Ok(()));
        assert!(*changes.borrow());
        assert!(!readiness.set_dependency(Ok(())), "no change");
        readiness.set_dependency(Err("broker refused: connection refused".into()));
        assert_eq!(
            readiness.check(),
            Err("broker refused: connection refused".into())
        );
        assert!(!*changes.borrow());
        readiness.set_dependency(Ok(()));
        readiness.set(false);
        assert!(readiness.check().is_err());
        assert!(Readiness::default().check().is_err(), "not serving yet");
    }
}
