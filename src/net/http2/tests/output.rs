//! Who writes the output: a handle sending while the connection's task is
//! idle writes its frame to the socket itself; more output before the task
//! runs again, in the same turn of the runtime, waits for the task, which
//! writes it all at once, and leaves the writing to the task for a while.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};

use bytes::BytesMut;
use futures_util::FutureExt;
use http::HeaderMap;
use tokio::io::AsyncReadExt;

use super::{Peer, config};
use crate::net::http2::frame;
use crate::net::http2::output::{THROUGH_PAUSE, unparked};
use crate::net::http2::server::{self, Connection};
use crate::net::http2::{SendStream, frame::Head};

/// A server connection that runs only when the test polls it, with streams
/// 1 and 3 opened by the peer and answered; the peer has read both heads.
async fn idle_connection_with_two_streams() -> (Connection, Peer, SendStream, SendStream) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let mut peer = Peer {
        io: client,
        read: BytesMut::new(),
    };
    peer.send(frame::PREFACE).await;
    peer.send_frame(|out| frame::put_settings(out, &[])).await;
    let mut connection = server::handshake(Box::new(server), config())
        .await
        .expect("handshake");
    peer.request(1, false).await;
    peer.request(3, false).await;
    let mut sends = Vec::new();
    for _ in 0..2 {
        let call = connection
            .accept()
            .await
            .expect("a call")
            .expect("not failed");
        let (send, _recv) = call
            .respond(200, &HeaderMap::new(), false)
            .expect("responded");
        sends.push(send);
    }
    // One turn writes the heads, and the connection's task is idle again.
    assert!(
        run_once(&mut connection).is_none(),
        "the connection goes on"
    );
    for _ in 0..2 {
        peer.next(frame::HEADERS).await;
    }
    let three = sends.pop().expect("two");
    let one = sends.pop().expect("two");
    (connection, peer, one, three)
}

/// One turn of the connection's task, without waiting.
fn run_once(connection: &mut Connection) -> Option<()> {
    connection.accept().now_or_never().map(|_| ())
}

/// The frame the peer can read now, without waiting for more.
fn readable_now(peer: &mut Peer) -> Option<(Head, Vec<u8>)> {
    loop {
        if peer.read.len() >= frame::HEAD {
            let head = Head::parse(peer.read[..frame::HEAD].try_into().expect("nine"));
            if peer.read.len() >= frame::HEAD + head.len {
                let frame = peer.read.split_to(frame::HEAD + head.len);
                return Some((head, frame[frame::HEAD..].to_vec()));
            }
        }
        match peer.io.read_buf(&mut peer.read).now_or_never() {
            Some(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

fn send(stream: &mut SendStream, bytes: &[u8]) {
    let taken = stream
        .write_data(bytes.len(), |out| out.copy_from_slice(bytes))
        .expect("stream open");
    assert!(taken, "the windows take {} bytes", bytes.len());
}

#[tokio::test]
async fn a_handle_writes_to_an_idle_connection_and_a_burst_is_left_to_the_task() {
    let (mut connection, mut peer, mut one, mut three) = idle_connection_with_two_streams().await;

    // Written by the handle: readable without the connection's task.
    send(&mut one, b"first");
    let (head, payload) = readable_now(&mut peer).expect("written by the handle");
    assert_eq!((head.kind, head.stream), (frame::DATA, 1));
    assert_eq!(payload, b"first");

    // More before the task ran: it waits for the task, then goes out in
    // one write with whatever else came meanwhile, in order.
    send(&mut three, b"second");
    send(&mut one, b"third");
    assert!(readable_now(&mut peer).is_none(), "left for the task");
    assert!(
        run_once(&mut connection).is_none(),
        "the connection goes on"
    );
    let frames: Vec<_> = std::iter::from_fn(|| readable_now(&mut peer))
        .map(|(head, payload)| (head.stream, payload))
        .collect();
    assert_eq!(frames, [(3, b"second".to_vec()), (1, b"third".to_vec())]);

    // After that burst the task writes, for its next turns...
    send(&mut three, b"fourth");
    assert!(readable_now(&mut peer).is_none(), "left for the task");
    for _ in 0..THROUGH_PAUSE {
        assert!(
            run_once(&mut connection).is_none(),
            "the connection goes on"
        );
    }
    let (head, payload) = readable_now(&mut peer).expect("written by the task");
    assert_eq!((head.stream, payload), (3, b"fourth".to_vec()));

    // ...and then a lone frame is the handle's to write again.
    send(&mut one, b"fifth");
    let (head, payload) = readable_now(&mut peer).expect("written by the handle");
    assert_eq!((head.stream, payload), (1, b"fifth".to_vec()));

    // Output in a later turn of the runtime is no burst, even before the
    // task ran: the handle writes it too.
    unparked();
    send(&mut three, b"sixth");
    let (head, payload) = readable_now(&mut peer).expect("written by the handle");
    assert_eq!((head.stream, payload), (3, b"sixth".to_vec()));
}

#[tokio::test]
async fn a_stream_s_burst_joins_one_frame_up_to_the_peer_s_largest() {
    let (mut connection, mut peer, mut one, mut three) = idle_connection_with_two_streams().await;
    send(&mut one, b"lone");
    assert_eq!(
        readable_now(&mut peer).map(|(head, payload)| (head.stream, payload)),
        Some((1, b"lone".to_vec())),
        "written by the handle"
    );

    // Left for the task: each stream's run of data is one frame, and a
    // frame of the other stream between them starts a new one.
    send(&mut three, b"a");
    send(&mut one, b"b");
    send(&mut one, b"c");
    send(&mut three, b"d");
    send(&mut three, b"e");
    send(&mut three, b"f");
    // Beyond the peer's largest frame (16 KiB, its default): a new frame.
    let large = vec![7u8; 10_000];
    send(&mut one, &large);
    send(&mut one, &large);
    assert!(
        run_once(&mut connection).is_none(),
        "the connection goes on"
    );
    let frames: Vec<_> = std::iter::from_fn(|| readable_now(&mut peer))
        .map(|(head, payload)| (head.kind, head.stream, payload))
        .collect();
    let small: Vec<_> = frames.iter().take(3).cloned().collect();
    assert_eq!(
        small,
        [
            (frame::DATA, 3, b"a".to_vec()),
            (frame::DATA, 1, b"bc".to_vec()),
            (frame::DATA, 3, b"def".to_vec()),
        ]
    );
    let rest: Vec<_> = frames[3..]
        .iter()
        .map(|(kind, stream, payload)| (*kind, *stream, payload.len(), payload == &large))
        .collect();
    assert_eq!(
        rest,
        [
            (frame::DATA, 1, large.len(), true),
            (frame::DATA, 1, large.len(), true)
        ]
    );

    // Written out: what follows is a frame of its own, not joined to a
    // frame the peer has already read.
    send(&mut three, b"g");
    send(&mut three, b"h");
    for _ in 0..THROUGH_PAUSE {
        assert!(
            run_once(&mut connection).is_none(),
            "the connection goes on"
        );
    }
    assert_eq!(
        readable_now(&mut peer).map(|(head, payload)| (head.stream, payload)),
        Some((3, b"gh".to_vec()))
    );
}

/// Counts the wake-ups of the connection's task.
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One turn of the connection's task with `waker` as its own.
fn run_once_with(connection: &mut Connection, waker: &Waker) {
    let mut accept = std::pin::pin!(connection.accept());
    let turn = accept.as_mut().poll(&mut Context::from_waker(waker));
    assert!(turn.is_pending(), "the connection goes on");
}

#[tokio::test]
async fn a_message_larger_than_the_output_limit_goes_out_in_full() {
    let (mut connection, mut peer, mut one, _three) = idle_connection_with_two_streams().await;
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    run_once_with(&mut connection, &waker);
    // Over the output's limit (16 KiB here), within the peer's windows: the
    // handle writes what fits, and the rest must not wait for some other
    // wake-up of the connection's task.
    let message = vec![7u8; 40_000];
    one.send_data(message.clone().into(), false)
        .expect("stream open");
    let mut received = Vec::new();
    let mut seen = 0;
    // The task runs only when it was woken, as in a runtime.
    for _ in 0..8 {
        while let Some((head, payload)) = readable_now(&mut peer) {
            assert_eq!((head.kind, head.stream), (frame::DATA, 1));
            received.extend_from_slice(&payload);
        }
        let now = wakes.0.load(Ordering::SeqCst);
        if received.len() == message.len() || now == seen {
            break;
        }
        seen = now;
        run_once_with(&mut connection, &waker);
    }
    assert_eq!(received.len(), message.len(), "all of it reaches the peer");
}
