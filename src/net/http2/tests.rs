//! The server side against a peer written frame by frame: what a
//! misbehaving or unusual client gets back, and flow control as the peer
//! sees it. (Well-behaved peers, h2's and hyper's clients, are in the gRPC
//! server's tests and the integration tests.)

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
        let Ok(mut connection) = server::handshake(server, config()).await else {
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
async fn data_waits_for_the_peers_window_and_room_follows_the_send_buffer() {
    // The peer grants 10 bytes a stream.
    let (mut peer, mut incoming) = start(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 10)]).await;
    let (mut send, _recv) = answered(&mut peer, &mut incoming).await;
    send.send_data(Bytes::from(vec![7; 150]), false)
        .expect("sent");
    let (head, data) = peer.next(frame::DATA).await;
    assert_eq!(
        (head.stream, data.len()),
        (1, 10),
        "only the window's worth"
    );
    // 140 bytes wait: over the 100-byte send buffer, so no room.
    assert!(!send.has_room().expect("open"));
    let mut room = std::pin::pin!(std::future::poll_fn(|cx| send.poll_room(cx)));
    assert!((&mut room).now_or_never().is_none());
    peer.send_frame(|out| frame::put_window_update(out, 1, 1_000))
        .await;
    let (_, data) = peer.next(frame::DATA).await;
    assert_eq!(data.len(), 140, "the rest once granted");
    tokio::time::timeout(WITHIN, room)
        .await
        .expect("room again")
        .expect("open");
}

#[tokio::test]
async fn data_written_in_place_only_when_the_window_takes_it_all_and_nothing_waits() {
    // The peer grants 10 bytes a stream.
    let (mut peer, mut incoming) = start(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 10)]).await;
    let (mut send, _recv) = answered(&mut peer, &mut incoming).await;
    let written = send.write_data(4, |out| out.copy_from_slice(b"abcd"));
    assert!(matches!(written, Ok(true)));
    let (head, data) = peer.next(frame::DATA).await;
    assert_eq!((head.stream, head.flags, &data[..]), (1, 0, &b"abcd"[..]));

    // 6 bytes of window left: 7 are not written, and nothing is spent.
    let mut called = false;
    let written = send.write_data(7, |_| called = true);
    assert!(matches!(written, Ok(false)) && !called);
    // Data waiting in the stream keeps later data behind it.
    send.send_data(Bytes::from_static(b"0123456789"), false)
        .expect("sent");
    let (_, data) = peer.next(frame::DATA).await;
    assert_eq!(&data[..], b"012345", "the rest of the window");
    assert!(matches!(send.write_data(1, |_| called = true), Ok(false)));
    assert!(!called);
    peer.send_frame(|out| frame::put_window_update(out, 1, 100))
        .await;
    let (_, data) = peer.next(frame::DATA).await;
    assert_eq!(&data[..], b"6789", "in order once granted");

    // Once the stream has ended, writing is refused.
    send.send_data(Bytes::new(), true).expect("ended");
    assert!(matches!(
        send.write_data(1, |_| called = true),
        Err(Error::Closed)
    ));
    assert!(!called);
}

#[tokio::test]
async fn read_data_is_granted_back_and_data_beyond_the_window_resets_the_stream() {
    let (mut peer, mut incoming) = start(&[]).await;
    let (_send, mut recv) = answered(&mut peer, &mut incoming).await;
    peer.send_frame(|out| frame::put_data(out, 1, &[1; 600], false))
        .await;
    let chunk = tokio::time::timeout(WITHIN, std::future::poll_fn(|cx| recv.poll_data(cx)))
        .await
        .expect("data in time")
        .expect("data")
        .expect("no error");
    assert_eq!(chunk.len(), 600);
    recv.release(chunk.len());
    // Half the 1,000-byte window was read: it is granted back.
    let (head, payload) = loop {
        let (head, payload) = peer.next(frame::WINDOW_UPDATE).await;
        if head.stream == 1 {
            break (head, payload);
        }
    };
    assert_eq!((head.stream, &payload[..]), (1, &600u32.to_be_bytes()[..]));
    // 1,001 bytes on a stream allowed 1,000.
    peer.request(3, false).await;
    let _held = call(&mut incoming).await;
    peer.send_frame(|out| {
        frame::put_data(out, 3, &[1; 600], false);
        frame::put_data(out, 3, &[1; 401], false);
    })
    .await;
    let (head, payload) = peer.next(frame::RST_STREAM).await;
    assert_eq!(head.stream, 3);
    assert_eq!(payload[..], Reason::FLOW_CONTROL_ERROR.0.to_be_bytes());
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
    let handshake = tokio::spawn(server::handshake(server, config()));
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

/// Our client and our server on a real socket, both with small windows
/// and buffers so that senders keep waiting for room: every byte of many
/// streams' echoes comes back, in order, on a runtime with two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_echo_everything_through_small_windows() {
    use super::client::{self, Request};

    const STREAMS: usize = 40;
    const CHUNKS: usize = 100;
    let tight = Config {
        max_streams: STREAMS as u32,
        stream_window: 2_000,
        connection_window: 20_000,
        max_header_list: 4_096,
        send_buffer: 300,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut connection = server::handshake(tcp, tight).await.expect("handshake");
        while let Some(Ok(call)) = connection.accept().await {
            tokio::spawn(async move {
                let (mut send, mut recv) = call
                    .respond(200, &HeaderMap::new(), false)
                    .expect("responded");
                while let Some(Ok(chunk)) = recv.data().await {
                    recv.release(chunk.len());
                    std::future::poll_fn(|cx| send.poll_room(cx))
                        .await
                        .expect("room");
                    send.send_data(chunk, false).expect("echoed");
                }
                let _ = send.send_trailers(HeaderMap::new());
            });
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (requests, connection) = client::handshake(tcp, tight).await.expect("handshake");
    tokio::spawn(connection);
    let mut calls = Vec::new();
    for n in 0..STREAMS {
        let requests = requests.clone();
        calls.push(tokio::spawn(async move {
            let headers = HeaderMap::new();
            let request = Request {
                https: false,
                authority: "test",
                path: "/echo",
                headers: &headers,
            };
            let (response, mut send) = requests.send_request(request, false).await.expect("sent");
            let sender = tokio::spawn(async move {
                for i in 0..CHUNKS {
                    std::future::poll_fn(|cx| send.poll_room(cx))
                        .await
                        .expect("room");
                    let chunk = format!("{n}:{i};").repeat(20);
                    send.send_data(Bytes::from(chunk), false).expect("sent");
                }
                send.send_data(Bytes::new(), true).expect("ended");
            });
            let (head, mut body) = response.await.expect("a response");
            assert_eq!(head.status, 200);
            let mut echoed = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.expect("data");
                body.release(chunk.len());
                echoed.extend_from_slice(&chunk);
            }
            sender.await.expect("sender");
            let expected: String = (0..CHUNKS)
                .map(|i| format!("{n}:{i};").repeat(20))
                .collect();
            assert_eq!(String::from_utf8_lossy(&echoed), expected, "stream {n}");
        }));
    }
    for call in calls {
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("every echo in time")
            .expect("no panic");
    }
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
