//! The gRPC line end to end: MQTT clients -> r-proxy -> gRPC -> s-proxy ->
//! a real mosquitto, for MQTT 3.1.1 and 5.0.

mod common;

use common::*;
use mqtt_protocol_core::mqtt::packet::{self as mp, Property};
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::codec::{Packet, Version};

const VERSIONS: [Version; 2] = [Version::V3_1_1, Version::V5];

#[tokio::test]
async fn every_qos_level_through_the_chain() {
    let mut chain = Chain::start().await;
    for version in VERSIONS {
        let mut sub = connected(&chain.r_proxy.addr, version, "sub").await;
        let granted = bounded("suback", exchange::subscribe(&mut sub, 1, "qos/+", 2))
            .await
            .unwrap();
        assert_eq!(granted, 2);
        let mut publisher = connected(&chain.r_proxy.addr, version, "pub").await;
        for level in 0..=2u8 {
            let topic = format!("qos/{level}");
            let payload = format!("{version} at qos {level}");
            bounded(
                "publish",
                exchange::publish(
                    &mut publisher,
                    &topic,
                    payload.clone(),
                    level,
                    false,
                    7,
                    vec![],
                ),
            )
            .await
            .unwrap();
            let got = bounded("delivery", exchange::receive(&mut sub))
                .await
                .unwrap()
                .expect("message");
            assert_eq!(got.topic, topic);
            assert_eq!(got.payload, payload.as_bytes());
            assert_eq!(got.qos, level);
        }
        publisher.send(&packets::disconnect(version)).await.unwrap();
        sub.send(&packets::disconnect(version)).await.unwrap();
        chain.wait_idle().await;
    }
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
