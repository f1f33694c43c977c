//! The hand-written path against prost's, both ways.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::line::convert::publish_fast_path::{OwnedPublish, plain_payload};
use crate::line::proto::mqtt::SessionControl;
use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::mqttv5;

/// An envelope read as a session's pump reads it: a plain PUBLISH here,
/// anything else by prost.
fn decode(bytes: Bytes) -> Result<MqttStreamMessage, prost::DecodeError> {
    crate::line::Received::read(&bytes).map(crate::line::Received::into_envelope)
}

fn publish_envelope(
    v5: bool,
    (sequence_id, direction, acknowledged): (u64, i32, u64),
    (topic, message_id, qos, retain, dup): (String, u32, i32, bool, bool),
    payload: Vec<u8>,
) -> MqttStreamMessage {
    let version = if v5 { Version::V5 } else { Version::V3_1_1 };
    let publish = OwnedPublish {
        topic,
        message_id,
        qos,
        retain,
        dup,
        payload: Bytes::from(payload),
    };
    MqttStreamMessage {
        sequence_id,
        direction,
        acknowledged,
        payload: Some(plain_payload(version, publish)),
    }
}

fn by_hand(envelope: &MqttStreamMessage) -> Vec<u8> {
    let mut out = vec![0; encoded_len(envelope)];
    write(envelope, &mut out);
    out
}

fn envelopes() -> impl Strategy<Value = MqttStreamMessage> {
    (
        any::<bool>(),
        (
            prop_oneof![Just(0u64), any::<u64>()],
            prop_oneof![Just(0i32), Just(1), any::<i32>()],
            prop_oneof![Just(0u64), 1u64..300, any::<u64>()],
        ),
        (
            ".{0,40}",
            prop_oneof![Just(0u32), 1u32..=65535, any::<u32>()],
            prop_oneof![0i32..=2, any::<i32>()],
            any::<bool>(),
            any::<bool>(),
        ),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(v5, head, fields, payload)| publish_envelope(v5, head, fields, payload))
}

proptest! {
    #[test]
    fn writes_what_prost_writes(envelope in envelopes()) {
        prop_assert_eq!(by_hand(&envelope), envelope.encode_to_vec());
    }

    #[test]
    fn reads_what_prost_reads(envelope in envelopes()) {
        let bytes = Bytes::from(envelope.encode_to_vec());
        // A negative enum value (ten bytes on the wire) is prost's to read,
        // and so is a topic with a wildcard (no topic name: the general path
        // refuses it).
        let prost_s = plain_publish(&envelope).is_some_and(|(_, f)| {
            f.qos < 0 || envelope.direction < 0 || f.topic.contains(&b'+') || f.topic.contains(&b'#')
        });
        prop_assert_eq!(read::read_publish(&bytes).is_some(), !prost_s, "read here, not by prost");
        prop_assert_eq!(decode(bytes).ok(), Some(envelope));
    }

    #[test]
    fn a_publish_read_here_is_written_back_as_it_came(envelope in envelopes()) {
        let bytes = Bytes::from(envelope.encode_to_vec());
        if let Some(read) = read::read_publish(&bytes) {
            let len = publish_len(&read.fields());
            let mut out = vec![0; publish_envelope_len(read.head(), len)];
            write_publish_envelope(read.head(), read.version(), &read.fields(), len, &mut out);
            prop_assert_eq!(&out[..], &bytes[..]);
            prop_assert_eq!(read.to_envelope(), envelope);
        }
    }

    #[test]
    fn any_bytes_read_as_prost_reads_them(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let bytes = Bytes::from(bytes);
        prop_assert_eq!(decode(bytes.clone()).ok(), MqttStreamMessage::decode(bytes).ok());
    }

    #[test]
    fn changed_bytes_read_as_prost_reads_them(
        envelope in envelopes(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = envelope.encode_to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let changed = Bytes::from(bytes.clone());
        prop_assert_eq!(decode(changed.clone()).ok(), MqttStreamMessage::decode(changed).ok());
        bytes.truncate(cut.index(bytes.len() + 1));
        let cut = Bytes::from(bytes);
        prop_assert_eq!(decode(cut.clone()).ok(), MqttStreamMessage::decode(cut).ok());
    }
}

#[test]
fn other_envelopes_go_to_prost_both_ways() {
    let control = MqttStreamMessage {
        sequence_id: 1,
        direction: 0,
        acknowledged: 7,
        payload: Some(Payload::SessionControl(SessionControl::default())),
    };
    let mut with_property = publish_envelope(
        true,
        (5, 1, 0),
        ("a/b".into(), 0, 0, false, false),
        b"x".to_vec(),
    );
    if let Some(Payload::MqttV5Packet(mqttv5::MqttPacket {
        packet: Some(mqttv5::mqtt_packet::Packet::Publish(p)),
    })) = &mut with_property.payload
    {
        p.properties.push(mqttv5::Property {
            property_type: Some(mqttv5::property::PropertyType::MessageExpiryInterval(9)),
        });
    }
    for envelope in [control, with_property, MqttStreamMessage::default()] {
        let bytes = envelope.encode_to_vec();
        assert_eq!(by_hand(&envelope), bytes);
        let bytes = Bytes::from(bytes);
        assert!(read::read_publish(&bytes).is_none());
        assert_eq!(decode(bytes).ok(), Some(envelope));
    }
}

#[test]
fn a_field_twice_out_of_order_or_with_a_long_key_goes_to_prost() {
    let envelope = publish_envelope(
        false,
        (3, 0, 0),
        ("t".into(), 0, 0, false, false),
        b"p".to_vec(),
    );
    let bytes = envelope.encode_to_vec();
    // The sequence number again after the packet: prost takes the last.
    let mut twice = bytes.clone();
    twice.extend_from_slice(&[0x10, 0x09]);
    let twice = Bytes::from(twice);
    assert!(read::read_publish(&twice).is_none());
    assert_eq!(decode(twice).map(|m| m.sequence_id).ok(), Some(9));
    // The sequence number after the packet instead of before it.
    let mut reordered = bytes[2..].to_vec();
    reordered.extend_from_slice(&bytes[..2]);
    let reordered = Bytes::from(reordered);
    assert!(read::read_publish(&reordered).is_none());
    assert_eq!(decode(reordered).ok(), Some(envelope.clone()));
    // The sequence number's key in two bytes (0x90 0x00 for 0x10): the
    // same field to prost.
    assert_eq!(bytes[..2], [0x10, 0x03], "the sequence number first");
    let mut long_key = vec![0x90, 0x00];
    long_key.extend_from_slice(&bytes[1..]);
    let long_key = Bytes::from(long_key);
    assert!(read::read_publish(&long_key).is_none());
    assert_eq!(decode(long_key).ok(), Some(envelope));
}

#[test]
fn the_payload_is_read_where_it_lies() {
    let envelope = publish_envelope(
        true,
        (1, 0, 0),
        ("t".into(), 0, 0, false, false),
        vec![7; 100],
    );
    let bytes = envelope.encode_to_vec();
    let read = read::read_publish(&bytes).expect("a plain PUBLISH envelope");
    let within = bytes.as_ptr_range();
    assert!(
        within.contains(&read.fields().payload.as_ptr()),
        "not a copy"
    );
}
