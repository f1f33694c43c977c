//! What a session sends its peer on the line: an envelope, or a plain
//! PUBLISH kept as the MQTT bytes it was read as. Nearly everything a
//! session sends is the second kind, and it needs no protobuf message: its
//! envelope is written straight from the MQTT bytes when it goes out (and
//! again when a resumed stream replays it), with the same bytes prost would
//! write for the envelope the general path builds (see the tests).

use crate::line::convert::ReadPublish;
use crate::line::convert::envelope_wire::{self, Head};
use crate::line::grpc::WireEncode;
use crate::line::proto::mqtt::{MessageDirection, MqttStreamMessage};

/// An envelope on its way to the peer (into an outlet, and on a resumable
/// line into the replay buffer until acknowledged).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Any envelope. Boxed so that it costs 8 bytes to pass and to keep
    /// instead of the envelope's 272.
    Envelope(Box<MqttStreamMessage>),
    /// A plain PUBLISH, and the envelope's own fields.
    Publish(Head, PublishBody),
}

/// A plain PUBLISH on its way, and the length of its protobuf message,
/// counted once for the envelope's length and its writing (and for each
/// replay).
#[derive(Debug, Clone)]
pub struct PublishBody {
    publish: ReadPublish,
    /// [`envelope_wire::publish_len`] of its fields.
    len: usize,
}

impl Outgoing {
    /// `publish`, numbered `sequence_id`, going in `direction`.
    pub fn publish(sequence_id: u64, direction: MessageDirection, publish: ReadPublish) -> Self {
        let head = Head {
            sequence_id,
            direction: direction as i32,
            acknowledged: 0,
        };
        let len = envelope_wire::publish_len(&publish.fields());
        Outgoing::Publish(head, PublishBody { publish, len })
    }

    /// The sender's sequence number.
    pub fn sequence_id(&self) -> u64 {
        match self {
            Outgoing::Envelope(envelope) => envelope.sequence_id,
            Outgoing::Publish(head, _) => head.sequence_id,
        }
    }

    /// Carries the acknowledgement of everything up to `received`.
    pub fn set_acknowledged(&mut self, received: u64) {
        match self {
            Outgoing::Envelope(envelope) => envelope.acknowledged = received,
            Outgoing::Publish(head, _) => head.acknowledged = received,
        }
    }

    /// The envelope, unless it is a plain PUBLISH (which is no ping and no
    /// session control).
    pub fn envelope(&self) -> Option<&MqttStreamMessage> {
        match self {
            Outgoing::Envelope(envelope) => Some(envelope),
            Outgoing::Publish(..) => None,
        }
    }
}

impl From<MqttStreamMessage> for Outgoing {
    fn from(envelope: MqttStreamMessage) -> Self {
        Outgoing::Envelope(Box::new(envelope))
    }
}

impl WireEncode for Outgoing {
    fn framed_len(&self) -> usize {
        match self {
            Outgoing::Envelope(envelope) => envelope.framed_len(),
            Outgoing::Publish(head, body) => envelope_wire::publish_envelope_len(head, body.len),
        }
    }

    fn encode_framed(&self, out: &mut [u8]) {
        match self {
            Outgoing::Envelope(envelope) => envelope.encode_framed(out),
            Outgoing::Publish(head, body) => envelope_wire::write_publish_envelope(
                head,
                body.publish.version(),
                &body.publish.fields(),
                body.len,
                out,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::line::pumps::envelope;
    use crate::mqtt::{Framer, Version};

    /// A PUBLISH of `version` as MQTT bytes.
    fn publish_bytes(
        version: Version,
        (qos, retain, dup): (u8, bool, bool),
        topic: &str,
        packet_id: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        crate::mqtt::PublishBytes {
            qos,
            retain,
            dup,
            topic: topic.as_bytes(),
            packet_id,
            properties: &[],
            payload,
        }
        .put(version, &mut out);
        out.to_vec()
    }

    fn encoded(message: &impl WireEncode) -> Vec<u8> {
        let mut out = vec![0; message.framed_len()];
        message.encode_framed(&mut out);
        out
    }

    proptest! {
        /// The envelope written from the MQTT bytes is byte for byte the
        /// one prost writes for the envelope the general path builds.
        #[test]
        fn a_read_publish_is_written_as_prost_writes_its_envelope(
            v5 in any::<bool>(),
            qos in 0u8..=2,
            retain in any::<bool>(),
            dup in any::<bool>(),
            topic in "[a-z/é]{1,40}",
            packet_id in 1u16..,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            sequence_id in 1..u64::MAX,
            acknowledged in any::<u64>(),
            to_broker in any::<bool>(),
        ) {
            let version = if v5 { Version::V5 } else { Version::V3_1_1 };
            let dup = dup && qos > 0;
            let bytes = publish_bytes(version, (qos, retain, dup), &topic, packet_id, &payload);
            let raw = Framer::new(u32::MAX)
                .next_packet(&mut bytes::BytesMut::from(&bytes[..]))
                .expect("valid")
                .expect("whole");
            let read = ReadPublish::read(version, raw).expect("a plain PUBLISH");
            let direction = if to_broker {
                MessageDirection::ClientToBroker
            } else {
                MessageDirection::BrokerToClient
            };
            let mut outgoing = Outgoing::publish(sequence_id, direction, read.clone());
            outgoing.set_acknowledged(acknowledged);

            let mut numbered = sequence_id - 1;
            let mut general = envelope(&mut numbered, direction, read.to_payload());
            general.acknowledged = acknowledged;
            prop_assert_eq!(encoded(&outgoing), general.encode_to_vec());
            prop_assert_eq!(outgoing.sequence_id(), sequence_id);
        }
    }
}
