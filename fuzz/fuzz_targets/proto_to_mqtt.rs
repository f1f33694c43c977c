//! What an s-proxy (or r-proxy) receives from the gRPC stream: an arbitrary
//! protobuf envelope, read as the relay reads it (by hand for a plain
//! PUBLISH, which must agree with prost's reading of the same bytes) and
//! turned into MQTT bytes for the broker (or client) the way the relay does
//! it (`line::encode_received`, the pump's own step): a plain PUBLISH
//! straight from the envelope's bytes, the general conversion otherwise.
//! Nothing may panic, and every packet written must be valid MQTT of the
//! session's version.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use mqttbridge::line::{Received, Step, encode_received};
use mqttbridge::mqtt::{self, Framer, Version};
use mqttbridge::ops::telemetry::TrafficCounters;
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
    let read = Received::read(envelope);
    assert_eq!(
        read.as_ref()
            .ok()
            .cloned()
            .map(Received::into_envelope)
            .as_ref(),
        MqttStreamMessage::decode(envelope).as_ref().ok(),
        "read as prost reads it"
    );
    let Ok(received) = read else {
        return;
    };
    let mut counters = TrafficCounters::new("fuzz", "client_to_broker");
    let mut out = BytesMut::new();
    // What the relay's pump writes; a refusal or a session control writes
    // nothing.
    if encode_received(received, version, &mut counters, &mut out) != Ok(Step::Continue)
        || out.is_empty()
    {
        return;
    }
    let mut framer = Framer::new(u32::MAX);
    let raw = framer
        .next_packet(&mut out)
        .expect("the relay writes well-framed MQTT")
        .expect("a whole packet");
    assert!(out.is_empty(), "exactly one packet per envelope");
    mqtt::decode(version, &raw).expect("the relay writes valid MQTT");
});
