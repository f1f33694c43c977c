//! Bytes from an MQTT client or broker, through the whole gRPC-line path:
//! framing (with a packet size limit), the CONNECT check, decoding in both
//! protocol versions, the envelope as the near side writes it (a plain
//! PUBLISH straight from its MQTT bytes, anything else converted by the
//! general path), the far side's reading of it, and its conversion back to
//! MQTT bytes. Nothing may panic, and every
//! packet the near side accepts must come out on the far side as exactly
//! one valid MQTT packet of the same type.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqttbridge::line::convert::{ReadPublish, packet_to_payload};
use mqttbridge::line::grpc::WireEncode;
use mqttbridge::line::proto::mqtt::{MessageDirection, MqttStreamMessage};
use mqttbridge::line::{Outgoing, Received, Step, encode_received};
use mqttbridge::mqtt::{self, Framer, Version};
use mqttbridge::ops::telemetry::TrafficCounters;

/// Small enough that the fuzzer reaches the limit, as operators may set it.
const MAX_PACKET_SIZE: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    let mut counters = TrafficCounters::new("fuzz", "broker_to_client");
    let mut framer = Framer::new(MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(data);
    let mut first = true;
    while let Ok(Some(raw)) = framer.next_packet(&mut buf) {
        if first {
            let _ = mqtt::accept_connect(&raw);
            first = false;
        }
        for version in [Version::V3_1_1, Version::V5] {
            let sent = match ReadPublish::read(version, raw.clone()) {
                Ok(publish) => Outgoing::publish(1, MessageDirection::ClientToBroker, publish),
                Err(raw) => match mqtt::decode(version, &raw) {
                    Ok(packet) => Outgoing::from(MqttStreamMessage {
                        sequence_id: 1,
                        direction: 0,
                        payload: Some(packet_to_payload(&packet)),
                        acknowledged: 0,
                    }),
                    Err(_) => continue,
                },
            };
            // Across the gRPC stream.
            let mut wire = vec![0; sent.framed_len()];
            sent.encode_framed(&mut &mut wire[..]);
            let received = Received::read(&wire).expect("our own envelope decodes");
            let mut out = BytesMut::new();
            assert_eq!(
                encode_received(received, version, &mut counters, &mut out),
                Ok(Step::Continue),
                "a packet the near side accepted converts back"
            );
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
