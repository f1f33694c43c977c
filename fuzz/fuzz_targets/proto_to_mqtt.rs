//! What an s-proxy (or r-proxy) receives from the gRPC stream: an arbitrary
//! protobuf envelope, read as the relay reads it (by hand for a plain
//! PUBLISH, which must agree with prost's reading of the same bytes) and
//! turned into MQTT bytes for the broker (or client) the way the relay does
//! it: a plain PUBLISH straight from the envelope's bytes, the general
//! conversion otherwise.
//! Nothing may panic, and every packet written must be valid MQTT of the
//! session's version.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mqttbridge::mqtt::{self, Framer, Version};
use mqttbridge::line::Received;
use mqttbridge::line::convert::{encode_plain_publish, encode_publish, payload_to_packet};
use mqttbridge::line::grpc::WireDecode;
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use mqttbridge::line::proto::mqtt::mqtt_stream_message::Payload;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, envelope)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        Version::V3_1_1
    } else {
        Version::V5
    };
    let read = Received::decode_framed(Bytes::copy_from_slice(envelope));
    assert_eq!(
        read.as_ref().ok().cloned().map(Received::into_envelope).as_ref(),
        MqttStreamMessage::decode(envelope).as_ref().ok(),
        "read as prost reads it"
    );
    let Ok(received) = read else {
        return;
    };
    let mut out = BytesMut::new();
    let message = match received {
        Received::Publish(publish) => {
            if encode_plain_publish(publish.version(), &publish.fields(), version, &mut out)
                .is_some()
            {
                None
            } else {
                Some(publish.to_envelope())
            }
        }
        Received::Envelope(envelope) => Some(*envelope),
    };
    if let Some(message) = message {
        let Some(payload) = message.payload else {
            return;
        };
        if matches!(payload, Payload::SessionControl(_)) {
            return;
        }
        if encode_publish(&payload, version, &mut out).is_none() {
            let Ok(packet) = payload_to_packet(payload, version) else {
                return;
            };
            mqtt::encode(&packet, &mut out);
        }
    }
    let mut framer = Framer::new(u32::MAX);
    let raw = framer
        .next_packet(&mut out)
        .expect("the relay writes well-framed MQTT")
        .expect("a whole packet");
    assert!(out.is_empty(), "exactly one packet per envelope");
    mqtt::decode(version, &raw).expect("the relay writes valid MQTT");
});
