//! The receiving half of a session's line, read by the pump that writes the
//! MQTT socket: the peer's envelopes from whichever gRPC stream is current.
//! On a resumable line it drops what arrives twice (after a replay), takes
//! the acknowledgements the peer sends, acknowledges what arrives (riding
//! on outgoing envelopes, or alone once enough has arrived or after a
//! quiet second), yields the pings a gap calls for, and waits through a
//! gap instead of ending.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use super::envelopes::{self, Ping};
use super::link::{End, Inbound, Link, Shared, State};
use super::sender::LinkSender;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::line::received::poll_each_read;
use crate::line::{ReceiveEach, Received};
use crate::net::keep_waker;

/// An acknowledgement goes out alone once this much arrived without one
/// leaving (each envelope weighed as the sender's buffer counts it), or
/// half the peer's replay buffer if that is less ([`ack_weight`])...
///
/// By weight only, not also every few envelopes: in bulk an acknowledgement
/// every 32 envelopes went out after nearly every read, a write of its own
/// in one proxy and a wake-up and a read in the other, and the proxies
/// spent 6-13 % more CPU per message than with none by count
/// (BENCHMARKS.md, "Acknowledgements by weight alone"). The peer's buffer
/// is bounded by bytes, and so is what waits here.
const ACK_EVERY_WEIGHT: usize = 64 * 1024;
/// ...or when this long passes quietly (no acknowledgement leaving) with
/// something unacknowledged, so a reply has a moment to carry it instead;
/// an envelope waits at most twice this. What waits is bounded by the
/// threshold above, and only the peer's replay buffer waits for it; a
/// standalone acknowledgement costs both proxies nearly as much as a
/// message (with 20 ms here, QoS 0 publishers sending ten times a second
/// cost the proxies 17-45 % more CPU per message: BENCHMARKS.md).
const ACK_DELAY: Duration = Duration::from_secs(1);

/// What may arrive unacknowledged before an acknowledgement goes out
/// alone, for a peer whose replay buffer holds `peer_replay_bytes` (`None`:
/// it did not say). A peer's buffer fills at what it has sent and we have
/// not acknowledged; were we to wait for more than it holds, it would stop
/// reading its MQTT socket until our quiet second passed, at every fill.
pub fn ack_weight(peer_replay_bytes: Option<u64>) -> usize {
    match peer_replay_bytes {
        None => ACK_EVERY_WEIGHT,
        Some(bytes) => usize::try_from(bytes / 2)
            .map_or(ACK_EVERY_WEIGHT, |half| half.clamp(1, ACK_EVERY_WEIGHT)),
    }
}

/// Where a session's pump reads the peer's envelopes.
pub enum LinkReceiver {
    /// A line without resumption: the stream itself (boxed: its state is
    /// 232 bytes, and the session keeps a receiver of either kind).
    Plain(Box<Inbound>),
    /// A resumable line.
    Resumable(Receiver),
}

/// The receiving half of a resumable line.
pub struct Receiver {
    shared: Arc<Shared>,
    inbound: Option<Box<Inbound>>,
    generation: u64,
    ack: AckTimer,
    /// The failure was reported; the stream has ended.
    done: bool,
}

/// Armed when something received waits for its acknowledgement, and left
/// armed when acknowledgements go out (arming a timer costs a clock read,
/// an allocation and the timer wheel's bookkeeping, and a busy session
/// would pay that every few envelopes); let go once it fires with nothing
/// to acknowledge, so an idle session holds none.
#[derive(Default)]
struct AckTimer {
    timer: Option<Pin<Box<Sleep>>>,
    /// The acknowledgement sent last when `timer` was armed (or last went
    /// round): one sent since means the line was not quiet.
    armed_at: u64,
}

impl LinkReceiver {
    /// The receiving half of `link`.
    pub fn resumable(link: &Link) -> Self {
        LinkReceiver::Resumable(Receiver {
            shared: link.shared.clone(),
            inbound: None,
            generation: u64::MAX,
            ack: AckTimer::default(),
            done: false,
        })
    }
}

impl Link {
    /// Ends the session from this end: sends `terminate` (its numbered
    /// TERMINATE) on `sender`, then, unless the peer has finished its side
    /// already (`peer_done`: it acknowledges nothing more), waits for
    /// [`Link::ended_by_both`]. `receiver` is read throughout, the sending
    /// included ([`LinkReceiver::read_while`]). Callers bound the whole.
    pub async fn terminate(
        &self,
        sender: &mut LinkSender,
        terminate: MqttStreamMessage,
        receiver: &mut LinkReceiver,
        peer_done: bool,
    ) {
        let sent = receiver.read_while(sender.send(terminate.into(), 0)).await;
        if matches!(sent, Some(Ok(()))) && !peer_done {
            self.ended_by_both(receiver).await;
        }
    }

    /// After this end sent TERMINATE: until the peer has acknowledged
    /// everything, or has ended the session itself (its TERMINATE, or its
    /// stream failing). A stream ending without TERMINATE is a break and is
    /// waited through, as anywhere else (callers bound the wait).
    pub async fn ended_by_both(&self, receiver: &mut LinkReceiver) {
        receiver.read_while(self.all_acknowledged()).await;
    }
}

impl LinkReceiver {
    /// Runs `work`, a step of a session's way out, reading this receiver
    /// meanwhile: a send there may wait for room in the replay buffer, or
    /// for acknowledgements, and both come from the peer's
    /// acknowledgements, which arrive on the line (were it not read, each
    /// such wait would run until its caller's time limit). What else
    /// arrives is dropped, the session being over. `None`, with `work`
    /// left undone, when the peer ended the session first (its TERMINATE,
    /// or its stream failing): it acknowledges nothing more.
    pub async fn read_while<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            done = work => Some(done),
            () = peer_ended(self) => None,
        }
    }
}

/// Reads and drops `receiver`'s envelopes until the peer's TERMINATE or the
/// line's end.
async fn peer_ended(receiver: &mut LinkReceiver) {
    std::future::poll_fn(|cx| {
        let read = receiver.poll_each(cx, |message| {
            !message.envelope().is_some_and(envelopes::is_terminate)
        });
        match read {
            Poll::Pending => Poll::Pending,
            // The TERMINATE (`each` stopped the call), the end, a failure.
            Poll::Ready(_) => Poll::Ready(()),
        }
    })
    .await
}

/// One envelope at a time (the s-proxy reads the CONNECT so).
impl Stream for LinkReceiver {
    type Item = Result<Received<'static>, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut one = None;
        match self.get_mut().poll_each(cx, |message| {
            one = Some(message.into_owned());
            false
        }) {
            // Handed one: `each` stopped the call.
            Poll::Ready(Some(Ok(()))) => Poll::Ready(one.map(Ok)),
            Poll::Ready(Some(Err(status))) => Poll::Ready(Some(Err(status))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ReceiveEach for LinkReceiver {
    fn poll_each<F>(&mut self, cx: &mut Context<'_>, each: F) -> Poll<Option<Result<(), Status>>>
    where
        F: FnMut(Received<'_>) -> bool,
    {
        match self {
            LinkReceiver::Plain(inbound) => {
                poll_each_read(inbound, cx, |message| Some(message), each)
            }
            LinkReceiver::Resumable(receiver) => receiver.poll_each(cx, each),
        }
    }
}

impl Receiver {
    /// [`ReceiveEach::poll_each`] on a resumable line: one lock of the link
    /// for all that is ready (a DATA chunk's envelopes, the pings a gap
    /// calls for), held until this task waits or `each` has enough. Only
    /// this session's task and its restorer take the lock, and the
    /// restorer rarely.
    fn poll_each<F>(
        &mut self,
        cx: &mut Context<'_>,
        mut each: F,
    ) -> Poll<Option<Result<(), Status>>>
    where
        F: FnMut(Received<'_>) -> bool,
    {
        let Receiver {
            shared,
            inbound,
            generation,
            ack,
            done,
        } = self;
        if *done {
            return Poll::Ready(None);
        }
        loop {
            let mut state = shared.lock();
            let end = loop {
                if let Some(made) = made_here(shared.end, &mut state) {
                    if !each(made.into()) {
                        return Poll::Ready(Some(Ok(())));
                    }
                    continue;
                }
                if state.closed {
                    *done = true;
                    return Poll::Ready(state.failure.take().map(Err));
                }
                if state.generation != *generation {
                    *inbound = state.fresh_inbound.take();
                    *generation = state.generation;
                    tracing::debug!(
                        generation = *generation,
                        attached = inbound.is_some(),
                        received = state.received,
                        "receiver takes a new generation"
                    );
                }
                let Some(stream) = inbound.as_mut() else {
                    state.receiver_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                };
                let read = poll_each_read(
                    stream,
                    cx,
                    |message| take(shared, &mut state, message),
                    &mut each,
                );
                match read {
                    Poll::Pending => {
                        ack.quiet(cx, shared, &mut state);
                        return Poll::Pending;
                    }
                    // `each` has enough.
                    Poll::Ready(Some(Ok(()))) => return Poll::Ready(Some(Ok(()))),
                    Poll::Ready(end) => break end,
                }
            };
            drop(state);
            // A break (an end without TERMINATE is one too): wait for the
            // next attachment.
            tracing::debug!(generation = *generation, ?end, "inbound stream ended");
            *inbound = None;
            shared.detach(*generation);
        }
    }
}

/// A ping the `end` of a link makes itself in a gap, when one is due.
fn made_here(end: End, state: &mut State) -> Option<MqttStreamMessage> {
    if state.pings_due == 0 {
        return None;
    }
    state.pings_due -= 1;
    let direction = match end {
        End::Edge => crate::line::proto::mqtt::MessageDirection::BrokerToClient,
        End::Cloud => crate::line::proto::mqtt::MessageDirection::ClientToBroker,
    };
    let kind = match end {
        // The r-proxy answers its client.
        End::Edge => Ping::Response,
        // The s-proxy asks the broker, and drops the answer later.
        End::Cloud => {
            state.swallow += 1;
            Ping::Request
        }
    };
    Some(envelopes::ping(state.version, kind, direction))
}

impl AckTimer {
    /// Nothing to read now: be woken by a new attachment too, and
    /// acknowledge what arrived once a whole [`ACK_DELAY`] passed with it
    /// unacknowledged and no acknowledgement leaving (a reply may carry it
    /// sooner).
    fn quiet(&mut self, cx: &mut Context<'_>, shared: &Arc<Shared>, state: &mut State) {
        // A new attachment wakes this task even while the current stream
        // is silent (a resume may come before a break shows here).
        keep_waker(&mut state.receiver_waker, cx.waker());
        let timer = match &mut self.timer {
            // Armed: nothing to do until it fires, which the link marks
            // (the task to wake is kept before the mark is read, so a firing
            // between the two is not lost).
            Some(timer) => {
                shared.ack_timer_waker.register(cx.waker());
                if !shared.ack_timer_fired.load(Ordering::Acquire) {
                    return;
                }
                shared.ack_timer_fired.store(false, Ordering::Relaxed);
                timer
            }
            None if state.received == state.acknowledged => return,
            None => {
                self.armed_at = state.acknowledged;
                shared.ack_timer_fired.store(false, Ordering::Relaxed);
                shared.ack_timer_waker.register(cx.waker());
                self.timer.insert(Box::pin(tokio::time::sleep_until(
                    Instant::now() + ACK_DELAY,
                )))
            }
        };
        // The timer wakes the link, which marks it fired for this receiver
        // and wakes whatever task reads it now.
        let waker = Waker::from(shared.clone());
        let mut marks = Context::from_waker(&waker);
        loop {
            if timer.as_mut().poll(&mut marks).is_pending() {
                return;
            }
            match fired(state.received, state.acknowledged, self.armed_at) {
                Fired::LetGo => {
                    self.timer = None;
                    return;
                }
                Fired::Acknowledge => {
                    shared.acknowledge_now(state);
                    if state.received == state.acknowledged {
                        self.timer = None;
                        return;
                    }
                    // The outlet was full: try again after another delay.
                }
                Fired::Again => {}
            }
            self.armed_at = state.acknowledged;
            timer.as_mut().reset(Instant::now() + ACK_DELAY);
        }
    }
}

/// The receiver's acknowledgement timer fired: marked for it, and it is
/// woken.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ack_timer_fired.store(true, Ordering::Release);
        self.ack_timer_waker.wake();
    }
}

/// What the acknowledgement timer does when it fires.
#[derive(Debug, PartialEq, Eq)]
enum Fired {
    /// Nothing is owed: let the timer go.
    LetGo,
    /// Something was owed for the whole delay: acknowledge it alone.
    Acknowledge,
    /// Something is owed, but an acknowledgement left meanwhile: the line
    /// was not quiet; look again after another delay.
    Again,
}

/// What a timer armed when `armed_at` had been acknowledged does on
/// firing, with `received` in and `acknowledged` out now.
fn fired(received: u64, acknowledged: u64, armed_at: u64) -> Fired {
    if received == acknowledged {
        Fired::LetGo
    } else if acknowledged == armed_at {
        Fired::Acknowledge
    } else {
        Fired::Again
    }
}

/// Takes one envelope from the peer on the current stream, `state` locked;
/// `None` when it is not for the pump (a duplicate, an acknowledgement
/// alone, a swallowed ping).
fn take<'a>(shared: &Shared, state: &mut State, message: Received<'a>) -> Option<Received<'a>> {
    let acknowledged = message.acknowledged();
    if acknowledged > 0 {
        shared.acknowledged_by_peer(state, acknowledged);
    }
    let sequence_id = message.sequence_id();
    if sequence_id <= state.received {
        return None;
    }
    state.received = sequence_id;
    let envelope = message.envelope();
    if shared.end == End::Edge && envelope.and_then(envelopes::ping_of) == Some(Ping::Response) {
        if state.swallow > 0 {
            state.swallow -= 1;
            return None;
        }
        state.pings_in_flight = state.pings_in_flight.saturating_sub(1);
    }
    state.unacknowledged_weight += envelopes::weight_received(&message);
    if envelope.is_some_and(envelopes::is_terminate)
        || state.unacknowledged_weight >= shared.ack_weight
    {
        shared.acknowledge_now(state);
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_acknowledgement_waits_for_a_whole_delay_without_any() {
        assert_eq!(fired(5, 5, 0), Fired::LetGo, "nothing owed");
        assert_eq!(
            fired(5, 0, 0),
            Fired::Acknowledge,
            "owed since the timer was armed, and nothing left meanwhile"
        );
        assert_eq!(
            fired(5, 3, 0),
            Fired::Again,
            "a reply carried an acknowledgement meanwhile"
        );
        assert_eq!(
            fired(7, 5, 5),
            Fired::Acknowledge,
            "quiet for the next delay"
        );
    }

    #[test]
    fn acknowledgements_come_by_half_the_peer_s_buffer() {
        assert_eq!(
            ack_weight(None),
            ACK_EVERY_WEIGHT,
            "a peer that did not say"
        );
        assert_eq!(ack_weight(Some(8192)), 4096);
        assert_eq!(
            ack_weight(Some(1 << 20)),
            ACK_EVERY_WEIGHT,
            "never later than before"
        );
        assert_eq!(ack_weight(Some(u64::MAX)), ACK_EVERY_WEIGHT);
        assert_eq!(ack_weight(Some(1)), 1, "at the latest after each envelope");
        assert_eq!(ack_weight(Some(0)), 1);
    }
}
