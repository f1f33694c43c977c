//! The gRPC line end to end: MQTT clients -> r-proxy -> gRPC -> s-proxy ->
//! a real mosquitto, for MQTT 3.1.1 and 5.0.

use crate::common;

use common::*;
use mqtt_protocol_core::mqtt::packet::{self as mp, Property};
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::tools::mosquitto::Mosquitto;

const VERSIONS: [Version; 2] = [Version::V3_1_1, Version::V5];

#[tokio::test]
async fn every_qos_level_through_the_chain() {
    let mut chain = Chain::start().await;
    for version in VERSIONS {
        assert_every_qos_level(&chain.r_proxy.addr, version).await;
        chain.wait_idle().await;
    }
}

/// A subscriber at QoS 2 gets a message published at each QoS level (its
/// topic, payload and QoS intact); then both clients DISCONNECT.
pub(crate) async fn assert_every_qos_level(addr: &str, version: Version) {
    let mut sub = connected(addr, version, "sub").await;
    let granted = bounded("suback", exchange::subscribe(&mut sub, 1, "qos/+", 2))
        .await
        .unwrap();
    assert_eq!(granted, 2);
    let mut publisher = connected(addr, version, "pub").await;
    for level in 0..=2u8 {
        let topic = format!("qos/{level}");
        let payload = format!("{version} at qos {level}");
        let got =
            publish_and_receive(&mut publisher, &mut sub, &topic, payload.clone(), level, 7).await;
        assert_eq!(got.topic, topic);
        assert_eq!(got.payload, payload.as_bytes());
        assert_eq!(got.qos, level);
    }
    publisher.send(&packets::disconnect(version)).await.unwrap();
    sub.send(&packets::disconnect(version)).await.unwrap();
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let chain = Chain::start().await;
    for version in VERSIONS {
        let topic = format!("retained/{version}");
        let mut publisher = connected(&chain.r_proxy.addr, version, "retainer").await;
        bounded(
            "publish",
            exchange::publish(&mut publisher, &topic, "kept", 1, true, 1, vec![]),
        )
        .await
        .unwrap();
        let mut late = connected(&chain.r_proxy.addr, version, "late").await;
        bounded("suback", exchange::subscribe(&mut late, 1, &topic, 1))
            .await
            .unwrap();
        let got = bounded("retained delivery", exchange::receive(&mut late))
            .await
            .unwrap()
            .expect("retained message");
        assert_eq!(got.payload, b"kept");
        assert!(
            got.retain,
            "retain flag set on delivery of a retained message"
        );
    }
}

#[tokio::test]
async fn will_is_sent_on_abnormal_loss_only() {
    let mut chain = Chain::start().await;
    let mut watcher = connected(&chain.r_proxy.addr, Version::V5, "watcher").await;
    bounded("suback", exchange::subscribe(&mut watcher, 1, "will/#", 1))
        .await
        .unwrap();
    for version in VERSIONS {
        // Abnormal loss: the TCP connection just goes away.
        let mut lost = Connection::open(&chain.r_proxy.addr, version)
            .await
            .unwrap();
        let will_topic = format!("will/lost-{version}");
        let code = exchange::connect(
            &mut lost,
            &packets::connect_with_will(version, "lost", &will_topic, b"gone").unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        drop(lost);
        let got = bounded("will delivery", exchange::receive(&mut watcher))
            .await
            .unwrap()
            .expect("will message");
        assert_eq!(got.topic, will_topic);
        assert_eq!(got.payload, b"gone");

        // Clean DISCONNECT: no will. Once the session is fully closed, a
        // marker published afterwards must be the next thing the watcher sees.
        let mut polite = Connection::open(&chain.r_proxy.addr, version)
            .await
            .unwrap();
        let code = exchange::connect(
            &mut polite,
            &packets::connect_with_will(version, "polite", "will/polite", b"should not appear")
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        polite.send(&packets::disconnect(version)).await.unwrap();
        assert!(
            next_packet(&mut polite).await.is_none(),
            "closed after DISCONNECT"
        );
        drop(polite);
        gauge_reaches("only the watcher left", &mut chain.s_proxy.sessions, 1).await;
        let mut marker = connected(&chain.r_proxy.addr, version, "marker").await;
        bounded(
            "marker publish",
            exchange::publish(&mut marker, "will/marker", "marker", 1, false, 1, vec![]),
        )
        .await
        .unwrap();
        let got = bounded("marker delivery", exchange::receive(&mut watcher))
            .await
            .unwrap()
            .expect("marker");
        assert_eq!(got.topic, "will/marker", "no will after a clean DISCONNECT");
        marker.send(&packets::disconnect(version)).await.unwrap();
    }
}

#[tokio::test]
async fn one_mebibyte_payload_passes_by_default() {
    let chain = Chain::start().await;
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for version in VERSIONS {
        let mut sub = connected(&chain.r_proxy.addr, version, "big-sub").await;
        bounded("suback", exchange::subscribe(&mut sub, 1, "big", 1))
            .await
            .unwrap();
        let mut publisher = connected(&chain.r_proxy.addr, version, "big-pub").await;
        bounded(
            "publish 1 MiB",
            exchange::publish(&mut publisher, "big", payload.clone(), 1, false, 3, vec![]),
        )
        .await
        .unwrap();
        let got = bounded("1 MiB delivery", exchange::receive(&mut sub))
            .await
            .unwrap()
            .expect("message");
        assert_eq!(got.payload.len(), payload.len());
        assert!(got.payload == payload, "payload bytes equal");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients_each_on_their_own_topic() {
    let mut chain = Chain::start().await;
    let addr = chain.r_proxy.addr.clone();
    let clients = (0..200).map(|i| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let version = VERSIONS[i % 2];
            let id = format!("client-{i}");
            let topic = format!("own/{i}");
            let mut conn = connected(&addr, version, &id).await;
            exchange::subscribe(&mut conn, 1, &topic, 1).await.unwrap();
            let payload = format!("hello from {i}");
            conn.send(
                &packets::publish(version, &topic, payload.clone(), 1, false, 2, vec![]).unwrap(),
            )
            .await
            .unwrap();
            // PUBACK and the delivery of our own message, in either order.
            let mut got_ack = false;
            let mut got_message = None;
            while !got_ack || got_message.is_none() {
                let packet = conn.recv().await.unwrap().expect("connection open");
                match &packet {
                    Packet::V3_1_1Puback(_) | Packet::V5_0Puback(_) => got_ack = true,
                    _ => {
                        let m = packets::received(&packet).expect("a PUBLISH");
                        conn.send(
                            &packets::publish_ack(version, m.qos, m.packet_id)
                                .unwrap()
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                        got_message = Some(m);
                    }
                }
            }
            let m = got_message.unwrap();
            assert_eq!(m.topic, topic);
            assert_eq!(m.payload, payload.as_bytes());
            conn.send(&packets::disconnect(version)).await.unwrap();
        })
    });
    let results = bounded("200 clients", futures_util::future::join_all(clients)).await;
    for r in results {
        r.expect("client task succeeded");
    }
    chain.wait_idle().await;
}

#[tokio::test]
async fn duplicate_client_ids_are_separate_sessions() {
    let chain = Chain::start().await;
    let mut first = connected(&chain.r_proxy.addr, Version::V5, "same-id").await;
    let mut second = connected(&chain.r_proxy.addr, Version::V5, "same-id").await;
    // The broker (not the proxy) resolves the clash: it takes the session
    // over and closes the first connection (mosquitto 2.0 without a
    // DISCONNECT, newer brokers with DISCONNECT 0x8E); the chain passes
    // that on.
    match next_packet(&mut first).await {
        None => {}
        Some(Packet::V5_0Disconnect(d)) => {
            assert_eq!(
                d.reason_code().map(|c| c as u8),
                Some(0x8e),
                "session taken over"
            );
            assert!(next_packet(&mut first).await.is_none());
        }
        Some(other) => panic!("expected the first connection to close, got {other:?}"),
    }
    bounded("suback", exchange::subscribe(&mut second, 1, "dup", 0))
        .await
        .unwrap();
    bounded(
        "publish",
        exchange::publish(&mut second, "dup", "still works", 0, false, 0, vec![]),
    )
    .await
    .unwrap();
    let got = bounded("delivery", exchange::receive(&mut second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, b"still works");
}

#[tokio::test]
async fn empty_client_ids_both_work() {
    let chain = Chain::start().await;
    for version in VERSIONS {
        let mut a = connected(&chain.r_proxy.addr, version, "").await;
        let mut b = connected(&chain.r_proxy.addr, version, "").await;
        for (conn, topic) in [(&mut a, "empty/a"), (&mut b, "empty/b")] {
            bounded("suback", exchange::subscribe(conn, 1, topic, 0))
                .await
                .unwrap();
        }
        for (conn, topic) in [(&mut a, "empty/a"), (&mut b, "empty/b")] {
            bounded(
                "publish",
                exchange::publish(conn, topic, topic, 0, false, 0, vec![]),
            )
            .await
            .unwrap();
            let got = bounded("delivery", exchange::receive(conn))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.payload, topic.as_bytes());
        }
    }
}

#[tokio::test]
async fn mqtt5_properties_arrive_intact() {
    let chain = Chain::start().await;
    let mut sub = connected(&chain.r_proxy.addr, Version::V5, "prop-sub").await;
    bounded("suback", exchange::subscribe(&mut sub, 1, "props", 1))
        .await
        .unwrap();
    let mut publisher = connected(&chain.r_proxy.addr, Version::V5, "prop-pub").await;
    let sent = vec![
        Property::UserProperty(mp::UserProperty::new("region", "eu-1").unwrap()),
        Property::ContentType(mp::ContentType::new("application/json").unwrap()),
        Property::UserProperty(mp::UserProperty::new("région", "ünïcode").unwrap()),
        Property::ResponseTopic(mp::ResponseTopic::new("reply/here").unwrap()),
        Property::CorrelationData(mp::CorrelationData::new(vec![0u8, 1, 2, 255]).unwrap()),
        Property::PayloadFormatIndicator(
            mp::PayloadFormatIndicator::new(mp::PayloadFormat::String).unwrap(),
        ),
        Property::UserProperty(mp::UserProperty::new("region", "eu-2").unwrap()),
    ];
    bounded(
        "publish",
        exchange::publish(&mut publisher, "props", "{}", 1, false, 9, sent.clone()),
    )
    .await
    .unwrap();
    let got = bounded("delivery", exchange::receive(&mut sub))
        .await
        .unwrap()
        .unwrap();
    for property in &sent {
        assert!(
            got.properties.contains(property),
            "{property:?} missing from {:?}",
            got.properties
        );
    }
    let users = |props: &[Property]| {
        props
            .iter()
            .filter_map(|p| match p {
                Property::UserProperty(u) => Some((u.key().to_string(), u.val().to_string())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        users(&got.properties),
        users(&sent),
        "user properties in order"
    );
}

/// One client of the takeover sequence: its connection and what it read,
/// each packet as its decoder shows it (so any byte that is not MQTT fails).
struct Recorded {
    conn: Connection,
    /// The same socket, to look at its TCP state.
    probe: std::net::TcpStream,
    transcript: Vec<String>,
}

impl Recorded {
    async fn open(addr: &str, connect: Packet) -> Recorded {
        let socket = std::net::TcpStream::connect(addr).expect("TCP connects");
        let probe = socket.try_clone().unwrap();
        socket.set_nonblocking(true).unwrap();
        let stream = tokio::net::TcpStream::from_std(socket).unwrap();
        let mut me = Recorded {
            conn: Connection::over(Box::new(stream), Version::V5),
            probe,
            transcript: Vec::new(),
        };
        me.send(connect).await;
        me.next().await;
        me
    }

    async fn send(&mut self, packet: Packet) {
        self.conn.send(&packet).await.expect("send");
    }

    /// The next packet, recorded; `None` at end of stream.
    async fn next(&mut self) -> Option<Packet> {
        let packet = next_packet(&mut self.conn).await;
        self.transcript.push(match &packet {
            Some(p) => format!("{p:?}"),
            None => "end of stream".to_string(),
        });
        packet
    }

    /// The next PUBLISH, acknowledged as its QoS asks.
    async fn next_publish(&mut self) -> Vec<u8> {
        let packet = self.next().await.expect("a PUBLISH");
        let received = packets::received(&packet).expect("a PUBLISH");
        if let Some(ack) =
            packets::publish_ack(Version::V5, received.qos, received.packet_id).unwrap()
        {
            self.send(ack).await;
        }
        received.payload
    }
}

/// Whether the peer of `conn` has closed its side (TCP CLOSE_WAIT): its FIN
/// has arrived, read or not.
fn peer_closed(socket: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO");
    // TCP_CLOSE_WAIT in Linux's include/net/tcp_states.h.
    const TCP_CLOSE_WAIT: u8 = 8;
    info.tcpi_state == TCP_CLOSE_WAIT
}

/// The sequence of the Paho interoperability suite that went wrong through
/// the line (issue: takeover, retained clean-up, Will): a kept session
/// subscribed, a retained QoS 1 message, a clean-up client that deletes it
/// with an empty QoS 0 publish followed at once by DISCONNECT, a takeover of
/// the kept session, a Will, and a late subscriber that must find nothing
/// retained. Returns every client's transcript.
async fn takeover_sequence(addr: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = Version::V5;
    let kept = |clean| packets::connect_keeping_session(v, "kept", clean, 60, 300).unwrap();
    let mut kept1 = Recorded::open(addr, kept(true)).await;
    kept1
        .send(packets::subscribe(v, 1, "it/c", 2).unwrap())
        .await;
    kept1.next().await;

    let mut publisher = Recorded::open(addr, packets::connect(v, "pub", true, 60).unwrap()).await;
    let retained = packets::publish(v, "it/c", "qos 1", 1, true, 1, vec![]).unwrap();
    publisher.send(retained).await;
    publisher.next().await;
    publisher.send(packets::disconnect(v)).await;
    assert_eq!(kept1.next_publish().await, b"qos 1");

    let mut cleaner = Recorded::open(addr, packets::connect(v, "cleaner", true, 60).unwrap()).await;
    cleaner
        .send(packets::subscribe(v, 1, "it/#", 0).unwrap())
        .await;
    cleaner.next().await;
    assert_eq!(
        cleaner.next_publish().await,
        b"qos 1",
        "the retained message"
    );
    // Deleted, and gone at once, as the suite's clean-up does.
    let delete = packets::publish(v, "it/c", "", 0, true, 0, vec![]).unwrap();
    cleaner.send(delete).await;
    cleaner.send(packets::disconnect(v)).await;
    while cleaner.next().await.is_some() {}
    drop(cleaner);
    assert_eq!(
        kept1.next_publish().await,
        b"",
        "the deletion reaches subscribers"
    );

    // The kept session taken over by a new connection: the broker closes
    // the old connection before it answers the new one, and so must the line.
    let kept2 = Recorded::open(addr, kept(false)).await;
    assert!(!peer_closed(&kept2.probe), "the new connection is open");
    assert!(
        peer_closed(&kept1.probe),
        "the taken-over connection was closed before the new CONNACK arrived"
    );
    let mut kept2 = kept2;
    while kept1.next().await.is_some() {}

    let will = packets::connect_with_will(v, "will", "it/c", b"will message").unwrap();
    let will_client = Recorded::open(addr, will).await;
    // Gone without DISCONNECT: the broker publishes the Will.
    drop(will_client);
    assert_eq!(kept2.next_publish().await, b"will message");

    let mut late = Recorded::open(addr, packets::connect(v, "late", true, 60).unwrap()).await;
    late.send(packets::subscribe(v, 1, "it/c", 1).unwrap())
        .await;
    late.next().await;
    kept2
        .send(packets::publish(v, "it/c", "after", 0, false, 0, vec![]).unwrap())
        .await;
    assert_eq!(
        late.next_publish().await,
        b"after",
        "nothing retained is left on it/c"
    );
    vec![
        ("kept1", kept1.transcript),
        ("pub", publisher.transcript),
        ("kept2", kept2.transcript),
        ("late", late.transcript),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_takeover_retained_cleanup_and_will_as_direct() {
    let direct = Mosquitto::start("").await.unwrap();
    let expected = takeover_sequence(&direct.addr().to_string()).await;
    let chain = Chain::start().await;
    let through_line = takeover_sequence(&chain.r_proxy.addr).await;
    for ((who, line), (_, direct)) in through_line.iter().zip(&expected) {
        assert_eq!(
            line, direct,
            "what {who} read through the line and directly"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_over_connection_is_released_even_with_a_backlog() {
    let chain = Chain::start().await;
    let addr = chain.r_proxy.addr.as_str();
    let v = Version::V5;
    let kept = packets::connect_keeping_session(v, "backlogged", true, 60, 300).unwrap();
    let mut old = Recorded::open(addr, kept).await;
    old.send(packets::subscribe(v, 1, "flood/#", 0).unwrap())
        .await;
    old.next().await;
    // 16 MiB the old connection never reads: the r-proxy's writes to it
    // block once the socket buffers are full.
    let mut publisher =
        Recorded::open(addr, packets::connect(v, "flooder", true, 60).unwrap()).await;
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..256 {
        let flood = packets::publish(v, "flood/x", chunk.clone(), 0, false, 0, vec![]).unwrap();
        publisher.send(flood).await;
    }
    // Through the broker (QoS 1 is acknowledged after the QoS 0 before it).
    let marker = packets::publish(v, "marker", "m", 1, false, 1, vec![]).unwrap();
    publisher.send(marker).await;
    publisher.next().await;

    let kept = packets::connect_keeping_session(v, "backlogged", false, 60, 300).unwrap();
    let _new = Recorded::open(addr, kept).await;
    // The broker dropped the old connection with its backlog; the r-proxy
    // lets go of it too, though its client still reads nothing.
    let mut connections = chain.r_proxy.connections.clone();
    gauge_reaches("the taken-over connection released", &mut connections, 2).await;
    drop(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_packets_before_disconnect_reach_the_broker_though_it_answers_them() {
    let chain = Chain::start().await;
    let addr = chain.r_proxy.addr.as_str();
    let v = Version::V5;
    let mut publisher =
        Recorded::open(addr, packets::connect(v, "setter", true, 60).unwrap()).await;
    for i in 0..200u16 {
        let topic = format!("many/{i}");
        publisher
            .send(packets::publish(v, &topic, "kept", 1, true, i + 1, vec![]).unwrap())
            .await;
        publisher.next().await;
    }
    // The suite's clean-up: subscribed to all it deletes (so the broker
    // answers each deletion), every deletion and the DISCONNECT in one go,
    // then gone.
    let mut cleaner = Recorded::open(addr, packets::connect(v, "cleaner", true, 60).unwrap()).await;
    cleaner
        .send(packets::subscribe(v, 1, "many/#", 0).unwrap())
        .await;
    cleaner.next().await;
    for _ in 0..200 {
        cleaner.next_publish().await;
    }
    let mut burst = bytes::BytesMut::new();
    for i in 0..200u16 {
        let delete = packets::publish(v, &format!("many/{i}"), "", 0, true, 0, vec![]).unwrap();
        mqttbridge::mqtt::encode(&delete, &mut burst);
    }
    mqttbridge::mqtt::encode(&packets::disconnect(v), &mut burst);
    cleaner.conn.send_bytes(&burst).await.unwrap();
    // Read on until the line closes (a client that closed with answers
    // unread would reset its own connection, at a broker as here).
    while cleaner.next().await.is_some() {}
    drop(cleaner);

    let mut checker = Recorded::open(addr, packets::connect(v, "checker", true, 60).unwrap()).await;
    // The line closed the cleaner after the broker read all of it.
    let mut sessions = chain.s_proxy.sessions.clone();
    gauge_reaches("cleaner's session closed", &mut sessions, 2).await;
    checker
        .send(packets::subscribe(v, 1, "many/#", 0).unwrap())
        .await;
    checker.next().await;
    publisher
        .send(packets::publish(v, "many/marker", "after", 0, false, 0, vec![]).unwrap())
        .await;
    assert_eq!(
        checker.next_publish().await,
        b"after",
        "every retained message was deleted"
    );
}
