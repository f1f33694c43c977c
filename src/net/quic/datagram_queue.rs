//! The queue from the task reading a socket to one connection's task:
//! bounded, and holding nothing while empty. An idle connection's queue is
//! its shared header alone (about 100 bytes, where tokio's channel kept
//! 800: its counters padded to cache lines and a first block of 32 slots).
//! A full queue refuses the datagram; QUIC retransmits what was in it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::net::keep_waker;

/// A datagram for a connection task: its bytes and where it came from.
pub(crate) type Datagram<A> = (Vec<u8>, A);

/// A queue holding at most `capacity` datagrams.
pub(crate) fn datagram_queue<A>(capacity: usize) -> (DatagramSender<A>, DatagramReceiver<A>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queued: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
            receiver: None,
            closed: None,
        }),
        capacity,
    });
    (
        DatagramSender {
            shared: shared.clone(),
        },
        DatagramReceiver { shared },
    )
}

struct Shared<A> {
    state: Mutex<State<A>>,
    capacity: usize,
}

struct State<A> {
    /// Given back when the receiver has taken the last one.
    queued: VecDeque<Datagram<A>>,
    senders: usize,
    receiver_gone: bool,
    /// The connection task, waiting for a datagram.
    receiver: Option<Waker>,
    /// A sender waiting for the connection task to end.
    closed: Option<Waker>,
}

impl<A> Shared<A> {
    fn lock(&self) -> MutexGuard<'_, State<A>> {
        // Nothing here panics while holding the lock; a poisoned one is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the socket's reader puts a connection's datagrams.
pub(crate) struct DatagramSender<A> {
    shared: Arc<Shared<A>>,
}

impl<A> DatagramSender<A> {
    /// Queues `datagram`; false when the queue is full or the connection
    /// task has ended.
    pub fn try_send(&self, datagram: Datagram<A>) -> bool {
        let mut state = self.shared.lock();
        if state.receiver_gone || state.queued.len() >= self.shared.capacity {
            return false;
        }
        state.queued.push_back(datagram);
        let waker = state.receiver.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Waits until the connection task has ended.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Poll::Ready(());
            }
            keep_waker(&mut state.closed, cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl<A> Clone for DatagramSender<A> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<A> Drop for DatagramSender<A> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.receiver.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The connection task's end.
pub(crate) struct DatagramReceiver<A> {
    shared: Arc<Shared<A>>,
}

impl<A> DatagramReceiver<A> {
    /// The next datagram; `None` once every sender is gone and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<Datagram<A>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next datagram if one is queued.
    pub fn try_recv(&mut self) -> Option<Datagram<A>> {
        take(&mut self.shared.lock())
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Datagram<A>>> {
        let mut state = self.shared.lock();
        if let Some(datagram) = take(&mut state) {
            return Poll::Ready(Some(datagram));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        keep_waker(&mut state.receiver, cx.waker());
        Poll::Pending
    }
}

impl<A> Drop for DatagramReceiver<A> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.queued = VecDeque::new();
        let waker = state.closed.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The oldest datagram; the queue's memory goes with the last one.
fn take<A>(state: &mut State<A>) -> Option<Datagram<A>> {
    let datagram = state.queued.pop_front()?;
    if state.queued.is_empty() {
        state.queued = VecDeque::new();
    }
    Some(datagram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn datagram(byte: u8) -> Datagram<u16> {
        (vec![byte], u16::from(byte))
    }

    #[tokio::test]
    async fn delivers_in_order_and_refuses_beyond_capacity() {
        let (tx, mut rx) = datagram_queue(2);
        assert!(tx.try_send(datagram(1)));
        assert!(tx.try_send(datagram(2)));
        assert!(
            !tx.try_send(datagram(3)),
            "a third datagram is over capacity"
        );
        assert_eq!(rx.recv().await, Some(datagram(1)));
        assert!(tx.try_send(datagram(4)), "room again after one was taken");
        assert_eq!(rx.try_recv(), Some(datagram(2)));
        assert_eq!(rx.try_recv(), Some(datagram(4)));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(
            rx.shared.lock().queued.capacity(),
            0,
            "an empty queue holds no memory"
        );
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_datagram_and_ends_with_the_senders() {
        let (tx, mut rx) = datagram_queue(4);
        let second = tx.clone();
        let receiver = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        assert!(tx.try_send(datagram(7)));
        drop(tx);
        drop(second);
        let (first, end) = tokio::time::timeout(Duration::from_secs(5), receiver)
            .await
            .expect("the receiver is woken")
            .expect("the receiver did not panic");
        assert_eq!(first, Some(datagram(7)));
        assert_eq!(end, None, "no senders left: the queue ends");
    }

    #[tokio::test]
    async fn senders_learn_that_the_connection_ended() {
        let (tx, rx) = datagram_queue(4);
        let waiter = tx.clone();
        let closed = tokio::spawn(async move { waiter.closed().await });
        tokio::task::yield_now().await;
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("closed() returns once the receiver is gone")
            .expect("no panic");
        assert!(
            !tx.try_send(datagram(1)),
            "nothing is queued for an ended connection"
        );
    }
}
