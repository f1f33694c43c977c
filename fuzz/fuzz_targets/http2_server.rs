//! The s-proxy's HTTP/2 server reading a client: the preface, then any
//! bytes. Calls that open are answered and their data read and given back,
//! so flow control, resets and trailers all run; the output is drained.
//! Nothing may panic, and the connection must end once the client has.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use mqttbridge::net::http2::{self, frame, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

const CONFIG: http2::Config = http2::Config {
    max_streams: 4,
    stream_window: 1_000,
    connection_window: 70_000,
    max_header_list: 1_024,
    send_buffer: 256,
};

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (client, io) = tokio::io::duplex(1 << 16);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let serve = async move {
            let Ok(mut connection) = server::handshake(Box::new(io), CONFIG).await else {
                return;
            };
            let mut calls = Vec::new();
            while let Some(Ok(call)) = connection.accept().await {
                if let Ok((mut send, recv)) = call.respond(200, &http::HeaderMap::new(), false) {
                    let _ = send.send_data(Bytes::from_static(b"an answer"), false);
                    calls.push((send, recv));
                }
                for (send, recv) in &mut calls {
                    while let Some(Some(Ok(chunk))) = recv.data().now_or_never() {
                        recv.release(chunk.len());
                        let _ = send.send_data(chunk, false);
                    }
                }
                if calls.len() > 2 {
                    let (mut send, _) = calls.remove(0);
                    let _ = send.send_trailers(http::HeaderMap::new());
                }
            }
        };
        let feed = async move {
            let _ = to_server.write_all(frame::PREFACE).await;
            let _ = to_server.write_all(data).await;
            let _ = to_server.shutdown().await;
        };
        let drain = async move {
            let mut sink = vec![0; 1 << 16];
            while matches!(from_server.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let all = async { tokio::join!(serve, feed, drain) };
        tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .expect("the connection ends once the client has");
    });
});
