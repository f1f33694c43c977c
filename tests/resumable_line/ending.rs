//! A resumable session's end: the TERMINATE each side sends, and what it
//! waits for (the peer's acknowledgement or its own TERMINATE), reading
//! the line while it waits.

use super::*;

/// A session's end waits only for what the peer will still send. Here the
/// broker closes first (the client's DISCONNECT reached it before the
/// r-proxy's TERMINATE reached the s-proxy), so the s-proxy sends TERMINATE
/// and waits, bounded by its drain timeout (an hour here, longer than any
/// wait of this test), for the r-proxy to acknowledge it, or to end the
/// session itself. Either answer ends the s-proxy's stream at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_on_the_peers_acknowledgement_or_its_own_terminate() {
    use mqttbridge::line::proto::mqtt::MessageDirection;
    use mqttbridge::line::resume::envelopes;
    let broker = Mosquitto::start("").await.unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.drain_timeout_ms = "3600000".parse().unwrap();
    })
    .await;
    for answer in ["acknowledgement", "terminate"] {
        let client_id = format!("ends-by-{answer}");
        let (raw, _) = open_resumable(plain_channel(s_proxy.addr).await, "", &client_id).await;
        let RawStream {
            tx, mut response, ..
        } = raw;
        let connack = bounded("CONNACK", response.message()).await;
        assert_eq!(connack.unwrap().unwrap().sequence_id, 1);
        tx.send(numbered(2, &packets::disconnect(Version::V5)))
            .await
            .unwrap();
        let terminate = bounded("the s-proxy's TERMINATE once the broker closed", async {
            loop {
                let message = response.message().await.unwrap().expect("open");
                if envelopes::is_terminate(&message) {
                    return message;
                }
            }
        })
        .await;
        let reply = match answer {
            "acknowledgement" => {
                envelopes::acknowledgement(MessageDirection::ClientToBroker, terminate.sequence_id)
            }
            // Acknowledging nothing: an r-proxy that ended the session too
            // sends its TERMINATE and finishes its side.
            _ => MqttStreamMessage {
                sequence_id: 3,
                payload: Some(envelopes::terminate()),
                ..Default::default()
            },
        };
        tx.send(reply).await.unwrap();
        // An r-proxy that sent TERMINATE finishes its side; one that only
        // acknowledged keeps it open, and the acknowledgement alone ends it.
        let _open = (answer == "acknowledgement").then_some(tx);
        bounded(&format!("the s-proxy's end after the {answer}"), async {
            while response.message().await.unwrap().is_some() {}
        })
        .await;
    }
}

/// A session's end goes on reading the line while it waits. Here the
/// client's last PUBLISH and its DISCONNECT fill the r-proxy's replay
/// buffer (8 KiB; they arrive in one write, so no acknowledgement comes
/// between them), and the TERMINATE that tells the s-proxy the session is
/// over must wait for room. The room comes from the s-proxy's
/// acknowledgement, which arrives on the line; unread, the wait ran until
/// the drain timeout (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_replay_buffer_at_the_end_waits_only_for_the_acknowledgement() {
    const LIMIT: usize = 8192;
    let line = CutLine::start(
        &format!("replay_buffer_bytes = {LIMIT}\ndrain_timeout_ms = 3600000"),
        "drain_timeout_ms = 3600000",
    )
    .await;
    let mut client = connected(&line.addr, Version::V5, "fills-at-the-end").await;
    let encoded = |packet: &Packet| {
        let mut out = bytes::BytesMut::new();
        mqttbridge::mqtt::encode(packet, &mut out);
        out
    };
    let publish = |payload: usize| {
        packets::publish(Version::V5, "t", vec![b'x'; payload], 0, false, 0, vec![]).unwrap()
    };
    // An envelope counts its packet's bytes and 64: the PUBLISH leaves the
    // buffer 30 bytes short of full, and the DISCONNECT fills it.
    // (Its remaining length takes a byte more than an empty one's.)
    let header = encoded(&publish(0)).len() + 1;
    let mut last = encoded(&publish(LIMIT - 30 - 64 - header));
    assert_eq!(last.len() + 64, LIMIT - 30, "the PUBLISH's size");
    last.extend_from_slice(&encoded(&packets::disconnect(Version::V5)));
    client.send_bytes(&last).await.unwrap();
    bounded("the r-proxy's session closed", async {
        // Poll interval while the r-proxy ends the session.
        while !line.r_proxy.logged("closed") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        !line
            .r_proxy
            .logged("s-proxy did not confirm the end of the session in time")
    );
}

/// The s-proxy's side of the same: the broker's last delivery fills the
/// s-proxy's replay buffer (8 KiB, one 16 KiB message) and the broker then
/// closes the session (taken over by a client with the same id). The
/// TERMINATE the s-proxy owes the r-proxy waits for room, which the
/// r-proxy's acknowledgement makes (played here on a raw gRPC stream, which
/// acknowledges once the broker has closed). Unread, the wait ran until
/// the drain timeout (an hour here). (When the acknowledgement overtakes
/// the broker's close, the relay reads it and the end has room at once:
/// without the fix this test failed in two of three runs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s_proxy_s_end_reads_the_acknowledgement_that_makes_room() {
    use mqttbridge::line::proto::mqtt::MessageDirection;
    use mqttbridge::line::resume::envelopes;
    let broker = Mosquitto::start("").await.unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.replay_buffer_bytes = std::num::NonZeroUsize::new(8192).unwrap();
        c.drain_timeout_ms = "3600000".parse().unwrap();
    })
    .await;
    let (raw, _) = open_resumable(plain_channel(s_proxy.addr).await, "", "ends-full").await;
    let RawStream {
        tx, mut response, ..
    } = raw;
    async fn next(response: &mut tonic::Streaming<MqttStreamMessage>) -> MqttStreamMessage {
        bounded("an envelope from the s-proxy", response.message())
            .await
            .unwrap()
            .expect("open")
    }
    assert_eq!(next(&mut response).await.sequence_id, 1, "CONNACK");
    let subscribe = packets::subscribe(Version::V5, 1, "full/end", 0).unwrap();
    tx.send(numbered(2, &subscribe)).await.unwrap();
    assert_eq!(next(&mut response).await.sequence_id, 2, "SUBACK");
    let mut pusher = connected(&broker.addr().to_string(), Version::V5, "pusher").await;
    bounded(
        "the large message published",
        exchange::publish(
            &mut pusher,
            "full/end",
            vec![b'x'; 16 * 1024],
            0,
            false,
            0,
            vec![],
        ),
    )
    .await
    .unwrap();
    let delivery = next(&mut response).await;
    assert_eq!(delivery.sequence_id, 3, "the delivery");
    // The broker closes the session's connection before its CONNACK to
    // the newer one.
    let _newer = connected(&broker.addr().to_string(), Version::V5, "ends-full").await;
    tx.send(envelopes::acknowledgement(
        MessageDirection::ClientToBroker,
        3,
    ))
    .await
    .unwrap();
    let terminate = next(&mut response).await;
    assert!(envelopes::is_terminate(&terminate), "{terminate:?}");
    tx.send(envelopes::acknowledgement(
        MessageDirection::ClientToBroker,
        terminate.sequence_id,
    ))
    .await
    .unwrap();
    bounded("the s-proxy's end of the stream", async {
        while response.message().await.unwrap().is_some() {}
    })
    .await;
}
