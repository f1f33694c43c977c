//! Bytes from an MQTT client or broker, through the whole gRPC-line path:
//! framing (with a packet size limit), the CONNECT check, decoding in both
//! protocol versions, conversion to the protobuf envelope (PUBLISH fast path
//! or general path), the envelope's protobuf encoding and decoding, and the
//! far side's conversion back to MQTT bytes. Nothing may panic, and every
//! packet the near side accepts must come out on the far side as exactly
//! one valid MQTT packet of the same type.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqttbridge::mqtt::{self, Framer, Version};
use mqttbridge::line::convert::{
    encode_publish, packet_to_payload, payload_to_packet, publish_to_payload,
};
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use prost::Message;

/// Small enough that the fuzzer reaches the limit, as operators may set it.
const MAX_PACKET_SIZE: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::new(MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(data);
    let mut first = true;
    while let Ok(Some(raw)) = framer.next_packet(&mut buf) {
        if first {
            let _ = mqtt::accept_connect(&raw);
            first = false;
        }
        for version in [Version::V3_1_1, Version::V5] {
            let payload = match publish_to_payload(version, &raw) {
                Some(payload) => payload,
                None => match mqtt::decode(version, &raw) {
                    Ok(packet) => packet_to_payload(&packet),
                    Err(_) => continue,
                },
            };
            // Across the gRPC stream.
            let sent = MqttStreamMessage {
                sequence_id: 1,
                direction: 0,
                payload: Some(payload),
                acknowledged: 0,
            }
            .encode_to_vec();
            let received = MqttStreamMessage::decode(&sent[..]).expect("our own envelope decodes");
            let payload = received.payload.expect("the payload survives the stream");
            let mut out = BytesMut::new();
            if encode_publish(&payload, version, &mut out).is_none() {
                let packet = payload_to_packet(payload, version)
                    .expect("a packet the near side accepted converts back");
                mqtt::encode(&packet, &mut out);
            }
            let mut far = Framer::new(u32::MAX);
            let written = far
                .next_packet(&mut out)
                .expect("the far side writes well-framed MQTT")
                .expect("a whole packet");
            assert!(out.is_empty(), "exactly one packet");
            assert_eq!(
                written.packet_type(),
                raw.packet_type(),
                "the same kind of packet"
            );
            mqtt::decode(version, &written).expect("the far side writes valid MQTT");
        }
    }
});
