//! The server side against a peer written frame by frame: what a
//! misbehaving or unusual client gets back, flow control as the peer sees
//! it (`flow_control.rs`), and who writes the output (`output.rs`).
//! (Well-behaved peers, h2's and hyper's clients, are in the gRPC server's
//! tests and the integration tests.)

mod flow_control;
mod output;

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::frame::{self, Head, Reason};
use super::hpack;
use super::server::{self, Incoming};
use super::{Config, Error};

const WITHIN: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config {
        max_streams: 2,
        stream_window: 1_000,
        connection_window: 100_000,
        max_header_list: 1_024,
        send_buffer: 100,
    }
}

/// The client's end, frame by frame.
struct Peer {
    io: DuplexStream,
    read: BytesMut,
}

impl Peer {
    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("written");
    }

    async fn send_frame(&mut self, put: impl FnOnce(&mut BytesMut)) {
        let mut out = BytesMut::new();
        put(&mut out);
        self.send(&out).await;
    }

    /// The next frame; `None` once the server closed the connection.
    async fn frame(&mut self) -> Option<(Head, Bytes)> {
        loop {
            if self.read.len() >= frame::HEAD {
                let head = Head::parse(self.read[..frame::HEAD].try_into().expect("nine"));
                if self.read.len() >= frame::HEAD + head.len {
                    self.read.advance(frame::HEAD);
                    return Some((head, self.read.split_to(head.len).freeze()));
                }
            }
            let n = tokio::time::timeout(WITHIN, self.io.read_buf(&mut self.read))
                .await
                .expect("a frame in time")
                .expect("read");
            if n == 0 {
                return None;
            }
        }
    }

    /// The next frame of `kind`, passing over SETTINGS, their ACKs and
    /// connection-level WINDOW_UPDATEs.
    async fn next(&mut self, kind: u8) -> (Head, Bytes) {
        loop {
            let (head, payload) = self.frame().await.expect("a frame before the end");
            if head.kind == kind {
                return (head, payload);
            }
            let routine = head.kind == frame::SETTINGS
                || (head.kind == frame::WINDOW_UPDATE && head.stream == 0);
            assert!(routine, "unexpected {head:?} waiting for {kind}");
        }
    }

    /// A request on `stream`: POST `/t` with a gRPC content type.
    async fn request(&mut self, stream: u32, end: bool) {
        let mut block = BytesMut::new();
        hpack::put_indexed(&mut block, 3);
        hpack::put_field(&mut block, b":path", b"/t");
        hpack::put_field(&mut block, b":scheme", b"http");
        hpack::put_field(&mut block, b"content-type", b"application/grpc");
        self.send_frame(|out| frame::put_headers(out, stream, &block, end, 16_384))
            .await;
    }

    /// The GOAWAY that ends the connection, and its reason.
    async fn goaway(&mut self) -> Reason {
        let (_, payload) = self.next(frame::GOAWAY).await;
        Reason(u32::from_be_bytes(payload[4..8].try_into().expect("four")))
    }
}

/// A server connection on an in-memory socket whose new calls come out of
/// the channel, and a peer that has sent the preface and `settings`.
async fn start(settings: &[(u16, u32)]) -> (Peer, mpsc::Receiver<Incoming>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (calls, incoming) = mpsc::channel(8);
    tokio::spawn(async move {
        let Ok(mut connection) = server::handshake(Box::new(server), config()).await else {
            return;
        };
        while let Some(Ok(call)) = connection.accept().await {
            let _ = calls.send(call).await;
        }
    });
    let mut peer = Peer {
        io: client,
        read: BytesMut::new(),
    };
    peer.send(frame::PREFACE).await;
    peer.send_frame(|out| frame::put_settings(out, settings))
        .await;
    (peer, incoming)
}

async fn call(incoming: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WITHIN, incoming.recv())
        .await
        .expect("a call in time")
        .expect("a call")
}

/// Stream 1 opened by the peer, accepted and answered with a 200 head,
/// which the peer has read.
async fn answered(
    peer: &mut Peer,
    incoming: &mut mpsc::Receiver<Incoming>,
) -> (super::SendStream, super::RecvStream) {
    peer.request(1, false).await;
    let sides = call(incoming)
        .await
        .respond(200, &HeaderMap::new(), false)
        .expect("responded");
    peer.next(frame::HEADERS).await;
    sides
}

#[tokio::test]
async fn a_request_in_padded_headers_and_continuation_is_one_call() {
    let (mut peer, mut incoming) = start(&[]).await;
    let mut block = BytesMut::new();
    hpack::put_indexed(&mut block, 3);
    hpack::put_field(&mut block, b":path", b"/t");
    hpack::put_field(&mut block, b"x-meta", b"one");
    let (first, rest) = block.split_at(4);
    // HEADERS with two bytes of padding and no END_HEADERS, then the rest.
    let mut payload = vec![2];
    payload.extend_from_slice(first);
    payload.extend_from_slice(&[0, 0]);
    peer.send_frame(|out| {
        frame::put_head(out, payload.len(), frame::HEADERS, frame::PADDED, 1);
        out.extend_from_slice(&payload);
        frame::put_head(out, rest.len(), frame::CONTINUATION, frame::END_HEADERS, 1);
        out.extend_from_slice(rest);
    })
    .await;
    let call = call(&mut incoming).await;
    assert_eq!(
        (call.head.method.as_str(), call.head.path.as_str()),
        ("POST", "/t")
    );
    assert_eq!(
        call.head.headers.get("x-meta").map(|v| v.as_bytes()),
        Some(&b"one"[..])
    );
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_and_a_reset_reaches_the_reader() {
    let (mut peer, mut incoming) = start(&[]).await;
    peer.request(1, false).await;
    peer.request(3, false).await;
    peer.request(5, false).await;
    let first = call(&mut incoming).await;
    let _second = call(&mut incoming).await;
    let (head, payload) = peer.next(frame::RST_STREAM).await;
    assert_eq!(head.stream, 5, "a third stream over the limit of two");
    assert_eq!(payload[..], Reason::REFUSED_STREAM.0.to_be_bytes());

    let (_send, mut recv) = first
        .respond(200, &HeaderMap::new(), false)
        .expect("responded");
    peer.send_frame(|out| frame::put_reset(out, 1, Reason::CANCEL))
        .await;
    let read = tokio::time::timeout(WITHIN, std::future::poll_fn(|cx| recv.poll_data(cx)))
        .await
        .expect("told in time");
    assert!(matches!(
        read,
        Some(Err(Error::Reset {
            reason: Reason::CANCEL,
            remote: true
        }))
    ));
}

#[tokio::test]
async fn a_stream_given_up_before_it_ended_is_reset() {
    let (mut peer, mut incoming) = start(&[]).await;
    peer.request(1, false).await;
    drop(call(&mut incoming).await);
    let (head, payload) = peer.next(frame::RST_STREAM).await;
    assert_eq!(head.stream, 1);
    assert_eq!(payload[..], Reason::CANCEL.0.to_be_bytes());
}

#[tokio::test]
async fn pings_are_answered_with_their_payload() {
    let (mut peer, _incoming) = start(&[]).await;
    peer.send_frame(|out| frame::put_ping(out, *b"12345678", false))
        .await;
    let (head, payload) = peer.next(frame::PING).await;
    assert!(head.has(frame::ACK));
    assert_eq!(&payload[..], b"12345678");
}

#[tokio::test]
async fn protocol_errors_end_the_connection_with_their_reason() {
    type Wrong = fn(&mut BytesMut);
    let cases: [(&str, Wrong, Reason); 6] = [
        (
            "a frame over 16 KiB",
            |out| frame::put_data(out, 1, &[0; 16_385], false),
            Reason::FRAME_SIZE_ERROR,
        ),
        (
            "DATA on a stream never opened",
            |out| frame::put_data(out, 1, b"x", false),
            Reason::PROTOCOL_ERROR,
        ),
        (
            "a window update of zero",
            |out| frame::put_window_update(out, 0, 0),
            Reason::PROTOCOL_ERROR,
        ),
        (
            "a connection window beyond 2^31 - 1",
            |out| frame::put_window_update(out, 0, frame::MAX_WINDOW),
            Reason::FLOW_CONTROL_ERROR,
        ),
        (
            "a PING of 7 bytes",
            |out| {
                frame::put_head(out, 7, frame::PING, 0, 0);
                out.extend_from_slice(&[0; 7]);
            },
            Reason::FRAME_SIZE_ERROR,
        ),
        (
            "a header block that does not decode",
            |out| frame::put_headers(out, 1, &[0x80], true, 16_384),
            Reason::COMPRESSION_ERROR,
        ),
    ];
    for (what, wrong, reason) in cases {
        let (mut peer, _incoming) = start(&[]).await;
        peer.send_frame(wrong).await;
        assert_eq!(peer.goaway().await, reason, "{what}");
        assert!(
            peer.frame().await.is_none(),
            "{what}: the connection closes"
        );
    }
}

#[tokio::test]
async fn a_peer_that_is_not_http2_is_closed() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let handshake = tokio::spawn(server::handshake(Box::new(server), config()));
    let mut peer = Peer {
        io: client,
        read: BytesMut::new(),
    };
    peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let outcome = tokio::time::timeout(WITHIN, handshake)
        .await
        .expect("ends in time")
        .expect("no panic");
    assert!(matches!(
        outcome,
        Err(Error::GoAway {
            reason: Reason::PROTOCOL_ERROR,
            ..
        })
    ));
}

#[tokio::test]
async fn data_that_came_before_a_reset_is_still_read() {
    // tonic's client cancels a call when its side goes away, right after
    // the last messages it sent.
    let (mut peer, mut incoming) = start(&[]).await;
    let (_send, mut recv) = answered(&mut peer, &mut incoming).await;
    peer.send_frame(|out| {
        frame::put_data(out, 1, b"last words", false);
        frame::put_reset(out, 1, Reason::CANCEL);
    })
    .await;
    let first = tokio::time::timeout(WITHIN, recv.data())
        .await
        .expect("in time");
    assert_eq!(
        first.map(|d| d.ok()),
        Some(Some(Bytes::from_static(b"last words")))
    );
    let then = tokio::time::timeout(WITHIN, recv.data())
        .await
        .expect("in time");
    assert!(matches!(
        then,
        Some(Err(Error::Reset {
            reason: Reason::CANCEL,
            remote: true
        }))
    ));
}
