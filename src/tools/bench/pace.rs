//! Pacing a load generator: message `k` goes at `start + k / rate`, so a
//! rate holds over the whole run instead of drifting with each wait.

use std::time::{Duration, Instant};

/// A send (or take) rate limit: message `k` may go at `start + k / rate`.
#[derive(Clone, Copy)]
pub(super) struct Pace {
    pub(super) start: Instant,
    /// Time between messages; `None` for as fast as the path takes.
    pub(super) every: Option<Duration>,
}

impl Pace {
    /// How many messages may have been sent by now.
    pub(super) fn allowed(&self) -> u64 {
        match self.every {
            None => u64::MAX,
            Some(every) => match Instant::now().checked_duration_since(self.start) {
                // A start still ahead (a publisher's offset): nothing yet.
                None => 0,
                Some(elapsed) => (elapsed.as_nanos() / every.as_nanos().max(1)) as u64 + 1,
            },
        }
    }

    /// Waits until message `count` may go.
    pub(super) async fn wait(&self, count: u64) {
        if let Some(every) = self.every {
            let due = every.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX));
            tokio::time::sleep_until((self.start + due).into()).await;
        }
    }
}
