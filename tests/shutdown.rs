//! SIGTERM as an operator (or systemd) sends it: each mode stops accepting,
//! lets sessions go on for the grace period, tells MQTT 5 clients DISCONNECT
//! 0x8B and exits 0; systemd hears READY=1 and STOPPING=1.

use crate::common;

use std::process::Stdio;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::service::Service as _;

/// A mode started as a process with a systemd notify socket; its log
/// (JSON lines) goes to a file.
struct Service {
    child: tokio::process::Child,
    notify: tokio::net::UnixDatagram,
    log: tempfile::NamedTempFile,
}

impl Service {
    /// Starts `mqttbridge <mode> --config <config>` and waits for READY=1.
    async fn start(mode: &str, config: &std::path::Path, dir: &std::path::Path) -> Service {
        let notify_path = dir.join(format!("{mode}-notify.sock"));
        let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args([mode, "--log-format", "json", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut service = Service { child, notify, log };
        service.expect_notification("READY=1").await;
        service
    }

    async fn expect_notification(&mut self, expected: &str) {
        let mut buf = [0u8; 64];
        let n = bounded(expected, self.notify.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], expected.as_bytes());
    }

    fn terminate(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for it to exit with 0; the messages of its log lines.
    async fn exits_0(mut self) -> Vec<String> {
        let status = bounded("exit", self.child.wait()).await.unwrap();
        assert!(status.success(), "exit status {status}");
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                entry["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

/// scion-quic on plain UDP/IP in front of `broker`, with this shutdown grace.
async fn plain_quic_proxy(
    broker: &mqttbridge::tools::mosquitto::Mosquitto,
    certs: &mqttbridge::tools::certs::Certificates,
    grace_ms: u32,
) -> mqttbridge::service::scion_quic::ScionQuic {
    use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
    use mqttbridge::service::settings::Millis;
    mqttbridge::service::scion_quic::ScionQuic::bind(ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        shutdown_grace_ms: Millis(grace_ms.try_into().unwrap()),
        ..ScionQuicConfig::default()
    })
    .await
    .unwrap()
}

/// The MQTT 5 client hears DISCONNECT 0x8B, then the end of the stream.
async fn told_server_shutting_down(v5: &mut Connection) {
    match next_packet(v5).await {
        Some(Packet::V5_0Disconnect(d)) => {
            assert_eq!(
                d.reason_code().map(|c| c as u8),
                Some(0x8b),
                "server shutting down"
            )
        }
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
    assert!(next_packet(v5).await.is_none());
}

/// Two sessions closed (`closed` is their log message) and neither waited
/// its time out for `peer` to acknowledge its end.
fn ended_without_waiting_out(logged: &[String], closed: &str, peer: &str) {
    assert_eq!(
        logged.iter().filter(|m| *m == closed).count(),
        2,
        "{logged:?}"
    );
    let waited = format!("the {peer} did not acknowledge the end of the session in time");
    assert!(!logged.contains(&waited), "{logged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_says_server_shutting_down_and_exits_0() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nupstream = [\"http://{}\"]\nshutdown_grace_ms = 300\n",
            s_proxy.addr
        ),
    )
    .unwrap();
    let mut service = Service::start("r-proxy", &config, dir.path()).await;

    let addr = format!("127.0.0.1:{port}");
    let mut v5 = connected(&addr, Version::V5, "draining-v5").await;
    let mut v3 = connected(&addr, Version::V3_1_1, "draining-v3").await;
    service.terminate();
    service.expect_notification("STOPPING=1").await;

    // New connections are refused while draining. The client speaks first,
    // as MQTT clients do: a handshake that races the listener's close can
    // be dropped by the kernel without a word, and only the CONNECT then
    // draws the reset.
    let late = async {
        match Connection::open(&addr, Version::V5).await {
            Err(_) => None,
            Ok(mut c) => {
                let connect = packets::connect(Version::V5, "too-late", true, 60).unwrap();
                exchange::connect(&mut c, &connect).await.ok()
            }
        }
    };
    assert_eq!(
        bounded("refused", late).await,
        None,
        "no CONNACK for a new connection once draining"
    );
    told_server_shutting_down(&mut v5).await;
    assert!(next_packet(&mut v3).await.is_none());
    // Each session told the s-proxy it ended and heard it acknowledged
    // (the r-proxy reads the line while it waits).
    let logged = service.exits_0().await;
    ended_without_waiting_out(&logged, "closed", "s-proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_quic_drains_open_sessions_then_stops() {
    use mqttbridge::client::{Client, ClientOptions};

    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = mqttbridge::tools::certs::generate(dir.path(), &["localhost"]).unwrap();
    let proxy = plain_quic_proxy(&broker, &certs, 60_000).await;
    let url = format!("quic://{}", proxy.local_addr());
    let mut sessions = proxy.sessions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(proxy.serve(async move {
        let _ = stopped.await;
    }));
    let mut options = ClientOptions::new(&url, "drained");
    options.transport.tls.ca = Some(certs.ca.clone());
    options.transport.server_name = Some("localhost".into());
    let (client, _messages) = bounded("connect", Client::connect(options)).await.unwrap();
    gauge_reaches("session open", &mut sessions, 1).await;

    stop.send(()).unwrap();
    // The open session keeps working while the proxy drains...
    client
        .publish("drain", "still served", 1, false)
        .await
        .unwrap();
    assert!(!serving.is_finished(), "serve waits for the open session");
    // ...and once it ends, the proxy stops (well before the 60 s grace).
    client.disconnect().await.unwrap();
    bounded("serve returns after the last session", serving)
        .await
        .unwrap()
        .expect("serve ends without an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_quic_says_server_shutting_down_when_the_grace_period_ends() {
    use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
    use mqttbridge::net::tls::ClientTls;

    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = mqttbridge::tools::certs::generate(dir.path(), &["localhost"]).unwrap();
    let proxy = plain_quic_proxy(&broker, &certs, 200).await;
    let endpoint: Endpoint = format!("quic://{}", proxy.local_addr()).parse().unwrap();
    let mut sessions = proxy.sessions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(proxy.serve(async move {
        let _ = stopped.await;
    }));
    let options = TransportOptions {
        tls: ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        server_name: Some("localhost".into()),
        ..TransportOptions::default()
    };
    let mut clients = Vec::new();
    for (version, id) in [(Version::V5, "ending-v5"), (Version::V3_1_1, "ending-v3")] {
        let stream = bounded("open", transport::open(&endpoint, &options))
            .await
            .unwrap();
        let mut conn = Connection::over(stream, version);
        let connect = packets::connect(version, id, true, 60).unwrap();
        let code = bounded("CONNACK", exchange::connect(&mut conn, &connect))
            .await
            .unwrap();
        assert_eq!(code, 0);
        // A subscribed session, as in real use.
        bounded("suback", exchange::subscribe(&mut conn, 1, "ending/#", 0))
            .await
            .unwrap();
        clients.push(conn);
    }
    gauge_reaches("both sessions open", &mut sessions, 2).await;

    stop.send(()).unwrap();
    let mut v5 = clients.remove(0);
    let mut v3 = clients.remove(0);
    told_server_shutting_down(&mut v5).await;
    assert!(next_packet(&mut v3).await.is_none(), "3.1.1 just closes");
    bounded("serve returns", serving)
        .await
        .unwrap()
        .expect("serve ends without an error");
    gauge_reaches("no sessions left", &mut sessions, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_proxy_sigterm_reaches_clients_as_server_shutting_down() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("cloud.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nbroker = \"{}\"\nshutdown_grace_ms = 200\n",
            broker.addr()
        ),
    )
    .unwrap();
    let service = Service::start("s-proxy", &config, dir.path()).await;
    let r_proxy = start_r_proxy(&[format!("http://127.0.0.1:{port}")], |_| {}).await;
    let mut v5 = connected(&r_proxy.addr, Version::V5, "s-ending-v5").await;
    let mut v3 = connected(&r_proxy.addr, Version::V3_1_1, "s-ending-v3").await;

    service.terminate();
    told_server_shutting_down(&mut v5).await;
    assert!(next_packet(&mut v3).await.is_none(), "3.1.1 just closes");
    // Each session's end was acknowledged by the r-proxy (read while the
    // s-proxy waited for it).
    let logged = service.exits_0().await;
    ended_without_waiting_out(&logged, "session closed", "r-proxy");
}
