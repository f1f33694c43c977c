//! The sending half of a session's line, used by the pump that reads the
//! MQTT socket: envelopes go to the current gRPC stream, and on a
//! resumable line into the replay buffer first. A full buffer makes
//! [`LinkSender::send`] wait, so the pump stops reading its socket and TCP
//! slows the sender down; nothing is dropped.

use std::sync::Arc;

use tokio::sync::mpsc::error::TrySendError;
use tonic::Status;

use super::envelopes::{self, Ping};
use super::link::{Closed, End, Link, Outlet, Shared, swallowed};
use crate::line::Outgoing;
use crate::line::outlet::Refused;

/// Where a session's pump sends envelopes.
pub enum LinkSender {
    /// A line without resumption (the peer did not offer it): straight to
    /// the stream, which ends with it.
    Plain(Option<Outlet>),
    /// A resumable line.
    Resumable(Sender),
}

/// The sending half of a resumable line.
pub struct Sender {
    pub(super) shared: Arc<Shared>,
    /// The outlet as of `epoch`, kept to skip a clone per envelope.
    pub(super) outlet: Option<Outlet>,
    pub(super) epoch: u64,
}

/// An envelope that cannot go out without waiting, and what for.
enum Waiting {
    /// Plain: room in the stream's queue.
    Queue(Outgoing),
    /// Room in the replay buffer (nothing done with it yet).
    Room(Outgoing),
    /// Room in the outlet of this generation (the envelope is in the
    /// replay buffer already).
    Outlet(Outgoing, u64),
}

/// What became of an envelope offered to a resumable line.
enum Prepared {
    /// Sent, kept for the replay to send, or answered here.
    Done,
    /// The replay buffer is full; nothing was done with it.
    NoRoom(Outgoing),
    /// In the replay buffer; the outlet of this generation has no room.
    OutletFull(Outgoing, u64),
}

impl LinkSender {
    /// The sending half of `link`.
    pub fn resumable(link: &Link) -> Self {
        LinkSender::Resumable(Sender {
            shared: link.shared.clone(),
            outlet: None,
            epoch: u64::MAX,
        })
    }

    /// Sends `message` (numbered already) holding a packet of
    /// `packet_bytes`; waits while the stream or the replay buffer is full.
    /// The envelope is offered before the future is made, so the futures
    /// waiting here, part of every session's task, keep no room for it. A
    /// send that has to wait (rarely) is boxed, so that the task does not
    /// keep room for the wait while idle either.
    pub fn send(
        &mut self,
        message: Outgoing,
        packet_bytes: usize,
    ) -> impl Future<Output = Result<(), Closed>> + Send + '_ {
        futures_util::FutureExt::map(self.send_as(message, packet_bytes, false), |sent| {
            sent.map(drop)
        })
    }

    /// As [`LinkSender::send`], but the envelope may wait to go out with
    /// those after it until [`LinkSender::flush`], which the caller owes
    /// before it waits for anything else. `Ok(true)` when it had to wait
    /// for room (the stream or the replay buffer was full).
    pub fn send_batched(
        &mut self,
        message: Outgoing,
        packet_bytes: usize,
    ) -> impl Future<Output = Result<bool, Closed>> + Send + '_ {
        self.send_as(message, packet_bytes, true)
    }

    fn send_as(
        &mut self,
        message: Outgoing,
        packet_bytes: usize,
        batched: bool,
    ) -> impl Future<Output = Result<bool, Closed>> + Send + '_ {
        let waiting = match self.try_send(message, packet_bytes, batched) {
            Ok(None) => Ok(None),
            Ok(Some(waiting)) => Ok(Some(Box::pin(self.send_waiting(waiting, packet_bytes)))),
            Err(closed) => Err(closed),
        };
        async move {
            match waiting? {
                None => Ok(false),
                Some(wait) => wait.await.map(|()| true),
            }
        }
    }

    /// Sends what [`LinkSender::send_batched`] gathered.
    pub fn flush(&self) {
        match self {
            LinkSender::Plain(Some(outlet)) => outlet.flush(),
            LinkSender::Plain(None) => {}
            LinkSender::Resumable(sender) => {
                if let Some(outlet) = &sender.outlet {
                    outlet.flush();
                }
            }
        }
    }

    /// Sends without waiting when there is room; otherwise says what to
    /// wait for.
    fn try_send(
        &mut self,
        message: Outgoing,
        packet_bytes: usize,
        batched: bool,
    ) -> Result<Option<Waiting>, Closed> {
        match self {
            LinkSender::Plain(outlet) => {
                let outlet = outlet.as_ref().ok_or(Closed)?;
                let sent = if batched {
                    outlet.try_send_batched(Ok(message))
                } else {
                    outlet.try_send(Ok(message))
                };
                match sent {
                    Ok(()) => Ok(None),
                    Err(TrySendError::Closed(_)) => Err(Closed),
                    Err(TrySendError::Full(queued)) => Ok(queued.ok().map(Waiting::Queue)),
                }
            }
            LinkSender::Resumable(sender) => sender.try_send(message, packet_bytes, batched),
        }
    }

    async fn send_waiting(&mut self, waiting: Waiting, packet_bytes: usize) -> Result<(), Closed> {
        match (self, waiting) {
            (LinkSender::Plain(Some(outlet)), Waiting::Queue(message)) => {
                outlet.send(Ok(message)).await.map_err(|_| Closed)
            }
            (LinkSender::Resumable(sender), Waiting::Room(message)) => {
                sender.send_after_room(message, packet_bytes).await
            }
            (LinkSender::Resumable(sender), Waiting::Outlet(message, generation)) => {
                sender.wait_for_outlet(message, generation).await;
                Ok(())
            }
            // A waiting of the other kind of line cannot arise.
            _ => Err(Closed),
        }
    }

    /// The broker answered with a Server Keep Alive: a gap pings it at
    /// half of that instead (nothing to do on a plain line).
    pub fn keep_alive_changed(&self, keep_alive: u16) {
        if let LinkSender::Resumable(sender) = self {
            sender.shared.set_keep_alive(keep_alive);
        }
    }

    /// No more envelopes: a plain line half-closes its stream (the peer
    /// sees it end); a resumable one keeps it for what is still to come.
    pub fn finish(&mut self) {
        if let LinkSender::Plain(outlet) = self {
            outlet.take();
        }
    }

    /// Ends the session with an error `status` for the peer. A resumable
    /// line is closed: the peer's resume will be refused.
    pub async fn end_with(&mut self, status: Status) {
        match self {
            LinkSender::Plain(outlet) => {
                if let Some(outlet) = outlet.take() {
                    let _ = outlet.send(Err(status)).await;
                }
            }
            LinkSender::Resumable(sender) => {
                let outlet = sender.shared.lock().outlet.clone();
                Link {
                    shared: sender.shared.clone(),
                }
                .close();
                if let Some(outlet) = outlet {
                    let _ = outlet.try_send(Err(status));
                }
            }
        }
    }

    /// Whether the line is resumable.
    pub fn is_resumable(&self) -> bool {
        matches!(self, LinkSender::Resumable(_))
    }
}

impl Sender {
    /// Sends without waiting when the replay buffer and the outlet have
    /// room; otherwise says what to wait for.
    fn try_send(
        &mut self,
        message: Outgoing,
        bytes: usize,
        batched: bool,
    ) -> Result<Option<Waiting>, Closed> {
        Ok(match self.prepare(message, bytes, batched)? {
            Prepared::Done => None,
            Prepared::NoRoom(message) => Some(Waiting::Room(message)),
            Prepared::OutletFull(message, generation) => Some(Waiting::Outlet(message, generation)),
        })
    }

    /// Waits for room in the replay buffer, then sends.
    async fn send_after_room(&mut self, mut message: Outgoing, bytes: usize) -> Result<(), Closed> {
        let shared = self.shared.clone();
        loop {
            let room = shared.room.notified();
            match self.prepare(message, bytes, false)? {
                Prepared::Done => return Ok(()),
                Prepared::OutletFull(message, generation) => {
                    self.wait_for_outlet(message, generation).await;
                    return Ok(());
                }
                Prepared::NoRoom(back) => {
                    message = back;
                    tracing::debug!("replay buffer full; waiting for acknowledgements");
                    room.await;
                    tracing::debug!("room in the replay buffer");
                }
            }
        }
    }

    /// The stream is slow (flow control): waits for room in the outlet of
    /// `generation`, unless it is replaced meanwhile; the envelope is in
    /// the replay buffer either way.
    async fn wait_for_outlet(&mut self, message: Outgoing, generation: u64) {
        let shared = self.shared.clone();
        // Made before the generation is checked, so a detach after the
        // check is not missed while the send waits.
        let detached = shared.detached.notified();
        if shared.lock().generation != generation {
            return;
        }
        let Some(outlet) = &self.outlet else { return };
        tracing::debug!(generation, "outlet full");
        let sent = tokio::select! {
            sent = outlet.send(Ok(message)) => sent.is_ok(),
            () = detached => {
                tracing::debug!(generation, "outlet replaced while full");
                true
            }
        };
        if !sent {
            tracing::debug!(generation, "outlet closed while sending");
            self.shared.detach(generation);
        }
    }

    /// Under the lock: keeps `message` for replay and hands it to the
    /// outlet if the line has one now. The outlet frames it from here, so
    /// the replay buffer keeps the envelope itself, not a copy.
    fn prepare(
        &mut self,
        mut message: Outgoing,
        bytes: usize,
        batched: bool,
    ) -> Result<Prepared, Closed> {
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.closed {
            return Err(Closed);
        }
        let ping = message.envelope().and_then(envelopes::ping_of);
        match (shared.end, ping) {
            (End::Edge, Some(Ping::Request)) if state.outlet.is_none() => {
                // In a gap the r-proxy answers its client's PINGREQ.
                state.pings_due += 1;
                if let Some(waker) = state.receiver_waker.take() {
                    waker.wake();
                }
                return Ok(Prepared::Done);
            }
            (End::Edge, Some(Ping::Request)) => state.pings_in_flight += 1,
            (End::Cloud, Some(Ping::Response)) if swallowed(&mut state) => {
                return Ok(Prepared::Done);
            }
            _ => {}
        }
        if state.buffer.is_full() {
            if ping == Some(Ping::Request) {
                state.pings_in_flight -= 1;
            }
            return Ok(Prepared::NoRoom(message));
        }
        if state.outlet_epoch != self.epoch {
            self.outlet = state.outlet.clone();
            self.epoch = state.outlet_epoch;
        }
        message.set_acknowledged(state.received);
        let generation = state.generation;
        let sent = match &self.outlet {
            // In a gap or replaying: the replay sends it.
            None => Ok(()),
            Some(outlet) => {
                // It goes out now, carrying the acknowledgement (in a gap
                // the replay stamps it afresh).
                state.acknowledged = state.received;
                state.unacknowledged_weight = 0;
                outlet.try_send_ref(&message, batched)
            }
        };
        let (kept, outcome) = match sent {
            Ok(()) => (message, Prepared::Done),
            Err(Refused::Closed) => {
                let size = state.buffer.push(message, bytes);
                shared.replay_gauge.inc_by(size as i64);
                drop(state);
                tracing::debug!(generation, "outlet closed while sending");
                shared.detach(generation);
                return Ok(Prepared::Done);
            }
            // Rare: the stream is slow. The replay buffer keeps a copy and
            // the envelope waits for room.
            Err(Refused::Full) => (message.clone(), Prepared::OutletFull(message, generation)),
        };
        let size = state.buffer.push(kept, bytes);
        shared.replay_gauge.inc_by(size as i64);
        Ok(outcome)
    }
}
