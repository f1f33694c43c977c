//! Polling a future only when something woke it. A task that waits on
//! several futures at once (a session's two pumps, a connection and its
//! ping timer) is woken as one: without this, every wake-up polls every
//! future, and each idle one pays for looking again (a socket's readiness,
//! a stream's lock, a timer's registration). [`OnWake`] gives its future a
//! waker of its own that marks it before waking the task, and polls it only
//! when marked.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use futures_util::task::{ArcWake, waker_ref};
use parking_lot::Mutex;

use super::waker_slot::keep_waker;

/// A future polled on its first poll and afterwards only once its own waker
/// was used; otherwise `Pending` at once.
pub struct OnWake<F> {
    future: F,
    /// Also the waker handed to `future`, lent for each poll.
    mark: Arc<Mark>,
}

/// Whether the future was woken, and the task to wake when it is.
struct Mark {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl ArcWake for Mark {
    fn wake_by_ref(mark: &Arc<Self>) {
        mark.woken.store(true, Ordering::Release);
        if let Some(task) = &*mark.lock() {
            task.wake_by_ref();
        }
    }
}

impl Mark {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Option<Waker>> {
        self.task.lock()
    }
}

impl<F> OnWake<F> {
    /// Wraps `future`; its first poll goes through.
    pub fn new(future: F) -> Self {
        let mark = Arc::new(Mark {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Self { future, mark }
    }
}

impl<F: Future + Unpin> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Kept before the mark is read, so a wake between the two is not
        // lost: it either shows in the mark or wakes the task again.
        keep_waker(&mut this.mark.lock(), cx.waker());
        if !this.mark.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = waker_ref(&this.mark);
        let mut own = Context::from_waker(&waker);
        Pin::new(&mut this.future).poll(&mut own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Counts its polls; pending until told, waking itself through the
    /// waker it was last given.
    struct Counted {
        polls: Arc<AtomicUsize>,
        waker: Arc<Mutex<Option<Waker>>>,
        ready: Arc<AtomicBool>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    struct TaskWakes(AtomicUsize);
    impl Wake for TaskWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn polls_the_future_only_after_its_own_waker_was_used() {
        let polls = Arc::new(AtomicUsize::new(0));
        let kept = Arc::new(Mutex::new(None::<Waker>));
        let ready = Arc::new(AtomicBool::new(false));
        let mut on_wake = OnWake::new(Counted {
            polls: polls.clone(),
            waker: kept.clone(),
            ready: ready.clone(),
        });
        let task = Arc::new(TaskWakes(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);

        assert!(Pin::new(&mut on_wake).poll(&mut cx).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "the first poll goes through"
        );
        // The task is woken for something else: the future is not looked at.
        for _ in 0..3 {
            assert!(Pin::new(&mut on_wake).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);

        // The future's own waker wakes the task and lets the next poll in.
        ready.store(true, Ordering::SeqCst);
        kept.lock().take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert_eq!(Pin::new(&mut on_wake).poll(&mut cx), Poll::Ready(()));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_select_polls_only_the_branch_that_was_woken() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let idle_polls = Arc::new(AtomicUsize::new(0));
        let idle = Counted {
            polls: idle_polls.clone(),
            waker: Arc::new(Mutex::new(None)),
            ready: Arc::new(AtomicBool::new(false)),
        };
        let mut idle = OnWake::new(idle);
        let mut got = Vec::new();
        let sender = tokio::spawn(async move {
            for n in 0..3 {
                tx.send(n).await.expect("receiver open");
                tokio::task::yield_now().await;
            }
        });
        loop {
            tokio::select! {
                biased;
                () = &mut idle => unreachable!("never ready"),
                n = rx.recv() => match n {
                    Some(n) => got.push(n),
                    None => break,
                },
            }
        }
        sender.await.expect("sender ran");
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(
            idle_polls.load(Ordering::SeqCst),
            1,
            "polled once, never woken"
        );
    }
}
