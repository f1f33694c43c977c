//! A kept session survives a broken link: what was in flight is sent again
//! after the reconnect (PUBLISH with DUP, PUBREL), nothing is lost, and
//! QoS 2 is still delivered exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mqttbridge::client::{Client, ClientOptions, Reconnect};
use mqttbridge::mqtt::Version;
use mqttbridge::tools::mosquitto::Mosquitto;

use crate::common::{CutRelay, bounded};

const MESSAGES: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_messages_are_resent_after_the_link_is_cut() {
    let broker = Mosquitto::start("max_queued_messages 0\nmax_inflight_messages 0")
        .await
        .unwrap();
    let relay = CutRelay::start(broker.addr()).await;
    for (version, qos) in [(Version::V5, 1), (Version::V5, 2), (Version::V3_1_1, 2)] {
        let topic = format!("kept/{version}/{qos}");
        let (sub, mut messages) = Client::connect(ClientOptions::new(
            &format!("tcp://{}", broker.addr()),
            "kept-sub",
        ))
        .await
        .unwrap();
        sub.subscribe(&topic, 2).await.unwrap();

        let options = ClientOptions {
            version,
            clean_start: version == Version::V5,
            session_expiry: Duration::from_secs(300),
            reconnect: Some(Reconnect {
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
            }),
            max_in_flight: 32,
            ..ClientOptions::new(&format!("tcp://{}", relay.addr), "kept-pub")
        };
        let (publisher, _) = Client::connect(options).await.unwrap();
        // Each completed publish counts here; the cutter is woken by it.
        let (acknowledged, mut progress) = tokio::sync::watch::channel(0usize);
        let acknowledged = Arc::new(acknowledged);
        let sends: Vec<_> = (0..MESSAGES)
            .map(|i| {
                let publisher = publisher.clone();
                let topic = topic.clone();
                let acknowledged = acknowledged.clone();
                tokio::spawn(async move {
                    let result = publisher.publish(&topic, format!("{i}"), qos, false).await;
                    acknowledged.send_modify(|n| *n += 1);
                    result
                })
            })
            .collect();
        drop(acknowledged);
        let all = tokio::spawn(futures_util::future::join_all(sends));

        // Cut the link while messages are in flight: at the first
        // completed publish, then each time another sixth of them has
        // completed on the new connection (so a slow machine cannot be cut
        // into standing still, and a fast one is cut as often).
        let mut cuts = 0;
        let mut next_cut = 1;
        bounded("publishing under cuts", async {
            loop {
                let now = *progress.borrow_and_update();
                if now >= next_cut && now < MESSAGES {
                    relay.cut();
                    cuts += 1;
                    next_cut = now + MESSAGES / 6;
                }
                // Ends once every publish has completed and dropped its
                // handle on the count.
                if progress.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        for result in bounded("publishes complete", all).await.unwrap() {
            result
                .unwrap()
                .unwrap_or_else(|e| panic!("{version} QoS {qos}: a publish failed: {e}"));
        }
        assert!(cuts >= 3, "the link was cut {cuts} times while publishing");
        let mut seen: HashMap<String, usize> = HashMap::new();
        while seen.len() < MESSAGES {
            let m = bounded("delivery", messages.recv()).await.expect("message");
            *seen
                .entry(String::from_utf8(m.payload.to_vec()).unwrap())
                .or_default() += 1;
        }
        if qos == 2 {
            let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                twice.is_empty(),
                "{version}: QoS 2 delivered twice: {twice:?}"
            );
        }
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
    }
}
