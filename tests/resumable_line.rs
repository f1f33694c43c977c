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
use mqttbridge::client::PublishProperties;
use mqttbridge::client::{Client, ClientOptions, Connection, Will, exchange, packets};
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::tools::mosquitto::Mosquitto;
use serde_json::Value;

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
        let dir = tempfile::tempdir().unwrap();
        let broker_log = dir.path().join("mosquitto.log");
        // Unlimited queues and in-flight windows, so any loss is the line's;
        // the log shows every connect and disconnect.
        let broker = Mosquitto::start(&format!(
            "max_queued_messages 0\nmax_inflight_messages 0\n\
             log_dest file {}\nlog_type all\nconnection_messages true",
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
) -> (Client, mqttbridge::client::Messages) {
    let options = ClientOptions {
        version,
        keep_alive: Duration::from_secs(1),
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
    // (publisher -> broker, broker -> subscriber), in order per publisher.
    let bench = |qos: &str| {
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
                "50000",
                "--json",
            ])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
    };
    let (qos1, qos2) = (tokio::spawn(bench("1")), tokio::spawn(bench("2")));
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
        // Each bench has three sessions, all on the connection just cut.
        line.wait_resumed(resumed + 6.0).await;
        println!("cut {cut}: all sessions resumed");
    }
    for (qos, run) in [(1, qos1), (2, qos2)] {
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
        assert_eq!(report["sent"], 100_000, "QoS {qos}: all sent");
        assert_eq!(report["received"], 100_000, "QoS {qos}: all delivered");
        assert_eq!(report["lost"], 0, "QoS {qos}: nothing lost");
        assert_eq!(report["duplicates"], 0, "QoS {qos}: nothing twice");
        assert_eq!(report["out_of_order"], 0, "QoS {qos}: in order");
    }
    // Six clients in all, each connected once: no client saw its
    // connection close and reconnected.
    assert_eq!(
        line.r_proxy
            .metric("mqttbridge_sessions_opened_total{mode=\"r-proxy\"}")
            .await,
        6.0
    );
    assert_eq!(
        line.s_proxy
            .metric("mqttbridge_sessions_opened_total{mode=\"s-proxy\"}")
            .await,
        6.0,
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
    let mut wills = connected(
        &line.broker.addr().to_string(),
        Version::V5,
        "will-listener",
    )
    .await;
    bounded("suback", exchange::subscribe(&mut wills, 1, "will/#", 1))
        .await
        .unwrap();
    let mut clients = Vec::new();
    for (version, id) in [(Version::V5, "held-v5"), (Version::V3_1_1, "held-v3")] {
        let (client, messages) = watchful_client(&line.addr, version, id).await;
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
    let mut wills = connected(
        &line.broker.addr().to_string(),
        Version::V5,
        "will-listener",
    )
    .await;
    bounded("suback", exchange::subscribe(&mut wills, 1, "will/#", 1))
        .await
        .unwrap();
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
    let mut wills = connected(
        &line.broker.addr().to_string(),
        Version::V5,
        "will-listener",
    )
    .await;
    bounded("suback", exchange::subscribe(&mut wills, 1, "will/#", 1))
        .await
        .unwrap();
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
