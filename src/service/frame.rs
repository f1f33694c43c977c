//! The frame every service runs in: a [`Service`] binds with its config,
//! serves until shutdown, and takes new settings while it runs through its
//! [`Reload`] handle. The settings in force live in an [`InForce`] cell that new
//! connections read; [`drain`] ends a service's open connections politely
//! after its grace period.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::time::timeout;
use tracing::info;

use crate::net::{HostPort, Registered};
use crate::ops::readiness::Readiness;

/// A service's settings: one TOML file (and the flags over it).
pub trait ServiceConfig: Default + Clone + DeserializeOwned + Send + Sync + 'static {
    /// Checks what parsing cannot (settings that must come together).
    fn validate(&self) -> anyhow::Result<()>;
    /// The admin endpoint's address, when configured.
    fn admin(&self) -> Option<&HostPort>;
}

/// Applies new settings to a running service (SIGHUP). A config that does
/// not check out is refused and the running one kept.
pub trait Reload<C>: Clone + Send + Sync + 'static {
    /// Replaces the settings for what starts from now on.
    fn apply(&self, config: C) -> anyhow::Result<()>;
}

/// One long-running service: the frame binds it, announces it ready, hands
/// SIGHUP to its reloader and SIGTERM to `serve`'s shutdown.
pub trait Service: Sized + Send + 'static {
    /// The subcommand, and the `mode` label in metrics.
    const NAME: &'static str;
    /// Its settings.
    type Config: ServiceConfig;
    /// What applies new settings while it serves.
    type Reloader: Reload<Self::Config>;

    /// Binds its sockets and reads its files; an error here stops the start.
    fn bind(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// A handle that applies new settings while serving.
    fn reloader(&self) -> Self::Reloader;

    /// Where its clients connect (its first listener), as its transport
    /// writes addresses.
    fn address(&self) -> String;

    /// How many connections or sessions are open, watched.
    fn active(&self) -> watch::Receiver<usize>;

    /// Its readiness: the frame marks it serving; a service that forwards
    /// to something it can probe (an s-proxy, the broker) probes it while
    /// it serves and reports what it finds here.
    fn readiness(&self) -> Readiness {
        Readiness::default()
    }

    /// Serves until `shutdown` completes, then drains.
    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The prepared settings in force: each new connection takes the current
/// ones, a reload swaps them, connections already open keep theirs.
pub struct InForce<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for InForce<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> InForce<T> {
    /// Holds `value` as the settings in force.
    pub fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<T> {
        // A poisoned lock only means a panic elsewhere; the Arc is intact.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `value` in force for what starts from now on.
    pub fn replace(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
    }
}

/// The end of a shutdown's grace period, told to every open session at
/// once. Every idle session waits for it, with a bare `Notified` (64
/// bytes) rather than a watch's `wait_for` (144).
#[derive(Default)]
pub struct Ending {
    over: AtomicBool,
    told: Notify,
}

impl Ending {
    /// The grace period is over.
    pub fn end(&self) {
        self.over.store(true, Ordering::SeqCst);
        self.told.notify_waiters();
    }

    /// Resolves once the grace period is over.
    ///
    /// A session polls this on each of its wake-ups (it sits in the
    /// session's `select!`); once its waker is registered, a poll is a look
    /// at the flag, not a turn through the `Notify`'s locked waiter list.
    pub async fn wait(&self) {
        // Made before the flag is read, so an `end` after the read is not
        // missed.
        let told = self.told.notified();
        tokio::pin!(told);
        let mut registered = Registered::default();
        std::future::poll_fn(|cx| {
            if self.over.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if registered.holds(cx) {
                return Poll::Pending;
            }
            let polled = told.as_mut().poll(cx);
            registered.polled(cx, polled.is_pending());
            polled
        })
        .await;
    }
}

/// After accepting has stopped: lets the `open` connections finish for up to
/// `grace`, then tells the rest to end (`end_sessions`; MQTT 5 clients
/// hear DISCONNECT 0x8B) and gives them `last` to do so.
pub async fn drain(
    mut open: watch::Receiver<usize>,
    grace: Duration,
    end_sessions: impl FnOnce(),
    last: Duration,
) {
    info!(open = *open.borrow(), ?grace, "draining");
    if timeout(grace, open.wait_for(|n| *n == 0)).await.is_err() {
        info!(
            open = *open.borrow(),
            "grace period over, closing the remaining sessions"
        );
        end_sessions();
        let _ = timeout(last, open.wait_for(|n| *n == 0)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake};

    use std::task::Waker;

    use super::*;

    /// Counts its wake-ups.
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_session_waiting_for_the_end_is_woken_once_and_then_done() {
        let ending = Ending::default();
        let count = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let wait = ending.wait();
        tokio::pin!(wait);
        // Polled again and again, as a session's select! does.
        for _ in 0..3 {
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        ending.end();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken by the end");
        assert!(wait.as_mut().poll(&mut cx).is_ready());

        // Another task's waker is registered afresh, and woken too.
        let ending = Ending::default();
        let wait = ending.wait();
        tokio::pin!(wait);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        let other = Arc::new(Counting(AtomicUsize::new(0)));
        let other_waker = Waker::from(other.clone());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&other_waker))
                .is_pending()
        );
        ending.end();
        assert_eq!(other.0.load(Ordering::SeqCst), 1);
        // Once over, a new wait is done at once.
        assert!(
            std::pin::pin!(ending.wait())
                .poll(&mut Context::from_waker(&other_waker))
                .is_ready()
        );
    }
}
