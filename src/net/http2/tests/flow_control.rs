//! Flow control as the peer sees it: DATA waits for the peer's windows,
//! what is read is granted back, and many streams through small windows
//! lose nothing.

use super::*;

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

/// Our client and our server on a real socket, both with small windows
/// and buffers so that senders keep waiting for room: every byte of many
/// streams' echoes comes back, in order, on a runtime with two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_echo_everything_through_small_windows() {
    use crate::net::http2::client::{self, Request};

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
        let mut connection = server::handshake(Box::new(tcp), tight)
            .await
            .expect("handshake");
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
    let (requests, connection) = client::handshake(Box::new(tcp), tight)
        .await
        .expect("handshake");
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
