//! The state a resumable session keeps across gRPC streams, shared by its
//! two pumps ([`LinkSender`](super::LinkSender) and
//! [`LinkReceiver`](super::LinkReceiver)) and what restores the stream
//! when it breaks ([`Link`]).
//!
//! An *attachment* is one gRPC stream: where envelopes go (`outlet`) and
//! where the peer's come from (`inbound`). A break detaches it (the gap
//! starts); a resume attaches the next one, after the unacknowledged
//! envelopes have been sent on it again. Each attach or detach starts a new
//! generation, so whatever still holds the old stream knows to let go.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::Waker;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tonic::Status;

use super::envelopes;
use super::replay::ReplayBuffer;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::mqtt::Version;
use crate::ops::telemetry::METRICS;

/// Where a side's envelopes go: the request stream (r-proxy) or the
/// response stream (s-proxy) of one gRPC call.
pub use crate::line::outlet::Outlet;

/// The peer's envelopes on one gRPC call.
pub use crate::line::Inbound;

pub use super::end::End;

/// The link is over; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

pub(super) struct State {
    pub buffer: ReplayBuffer,
    /// Where envelopes go now; `None` in a gap or while replaying.
    pub outlet: Option<Outlet>,
    /// Counts changes of `outlet`, so a sender knows its copy is stale.
    pub outlet_epoch: u64,
    pub generation: u64,
    /// The inbound stream of the newest attachment, for the receiver.
    /// (Boxed, as the receiver keeps it: a stream's state is 232 bytes.)
    pub fresh_inbound: Option<Box<Inbound>>,
    pub receiver_waker: Option<Waker>,
    /// The highest sequence received from the peer.
    pub received: u64,
    /// The last acknowledgement sent, and what arrived since.
    pub acknowledged: u64,
    pub unacknowledged_weight: usize,
    /// When the current gap began.
    pub gap_since: Option<Instant>,
    /// Set when the link ended for good: the receiver reports it once.
    pub failure: Option<Status>,
    /// The peer refused to resume (rather than being unreachable).
    pub refused: bool,
    pub closed: bool,
    /// Edge: client PINGREQs sent on and not answered yet; PINGRESPs owed
    /// to the client now; PINGRESPs from the broker to drop (answered
    /// here already). Cloud: PINGREQs to write to the broker now; PINGRESPs
    /// to drop (asked for here).
    pub pings_in_flight: u32,
    pub pings_due: u32,
    pub swallow: u32,
    /// Cloud: how often to ping the broker in a gap (half the client's
    /// keep-alive), once the CONNECT has told it.
    pub ping_every: Option<Duration>,
    /// The session's MQTT version, for the pings made here.
    pub version: Version,
    /// Edge: what restores the link after a break, started by the break
    /// itself, so that no task waits for one; out while it runs.
    pub restorer: Option<Box<dyn Restore>>,
}

/// What restores a link after a break (the r-proxy's resume attempts).
pub trait Restore: Send {
    /// Starts restoring `link`, whose gap began at `since`; the restorer
    /// is given back with [`Link::restore_with`] once the link is whole.
    fn start(self: Box<Self>, link: Link, since: Instant);
}

pub(super) struct Shared {
    pub state: Mutex<State>,
    /// Acknowledgements made room (or the link closed).
    pub room: Notify,
    /// A gap ended: a new attachment caught up (or the link closed).
    pub restored: Notify,
    /// A new generation began: sends to the old outlet may give up.
    pub detached: Notify,
    pub end: End,
    /// What may arrive unacknowledged before an acknowledgement goes out
    /// alone (see [`super::receiver::ack_weight`]).
    pub ack_weight: usize,
    /// The process's replay buffer bytes for this mode.
    pub replay_gauge: prometheus_client::metrics::gauge::Gauge,
    /// The receiver's acknowledgement timer fired and the receiver has not
    /// looked yet, and the task to wake when it does: the timer wakes the
    /// link (`Wake for Shared`), so a busy receiver looks here, beside the
    /// state it locks anyway, rather than at the timer. Atomics, not the
    /// state's lock: a timer may wake from within a poll that holds it.
    pub ack_timer_fired: AtomicBool,
    pub ack_timer_waker: AtomicWaker,
}

impl Shared {
    /// The keep-alive the broker holds the client to (the CONNECT's, or
    /// the CONNACK's Server Keep Alive): a gap pings at half of it.
    pub(super) fn set_keep_alive(&self, keep_alive: u16) {
        self.lock().ping_every =
            (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 500));
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Ends the attachment of `generation` (a break) and starts the
    /// restorer, if the link has one; a later attachment is left alone.
    pub fn detach(self: &Arc<Self>, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation || state.closed {
            return;
        }
        tracing::debug!(generation, "stream broke");
        self.begin_gap(&mut state);
        let restorer = state.restorer.take();
        let since = state.gap_since;
        drop(state);
        if let (Some(restorer), Some(since)) = (restorer, since) {
            restorer.start(
                Link {
                    shared: self.clone(),
                },
                since,
            );
        }
    }

    fn begin_gap(&self, state: &mut State) {
        state.generation += 1;
        state.outlet = None;
        state.outlet_epoch += 1;
        state.fresh_inbound = None;
        state.gap_since.get_or_insert_with(Instant::now);
        if self.end == End::Edge && state.pings_in_flight > 0 {
            // Their answers may be lost with the stream: answer now, and
            // drop the broker's if it comes after all.
            state.pings_due += state.pings_in_flight;
            state.swallow += state.pings_in_flight;
            state.pings_in_flight = 0;
        }
        if let Some(waker) = state.receiver_waker.take() {
            waker.wake();
        }
        self.detached.notify_waiters();
    }

    /// Sends an acknowledgement alone on the current outlet, when there is
    /// one with room (a full outlet carries acknowledgements anyway).
    pub fn acknowledge_now(&self, state: &mut State) {
        let Some(outlet) = &state.outlet else { return };
        let ack = envelopes::acknowledgement(self.end.direction(), state.received);
        if outlet.try_send(Ok(ack.into())).is_ok() {
            state.acknowledged = state.received;
            state.unacknowledged_weight = 0;
        }
    }

    /// Drops what `upto` acknowledges from the replay buffer.
    pub fn acknowledged_by_peer(&self, state: &mut State, upto: u64) {
        let freed = state.buffer.acknowledge(upto);
        if freed > 0 {
            self.replay_gauge.dec_by(freed as i64);
            self.room.notify_waiters();
        }
    }
}

/// One resumable session's line: the handle its restoring task uses.
#[derive(Clone)]
pub struct Link {
    pub(super) shared: Arc<Shared>,
}

/// How attaching a new stream went.
#[derive(Debug)]
pub enum Attached {
    /// Everything unacknowledged was sent again; this many envelopes.
    Replayed(usize),
    /// The new stream broke too while replaying.
    BrokeAgain,
    /// The link was closed meanwhile.
    Closed,
}

impl Link {
    /// A link for a session of `version` at `end`, first attached to
    /// `outlet`/`inbound`; at most `replay_bytes` wait for
    /// acknowledgement here, and the peer's buffer holds
    /// `peer_replay_bytes` (`None`: the peer did not say).
    pub fn new(
        end: End,
        version: Version,
        mode: &'static str,
        replay_bytes: usize,
        peer_replay_bytes: Option<u64>,
        outlet: Outlet,
        inbound: Inbound,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    buffer: ReplayBuffer::new(replay_bytes),
                    outlet: Some(outlet),
                    outlet_epoch: 0,
                    generation: 0,
                    fresh_inbound: Some(Box::new(inbound)),
                    receiver_waker: None,
                    received: 0,
                    acknowledged: 0,
                    unacknowledged_weight: 0,
                    gap_since: None,
                    failure: None,
                    refused: false,
                    closed: false,
                    pings_in_flight: 0,
                    pings_due: 0,
                    swallow: 0,
                    ping_every: None,
                    version,
                    restorer: None,
                }),
                room: Notify::new(),
                restored: Notify::new(),
                detached: Notify::new(),
                end,
                ack_weight: super::receiver::ack_weight(peer_replay_bytes),
                replay_gauge: METRICS.replay_buffer_gauge(mode),
                ack_timer_fired: AtomicBool::new(false),
                ack_timer_waker: AtomicWaker::new(),
            }),
        }
    }

    /// Hands the link `restorer`, started at each break; at once when the
    /// link is in a gap already (it broke while the restorer was out).
    pub fn restore_with(&self, restorer: Box<dyn Restore>) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        let broken_since = match (&state.outlet, state.gap_since) {
            (None, Some(since)) => Some(since),
            _ => None,
        };
        match broken_since {
            Some(since) => {
                drop(state);
                restorer.start(self.clone(), since);
            }
            None => state.restorer = Some(restorer),
        }
    }

    /// Waits until the current gap ends: true when a new attachment has
    /// caught up, false once the link is closed.
    pub async fn whole_again(&self) -> bool {
        loop {
            let notified = self.shared.restored.notified();
            {
                let state = self.shared.lock();
                if state.closed {
                    return false;
                }
                if state.gap_since.is_none() {
                    return true;
                }
            }
            notified.await;
        }
    }

    /// The highest sequence received from the peer: where its replay starts.
    pub fn received(&self) -> u64 {
        self.shared.lock().received
    }

    /// Ends the current attachment, if any (a resume may arrive before the
    /// break is noticed here), so nothing more is taken from it; returns
    /// what was received, where the peer's replay starts (`None` once the
    /// link is closed).
    pub fn detach_for_resume(&self) -> Option<u64> {
        let mut state = self.shared.lock();
        if state.closed {
            return None;
        }
        self.shared.begin_gap(&mut state);
        Some(state.received)
    }

    /// Attaches a new stream: drops what the peer says it has (everything
    /// up to `peer_received`), sends the rest again in order, then lets new
    /// envelopes through. Returns how long the gap lasted with the outcome.
    pub async fn attach(
        &self,
        outlet: Outlet,
        inbound: Inbound,
        peer_received: u64,
    ) -> (Attached, Duration) {
        let generation = {
            let mut state = self.shared.lock();
            if state.closed {
                return (Attached::Closed, Duration::ZERO);
            }
            self.shared.begin_gap(&mut state);
            state.fresh_inbound = Some(Box::new(inbound));
            self.shared.acknowledged_by_peer(&mut state, peer_received);
            tracing::debug!(
                generation = state.generation,
                peer_received,
                received = state.received,
                buffered = state.buffer.len(),
                "attaching a new stream"
            );
            state.generation
        };
        let mut replayed = 0;
        let mut after = peer_received;
        loop {
            // Made before the generation is checked, so a break after the
            // check is not missed while the send waits.
            let detached = self.shared.detached.notified();
            let next = {
                let mut state = self.shared.lock();
                if state.closed {
                    return (Attached::Closed, Duration::ZERO);
                }
                if state.generation != generation {
                    return (Attached::BrokeAgain, Duration::ZERO);
                }
                match state.buffer.next_after(after) {
                    Some(message) => {
                        let mut message = message.clone();
                        message.set_acknowledged(state.received);
                        message
                    }
                    None => {
                        // Caught up: new envelopes go straight out again,
                        // after an acknowledgement of everything received
                        // (the replay may have carried an older one).
                        state.outlet = Some(outlet);
                        state.outlet_epoch += 1;
                        self.shared.acknowledge_now(&mut state);
                        let gap = state.gap_since.take().map(|t| t.elapsed());
                        self.shared.restored.notify_waiters();
                        return (Attached::Replayed(replayed), gap.unwrap_or_default());
                    }
                }
            };
            after = next.sequence_id();
            tokio::select! {
                sent = outlet.send(Ok(next)) => {
                    if sent.is_err() {
                        self.shared.detach(generation);
                        return (Attached::BrokeAgain, Duration::ZERO);
                    }
                }
                () = detached => return (Attached::BrokeAgain, Duration::ZERO),
            }
            replayed += 1;
        }
    }

    /// Keeps `messages`, sent on the first stream before the link existed
    /// (the session's opening), for a replay.
    pub fn sent_before(&self, messages: &[MqttStreamMessage]) {
        let mut state = self.shared.lock();
        for message in messages {
            let size = state
                .buffer
                .push(message.clone().into(), envelopes::weight(message));
            self.shared.replay_gauge.inc_by(size as i64);
        }
    }

    /// Sets what the session's CONNECT said (Cloud end: the link exists
    /// before it arrives): its version, and the client's keep-alive
    /// (seconds; 0 for none), at half of which the broker is pinged in a
    /// gap.
    pub fn set_session(&self, version: Version, keep_alive: u16) {
        self.shared.lock().version = version;
        self.shared.set_keep_alive(keep_alive);
    }

    /// How often to ping the broker in a gap.
    pub fn ping_every(&self) -> Option<Duration> {
        self.shared.lock().ping_every
    }

    /// Asks for a PINGREQ to the broker (Cloud end, during a gap).
    pub fn ping_broker(&self) {
        let mut state = self.shared.lock();
        state.pings_due += 1;
        if let Some(waker) = state.receiver_waker.take() {
            waker.wake();
        }
    }

    /// Whether the peer has acknowledged everything sent.
    pub async fn all_acknowledged(&self) {
        loop {
            let room = self.shared.room.notified();
            {
                let state = self.shared.lock();
                if state.buffer.is_empty() || state.closed {
                    return;
                }
            }
            room.await;
        }
    }

    /// Ends the link for good: the receiver reports `status` (once) and
    /// stops, senders get [`Closed`].
    pub fn fail(&self, status: Status) {
        let mut state = self.shared.lock();
        if !state.closed {
            state.failure = Some(status);
        }
        self.close_locked(&mut state);
    }

    /// Ends the link for good because the peer refused to resume it.
    pub fn refuse(&self, status: Status) {
        let mut state = self.shared.lock();
        state.refused = !state.closed;
        drop(state);
        self.fail(status);
    }

    /// Whether the link ended because the peer refused a resume.
    pub fn was_refused(&self) -> bool {
        self.shared.lock().refused
    }

    /// Ends the link quietly (the session is over).
    pub fn close(&self) {
        let mut state = self.shared.lock();
        self.close_locked(&mut state);
    }

    fn close_locked(&self, state: &mut State) {
        if state.closed {
            return;
        }
        state.closed = true;
        state.restorer = None;
        state.outlet = None;
        state.outlet_epoch += 1;
        state.fresh_inbound = None;
        let freed = state.buffer.clear();
        self.shared.replay_gauge.dec_by(freed as i64);
        if let Some(waker) = state.receiver_waker.take() {
            waker.wake();
        }
        self.shared.room.notify_waiters();
        self.shared.restored.notify_waiters();
        self.shared.detached.notify_waiters();
    }

    /// Whether the link is in a gap now.
    pub fn in_gap(&self) -> bool {
        self.shared.lock().gap_since.is_some()
    }
}

/// Whether a ping response the Cloud end is about to send answers a ping
/// it asked for itself in a gap; if so it is counted off and not sent.
pub(super) fn swallowed(state: &mut State) -> bool {
    if state.swallow > 0 {
        state.swallow -= 1;
        return true;
    }
    false
}
