//! How the gRPC line fails: unreachable or closing broker, a vanished
//! s-proxy, failover between s-proxies, bad input from clients and limits.
//! Every case checks what the client sees and that nothing is left behind.

use crate::common;

use std::process::{Child, Command, Stdio};

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::service::settings::Millis;

const VERSIONS: [Version; 2] = [Version::V3_1_1, Version::V5];

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The CONNACK code a fresh client gets.
async fn connack_code(addr: &str, version: Version) -> u8 {
    let mut conn = Connection::open(addr, version).await.unwrap();
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(version, "c", true, 30).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert!(
        next_packet(&mut conn).await.is_none(),
        "closed after refusal"
    );
    code
}

#[tokio::test]
async fn unreachable_broker_answers_server_unavailable() {
    let mut s_proxy = start_s_proxy(&format!("127.0.0.1:{}", closed_port()), |_| {}).await;
    let mut r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |_| {}).await;
    assert_eq!(connack_code(&r_proxy.addr, Version::V3_1_1).await, 0x03);
    assert_eq!(connack_code(&r_proxy.addr, Version::V5).await, 0x88);
    gauge_reaches("connections closed", &mut r_proxy.connections, 0).await;
    gauge_reaches("sessions closed", &mut s_proxy.sessions, 0).await;
}

#[tokio::test]
async fn unreachable_s_proxy_answers_server_unavailable() {
    let mut r_proxy = start_r_proxy(&[format!("http://127.0.0.1:{}", closed_port())], |_| {}).await;
    assert_eq!(connack_code(&r_proxy.addr, Version::V3_1_1).await, 0x03);
    assert_eq!(connack_code(&r_proxy.addr, Version::V5).await, 0x88);
    gauge_reaches("connections closed", &mut r_proxy.connections, 0).await;
}

#[tokio::test]
async fn broker_going_away_closes_clients() {
    let mut chain = Chain::start().await;
    let mut clients = Vec::new();
    for version in VERSIONS {
        clients.push(connected(&chain.r_proxy.addr, version, &format!("c{version}")).await);
    }
    chain.broker.kill();
    for mut client in clients {
        assert!(next_packet(&mut client).await.is_none(), "client closed");
    }
    chain.wait_idle().await;
}

/// An s-proxy as its own process, so it can be killed.
struct SProxyProcess {
    child: Child,
    url: String,
}

impl SProxyProcess {
    async fn start(broker: &str) -> Self {
        let port = closed_port();
        let child = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args([
                "s-proxy",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--broker",
                broker,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mqttbridge binary runs");
        let addr = format!("127.0.0.1:{port}");
        bounded("s-proxy process listening", async {
            while tokio::net::TcpStream::connect(&addr).await.is_err() {
                // Retry interval while the process starts.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        SProxyProcess {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for SProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn s_proxy_going_away_closes_clients_v5_hears_why() {
    use mqtt_protocol_core::mqtt::packet::Property;
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let mut s_proxy = SProxyProcess::start(&broker.addr().to_string()).await;
    // The sessions wait this long for the s-proxy to come back and resume
    // them; it does not, so then they end.
    let mut r_proxy = start_r_proxy(&[s_proxy.url.clone()], |c| {
        c.resume_window_ms = Millis(std::num::NonZeroU32::new(500).unwrap());
    })
    .await;
    let mut v3 = connected(&r_proxy.addr, Version::V3_1_1, "v3").await;
    let mut v5 = connected(&r_proxy.addr, Version::V5, "v5").await;
    s_proxy.child.kill().unwrap();
    match next_packet(&mut v5).await {
        Some(Packet::V5_0Disconnect(d)) => {
            // 0x88 (server unavailable) is not allowed in DISCONNECT.
            assert_eq!(d.reason_code().map(|c| c as u8), Some(0x80));
            let reason = d.props().as_ref().and_then(|p| {
                p.iter().find_map(|p| match p {
                    Property::ReasonString(r) => Some(r.val().to_string()),
                    _ => None,
                })
            });
            assert_eq!(reason.as_deref(), Some("upstream unavailable"));
        }
        other => panic!("expected DISCONNECT 0x80 upstream unavailable, got {other:?}"),
    }
    assert!(next_packet(&mut v5).await.is_none());
    assert!(next_packet(&mut v3).await.is_none());
    gauge_reaches("connections closed", &mut r_proxy.connections, 0).await;
}

#[tokio::test]
async fn new_connections_fail_over_to_a_healthy_s_proxy() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let mut live = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let r_proxy = start_r_proxy(&[dead, format!("http://{}", live.addr)], |_| {}).await;
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(connected(&r_proxy.addr, Version::V5, &format!("f{i}")).await);
    }
    gauge_reaches("all sessions on the live s-proxy", &mut live.sessions, 4).await;
}

#[tokio::test]
async fn new_connections_are_balanced_across_s_proxies() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let mut a = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let mut b = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    // Both serving before the r-proxy's first health probe.
    becomes_ready("s-proxy a ready", &mut a.ready).await;
    becomes_ready("s-proxy b ready", &mut b.ready).await;
    let mut r_proxy = start_r_proxy(
        &[format!("http://{}", a.addr), format!("http://{}", b.addr)],
        |_| {},
    )
    .await;
    becomes_ready("r-proxy ready", &mut r_proxy.ready).await;
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(connected(&r_proxy.addr, Version::V3_1_1, &format!("b{i}")).await);
    }
    gauge_reaches("two sessions on s-proxy a", &mut a.sessions, 2).await;
    gauge_reaches("two sessions on s-proxy b", &mut b.sessions, 2).await;
}

#[tokio::test]
async fn malformed_packet_closes_only_that_client() {
    let mut chain = Chain::start().await;
    let mut bystander = connected(&chain.r_proxy.addr, Version::V5, "bystander").await;
    bounded("suback", exchange::subscribe(&mut bystander, 1, "ok", 0))
        .await
        .unwrap();
    for version in VERSIONS {
        // An id per version: reusing one would race the broker's teardown
        // of the previous connection (a session takeover).
        let mut bad = connected(&chain.r_proxy.addr, version, &format!("bad-{version}")).await;
        // PUBLISH whose topic length runs past the end of the packet.
        bad.send_bytes(b"\x30\x04\x00\x09ab").await.unwrap();
        if version == Version::V5 {
            match next_packet(&mut bad).await {
                Some(Packet::V5_0Disconnect(d)) => {
                    assert_eq!(d.reason_code().map(|c| c as u8), Some(0x81))
                }
                other => panic!("expected DISCONNECT 0x81, got {other:?}"),
            }
        }
        assert!(next_packet(&mut bad).await.is_none(), "bad client closed");
        bounded(
            "bystander publish",
            exchange::publish(&mut bystander, "ok", "still here", 0, false, 0, vec![]),
        )
        .await
        .unwrap();
        let got = bounded("bystander delivery", exchange::receive(&mut bystander))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, b"still here");
    }
    drop(bystander);
    chain.wait_idle().await;
}

/// PUBLISHes the protocol forbids (found by fuzzing: the parser let some
/// through and the far side refused them): each client is told why (MQTT
/// 5) and closed by the r-proxy, and a bystander is unaffected.
#[tokio::test]
async fn forbidden_publishes_close_only_that_client_with_the_reason() {
    let mut chain = Chain::start().await;
    let mut bystander = connected(&chain.r_proxy.addr, Version::V5, "bystander").await;
    bounded("suback", exchange::subscribe(&mut bystander, 1, "ok", 0))
        .await
        .unwrap();
    // (what, MQTT 3.1.1 bytes, MQTT 5 bytes, MQTT 5 DISCONNECT reason)
    let cases: [(&str, &[u8], &[u8], u8); 4] = [
        (
            "invalid UTF-8 topic",
            b"\x30\x04\x00\x02\xff\xfe",
            b"\x30\x05\x00\x02\xff\xfe\x00",
            0x81,
        ),
        (
            "wildcard in topic",
            b"\x30\x04\x00\x02a#",
            b"\x30\x05\x00\x02a#\x00",
            0x81,
        ),
        (
            "empty topic",
            b"\x30\x02\x00\x00",
            b"\x30\x03\x00\x00\x00",
            0x82,
        ),
        (
            "QoS 1 with packet id 0",
            b"\x32\x05\x00\x01a\x00\x00",
            b"\x32\x06\x00\x01a\x00\x00\x00",
            0x82,
        ),
    ];
    for (n, (what, v3, v5, reason)) in cases.into_iter().enumerate() {
        for version in VERSIONS {
            // An id of its own each time: reusing one would race the broker's
            // teardown of the previous connection (a session takeover).
            let id = format!("bad-{n}-{version}");
            let mut bad = connected(&chain.r_proxy.addr, version, &id).await;
            let bytes = if version == Version::V5 { v5 } else { v3 };
            bad.send_bytes(bytes).await.unwrap();
            if version == Version::V5 {
                match next_packet(&mut bad).await {
                    Some(Packet::V5_0Disconnect(d)) => {
                        assert_eq!(d.reason_code().map(|c| c as u8), Some(reason), "{what}")
                    }
                    other => panic!("{what}: expected DISCONNECT {reason:#x}, got {other:?}"),
                }
            }
            assert!(next_packet(&mut bad).await.is_none(), "{what}: closed");
        }
        bounded(
            "bystander publish",
            exchange::publish(&mut bystander, "ok", what, 0, false, 0, vec![]),
        )
        .await
        .unwrap();
        let got = bounded("bystander delivery", exchange::receive(&mut bystander))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, what.as_bytes());
    }
    drop(bystander);
    chain.wait_idle().await;
}

/// A second CONNECT is a protocol error: the broker ends that session (an
/// MQTT 5 client may first hear a DISCONNECT) and the r-proxy closes the
/// client; nothing else is affected.
#[tokio::test]
async fn second_connect_closes_the_client() {
    let mut chain = Chain::start().await;
    for version in VERSIONS {
        let mut client = connected(&chain.r_proxy.addr, version, "twice").await;
        client
            .send(&packets::connect(version, "twice", true, 30).unwrap())
            .await
            .unwrap();
        loop {
            match next_packet(&mut client).await {
                None => break,
                Some(Packet::V5_0Disconnect(_)) if version == Version::V5 => {}
                Some(other) => panic!("expected the end of the session, got {other:?}"),
            }
        }
    }
    drop(connected(&chain.r_proxy.addr, Version::V5, "after").await);
    chain.wait_idle().await;
}

/// 10,000 PINGREQs in one burst: every one is answered, in order, and the
/// connection stays usable.
#[tokio::test]
async fn pingreq_flood_is_answered() {
    const PINGS: usize = 10_000;
    let mut chain = Chain::start().await;
    for version in VERSIONS {
        let mut client = connected(&chain.r_proxy.addr, version, "pinger").await;
        client.send_bytes(&b"\xc0\x00".repeat(PINGS)).await.unwrap();
        for i in 0..PINGS {
            match next_packet(&mut client).await {
                Some(Packet::V3_1_1Pingresp(_) | Packet::V5_0Pingresp(_)) => {}
                other => panic!("PINGRESP {i} of {PINGS}: got {other:?}"),
            }
        }
        bounded(
            "suback after the flood",
            exchange::subscribe(&mut client, 1, "p", 0),
        )
        .await
        .unwrap();
    }
    chain.wait_idle().await;
}

#[tokio::test]
async fn oversized_packet_gets_packet_too_large() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |c| {
        c.max_packet_size = 1024.try_into().unwrap();
    })
    .await;
    let mut client = connected(&r_proxy.addr, Version::V5, "big").await;
    // Declares a 256 MiB packet: refused as soon as the length is read.
    client.send_bytes(b"\x30\xff\xff\xff\x7f").await.unwrap();
    match next_packet(&mut client).await {
        Some(Packet::V5_0Disconnect(d)) => assert_eq!(d.reason_code().map(|c| c as u8), Some(0x95)),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    assert!(next_packet(&mut client).await.is_none());
}

#[tokio::test]
async fn mqtt_3_1_is_refused_with_connack_0x01() {
    let chain = Chain::start().await;
    let mut conn = Connection::open(&chain.r_proxy.addr, Version::V3_1_1)
        .await
        .unwrap();
    // CONNECT "MQIsdp" level 3, clean session, keep-alive 60, client id "old".
    conn.send_bytes(b"\x10\x11\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x03old")
        .await
        .unwrap();
    match next_packet(&mut conn).await {
        Some(Packet::V3_1_1Connack(c)) => assert_eq!(c.return_code() as u8, 0x01),
        other => panic!("expected CONNACK 0x01, got {other:?}"),
    }
    assert!(next_packet(&mut conn).await.is_none());
}

/// An r-proxy in front of `chain`'s s-proxy that waits `ms` for a CONNECT.
async fn r_proxy_with_connect_timeout(chain: &Chain, ms: u32) -> RProxyHandle {
    start_r_proxy(&[format!("http://{}", chain.s_proxy.addr)], |c| {
        c.connect_timeout_ms = mqttbridge::service::settings::Millis(ms.try_into().unwrap());
    })
    .await
}

#[tokio::test]
async fn silent_client_is_closed_after_the_connect_timeout() {
    let chain = Chain::start().await;
    let mut r_proxy = r_proxy_with_connect_timeout(&chain, 200).await;
    let mut conn = Connection::open(&r_proxy.addr, Version::V5).await.unwrap();
    assert!(
        next_packet(&mut conn).await.is_none(),
        "closed without CONNECT"
    );
    gauge_reaches("connection released", &mut r_proxy.connections, 0).await;
}

/// Slowloris: a CONNECT trickled in a byte every 100 ms. The CONNECT
/// timeout counts from the accept, not from the last byte, so the client is
/// closed long before its CONNECT is complete, without a CONNACK.
#[tokio::test]
async fn trickled_connect_is_closed_at_the_connect_timeout() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let chain = Chain::start().await;
    let mut r_proxy = r_proxy_with_connect_timeout(&chain, 300).await;
    let mut connect = bytes::BytesMut::new();
    mqttbridge::mqtt::encode(
        &packets::connect(Version::V5, "slow-client-id", true, 30).unwrap(),
        &mut connect,
    );
    let total = connect.len();
    let stream = tokio::net::TcpStream::connect(&r_proxy.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let trickle = tokio::spawn(async move {
        let mut pace = tokio::time::interval(std::time::Duration::from_millis(100));
        for byte in connect.iter() {
            pace.tick().await;
            if wr.write_all(&[*byte]).await.is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut answer = Vec::new();
    let _ = bounded("closed by the r-proxy", rd.read_to_end(&mut answer)).await;
    let at_close = sent.load(Ordering::SeqCst);
    trickle.abort();
    assert!(answer.is_empty(), "no CONNACK: {answer:?}");
    assert!(
        at_close < total,
        "closed only after the whole CONNECT ({at_close} bytes)"
    );
    gauge_reaches("connection released", &mut r_proxy.connections, 0).await;
}

#[tokio::test]
async fn publish_before_connect_is_refused() {
    let chain = Chain::start().await;
    let mut conn = Connection::open(&chain.r_proxy.addr, Version::V3_1_1)
        .await
        .unwrap();
    conn.send_bytes(b"\x30\x03\x00\x01a").await.unwrap();
    assert!(next_packet(&mut conn).await.is_none());
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed() {
    let chain = Chain::start().await;
    let r_proxy = start_r_proxy(&[format!("http://{}", chain.s_proxy.addr)], |c| {
        c.max_connections = 2.try_into().unwrap();
    })
    .await;
    let _a = connected(&r_proxy.addr, Version::V5, "a").await;
    let _b = connected(&r_proxy.addr, Version::V5, "b").await;
    let mut c = Connection::open(&r_proxy.addr, Version::V5).await.unwrap();
    // The third may see its CONNECT written or not; either way it is closed.
    let _ = c
        .send(&packets::connect(Version::V5, "c", true, 30).unwrap())
        .await;
    assert!(
        matches!(bounded("third closed", c.recv()).await, Ok(None) | Err(_)),
        "third connection closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_flood_without_reading_does_not_deadlock() {
    let mut chain = Chain::start().await;
    let stream = tokio::net::TcpStream::connect(&chain.r_proxy.addr)
        .await
        .unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut reader = mqttbridge::mqtt::PacketReader::new(rd, 1 << 20);
    use tokio::io::AsyncWriteExt;
    let mut out = bytes::BytesMut::new();
    let enc = |p: &Packet, out: &mut bytes::BytesMut| mqttbridge::mqtt::encode(p, out);
    enc(
        &packets::connect(Version::V5, "flood", true, 60).unwrap(),
        &mut out,
    );
    enc(
        &packets::subscribe(Version::V5, 1, "flood", 0).unwrap(),
        &mut out,
    );
    wr.write_all(&out).await.unwrap();
    out.clear();
    // CONNACK and SUBACK first, so the subscription is in place.
    for _ in 0..2 {
        bounded("ack", reader.next()).await.unwrap().unwrap();
    }
    // Write everything before reading anything: the replies pile up against
    // a client that does not read, and the client's own writes must still
    // get through.
    const COUNT: usize = 10_000;
    let publish =
        packets::publish(Version::V5, "flood", vec![7u8; 256], 0, false, 0, vec![]).unwrap();
    for _ in 0..COUNT {
        enc(&publish, &mut out);
    }
    bounded("all publishes written", wr.write_all(&out))
        .await
        .unwrap();
    let mut received = 0;
    while received < COUNT {
        let raw = bounded("flood delivery", reader.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(raw.packet_type(), 3);
        received += 1;
    }
    drop(wr);
    drop(reader);
    chain.wait_idle().await;
}

#[tokio::test]
async fn ipv6_listener_and_host_names() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    // The broker and the s-proxy by name, the client over IPv6.
    let s_proxy = start_s_proxy(&format!("localhost:{}", broker.addr().port()), |_| {}).await;
    let r_proxy = start_r_proxy(
        &[format!("http://localhost:{}", s_proxy.addr.port())],
        |c| {
            c.listen = "[::1]:0".parse().unwrap();
        },
    )
    .await;
    assert!(r_proxy.addr.starts_with("[::1]:"), "{}", r_proxy.addr);
    let mut conn = connected(&r_proxy.addr, Version::V5, "v6").await;
    bounded("suback", exchange::subscribe(&mut conn, 1, "v6", 0))
        .await
        .unwrap();
}
