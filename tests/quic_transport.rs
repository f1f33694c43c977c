//! The QUIC driver over UDP/IP: handshake, both directions, large transfers
//! through flow control, end of stream, client certificates and garbage.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::bounded;
use mqttbridge::net::quic::{
    DialError, QuicLimits, QuicListener, QuicStream, client_config, dial, server_config,
};
use mqttbridge::net::tls::{ClientTls, ServerTls};
use mqttbridge::tools::certs;
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
        ca_dir: None,
        insecure: false,
        cert_chain: with_cert.then(|| s.certs.client_cert.clone()),
        private_key: with_cert.then(|| s.certs.client_key.clone()),
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = client_config(&tls, limits, "localhost").unwrap();
    dial(socket, addr, config, Duration::from_secs(5)).await
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
        ca_dir: None,
        insecure: false,
        cert_chain: Some(other.certs.client_cert.clone()),
        private_key: Some(other.certs.client_key.clone()),
    };
    let config = client_config(&tls, &limits, "localhost").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let result = bounded("dial", dial(socket, addr, config, Duration::from_secs(5))).await;
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

/// A listener serving `cert`/`key` on 127.0.0.1, handshakes only.
async fn listener_with(cert: &Path, key: &Path) -> QuicListener<UdpSocket> {
    let tls = ServerTls {
        cert_chain: cert.to_path_buf(),
        private_key: key.to_path_buf(),
        client_ca: None,
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    QuicListener::new(
        socket,
        server_config(&tls, &QuicLimits::default()).unwrap(),
        100,
        16,
        Duration::from_secs(30),
    )
    .unwrap()
}

/// Dials `listener` trusting `ca`, expecting the server to be `server_name`;
/// the handshake's outcome as a user reads it.
async fn verify(
    listener: &QuicListener<UdpSocket>,
    ca: &Path,
    server_name: &str,
) -> Result<(), String> {
    let tls = ClientTls {
        ca: Some(ca.to_path_buf()),
        ..ClientTls::default()
    };
    let config = client_config(&tls, &QuicLimits::default(), server_name).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dialed = bounded(
        "dial",
        dial(
            socket,
            listener.local_addr(),
            config,
            Duration::from_secs(5),
        ),
    )
    .await;
    dialed.map(drop).map_err(|e| e.to_string())
}

/// A self-signed certificate for `names`, valid in `years` (PEM cert, key).
fn self_signed(dir: &Path, names: &[&str], years: (i32, i32)) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("self-signed-{}.pem", years.1));
    let key_path = dir.join(format!("self-signed-{}.key", years.1));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn assert_refused(outcome: Result<(), String>, words: &[&str]) {
    let error = outcome.expect_err("the handshake is refused");
    for w in words {
        assert!(error.contains(w), "`{w}` missing from: {error}");
    }
    assert!(!error.contains("code 0x"), "words, not a code: {error}");
}

#[tokio::test]
async fn server_identity_is_checked_by_ip_and_by_name_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let by_ip = certs::generate(&dir.path().join("ip"), &["127.0.0.1"]).unwrap();
    let ip_listener = listener_with(&by_ip.server_cert, &by_ip.server_key).await;
    // An IP literal host is checked against the certificate's IP addresses.
    verify(&ip_listener, &by_ip.ca, "127.0.0.1")
        .await
        .expect("IP SAN reached by IP");
    // A name the certificate lacks.
    assert_refused(
        verify(&ip_listener, &by_ip.ca, "broker.example").await,
        &["name mismatch", "broker.example", "IP:127.0.0.1"],
    );
    // A certificate from another CA.
    let other = setup();
    assert_refused(
        verify(&ip_listener, &other.certs.ca, "127.0.0.1").await,
        &["unknown CA", &other.certs.ca.display().to_string()],
    );

    // A DNS-only certificate reached by IP: the IP is not skipped.
    let by_name = setup();
    let name_listener = listener_with(&by_name.certs.server_cert, &by_name.certs.server_key).await;
    assert_refused(
        verify(&name_listener, &by_name.certs.ca, "127.0.0.1").await,
        &["IP mismatch", "127.0.0.1", "DNS:localhost"],
    );
    verify(&name_listener, &by_name.certs.ca, "localhost")
        .await
        .expect("DNS SAN reached by name");

    // A self-signed certificate given as the CA file, as OpenSSL clients take it.
    let (cert, key) = self_signed(dir.path(), &["127.0.0.1"], (2024, 2100));
    let listener = listener_with(&cert, &key).await;
    verify(&listener, &cert, "127.0.0.1")
        .await
        .expect("self-signed certificate trusted as the CA file");

    // An expired one.
    let (cert, key) = self_signed(dir.path(), &["127.0.0.1"], (2020, 2021));
    let listener = listener_with(&cert, &key).await;
    assert_refused(
        verify(&listener, &cert, "127.0.0.1").await,
        &["expired on", "2021"],
    );
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
