//! When a connection task asks quiche for packets to send.
//!
//! quiche acknowledges whatever it has received each time it is asked to
//! send, so a task that asked after every datagram sent an ACK-only packet
//! for every packet received: a QoS 0 publisher's messages each drew one
//! (encrypted, sent, and received by the peer). RFC 9000 (13.2) lets a
//! receiver wait: it acknowledges ack-eliciting 1-RTT packets within the
//! `max_ack_delay` it advertises, and should not wait past two of them.
//!
//! So a turn on which only datagrams arrived sends nothing until two wait
//! or the first has waited [`ACK_DELAY`] (below the advertised
//! [`MAX_ACK_DELAY`]); every other turn sends at once (the handshake,
//! closing, the application's bytes, timers, losses, and data held back by
//! the congestion window or flow control: the driver tells which). quiche
//! puts the real delay in the ACK frame, so the peer's RTT estimate stays
//! right; and whatever is sent meanwhile carries the acknowledgement.

use std::time::{Duration, Instant};

/// The `max_ack_delay` transport parameter this end advertises (quiche's
/// default, set explicitly so the two constants stay together).
pub const MAX_ACK_DELAY: Duration = Duration::from_millis(25);

/// How long received datagrams wait for their acknowledgement at most:
/// below [`MAX_ACK_DELAY`], leaving room for the timer and the send.
pub const ACK_DELAY: Duration = Duration::from_millis(20);

/// Received datagrams that are acknowledged at once.
const ACK_EVERY: u32 = 2;

/// The send decision of one connection.
#[derive(Debug)]
pub struct AckSchedule {
    /// Datagrams received since the last send.
    waiting: u32,
    /// When the first of them must be acknowledged.
    due: Option<Instant>,
    /// This turn sends, whatever arrived.
    now: bool,
    /// quiche's count of lost packets at the last look: a loss found by an
    /// acknowledgement means a retransmission to send at once.
    lost_seen: usize,
}

impl Default for AckSchedule {
    fn default() -> Self {
        AckSchedule {
            waiting: 0,
            due: None,
            // The first turn sends (a client's Initial).
            now: true,
            lost_seen: 0,
        }
    }
}

impl AckSchedule {
    /// Something other than received datagrams calls for sending.
    pub fn send_now(&mut self) {
        self.now = true;
    }

    /// `n` datagrams were received at `at`.
    pub fn received(&mut self, n: u32, at: Instant) {
        self.waiting = self.waiting.saturating_add(n);
        if self.waiting >= ACK_EVERY {
            self.now = true;
        } else {
            self.due.get_or_insert(at + ACK_DELAY);
        }
    }

    /// quiche has lost `lost` packets so far.
    pub fn lost(&mut self, lost: usize) {
        if lost != self.lost_seen {
            self.lost_seen = lost;
            self.now = true;
        }
    }

    /// Whether this turn sends (as of `now`).
    pub fn sends(&self, now: Instant) -> bool {
        self.now || self.due.is_some_and(|due| due <= now)
    }

    /// The turn sent: everything received so far is acknowledged.
    pub fn sent(&mut self) {
        self.waiting = 0;
        self.due = None;
        self.now = false;
    }

    /// When the task must wake to send an acknowledgement that waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_turn_sends_and_then_a_single_datagram_waits_at_most_the_delay() {
        let t0 = Instant::now();
        let mut acks = AckSchedule::default();
        assert!(acks.sends(t0), "a client's first turn sends its Initial");
        acks.sent();
        assert!(!acks.sends(t0));
        assert_eq!(acks.deadline(), None);

        acks.received(1, t0);
        assert!(!acks.sends(t0), "one datagram waits");
        assert_eq!(acks.deadline(), Some(t0 + ACK_DELAY));
        assert!(ACK_DELAY < MAX_ACK_DELAY);
        // A later datagram does not move the deadline...
        acks.received(0, t0 + Duration::from_millis(5));
        assert_eq!(acks.deadline(), Some(t0 + ACK_DELAY));
        // ...which, once reached, makes the turn send.
        assert!(acks.sends(t0 + ACK_DELAY));
        acks.sent();
        assert_eq!(acks.deadline(), None);
    }

    #[test]
    fn two_datagrams_a_loss_or_anything_else_send_at_once() {
        let t0 = Instant::now();
        let mut acks = AckSchedule::default();
        acks.sent();
        acks.received(1, t0);
        acks.received(1, t0);
        assert!(
            acks.sends(t0),
            "the second datagram is acknowledged at once"
        );
        acks.sent();

        acks.received(1, t0);
        acks.lost(0);
        assert!(!acks.sends(t0), "no new loss");
        acks.lost(3);
        assert!(acks.sends(t0), "a retransmission waits");
        acks.sent();
        acks.lost(3);
        assert!(!acks.sends(t0), "the same losses again are not new");

        acks.send_now();
        assert!(acks.sends(t0));
    }
}
