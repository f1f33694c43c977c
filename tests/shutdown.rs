//! SIGTERM as an operator (or systemd) sends it: r-proxy stops accepting,
//! lets sessions go on for the grace period, tells MQTT 5 clients DISCONNECT
//! 0x8B and exits 0; systemd hears READY=1 and STOPPING=1.

mod common;

use std::process::Stdio;

use common::*;
use mqttbridge::client::Connection;
use mqttbridge::codec::{Packet, Version};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_says_server_shutting_down_and_exits_0() {
    let broker = mqttbridge::mosquitto::Mosquitto::start("").await.unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nupstream = [\"http://{}\"]\nshutdown_grace_ms = 300\n",
            s_proxy.addr
        ),
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["r-proxy", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = bounded("READY=1", notify.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"READY=1");

    let addr = format!("127.0.0.1:{port}");
    let mut v5 = connected(&addr, Version::V5, "draining-v5").await;
    let mut v3 = connected(&addr, Version::V3_1_1, "draining-v3").await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let n = bounded("STOPPING=1", notify.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");

    // New connections are refused while draining.
    assert!(
        bounded("refused", async {
            match Connection::open(&addr, Version::V5).await {
                Err(_) => true,
                Ok(mut c) => matches!(c.recv().await, Ok(None) | Err(_)),
            }
        })
        .await,
        "no new connections once draining"
    );
    match next_packet(&mut v5).await {
        Some(Packet::V5_0Disconnect(d)) => {
            assert_eq!(
                d.reason_code().map(|c| c as u8),
                Some(0x8b),
                "server shutting down"
            )
        }
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
    assert!(next_packet(&mut v5).await.is_none());
    assert!(next_packet(&mut v3).await.is_none());
    let status = bounded("exit", child.wait()).await.unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_quic_drains_open_sessions_then_stops() {
    use mqttbridge::client::{Client, ClientOptions};
    use mqttbridge::config::{QuicTransport, ScionQuicConfig};
    use mqttbridge::mode::scion_quic::ScionQuic;

    let broker = mqttbridge::mosquitto::Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = mqttbridge::certs::generate(dir.path(), &["localhost"]).unwrap();
    let proxy = ScionQuic::bind(ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        shutdown_grace_ms: mqttbridge::config::Millis(60_000.try_into().unwrap()),
        ..ScionQuicConfig::default()
    })
    .await
    .unwrap();
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
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_quic_says_server_shutting_down_when_the_grace_period_ends() {
    use mqttbridge::client::transport::{self, Endpoint, TransportOptions};
    use mqttbridge::client::{exchange, packets};
    use mqttbridge::config::{QuicTransport, ScionQuicConfig};
    use mqttbridge::mode::scion_quic::ScionQuic;
    use mqttbridge::quic::ClientTls;

    let broker = mqttbridge::mosquitto::Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = mqttbridge::certs::generate(dir.path(), &["localhost"]).unwrap();
    let proxy = ScionQuic::bind(ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        shutdown_grace_ms: mqttbridge::config::Millis(200.try_into().unwrap()),
        ..ScionQuicConfig::default()
    })
    .await
    .unwrap();
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
    match next_packet(&mut v5).await {
        Some(Packet::V5_0Disconnect(d)) => {
            assert_eq!(d.reason_code().map(|c| c as u8), Some(0x8b))
        }
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
    assert!(next_packet(&mut v5).await.is_none());
    assert!(next_packet(&mut v3).await.is_none(), "3.1.1 just closes");
    bounded("serve returns", serving).await.unwrap();
    gauge_reaches("no sessions left", &mut sessions, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_proxy_sigterm_reaches_clients_as_server_shutting_down() {
    let broker = mqttbridge::mosquitto::Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("cloud.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nbroker = \"{}\"\nshutdown_grace_ms = 200\n",
            broker.addr()
        ),
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["s-proxy", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = bounded("READY=1", notify.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    let r_proxy = start_r_proxy(&[format!("http://127.0.0.1:{port}")], |_| {}).await;
    let mut v5 = connected(&r_proxy.addr, Version::V5, "s-ending-v5").await;
    let mut v3 = connected(&r_proxy.addr, Version::V3_1_1, "s-ending-v3").await;

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    match next_packet(&mut v5).await {
        Some(Packet::V5_0Disconnect(d)) => {
            assert_eq!(d.reason_code().map(|c| c as u8), Some(0x8b))
        }
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
    assert!(next_packet(&mut v5).await.is_none());
    assert!(next_packet(&mut v3).await.is_none(), "3.1.1 just closes");
    let status = bounded("exit", child.wait()).await.unwrap();
    assert!(status.success(), "exit status {status}");
}
