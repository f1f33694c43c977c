//! The QUIC driver over UDP/IP: handshake, both directions, large transfers
//! through flow control, end of stream, client certificates and garbage.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::bounded;
use mqttbridge::certs;
use mqttbridge::quic::{
    ClientTls, DialError, QuicLimits, QuicListener, QuicStream, ServerTls, client_config, dial,
    server_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

struct Setup {
    _dir: tempfile::TempDir,
    certs: certs::Certificates,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    Setup { _dir: dir, certs }
}

async fn listener(
    s: &Setup,
    require_client_cert: bool,
    limits: &QuicLimits,
) -> QuicListener<UdpSocket> {
    let tls = ServerTls {
        cert_chain: s.certs.server_cert.clone(),
        private_key: s.certs.server_key.clone(),
        client_ca: require_client_cert.then(|| s.certs.ca.clone()),
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    QuicListener::new(
        socket,
        server_config(&tls, limits).unwrap(),
        100,
        16,
        Duration::from_secs(30),
    )
    .unwrap()
}

async fn dial_to(
    s: &Setup,
    addr: SocketAddr,
    with_cert: bool,
    limits: &QuicLimits,
) -> Result<QuicStream, DialError> {
    let tls = ClientTls {
        ca: Some(s.certs.ca.clone()),
        insecure: false,
        cert_chain: with_cert.then(|| s.certs.client_cert.clone()),
        private_key: with_cert.then(|| s.certs.client_key.clone()),
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = client_config(&tls, limits).unwrap();
    dial(
        socket,
        addr,
        "localhost",
        &mut config,
        Duration::from_secs(5),
    )
    .await
}

/// The server side of an echo: reads to end of stream, writes it all back.
fn echo_server(mut listener: QuicListener<UdpSocket>) -> tokio::task::JoinHandle<Option<Vec<u8>>> {
    tokio::spawn(async move {
        let mut accepted = listener.accept().await?;
        let mut data = Vec::new();
        accepted.stream.read_to_end(&mut data).await.ok()?;
        accepted.stream.write_all(&data).await.ok()?;
        accepted.stream.shutdown().await.ok()?;
        Some(accepted.peer_cert.unwrap_or_default())
    })
}

#[tokio::test]
async fn large_transfer_both_ways_through_small_windows() {
    let s = setup();
    // Small windows force many flow-control rounds and partial writes.
    let limits = QuicLimits {
        stream_window: 16 * 1024,
        connection_window: 32 * 1024,
        ..QuicLimits::default()
    };
    let listener = listener(&s, false, &limits).await;
    let addr = listener.local_addr();
    let server = echo_server(listener);
    let stream = bounded("dial", dial_to(&s, addr, false, &limits))
        .await
        .expect("handshake");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let sent: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let expected = sent.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut echoed = Vec::new();
    bounded("echo", rd.read_to_end(&mut echoed)).await.unwrap();
    assert_eq!(echoed.len(), expected.len());
    assert!(echoed == expected, "every byte back, in order");
    writer.await.unwrap();
    bounded("server done", server)
        .await
        .unwrap()
        .expect("server saw the stream");
}

#[tokio::test]
async fn client_certificate_is_seen_when_required() {
    let s = setup();
    let limits = QuicLimits::default();
    let listener = listener(&s, true, &limits).await;
    let addr = listener.local_addr();
    let server = echo_server(listener);
    let mut stream = bounded("dial", dial_to(&s, addr, true, &limits))
        .await
        .expect("handshake with a client certificate");
    stream.write_all(b"hi").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    bounded("echo", stream.read_to_end(&mut back))
        .await
        .unwrap();
    assert_eq!(back, b"hi");
    let cert = bounded("server done", server).await.unwrap().unwrap();
    assert!(!cert.is_empty(), "server sees the client certificate");
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let s = setup();
    let other = setup();
    let limits = QuicLimits::default();
    let listener = listener(&s, true, &limits).await;
    let addr = listener.local_addr();
    // Client presents a certificate signed by a different CA (and trusts the
    // right server CA).
    let tls = ClientTls {
        ca: Some(s.certs.ca.clone()),
        insecure: false,
        cert_chain: Some(other.certs.client_cert.clone()),
        private_key: Some(other.certs.client_key.clone()),
    };
    let mut config = client_config(&tls, &limits).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let result = bounded(
        "dial",
        dial(
            socket,
            addr,
            "localhost",
            &mut config,
            Duration::from_secs(5),
        ),
    )
    .await;
    // Either the handshake fails or the server closes the connection at once.
    if let Ok(mut stream) = result {
        let mut buf = Vec::new();
        let read = bounded("refusal", stream.read_to_end(&mut buf)).await;
        assert!(
            read.is_err() || buf.is_empty(),
            "no data from a refused connection"
        );
    }
    drop(listener);
}

#[tokio::test]
async fn wrong_server_certificate_is_refused_by_the_client() {
    let s = setup();
    let other = setup();
    let limits = QuicLimits::default();
    let listener = listener(&s, false, &limits).await;
    // Trusting a different CA: the server's certificate does not verify.
    let result = bounded(
        "dial",
        dial_to(&other, listener.local_addr(), false, &limits),
    )
    .await;
    assert!(matches!(result, Err(DialError::Handshake(_))), "{result:?}");
}

#[tokio::test]
async fn garbage_datagrams_leave_a_live_connection_working() {
    let s = setup();
    let limits = QuicLimits::default();
    let mut listener = listener(&s, false, &limits).await;
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let mut accepted = listener.accept().await.unwrap();
        // Echo line by line until end of stream.
        let mut buf = [0u8; 1024];
        loop {
            let n = accepted.stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            accepted.stream.write_all(&buf[..n]).await.unwrap();
        }
        listener
    });
    let mut stream = bounded("dial", dial_to(&s, addr, false, &limits))
        .await
        .unwrap();
    stream.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    bounded("echo before", stream.read_exact(&mut buf))
        .await
        .unwrap();

    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..2000u32 {
        let len = 1 + (i as usize * 37) % 1400;
        let garbage: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j * 17) as u8).collect();
        attacker.send_to(&garbage, addr).await.unwrap();
    }
    // Long-header Initial-looking packets with random connection ids too.
    for i in 0..=255u8 {
        let mut packet = vec![0xc0, 0, 0, 0, 1, 8];
        packet.extend_from_slice(&[i; 8]);
        packet.push(8);
        packet.extend_from_slice(&[i; 8]);
        packet.resize(1200, i);
        attacker.send_to(&packet, addr).await.unwrap();
    }

    stream.write_all(b"after!").await.unwrap();
    bounded("echo after the flood", stream.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"after!");
    stream.shutdown().await.unwrap();
    let listener = bounded("server done", server).await.unwrap();
    assert!(
        listener.connection_count() <= 1,
        "garbage created no connections"
    );
}
