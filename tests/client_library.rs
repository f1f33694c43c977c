//! The client library (`mqttbridge::client::Client`) against a real
//! mosquitto: acknowledgements, many requests in flight, unsubscribe,
//! refusals as errors, keep-alive, backpressure and reconnection; in the
//! modules below, access control, TLS and WebSocket, message properties,
//! the Will and kept sessions.

use crate::common;

use std::time::Duration;

use common::bounded;
use mqttbridge::client::{Client, ClientError, ClientOptions, Reconnect};
use mqttbridge::mqtt::Version;
use mqttbridge::tools::mosquitto::Mosquitto;

fn options(broker: &Mosquitto, version: Version, id: &str) -> ClientOptions {
    ClientOptions {
        version,
        ..ClientOptions::new(&format!("tcp://{}", broker.addr()), id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_publishes_in_flight_all_acknowledged_and_delivered() {
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    for version in [Version::V3_1_1, Version::V5] {
        let (sub, mut messages) = Client::connect(options(&broker, version, "lib-sub"))
            .await
            .unwrap();
        assert_eq!(sub.subscribe("lib/#", 2).await.unwrap(), 2);
        let (publisher, _) = Client::connect(options(&broker, version, "lib-pub"))
            .await
            .unwrap();
        const N: usize = 300;
        let sends = (0..N).map(|i| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                publisher
                    .publish(
                        &format!("lib/{}", i % 3),
                        format!("{i}"),
                        (i % 3) as u8,
                        false,
                    )
                    .await
            })
        });
        for result in bounded("publishes", futures_util::future::join_all(sends)).await {
            result.unwrap().unwrap_or_else(|e| panic!("{version}: {e}"));
        }
        let mut seen = std::collections::HashSet::new();
        while seen.len() < N {
            let m = bounded("delivery", messages.recv()).await.expect("message");
            seen.insert(String::from_utf8(m.payload.to_vec()).unwrap());
        }
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = Mosquitto::start("").await.unwrap();
    let (client, mut messages) = Client::connect(options(&broker, Version::V5, "unsub"))
        .await
        .unwrap();
    client.subscribe("a", 1).await.unwrap();
    client.subscribe("b", 1).await.unwrap();
    client.unsubscribe("a").await.unwrap();
    client.publish("a", "dropped", 1, false).await.unwrap();
    client.publish("b", "marker", 1, false).await.unwrap();
    let m = bounded("marker", messages.recv()).await.unwrap();
    assert_eq!(m.topic, "b", "nothing from the unsubscribed topic");
}

#[tokio::test]
async fn refused_connection_is_an_error_with_the_code() {
    let broker = Mosquitto::start("allow_anonymous false").await.unwrap();
    for (version, code) in [(Version::V3_1_1, 0x05), (Version::V5, 0x87)] {
        match Client::connect(options(&broker, version, "anon")).await {
            Err(ClientError::Refused { code: c, .. }) => assert_eq!(c, code, "{version}"),
            Err(e) => panic!("expected a refusal, got {e}"),
            Ok(_) => panic!("expected a refusal for {version}"),
        }
    }
}

#[tokio::test]
async fn keep_alive_holds_an_idle_connection_open() {
    let broker = Mosquitto::start("").await.unwrap();
    let mut opts = options(&broker, Version::V3_1_1, "idle");
    opts.keep_alive = Duration::from_secs(1);
    let (client, mut messages) = Client::connect(opts).await.unwrap();
    client.subscribe("idle", 0).await.unwrap();
    // Idle for longer than 1.5 x keep-alive, after which mosquitto would
    // drop a client that sent no PINGREQ.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client.publish("idle", "awake", 0, false).await.unwrap();
    assert_eq!(
        bounded("delivery", messages.recv()).await.unwrap().payload,
        "awake"
    );
}

#[tokio::test]
async fn slow_consumer_gets_every_message_late_none_dropped() {
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    let mut opts = options(&broker, Version::V5, "slow");
    opts.queue_depth = 4;
    let (sub, mut messages) = Client::connect(opts).await.unwrap();
    sub.subscribe("slow", 1).await.unwrap();
    let (publisher, _) = Client::connect(options(&broker, Version::V5, "fast"))
        .await
        .unwrap();
    for i in 0..200 {
        bounded(
            "publish",
            publisher.publish("slow", format!("{i}"), 1, false),
        )
        .await
        .unwrap();
    }
    for i in 0..200 {
        let m = bounded("late delivery", messages.recv()).await.unwrap();
        assert_eq!(m.payload, format!("{i}"), "in order, none dropped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_restarts() {
    let mut broker = Mosquitto::start("").await.unwrap();
    let mut opts = options(&broker, Version::V5, "phoenix");
    opts.reconnect = Some(Reconnect {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
    });
    let (client, mut messages) = Client::connect(opts).await.unwrap();
    client.subscribe("rise", 1).await.unwrap();
    broker.restart().await.unwrap();
    // Requests made while the link is down fail; once it is back they
    // succeed, and the subscription was restored.
    bounded("publish after reconnect", async {
        loop {
            match client.publish("rise", "again", 1, false).await {
                Ok(_) => break,
                Err(ClientError::ConnectionLost) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert_eq!(
        bounded("delivery", messages.recv()).await.unwrap().payload,
        "again"
    );
}

#[path = "client_library/access.rs"]
mod access;
#[path = "client_library/kept_session.rs"]
mod kept_session;
#[path = "client_library/messages.rs"]
mod messages;
