//! A session's reading of its gRPC stream: any bytes, cut into chunks
//! anywhere, split into length-prefixed messages and each read as an
//! envelope where it lies, as the pumps read them. Nothing may panic; a bad
//! frame is an error status.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mqttbridge::line::Received;
use mqttbridge::line::grpc::framing::Deframer;

fuzz_target!(|data: &[u8]| {
    let Some((&cut_every, bytes)) = data.split_first() else {
        return;
    };
    let mut frames = Deframer::new(64 * 1024);
    for chunk in bytes.chunks(usize::from(cut_every).max(1)) {
        frames.push(Bytes::copy_from_slice(chunk));
        loop {
            match frames.next_with(|message| Received::read(message).is_ok()) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
