//! The replay buffer: envelopes sent on a resumable line and not yet
//! acknowledged by the peer, kept so that a resumed stream can send them
//! again. Bounded in bytes; when full, the side stops reading its MQTT
//! socket until acknowledgements make room.

use std::collections::VecDeque;

use crate::line::Outgoing;

/// What an envelope counts against the buffer besides its packet's bytes:
/// the envelope itself and its protobuf fields.
pub(super) const ENVELOPE_OVERHEAD: usize = 64;

/// Unacknowledged envelopes in sequence order, each kept as it was sent (a
/// boxed envelope, or a PUBLISH's MQTT bytes): no copy on the way in or
/// out.
#[derive(Debug)]
pub struct ReplayBuffer {
    entries: VecDeque<(Outgoing, usize)>,
    bytes: usize,
    limit: usize,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `limit` bytes (one envelope more
    /// when it alone is larger, so any packet can pass).
    pub fn new(limit: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Whether another envelope must wait for acknowledgements.
    pub fn is_full(&self) -> bool {
        !self.entries.is_empty() && self.bytes >= self.limit
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Envelopes held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether everything sent has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps `message` (whose packet is `packet_bytes` long) until it is
    /// acknowledged; returns the bytes it counts for.
    pub fn push(&mut self, message: Outgoing, packet_bytes: usize) -> usize {
        let size = packet_bytes + ENVELOPE_OVERHEAD;
        self.bytes += size;
        self.entries.push_back((message, size));
        size
    }

    /// Drops every envelope up to and including sequence `upto`; returns
    /// the bytes freed.
    pub fn acknowledge(&mut self, upto: u64) -> usize {
        let mut freed = 0;
        while let Some((front, size)) = self.entries.front() {
            if front.sequence_id() > upto {
                break;
            }
            freed += size;
            self.entries.pop_front();
        }
        self.bytes -= freed;
        if self.entries.is_empty() && self.entries.capacity() > 0 {
            // Nothing awaits acknowledgement: give the storage back, or an
            // idle session would hold room for four entries for good.
            self.entries = VecDeque::new();
        }
        freed
    }

    /// The first envelope after sequence `after`, to send again.
    /// Sequences rise but may skip (a ping answered without being sent).
    pub fn next_after(&self, after: u64) -> Option<&Outgoing> {
        let index = self
            .entries
            .partition_point(|(m, _)| m.sequence_id() <= after);
        self.entries.get(index).map(|(m, _)| m)
    }

    /// Empties the buffer; returns the bytes freed.
    pub fn clear(&mut self) -> usize {
        let freed = self.bytes;
        self.entries = VecDeque::new();
        self.bytes = 0;
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::proto::mqtt::MqttStreamMessage;

    #[test]
    fn holds_until_acknowledged_and_replays_from_any_point() {
        let mut buffer = ReplayBuffer::new(1000);
        for seq in [5, 6, 7, 9, 10] {
            buffer.push(Outgoing::from(MqttStreamMessage::numbered(seq)), 36);
        }
        assert_eq!((buffer.len(), buffer.bytes()), (5, 500));
        assert!(!buffer.is_full());
        assert_eq!(buffer.next_after(0).map(Outgoing::sequence_id), Some(5));
        assert_eq!(buffer.next_after(6).map(Outgoing::sequence_id), Some(7));
        assert_eq!(
            buffer.next_after(7).map(Outgoing::sequence_id),
            Some(9),
            "8 was skipped"
        );
        assert_eq!(buffer.next_after(10).map(Outgoing::sequence_id), None);
        assert_eq!(buffer.acknowledge(6), 200);
        assert_eq!(buffer.next_after(0).map(Outgoing::sequence_id), Some(7));
        assert_eq!(
            buffer.acknowledge(6),
            0,
            "acknowledging again frees nothing"
        );
        assert_eq!(buffer.acknowledge(100), 300);
        assert!(buffer.is_empty());
    }

    #[test]
    fn full_at_the_limit_but_never_refuses_a_first_envelope() {
        let mut buffer = ReplayBuffer::new(150);
        assert!(!buffer.is_full());
        buffer.push(Outgoing::from(MqttStreamMessage::numbered(1)), 10_000);
        assert!(buffer.is_full(), "one large envelope fills it");
        buffer.acknowledge(1);
        assert!(!buffer.is_full());
        buffer.push(Outgoing::from(MqttStreamMessage::numbered(2)), 36);
        assert!(!buffer.is_full());
        buffer.push(Outgoing::from(MqttStreamMessage::numbered(3)), 36);
        assert!(buffer.is_full(), "200 bytes of 150");
        assert_eq!(buffer.clear(), 200);
        assert_eq!(buffer.bytes(), 0);
    }
}
