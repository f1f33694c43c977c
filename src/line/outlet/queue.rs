//! The s-proxy's outlet: a queue of envelopes that tonic's server reads as
//! the response stream. Bounded like a channel (a full queue makes senders
//! wait, so the pump stops reading its socket), and small while empty.
//! Every session holds one for its whole life, mostly idle; tokio's mpsc
//! channel would allocate room for 32 values and its cache-line padded
//! counters up front, about 1 KiB per session, where this holds a few
//! pointers and releases a grown buffer once it empties.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_util::Stream;
use tokio::sync::Notify;
use tokio::sync::mpsc::error::{SendError, TrySendError};

use super::Queued;

/// An emptied buffer up to this many slots is kept (a busy session reuses
/// it); a larger one is given back.
const KEEP_SLOTS: usize = 4;

/// The sending side; clones share the queue. The stream ends once every
/// sender is gone.
pub struct Sender {
    queue: Arc<Queue>,
}

/// The receiving side: the stream of what was sent, in order.
pub struct OutletStream {
    queue: Arc<Queue>,
}

struct Queue {
    state: Mutex<State>,
    /// Room was made in a full queue (or the receiver is gone).
    room: Notify,
    capacity: usize,
}

struct State {
    items: VecDeque<Queued>,
    receiver_waker: Option<Waker>,
    senders: usize,
    /// The receiver is gone.
    closed: bool,
}

/// A queue holding at most `capacity` (at least 1) values.
pub fn channel(capacity: usize) -> (Sender, OutletStream) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            receiver_waker: None,
            senders: 1,
            closed: false,
        }),
        room: Notify::new(),
        capacity: capacity.max(1),
    });
    (
        Sender {
            queue: queue.clone(),
        },
        OutletStream { queue },
    )
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent; a panic elsewhere does
        // not make it unusable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sender {
    /// Queues `value` if there is room.
    pub fn try_send(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        let mut state = self.queue.lock();
        if state.closed {
            return Err(TrySendError::Closed(value));
        }
        if state.items.len() >= self.queue.capacity {
            return Err(TrySendError::Full(value));
        }
        state.items.push_back(value);
        let waker = state.receiver_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `value`, waiting for room; fails once the receiver is gone.
    pub async fn send(&self, mut value: Queued) -> Result<(), SendError<Queued>> {
        loop {
            // Made before the queue is looked at, so room made after that
            // is not missed.
            let room = self.queue.room.notified();
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(value)) => return Err(SendError(value)),
                Err(TrySendError::Full(back)) => value = back,
            }
            room.await;
        }
    }

    /// Whether a value would have to wait for room now.
    pub fn is_full(&self) -> bool {
        self.queue.lock().items.len() >= self.queue.capacity
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.queue.lock().senders += 1;
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.receiver_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Stream for OutletStream {
    type Item = Queued;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Queued>> {
        let queue = &self.queue;
        let mut state = queue.lock();
        if let Some(value) = state.items.pop_front() {
            let was_full = state.items.len() + 1 >= queue.capacity;
            if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
                state.items = VecDeque::new();
            }
            drop(state);
            if was_full {
                queue.room.notify_waiters();
            }
            return Poll::Ready(Some(value));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        if !state
            .receiver_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.receiver_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for OutletStream {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.closed = true;
        // What was queued goes now, not when the last sender does.
        state.items = VecDeque::new();
        drop(state);
        self.queue.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;
    use crate::line::proto::mqtt::MqttStreamMessage;

    fn numbered(sequence_id: u64) -> Queued {
        Ok(Box::new(MqttStreamMessage {
            sequence_id,
            ..Default::default()
        }))
    }

    fn sequence(value: Option<Queued>) -> Option<u64> {
        value.and_then(|v| v.ok()).map(|m| m.sequence_id)
    }

    #[tokio::test]
    async fn bounded_in_order_and_ends_with_the_last_sender() {
        let (outlet, mut stream) = channel(2);
        let second = outlet.clone();
        outlet.try_send(numbered(1)).expect("room");
        second.try_send(numbered(2)).expect("room");
        assert!(outlet.is_full());
        assert!(matches!(
            outlet.try_send(numbered(3)),
            Err(TrySendError::Full(_))
        ));
        // A send waits for room and completes once the stream takes one.
        let waiting = tokio::spawn(async move { second.send(numbered(3)).await.is_ok() });
        assert_eq!(sequence(stream.next().await), Some(1));
        let sent = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting send completes once there is room")
            .expect("task");
        assert!(sent);
        assert_eq!(sequence(stream.next().await), Some(2));
        assert_eq!(sequence(stream.next().await), Some(3));
        drop(outlet);
        assert!(stream.next().await.is_none(), "no sender left: the end");
    }

    #[tokio::test]
    async fn senders_learn_that_the_receiver_is_gone() {
        let (outlet, stream) = channel(1);
        outlet.try_send(numbered(1)).expect("room");
        let waiting = {
            let outlet = outlet.clone();
            tokio::spawn(async move { outlet.send(numbered(2)).await.is_err() })
        };
        drop(stream);
        let failed = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting send ends when the receiver goes")
            .expect("task");
        assert!(failed);
        assert!(matches!(
            outlet.try_send(numbered(3)),
            Err(TrySendError::Closed(_))
        ));
    }
}
