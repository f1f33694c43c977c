//! Acknowledgements on the resumable line: when one goes out alone (after
//! a quiet second, by weight, by half a small peer buffer), and what they
//! cost.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_publish_is_acknowledged_once_the_line_is_quiet() {
    let line = CutLine::start("", "").await;
    let mut publisher = connected(&line.addr, Version::V5, "lone").await;
    let replay_bytes = || {
        line.r_proxy
            .metric("mqttbridge_replay_buffer_bytes{mode=\"r-proxy\"}")
    };
    // Nothing comes back to carry the acknowledgement: the s-proxy sends
    // one alone after a quiet second. Twice, so a timer is armed again
    // after the first one fired.
    for round in 0..2 {
        let publish = packets::publish(
            Version::V5,
            "nobody/listens",
            &b"once"[..],
            0,
            false,
            0,
            vec![],
        )
        .unwrap();
        publisher.send(&publish).await.unwrap();
        bounded("the publish waits for its acknowledgement", async {
            // Poll interval while the r-proxy takes the publish.
            while replay_bytes().await == 0.0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        bounded("the quiet acknowledgement", async {
            // Poll interval while the s-proxy waits its quiet second.
            while replay_bytes().await > 0.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        println!("round {round}: acknowledged");
    }
}

/// Replay buffers smaller than the 64 KiB an acknowledgement may otherwise
/// wait for: each side tells the other its size when the session opens,
/// and the other acknowledges by half of it, weighing what arrives as the
/// sender's buffer counts it (so a message whose 4 KB are a user property,
/// not its payload, weighs 4 KB too). Before, each buffer filled after two
/// of these messages and waited for the quiet second: 80 messages took
/// 40 s or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_replay_buffers_are_acknowledged_before_they_fill() {
    const MESSAGES: usize = 80;
    let small = "replay_buffer_bytes = 8192";
    let line = CutLine::start(small, small).await;
    // Both directions through the line: the r-proxy's buffer holds what
    // the publisher sends, the s-proxy's what the subscriber receives.
    let mut subscriber = connected(&line.addr, Version::V5, "small-sink").await;
    bounded(
        "suback",
        exchange::subscribe(&mut subscriber, 1, "small", 0),
    )
    .await
    .unwrap();
    let mut publisher = connected(&line.addr, Version::V5, "small-source").await;
    for heavy in ["payload", "property"] {
        bounded(
            &format!("{MESSAGES} messages heavy in their {heavy}"),
            async {
                for i in 0..MESSAGES {
                    let mut payload = format!("{i:08}").into_bytes();
                    let mut properties = vec![];
                    if heavy == "payload" {
                        payload.resize(4000, b'.');
                    } else {
                        properties.push(Property::UserProperty(
                            mp::UserProperty::new("weight", ".".repeat(4000)).unwrap(),
                        ));
                    }
                    let publish =
                        packets::publish(Version::V5, "small", payload, 0, false, 0, properties)
                            .unwrap();
                    publisher.send(&publish).await.unwrap();
                }
                for i in 0..MESSAGES {
                    let message = exchange::receive(&mut subscriber)
                        .await
                        .unwrap()
                        .expect("subscriber connected");
                    assert_eq!(&message.payload[..8], format!("{i:08}").as_bytes());
                }
            },
        )
        .await;
    }
}

/// A busy session's lone acknowledgements go by weight (64 KiB arrived
/// without one leaving, for a peer that did not name its buffer) and after
/// a quiet second, not every few envelopes: each one is a write of its own
/// for the side that sends it and a wake-up and a read for the other. Here
/// the test plays the r-proxy and sends 2,000 small QoS 0 PUBLISHes that no
/// one receives, so nothing goes back to carry an acknowledgement. With one
/// every 32 envelopes as well, as before, there were 63.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_is_acknowledged_by_weight_not_by_count() {
    use mqttbridge::line::resume::envelopes;
    const MESSAGES: u64 = 2000;
    let broker = Mosquitto::start("").await.unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let (raw, _) = open_resumable(plain_channel(s_proxy.addr).await, "", "by-weight").await;
    let RawStream {
        tx, mut response, ..
    } = raw;
    let connack = bounded("CONNACK", response.message()).await;
    assert_eq!(connack.unwrap().unwrap().sequence_id, 1);
    let publish = packets::publish(
        Version::V5,
        "nobody/listens",
        &b"sixteen bytes..."[..],
        0,
        false,
        0,
        vec![],
    )
    .unwrap();
    let mut weight = 0;
    let last = MESSAGES + 1;
    bounded("the publishes sent", async {
        for sequence_id in 2..=last {
            let message = numbered(sequence_id, &publish);
            weight += envelopes::weight(&message);
            tx.send(message).await.unwrap();
        }
    })
    .await;
    let lone = bounded("every publish acknowledged", async {
        let mut lone = 0;
        loop {
            let message = response.message().await.unwrap().expect("open");
            assert_eq!(message.sequence_id, 0, "nothing but acknowledgements");
            lone += 1;
            if message.acknowledged == last {
                return lone;
            }
        }
    })
    .await;
    // One each time 64 KiB arrived, and the last after the quiet second.
    let by_weight = weight / (64 * 1024);
    println!("{lone} lone acknowledgements for {MESSAGES} envelopes of {weight} bytes");
    assert!(
        lone <= by_weight + 1,
        "{lone} lone acknowledgements, at most {} expected",
        by_weight + 1
    );
}
