//! Our PINGs on a connection, the keep-alive of both ends: one out at a
//! time, answered when the peer echoes its payload.

use std::sync::Arc;
use std::task::Poll;

use super::Error;
use super::frame;
use super::state::Shared;

/// Sends PINGs and waits for their answers; one at a time.
pub struct Pinger {
    shared: Arc<Shared>,
    next: u64,
}

impl Pinger {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, next: 0 }
    }

    /// Sends a PING and completes when it is answered (or the connection
    /// ends).
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.next += 1;
        let payload = self.next.to_be_bytes();
        {
            let mut state = self.shared.lock();
            if let Some(e) = &state.failed {
                return Err(e.clone());
            }
            state.ping.sent = Some(payload);
            state.ping.answered = false;
            frame::put_ping(&mut state.out, payload, false);
            state.wake_driver();
        }
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.ping.answered {
                state.ping.answered = false;
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &state.failed {
                return Poll::Ready(Err(e.clone()));
            }
            state.ping.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
