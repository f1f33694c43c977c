//! `mqttbridge.Publication`: a publish the blocking client started without
//! waiting (`Client.publish_nowait`), so many can be in flight from one
//! thread; `wait()` blocks until the broker's acknowledgement.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;

use crate::errors::Failure;

/// How often a waiting `wait()` looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

enum State {
    InFlight,
    Finished(Result<(), Failure>),
    /// The failure, once turned into a Python exception (raised again by
    /// every later `wait()`).
    Raised(Option<PyErr>),
}

/// Where the runtime leaves the outcome for the waiting thread.
#[derive(Clone)]
pub struct Outcome(Arc<(Mutex<State>, Condvar)>);

impl Outcome {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .0
            .lock()
            // The state is replaced whole; a panic cannot leave it torn.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called by the runtime when the publish is done.
    pub fn finish(&self, result: Result<(), Failure>) {
        *self.state() = State::Finished(result);
        self.0.1.notify_all();
    }
}

/// A publish in flight; `wait()` for its acknowledgement.
#[pyclass(module = "mqttbridge", frozen)]
pub struct Publication {
    outcome: Outcome,
}

impl Publication {
    /// A publish already done (a queued QoS 0 message).
    pub fn done() -> Self {
        let publication = Self::in_flight();
        publication.outcome.finish(Ok(()));
        publication
    }

    /// A publish the runtime finishes through [`Publication::outcome`].
    pub fn in_flight() -> Self {
        Self {
            outcome: Outcome(Arc::new((Mutex::new(State::InFlight), Condvar::new()))),
        }
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome.clone()
    }
}

#[pymethods]
impl Publication {
    /// Whether the broker has answered (or the publish failed).
    #[pyo3(name = "done")]
    fn is_done(&self) -> bool {
        !matches!(*self.outcome.state(), State::InFlight)
    }

    /// Blocks until the publish is acknowledged (QoS 1: PUBACK, QoS 2:
    /// PUBCOMP); raises what the publish failed with, or `TimeoutError`
    /// when `timeout` seconds pass first (the publish goes on).
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = timeout
            .map(|t| {
                Duration::try_from_secs_f64(t)
                    .map(|d| Instant::now() + d)
                    .map_err(|_| {
                        pyo3::exceptions::PyValueError::new_err("timeout: seconds, 0 or more")
                    })
            })
            .transpose()?;
        loop {
            let finished = py.detach(|| {
                let (lock, ready) = &*self.outcome.0;
                let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let limit = deadline.map_or(SIGNAL_CHECK, |d| {
                    d.saturating_duration_since(Instant::now())
                        .min(SIGNAL_CHECK)
                });
                if matches!(*state, State::InFlight) {
                    state = ready
                        .wait_timeout(state, limit)
                        .map(|(state, _)| state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
                !matches!(*state, State::InFlight)
            });
            if finished {
                break;
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err(
                    "the publish is not acknowledged yet",
                ));
            }
        }
        let mut state = self.outcome.state();
        let error = match std::mem::replace(&mut *state, State::Raised(None)) {
            State::Finished(Ok(())) | State::Raised(None) => None,
            State::Finished(Err(failure)) => Some(PyErr::from(failure)),
            State::Raised(Some(error)) => Some(error),
            State::InFlight => unreachable!("waited until finished"),
        };
        *state = State::Raised(error.as_ref().map(|e| e.clone_ref(py)));
        match error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
