//! A burst of envelopes for a session's line: the plain PUBLISHes its pump
//! read together go out under one lock of the line and of its outlet,
//! where each envelope on its own takes both (and on a resumable line adds
//! to the replay buffer's gauge). A burst takes only what can go at once;
//! anything else (an envelope that would wait, a packet other than a plain
//! PUBLISH) it hands back, for [`LinkSender::send_batched`] after the burst.

use parking_lot::MutexGuard;

use super::link::{Shared, State};
use super::sender::{LinkSender, Sender};
use crate::line::Outgoing;
use crate::line::outlet::{Locked, Outlet};

/// Envelopes going out together; the locks are let go when it is dropped.
pub struct Burst<'a> {
    way: Way<'a>,
}

enum Way<'a> {
    /// Nothing goes in a burst (a plain line that finished, a closed link).
    None,
    /// A plain line: straight into the outlet.
    Plain(Locked<'a>),
    /// A resumable line.
    Resumable {
        shared: &'a Shared,
        state: MutexGuard<'a, State>,
        /// The outlet of the current attachment; `None` in a gap.
        outlet: Option<Locked<'a>>,
        /// Bytes the burst added to the replay buffer, for its gauge.
        kept: usize,
    },
}

impl LinkSender {
    /// Starts a burst; envelopes offered to it go out as
    /// [`LinkSender::send_batched`] would send them, without waiting.
    pub fn burst(&mut self) -> Burst<'_> {
        let way = match self {
            LinkSender::Plain(Some(outlet)) => Way::Plain(outlet.lock()),
            LinkSender::Plain(None) => Way::None,
            LinkSender::Resumable(sender) => sender.burst_way(),
        };
        Burst { way }
    }
}

impl Sender {
    fn burst_way(&mut self) -> Way<'_> {
        let Sender {
            shared,
            outlet,
            epoch,
        } = self;
        let state = shared.lock();
        if state.closed {
            return Way::None;
        }
        if state.outlet_epoch != *epoch {
            *outlet = state.outlet.clone();
            *epoch = state.outlet_epoch;
        }
        Way::Resumable {
            shared,
            state,
            outlet: outlet.as_ref().map(Outlet::lock),
            kept: 0,
        }
    }
}

impl Burst<'_> {
    /// Sends `message` (numbered already, holding a packet of
    /// `packet_bytes`) when it is a plain PUBLISH that can go now; otherwise
    /// hands it back untouched but for its acknowledgement, for
    /// [`LinkSender::send_batched`] once the burst is over.
    pub fn offer(&mut self, mut message: Outgoing, packet_bytes: usize) -> Result<(), Outgoing> {
        if !matches!(message, Outgoing::Publish(..)) {
            return Err(message);
        }
        match &mut self.way {
            Way::None => Err(message),
            Way::Plain(outlet) => match outlet.offer(&message) {
                Ok(()) => Ok(()),
                Err(_) => Err(message),
            },
            Way::Resumable {
                state,
                outlet,
                kept,
                ..
            } => {
                if state.buffer.is_full() {
                    return Err(message);
                }
                message.set_acknowledged(state.received);
                if let Some(outlet) = outlet {
                    // Full or closed: the usual way waits, or detaches.
                    if outlet.offer(&message).is_err() {
                        return Err(message);
                    }
                    state.acknowledged = state.received;
                    state.unacknowledged_weight = 0;
                }
                // Kept for a replay; in a gap the replay sends it.
                *kept += state.buffer.push(message, packet_bytes);
                Ok(())
            }
        }
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        if let Way::Resumable { shared, kept, .. } = &self.way
            && *kept > 0
        {
            shared.replay_gauge.inc_by(*kept as i64);
        }
    }
}
