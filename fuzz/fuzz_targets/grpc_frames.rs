//! The r-proxy's reading of a gRPC response stream: any bytes, cut into
//! chunks anywhere, split into length-prefixed messages and decoded as
//! envelopes. Nothing may panic; a bad frame is an error status.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mqttbridge::line::grpc::framing::Deframer;
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&cut_every, bytes)) = data.split_first() else {
        return;
    };
    let mut frames = Deframer::new(64 * 1024);
    for chunk in bytes.chunks(usize::from(cut_every).max(1)) {
        frames.push(Bytes::copy_from_slice(chunk));
        loop {
            match frames.next_message() {
                Ok(Some(message)) => {
                    let _ = MqttStreamMessage::decode(message);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
