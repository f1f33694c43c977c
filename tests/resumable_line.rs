//! Resumable sessions on the gRPC line: a break of the stream between the
//! proxies, shorter than the resume window, is invisible to the MQTT client
//! and to the broker; a longer one, an s-proxy that lost the session, or a
//! resume from the wrong peer ends the session as before.
//!
//! Real processes (r-proxy, s-proxy, mosquitto, `mqttbridge bench`) with a
//! relay between the proxies that the test cuts ([`CutRelay::cut_for`]:
//! every connection closed, new ones refused for the outage).

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mqtt_protocol_core::mqtt::packet::{self as mp, Property};
use mqttbridge::client::PublishProperties;
use mqttbridge::client::{Client, ClientOptions, Connection, Will, exchange, packets};
use mqttbridge::line::convert::{packet_to_payload, payload_to_packet};
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use mqttbridge::line::proto::mqtt::mqtt_relay_service_client::MqttRelayServiceClient;
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;
use serde_json::Value;

#[path = "resumable_line/acknowledgements.rs"]
mod acknowledgements;
#[path = "resumable_line/ending.rs"]
mod ending;

/// The broker, the two proxies as processes and the relay between them.
struct CutLine {
    broker: Mosquitto,
    broker_log: PathBuf,
    relay: CutRelay,
    s_proxy: ModeProcess,
    r_proxy: ModeProcess,
    /// Where MQTT clients connect (the r-proxy).
    addr: String,
    _dir: tempfile::TempDir,
}

impl CutLine {
    /// The line with `r_extra`/`s_extra` TOML in the proxies' config files.
    async fn start(r_extra: &str, s_extra: &str) -> CutLine {
        Self::start_with_broker("", r_extra, s_extra).await
    }

    /// [`CutLine::start`] with `broker_extra` in mosquitto's configuration.
    async fn start_with_broker(broker_extra: &str, r_extra: &str, s_extra: &str) -> CutLine {
        let dir = tempfile::tempdir().unwrap();
        let broker_log = dir.path().join("mosquitto.log");
        // Unlimited queues and in-flight windows, so any loss is the line's;
        // the log shows every connect and disconnect.
        let broker = Mosquitto::start(&format!(
            "max_queued_messages 0\nmax_inflight_messages 0\n\
             log_dest file {}\nlog_type all\nconnection_messages true\n{broker_extra}",
            broker_log.display()
        ))
        .await
        .expect("mosquitto starts (apt-get install mosquitto)");
        let s_listen = format!("127.0.0.1:{}", free_port());
        let cloud = dir.path().join("cloud.toml");
        std::fs::write(
            &cloud,
            format!(
                "listen = \"{s_listen}\"\nbroker = \"{}\"\n{s_extra}\n",
                broker.addr()
            ),
        )
        .unwrap();
        let s_proxy = ModeProcess::start(&["s-proxy", "--config", cloud.to_str().unwrap()]).await;
        let relay = CutRelay::start(s_listen.parse().unwrap()).await;
        let addr = format!("127.0.0.1:{}", free_port());
        let edge = dir.path().join("edge.toml");
        std::fs::write(
            &edge,
            format!(
                "listen = \"{addr}\"\nupstream = [\"http://{}\"]\n{r_extra}\n",
                relay.addr
            ),
        )
        .unwrap();
        let r_proxy = ModeProcess::start(&["r-proxy", "--config", edge.to_str().unwrap()]).await;
        CutLine {
            broker,
            broker_log,
            relay,
            s_proxy,
            r_proxy,
            addr,
            _dir: dir,
        }
    }

    /// Resumes the r-proxy has completed so far.
    async fn resumed(&self) -> f64 {
        self.r_proxy
            .metric("mqttbridge_resumes_total{mode=\"r-proxy\",outcome=\"resumed\"}")
            .await
    }

    /// Waits until the r-proxy has completed `n` resumes in all.
    async fn wait_resumed(&self, n: f64) {
        bounded(&format!("{n} resumes"), async {
            // Poll interval while the r-proxy reconnects.
            while self.resumed().await < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    /// A client on the broker itself that hears every Will (`will/#`).
    async fn will_listener(&self) -> Connection {
        let broker = self.broker.addr().to_string();
        let mut wills = connected(&broker, Version::V5, "will-listener").await;
        bounded("suback", exchange::subscribe(&mut wills, 1, "will/#", 1))
            .await
            .unwrap();
        wills
    }

    /// The lines of mosquitto's log that mention `client_id` leaving.
    fn broker_saw_leave(&self, client_id: &str) -> Vec<String> {
        let log = std::fs::read_to_string(&self.broker_log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(client_id) && (l.contains("disconnect") || l.contains("closed")))
            .map(String::from)
            .collect()
    }
}

/// A library client through the line with a 1 s keep-alive and a Will:
/// it closes its connection when a PINGRESP is late, and the broker drops
/// it (publishing the Will) when its PINGREQs stop for 1.5 s.
async fn watchful_client(
    addr: &str,
    version: Version,
    id: &str,
    keep_alive: Duration,
) -> (Client, mqttbridge::client::Messages) {
    let options = ClientOptions {
        version,
        keep_alive,
        will: Some(Will {
            topic: format!("will/{id}"),
            payload: Bytes::from_static(b"gone"),
            qos: 1,
            retain: false,
            delay_interval: None,
            properties: PublishProperties::default(),
        }),
        ..ClientOptions::new(&format!("tcp://{addr}"), id)
    };
    bounded("connect", Client::connect(options)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_shorter_than_the_window_lose_nothing_and_close_nothing() {
    let line = CutLine::start("", "").await;
    // 100,000 QoS 1 and 100,000 QoS 2 messages, each through the line twice
    // (publisher -> broker, broker -> subscriber), in order per publisher;
    // beside them a QoS 0 stream at a pace whose outage backlog fits the
    // replay buffers (2 x 1,500 msg/s for 8 s).
    let bench = |qos: &str, count: &str, rate: Option<&str>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args([
                "bench",
                "throughput",
                "-L",
                &format!("mqtt://{}", line.addr),
                "-p",
                "2",
                "-s",
                "1",
                "-q",
                qos,
                "-n",
                count,
                "--json",
            ])
            .args(rate.map(|r| ["--rate", r]).into_iter().flatten())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
    };
    let (qos1, qos2) = (
        tokio::spawn(bench("1", "50000", None)),
        tokio::spawn(bench("2", "50000", None)),
    );
    let qos0 = tokio::spawn(bench("0", "12000", Some("1500")));
    let published = "mqttbridge_packets_total{mode=\"r-proxy\",direction=\"client_to_broker\",packet_type=\"publish\"}";
    // Three outages of a second each, every one after messages flowed.
    for cut in 1..=3u32 {
        let before = line.r_proxy.metric(published).await;
        bounded("messages flow", async {
            // Poll interval while the benches publish.
            while line.r_proxy.metric(published).await < before + 2000.0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let resumed = line.resumed().await;
        line.relay.cut_for(Duration::from_secs(1));
        // Each bench has three sessions, all on the connection just cut
        // (the QoS 0 one only while it runs).
        line.wait_resumed(resumed + 6.0).await;
        println!("cut {cut}: all sessions resumed");
    }
    for (qos, run, sent) in [(0, qos0, 24_000), (1, qos1, 100_000), (2, qos2, 100_000)] {
        let output = tokio::time::timeout(Duration::from_secs(300), run)
            .await
            .unwrap_or_else(|_| panic!("QoS {qos}: no report within 300 s"))
            .unwrap()
            .unwrap();
        assert!(
            output.status.success(),
            "QoS {qos}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        println!(
            "QoS {qos}: {} delivered in {:.1} s, {} lost, {} duplicates, {} out of order",
            report["received"],
            report["seconds"],
            report["lost"],
            report["duplicates"],
            report["out_of_order"]
        );
        assert_eq!(report["sent"], sent, "QoS {qos}: all sent");
        assert_eq!(report["received"], sent, "QoS {qos}: all delivered");
        assert_eq!(report["lost"], 0, "QoS {qos}: nothing lost");
        assert_eq!(report["duplicates"], 0, "QoS {qos}: nothing twice");
        assert_eq!(report["out_of_order"], 0, "QoS {qos}: in order");
    }
    // Nine clients in all, each connected once: no client saw its
    // connection close and reconnected.
    assert_eq!(
        line.r_proxy
            .metric("mqttbridge_sessions_opened_total{mode=\"r-proxy\"}")
            .await,
        9.0
    );
    assert_eq!(
        line.s_proxy
            .metric("mqttbridge_sessions_opened_total{mode=\"s-proxy\"}")
            .await,
        9.0,
        "the broker connections were kept, none opened again"
    );
    for outcome in ["refused", "expired"] {
        let metric = format!("mqttbridge_resumes_total{{mode=\"r-proxy\",outcome=\"{outcome}\"}}");
        assert_eq!(line.r_proxy.metric(&metric).await, 0.0, "{outcome} resumes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_through_the_gap_and_no_will_fires() {
    let line = CutLine::start("", "").await;
    let mut wills = line.will_listener().await;
    let mut clients = Vec::new();
    for (version, id) in [(Version::V5, "held-v5"), (Version::V3_1_1, "held-v3")] {
        let keep_alive = Duration::from_secs(1);
        let (client, messages) = watchful_client(&line.addr, version, id, keep_alive).await;
        bounded("subscribe", client.subscribe(&format!("down/{id}"), 1))
            .await
            .unwrap();
        clients.push((id, client, messages));
    }
    // Four seconds without a stream: the clients ping every half second
    // (the r-proxy answers), the broker would drop them after 1.5 s
    // without a packet (the s-proxy pings it for them).
    let resumed = line.resumed().await;
    line.relay.cut_for(Duration::from_secs(4));
    line.wait_resumed(resumed + 2.0).await;

    // Both ways work again, on the same connections.
    let mut direct = connected(&line.broker.addr().to_string(), Version::V5, "direct").await;
    bounded("suback", exchange::subscribe(&mut direct, 1, "up/#", 1))
        .await
        .unwrap();
    for (id, client, messages) in &mut clients {
        bounded(
            "publish up",
            client.publish(&format!("up/{id}"), "after the gap", 1, false),
        )
        .await
        .unwrap();
        let up = bounded("up", exchange::receive(&mut direct))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (up.topic.as_str(), &up.payload[..]),
            (format!("up/{id}").as_str(), &b"after the gap"[..])
        );
        bounded(
            "publish down",
            exchange::publish(
                &mut direct,
                &format!("down/{id}"),
                "to you",
                1,
                false,
                7,
                vec![],
            ),
        )
        .await
        .unwrap();
        let down = bounded("down", messages.recv())
            .await
            .expect("still connected");
        assert_eq!(&down.payload[..], b"to you");
    }
    // A marker published after everything: the Will listener hears it
    // first, so no Will came before it.
    bounded(
        "marker",
        exchange::publish(&mut direct, "will/marker", "marker", 1, false, 8, vec![]),
    )
    .await
    .unwrap();
    let first = bounded("marker heard", exchange::receive(&mut wills))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.topic, "will/marker",
        "a Will was published before the marker"
    );
    for (id, _, _) in &clients {
        assert_eq!(
            line.broker_saw_leave(id),
            Vec::<String>::new(),
            "mosquitto saw {id} leave"
        );
    }
    let gap = line.r_proxy.log_field("session resumed", "gap_ms").await;
    println!("gap {gap} ms");
}

/// A raw MQTT 5 client through the line whose Will goes to `will/<id>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_s_server_keep_alive_paces_the_pings_in_a_gap() {
    // mosquitto holds clients to a keep-alive of at most 10 s (its
    // lowest setting): the MQTT 5 client asking for 60 s gets 10 s in
    // CONNACK's Server Keep Alive, so the s-proxy must ping every 5 s in a
    // gap, not every 30 s, or the broker drops the client after 15-18 s.
    let line = CutLine::start_with_broker("max_keepalive 10", "", "").await;
    let id = "held-by-the-server";
    let (client, mut messages) =
        watchful_client(&line.addr, Version::V5, id, Duration::from_secs(60)).await;
    assert_eq!(client.connected().server_keep_alive, Some(10));
    bounded("subscribe", client.subscribe("echo", 1))
        .await
        .unwrap();
    let resumed = line.resumed().await;
    line.relay.cut_for(Duration::from_secs(20));
    line.wait_resumed(resumed + 1.0).await;
    bounded("publish", client.publish("echo", "after the gap", 1, false))
        .await
        .unwrap();
    let echo = bounded("echo", messages.recv())
        .await
        .expect("still connected");
    assert_eq!(&echo.payload[..], b"after the gap");
    assert_eq!(
        line.broker_saw_leave(id),
        Vec::<String>::new(),
        "mosquitto saw {id} leave"
    );
}

async fn client_with_will(addr: &str, id: &str) -> Connection {
    let mut conn = bounded("tcp connect", Connection::open(addr, Version::V5))
        .await
        .unwrap();
    let connect =
        packets::connect_with_will(Version::V5, id, &format!("will/{id}"), b"gone").unwrap();
    let code = bounded("CONNACK", exchange::connect(&mut conn, &connect))
        .await
        .unwrap();
    assert_eq!(code, 0, "CONNACK for {id}");
    conn
}

/// Reads until the connection closes; the reason string of the DISCONNECT
/// heard first, if any.
async fn closed_with(conn: &mut Connection) -> Option<String> {
    bounded("client closed", async {
        let mut reason = None;
        while let Some(packet) = conn.recv().await.ok().flatten() {
            match packet {
                Packet::V5_0Disconnect(d) => reason = Some(format!("{d:?}")),
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
        reason
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_longer_than_the_window_closes_the_client_and_fires_its_will() {
    let line = CutLine::start("resume_window_ms = 1000", "resume_window_ms = 1000").await;
    let mut wills = line.will_listener().await;
    let mut client = client_with_will(&line.addr, "outlived").await;
    line.relay.cut_for(Duration::from_secs(5));
    let reason = closed_with(&mut client).await.expect("a DISCONNECT first");
    assert!(reason.contains("upstream unavailable"), "{reason}");
    let will = bounded("Will", exchange::receive(&mut wills))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(will.topic, "will/outlived");
    assert_eq!(
        line.r_proxy
            .metric("mqttbridge_resumes_total{mode=\"r-proxy\",outcome=\"expired\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resumption_a_cut_closes_at_once_as_before() {
    let line = CutLine::start("no_resume = true", "").await;
    let mut wills = line.will_listener().await;
    let mut client = client_with_will(&line.addr, "plain").await;
    line.relay.cut();
    let reason = closed_with(&mut client).await.expect("a DISCONNECT first");
    assert!(reason.contains("upstream unavailable"), "{reason}");
    // The s-proxy was not asked for a resumable session: it drops the
    // broker connection at once, and the Will fires.
    let will = bounded("Will", exchange::receive(&mut wills))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(will.topic, "will/plain");
    assert_eq!(line.s_proxy.metric("mqttbridge_resumes_total").await, 0.0);
}

/// A raw gRPC stream to an s-proxy, as an r-proxy would open it.
struct RawStream {
    tx: tokio::sync::mpsc::Sender<MqttStreamMessage>,
    response: tonic::Streaming<MqttStreamMessage>,
    metadata: tonic::metadata::MetadataMap,
}

/// Opens a stream at `s_proxy` presenting `bearer` with request `metadata`,
/// sending `first` at once.
async fn raw_stream(
    s_proxy: std::net::SocketAddr,
    bearer: &str,
    metadata: &[(&'static str, String)],
    first: Vec<MqttStreamMessage>,
) -> Result<RawStream, tonic::Status> {
    raw_stream_on(plain_channel(s_proxy).await, bearer, metadata, first).await
}

/// A plaintext gRPC channel to `s_proxy`.
async fn plain_channel(s_proxy: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{s_proxy}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Opens a session for `client_id` that asks to be resumable (its CONNECT
/// is envelope 1); the stream and the resume token the s-proxy granted.
async fn open_resumable(
    channel: tonic::transport::Channel,
    bearer: &str,
    client_id: &str,
) -> (RawStream, String) {
    let connect = packets::connect(Version::V5, client_id, true, 30).unwrap();
    let opened = raw_stream_on(
        channel,
        bearer,
        &[("mqttbridge-resume", "1".into())],
        vec![numbered(1, &connect)],
    )
    .await
    .expect("session opens");
    let token = opened
        .metadata
        .get("mqttbridge-resume-token")
        .expect("resumption granted")
        .to_str()
        .unwrap()
        .to_string();
    (opened, token)
}

/// [`raw_stream`] on a channel made by the caller (TLS, say).
async fn raw_stream_on(
    channel: tonic::transport::Channel,
    bearer: &str,
    metadata: &[(&'static str, String)],
    first: Vec<MqttStreamMessage>,
) -> Result<RawStream, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for message in first {
        tx.send(message).await.unwrap();
    }
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if !bearer.is_empty() {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    }
    for (key, value) in metadata {
        request.metadata_mut().insert(*key, value.parse().unwrap());
    }
    let response = bounded(
        "stream opens",
        MqttRelayServiceClient::new(channel).stream_mqtt_messages(request),
    )
    .await?;
    Ok(RawStream {
        tx,
        metadata: response.metadata().clone(),
        response: response.into_inner(),
    })
}

/// Envelope `sequence_id` from the client's side holding `packet`.
fn numbered(sequence_id: u64, packet: &Packet) -> MqttStreamMessage {
    MqttStreamMessage {
        sequence_id,
        payload: Some(packet_to_payload(packet)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_needs_the_current_token_and_the_peer_that_opened_the_session() {
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "edge-a\nedge-b\n").unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.auth_token_file = Some(tokens.clone());
    })
    .await;
    let (mut first, token) =
        open_resumable(plain_channel(s_proxy.addr).await, "edge-a", "resumer").await;
    let connack = bounded("CONNACK", first.response.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack.sequence_id, 1);
    assert!(matches!(
        payload_to_packet(connack.payload.unwrap(), Version::V5),
        Ok(Packet::V5_0Connack(_))
    ));

    let resume = |token: &str| {
        vec![
            ("mqttbridge-resume-token", token.to_string()),
            ("mqttbridge-resume-received", "1".to_string()),
        ]
    };
    let refused = |result: Result<RawStream, tonic::Status>| match result {
        Ok(_) => panic!("resume accepted"),
        Err(status) => status.code(),
    };
    let forged = mqttbridge::line::resume::grant::new_token();
    assert_eq!(
        refused(raw_stream(s_proxy.addr, "edge-a", &resume(&forged), vec![]).await),
        tonic::Code::NotFound,
        "a forged token"
    );
    assert_eq!(
        refused(raw_stream(s_proxy.addr, "edge-b", &resume(&token), vec![]).await),
        tonic::Code::PermissionDenied,
        "another authenticated r-proxy"
    );

    // The owner resumes (its first stream still open: the s-proxy lets go
    // of it) and carries on where it was.
    let mut second = raw_stream(s_proxy.addr, "edge-a", &resume(&token), vec![])
        .await
        .expect("the owner resumes");
    assert_eq!(
        second
            .metadata
            .get("mqttbridge-resume-received")
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "the s-proxy had the CONNECT"
    );
    let next = second
        .metadata
        .get("mqttbridge-resume-token")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(next, token, "each token works once");
    second
        .tx
        .send(numbered(2, &packets::pingreq(Version::V5)))
        .await
        .unwrap();
    let pong = bounded("PINGRESP", async {
        loop {
            let message = second.response.message().await.unwrap().unwrap();
            // Acknowledgements alone carry no sequence number.
            if message.sequence_id != 0 {
                return message;
            }
        }
    })
    .await;
    assert_eq!(pong.sequence_id, 2, "numbering goes on");
    assert_eq!(pong.acknowledged, 2, "the PINGREQ is acknowledged");
    assert!(matches!(
        payload_to_packet(pong.payload.unwrap(), Version::V5),
        Ok(Packet::V5_0Pingresp(_))
    ));
    assert_eq!(
        refused(raw_stream(s_proxy.addr, "edge-a", &resume(&token), vec![]).await),
        tonic::Code::NotFound,
        "a replayed token"
    );
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_replay_buffer_slows_the_publisher_and_loses_nothing() {
    const MESSAGES: u64 = 32_000;
    let line = CutLine::start("replay_buffer_bytes = 65536", "").await;
    let mut subscriber =
        connected(&line.broker.addr().to_string(), Version::V5, "flood-sink").await;
    bounded(
        "suback",
        exchange::subscribe(&mut subscriber, 1, "flood", 0),
    )
    .await
    .unwrap();
    let mut publisher = connected(&line.addr, Version::V5, "flooder").await;
    let before = rss_kib(line.r_proxy.pid());

    // 32 MB of QoS 0 publishes start while the line is down.
    line.relay.cut_for(Duration::from_secs(5));
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flood = tokio::spawn({
        let written = written.clone();
        async move {
            for i in 0..MESSAGES {
                let mut payload = format!("{i:08}").into_bytes();
                payload.resize(1024, b'.');
                let publish =
                    packets::publish(Version::V5, "flood", payload, 0, false, 0, vec![]).unwrap();
                publisher.send(&publish).await.unwrap();
                written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            publisher
        }
    });
    bounded("the replay buffer fills", async {
        // Poll interval while the publisher writes.
        while line
            .r_proxy
            .metric("mqttbridge_replay_buffer_bytes{mode=\"r-proxy\"}")
            .await
            < 65536.0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let grown = rss_kib(line.r_proxy.pid()).saturating_sub(before);
    let sent = written.load(std::sync::atomic::Ordering::Relaxed);
    println!("buffer full: {sent} of {MESSAGES} publishes written, r-proxy RSS +{grown} KiB");
    assert!(sent < MESSAGES, "the publisher was not slowed down");
    assert!(grown < 16 * 1024, "r-proxy RSS grew by {grown} KiB");

    // After the outage every message arrives, once, in order.
    for i in 0..MESSAGES {
        let message = bounded("flood message", exchange::receive(&mut subscriber))
            .await
            .unwrap()
            .expect("subscriber connected");
        assert_eq!(&message.payload[..8], format!("{i:08}").as_bytes());
    }
    let _publisher = bounded("flood written", flood).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_between_connect_and_connack_resumes() {
    let line = CutLine::start("", "").await;
    let broker_pid = line.broker.pid().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), broker_pid.clone()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} mosquitto");
    };
    // The broker is stopped: the CONNECT reaches it, the CONNACK waits.
    signal("STOP");
    let mut client = bounded("tcp connect", Connection::open(&line.addr, Version::V5))
        .await
        .unwrap();
    client
        .send(&packets::connect(Version::V5, "early", true, 30).unwrap())
        .await
        .unwrap();
    bounded("the s-proxy opens the broker connection", async {
        // Poll interval while the CONNECT travels.
        while line
            .s_proxy
            .metric("mqttbridge_sessions_opened_total{mode=\"s-proxy\"}")
            .await
            < 1.0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    line.relay.cut_for(Duration::from_secs(1));
    line.wait_resumed(1.0).await;
    signal("CONT");
    let connack = bounded("CONNACK", client.recv()).await.unwrap();
    assert!(
        matches!(&connack, Some(Packet::V5_0Connack(c)) if c.reason_code() as u8 == 0),
        "{connack:?}"
    );
    assert_eq!(line.broker_saw_leave("early"), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_a_resume_must_come_from_the_same_certificate() {
    scion_sdk_utils::rustls::select_ring_crypto_provider();
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (certs, others) =
        certs::generate_with_clients(dir.path(), &["localhost"], &["edge-b"]).unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.tls_cert = Some(certs.server_cert.clone());
        c.tls_key = Some(certs.server_key.clone());
        c.client_ca = Some(certs.ca.clone());
    })
    .await;
    // Both r-proxies are admitted by the CA; only the first opened the session.
    let channel = |cert: &std::path::Path, key: &std::path::Path| {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(
                std::fs::read(&certs.ca).unwrap(),
            ))
            .identity(tonic::transport::Identity::from_pem(
                std::fs::read(cert).unwrap(),
                std::fs::read(key).unwrap(),
            ))
            .domain_name("localhost");
        tonic::transport::Endpoint::from_shared(format!(
            "https://localhost:{}",
            s_proxy.addr.port()
        ))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
    };
    let owner = channel(&certs.client_cert, &certs.client_key);
    let other = channel(&others[0].0, &others[0].1);
    let (opened, token) = open_resumable(owner.clone(), "", "tls-resumer").await;
    let resume = [
        ("mqttbridge-resume-token", token),
        ("mqttbridge-resume-received", "0".to_string()),
    ];
    match raw_stream_on(other, "", &resume, vec![]).await {
        Ok(_) => panic!("a resume from another certificate was accepted"),
        Err(status) => assert_eq!(status.code(), tonic::Code::PermissionDenied),
    }
    let resumed = raw_stream_on(owner, "", &resume, vec![])
        .await
        .expect("the certificate that opened the session resumes it");
    assert!(resumed.metadata.get("mqttbridge-resume-token").is_some());
    drop(opened);
}
