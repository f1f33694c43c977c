//! Keeping the waker of whoever waits on shared state: the one to wake when
//! the state changes. A waker already kept that wakes the same task is not
//! replaced (cloning a waker costs an atomic increment or more).

use std::task::Waker;

/// Keeps `waker` in `slot` unless the one there wakes the same task.
pub fn keep_waker(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}
