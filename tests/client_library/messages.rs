//! What travels with a message: every MQTT 5 property (straight to the
//! broker and across the gRPC line), subscribe options, topic aliases,
//! reason codes, the Will, and clear errors for invalid topics.

use bytes::Bytes;
use mqttbridge::client::{
    Client, ClientError, ClientOptions, Message, Messages, PublishProperties, RetainHandling,
    SubscribeOptions, Will,
};
use mqttbridge::mqtt::Version;
use mqttbridge::tools::mosquitto::Mosquitto;

use crate::common::{Chain, CutRelay, bounded};

fn every_property() -> PublishProperties {
    PublishProperties {
        payload_format_utf8: Some(true),
        message_expiry_interval: Some(3600),
        content_type: Some("application/json".into()),
        response_topic: Some("replies/7".into()),
        correlation_data: Some(Bytes::from_static(b"\x00req-7\xff")),
        user_properties: vec![
            ("origin".into(), "sensor".into()),
            ("origin".into(), "again".into()),
            ("ünïcode".into(), "✓".into()),
        ],
        ..PublishProperties::default()
    }
}

async fn next(messages: &mut Messages) -> Message {
    bounded("delivery", messages.recv())
        .await
        .expect("a message")
}

/// Publishes with every property through `url` and checks the subscriber
/// (same URL) sees each, plus its subscription identifier.
async fn properties_round_trip(url: &str) {
    // Ids of their own per URL: the clients of an earlier call may still
    // be leaving (a takeover would be another test).
    let id = |role: &str| format!("props-{role}-{:x}", rand::random::<u32>());
    let (sub, mut messages) = Client::connect(ClientOptions::new(url, &id("sub")))
        .await
        .unwrap();
    let options = SubscribeOptions {
        qos: 2,
        subscription_identifier: Some(42),
        ..SubscribeOptions::default()
    };
    assert_eq!(
        sub.subscribe_with("props/#", options)
            .await
            .unwrap()
            .reason_code,
        2
    );
    let (publisher, _) = Client::connect(ClientOptions::new(url, &id("pub")))
        .await
        .unwrap();
    for qos in [0, 1, 2] {
        publisher
            .publish_with_properties("props/x", "{}", qos, false, every_property())
            .await
            .unwrap();
        let got = next(&mut messages).await;
        let mut expected = every_property();
        expected.subscription_identifiers = vec![42];
        assert_eq!(got.properties, expected, "QoS {qos} via {url}");
        assert_eq!(got.qos, qos);
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_property_round_trips_through_the_broker_and_the_grpc_line() {
    let chain = Chain::start().await;
    properties_round_trip(&format!("tcp://{}", chain.broker.addr())).await;
    properties_round_trip(&format!("tcp://{}", chain.r_proxy.addr)).await;
}

#[tokio::test]
async fn subscribe_options_are_honoured() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let (client, mut messages) = Client::connect(ClientOptions::new(&url, "opts"))
        .await
        .unwrap();
    client.publish("kept/a", "retained", 1, true).await.unwrap();

    // Retain handling 2: no retained message at subscribe time.
    let quiet = SubscribeOptions {
        qos: 1,
        retain_handling: RetainHandling::DoNotSend,
        no_local: true,
        ..SubscribeOptions::default()
    };
    client.subscribe_with("kept/#", quiet).await.unwrap();
    // No local: our own publish does not come back; another client's does,
    // and a live message has retain cleared (retain as published is off).
    client.publish("kept/a", "own", 1, true).await.unwrap();
    let (other, _) = Client::connect(ClientOptions::new(&url, "other"))
        .await
        .unwrap();
    other.publish("kept/a", "theirs", 1, true).await.unwrap();
    let got = next(&mut messages).await;
    assert_eq!(got.payload, "theirs", "neither the retained nor our own");
    assert!(!got.retain);

    // Retain as published keeps the flag on forwarded messages; handling 0
    // sends the retained message at subscribe.
    let (watcher, mut watched) = Client::connect(ClientOptions::new(&url, "watcher"))
        .await
        .unwrap();
    let keep_flag = SubscribeOptions {
        qos: 1,
        retain_as_published: true,
        ..SubscribeOptions::default()
    };
    watcher.subscribe_with("kept/#", keep_flag).await.unwrap();
    let retained = next(&mut watched).await;
    assert_eq!(
        (&retained.payload[..], retained.retain),
        (&b"theirs"[..], true)
    );
    other.publish("kept/a", "live", 1, true).await.unwrap();
    let live = next(&mut watched).await;
    assert_eq!((&live.payload[..], live.retain), (&b"live"[..], true));
}

#[tokio::test]
async fn reason_codes_topic_aliases_and_invalid_topics() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let (client, mut messages) = Client::connect(ClientOptions::new(&url, "codes"))
        .await
        .unwrap();
    assert!(
        client.connected().topic_alias_maximum > 0,
        "mosquitto allows aliases"
    );
    // MQTT 5 brokers say when nobody was listening.
    let ack = client.publish("nobody/home", "x", 1, false).await.unwrap();
    assert_eq!(ack.reason_code, 0x10, "no matching subscribers");

    client.subscribe("alias/#", 0).await.unwrap();
    let aliased = PublishProperties {
        topic_alias: Some(1),
        ..PublishProperties::default()
    };
    for i in 0..3 {
        client
            .publish_with_properties(
                "alias/long/topic",
                format!("{i}"),
                0,
                false,
                aliased.clone(),
            )
            .await
            .unwrap();
        let got = next(&mut messages).await;
        assert_eq!(
            (got.topic.as_str(), got.payload),
            ("alias/long/topic", Bytes::from(format!("{i}")))
        );
    }
    let too_high = PublishProperties {
        topic_alias: Some(u16::MAX),
        ..PublishProperties::default()
    };
    let err = client
        .publish_with_properties("alias/x", "x", 0, false, too_high)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("topic alias 65535"), "{err}");

    let err = client.publish("a/#", "x", 0, false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid topic 'a/#': wildcards are not allowed in a PUBLISH topic"
    );
    let err = client.subscribe("a/#/b", 0).await.unwrap_err();
    assert!(matches!(err, ClientError::Invalid(_)), "{err}");
    // The connection is unharmed by refused calls.
    client
        .publish("alias/ok", "still here", 0, false)
        .await
        .unwrap();
    assert_eq!(next(&mut messages).await.payload, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_is_published_when_the_link_dies_not_after_a_clean_disconnect() {
    let broker = Mosquitto::start("").await.unwrap();
    let direct = format!("tcp://{}", broker.addr());
    let (watcher, mut wills) = Client::connect(ClientOptions::new(&direct, "watcher"))
        .await
        .unwrap();
    watcher.subscribe("wills/#", 1).await.unwrap();
    let relay = CutRelay::start(broker.addr()).await;
    for version in [Version::V3_1_1, Version::V5] {
        let will = |name: &str| Will {
            topic: format!("wills/{name}"),
            payload: Bytes::from(format!("{name} is gone")),
            qos: 1,
            retain: false,
            delay_interval: None,
            properties: if version == Version::V5 {
                PublishProperties {
                    content_type: Some("text/plain".into()),
                    user_properties: vec![("why".into(), "lost".into())],
                    ..PublishProperties::default()
                }
            } else {
                PublishProperties::default()
            },
        };
        let options = |name: &str| ClientOptions {
            version,
            will: Some(will(name)),
            ..ClientOptions::new(&format!("tcp://{}", relay.addr), name)
        };
        let (polite, _) = Client::connect(options("polite")).await.unwrap();
        polite.disconnect().await.unwrap();
        let (_lost, _) = Client::connect(options("lost")).await.unwrap();
        relay.cut();
        let got = next(&mut wills).await;
        assert_eq!(
            got.topic, "wills/lost",
            "{version}: only the lost client's Will"
        );
        assert_eq!(got.payload, "lost is gone");
        assert_eq!(got.properties, will("lost").properties, "{version}");
    }
}
