//! Keeping the waker of whoever waits on shared state: the one to wake when
//! the state changes. A waker already kept that wakes the same task is not
//! replaced (cloning a waker costs an atomic increment or more).
//!
//! [`Registered`] is the other side: a future that waits on something
//! (a channel, a timer, a `Notify`) remembers that its task's waker is
//! already held there, so a look on the task's next wake-up is a check of
//! a flag or a state, not a registration again.

use std::task::{Context, Waker};

/// Keeps `waker` in `slot` unless the one there wakes the same task.
pub fn keep_waker(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// The waker a future last left with what it waits on, while that still
/// holds it.
#[derive(Default)]
pub struct Registered(Option<Waker>);

impl Registered {
    /// Whether what is waited on holds `cx`'s waker already: then, if a
    /// cheap look shows nothing happened, `Pending` needs no poll.
    pub fn holds(&self, cx: &Context<'_>) -> bool {
        self.0.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
    }

    /// After a poll with `cx`: a pending poll left its waker there, a
    /// ready one did not.
    pub fn polled(&mut self, cx: &Context<'_>, pending: bool) {
        if pending {
            keep_waker(&mut self.0, cx.waker());
        } else {
            self.0 = None;
        }
    }

    /// What was waited on is gone (a timer dropped, say).
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Nothing;

    impl Wake for Nothing {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_registration_is_held_for_its_own_task_until_ready_or_cleared() {
        let (one, other) = (
            Waker::from(Arc::new(Nothing)),
            Waker::from(Arc::new(Nothing)),
        );
        let (cx, other_cx) = (Context::from_waker(&one), Context::from_waker(&other));
        let mut registered = Registered::default();
        assert!(!registered.holds(&cx), "nothing polled yet");
        registered.polled(&cx, true);
        assert!(registered.holds(&cx));
        assert!(!registered.holds(&other_cx), "another task must poll");
        registered.polled(&cx, false);
        assert!(!registered.holds(&cx), "a ready poll keeps no waker");
        registered.polled(&cx, true);
        registered.clear();
        assert!(!registered.holds(&cx));
    }
}
