//! SIGHUP re-reads a mode's configuration and certificates: a broken file is refused and
//! the running configuration kept; a good one takes effect for new
//! connections without dropping the open ones.

use crate::common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use mqttbridge::mqtt::Version;
use tokio::io::AsyncBufReadExt;

/// A mode running as its own process, with its log lines readable.
struct Running {
    child: tokio::process::Child,
    logs: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
}

impl Running {
    /// Starts `mqttbridge <mode> --config <path>` and waits for `ready_log`.
    async fn start(mode: &str, path: &std::path::Path, ready_log: &str) -> Running {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args([mode, "--config"])
            .arg(path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let logs = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut running = Running { child, logs };
        running.wait_for_log(ready_log).await;
        running
    }

    /// Waits (bounded) for a log line containing `needle`.
    async fn wait_for_log(&mut self, needle: &str) {
        let logs = &mut self.logs;
        bounded(needle, async {
            while let Some(line) = logs.next_line().await.unwrap() {
                if line.contains(needle) {
                    return;
                }
            }
            panic!("process exited before logging {needle}");
        })
        .await
    }

    /// Sends SIGHUP.
    fn hangup(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_serving_on_a_broken_config_and_applies_a_good_one() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let mut a = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let mut b = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    let config = |upstream: &std::net::SocketAddr| {
        format!("listen = \"127.0.0.1:{port}\"\nupstream = [\"http://{upstream}\"]\n")
    };
    std::fs::write(&path, config(&a.addr)).unwrap();
    let mut proxy = Running::start("r-proxy", &path, "r-proxy serving").await;
    let addr = format!("127.0.0.1:{port}");
    let _first = connected(&addr, Version::V5, "first").await;
    gauge_reaches("first on s-proxy a", &mut a.sessions, 1).await;

    std::fs::write(&path, "upstream = 5\n").unwrap();
    proxy.hangup();
    proxy.wait_for_log("reload refused").await;
    let _second = connected(&addr, Version::V5, "second").await;
    gauge_reaches("second still on s-proxy a", &mut a.sessions, 2).await;

    std::fs::write(&path, config(&b.addr)).unwrap();
    proxy.hangup();
    proxy.wait_for_log("configuration reloaded").await;
    let _third = connected(&addr, Version::V5, "third").await;
    gauge_reaches("third on s-proxy b", &mut b.sessions, 1).await;
    assert_eq!(*a.sessions.borrow(), 2, "open sessions kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_s_proxy_tokens_and_refuses_a_broken_file() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "old-secret\n").unwrap();
    let path = dir.path().join("cloud.toml");
    let good = format!(
        "listen = \"127.0.0.1:{port}\"\nbroker = \"{}\"\nauth_token_file = \"{}\"\n",
        broker.addr(),
        tokens.display()
    );
    std::fs::write(&path, &good).unwrap();
    let mut proxy = Running::start("s-proxy", &path, "s-proxy serving").await;
    let token_file = |name: &str, token: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{token}\n")).unwrap();
        p
    };
    let old = token_file("old", "old-secret");
    let new = token_file("new", "new-secret");
    let upstream = format!("http://127.0.0.1:{port}");
    let connack = async |token: &std::path::Path| {
        let token = token.to_path_buf();
        connack_via_new_r_proxy(&upstream, |c| c.auth_token_file = Some(token)).await
    };
    assert_eq!(connack(&old).await, 0);

    std::fs::write(&path, "broker = 5\n").unwrap();
    proxy.hangup();
    proxy.wait_for_log("reload refused").await;
    assert_eq!(connack(&old).await, 0, "old configuration kept");

    std::fs::write(&tokens, "new-secret\n").unwrap();
    std::fs::write(&path, &good).unwrap();
    proxy.hangup();
    proxy.wait_for_log("configuration reloaded").await;
    assert_eq!(connack(&old).await, 0x88, "the old token no longer works");
    assert_eq!(connack(&new).await, 0, "the new one does");
}

/// The CONNACK code a client gets through a fresh r-proxy (so no HTTP/2
/// connection is reused) towards `upstream`, with `tune` applied to it.
async fn connack_via_new_r_proxy(
    upstream: &str,
    tune: impl FnOnce(&mut mqttbridge::service::r_proxy::RProxyConfig),
) -> u8 {
    use mqttbridge::client::{Connection, exchange, packets};
    let r_proxy = start_r_proxy(&[upstream.to_string()], tune).await;
    let mut conn = Connection::open(&r_proxy.addr, Version::V5).await.unwrap();
    let connect = packets::connect(Version::V5, "reloaded", true, 30).unwrap();
    bounded("CONNACK", exchange::connect(&mut conn, &connect))
        .await
        .unwrap()
}

/// Two CAs with a server certificate each, and the files a config names:
/// they hold the old CA's certificate until a test installs the new one.
struct Rotation {
    old_ca: mqttbridge::tools::certs::Certificates,
    new_ca: mqttbridge::tools::certs::Certificates,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Rotation {
    fn prepare(dir: &Path, name: &str) -> Rotation {
        let old_ca = mqttbridge::tools::certs::generate(&dir.join("old"), &["localhost"]).unwrap();
        let new_ca = mqttbridge::tools::certs::generate(&dir.join("new"), &["localhost"]).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        install_server_cert(&old_ca, &cert, &key);
        Rotation {
            old_ca,
            new_ca,
            cert,
            key,
        }
    }
}

/// Puts `from`'s server certificate and key where a config file names them.
fn install_server_cert(from: &mqttbridge::tools::certs::Certificates, cert: &Path, key: &Path) {
    std::fs::copy(&from.server_cert, cert).unwrap();
    std::fs::copy(&from.server_key, key).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_the_s_proxy_grpc_certificate() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Rotation {
        old_ca,
        new_ca,
        cert,
        key,
    } = Rotation::prepare(dir.path(), "grpc");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("cloud.toml");
    let good = format!(
        "listen = \"127.0.0.1:{port}\"\nbroker = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        broker.addr(),
        cert.display(),
        key.display()
    );
    std::fs::write(&path, &good).unwrap();
    let mut proxy = Running::start("s-proxy", &path, "s-proxy serving").await;
    let upstream = format!("https://127.0.0.1:{port}");
    let connack = async |trusting: &Path| {
        let ca = trusting.to_path_buf();
        connack_via_new_r_proxy(&upstream, |c| {
            c.upstream_ca = Some(ca);
            c.upstream_server_name = Some("localhost".into());
        })
        .await
    };
    assert_eq!(connack(&old_ca.ca).await, 0);
    assert_eq!(
        connack(&new_ca.ca).await,
        0x88,
        "not yet the new certificate"
    );

    install_server_cert(&new_ca, &cert, &key);
    proxy.hangup();
    proxy.wait_for_log("configuration reloaded").await;
    assert_eq!(
        connack(&new_ca.ca).await,
        0,
        "the new certificate is served"
    );
    assert_eq!(connack(&old_ca.ca).await, 0x88, "the old one is gone");

    // A key that does not exist: refused, the running certificate kept.
    std::fs::remove_file(&key).unwrap();
    proxy.hangup();
    proxy.wait_for_log("reload refused").await;
    assert_eq!(connack(&new_ca.ca).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_the_scion_quic_certificate() {
    use mqttbridge::client::{Connection, exchange, packets};
    use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
    use mqttbridge::net::tls::ClientTls;

    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Rotation {
        old_ca,
        new_ca,
        cert,
        key,
    } = Rotation::prepare(dir.path(), "quic");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("scion-quic.toml");
    let good = format!(
        "transport = \"quic\"\nlisten = \"127.0.0.1:{port}\"\nbroker = \"{}\"\n\
         cert = \"{}\"\nkey = \"{}\"\n",
        broker.addr(),
        cert.display(),
        key.display()
    );
    std::fs::write(&path, &good).unwrap();
    let mut proxy = Running::start("scion-quic", &path, "scion-quic serving").await;
    let endpoint: Endpoint = format!("quic://127.0.0.1:{port}").parse().unwrap();
    // The CONNACK code, or None when the TLS handshake fails.
    let connack = async |trusting: &Path| {
        let options = TransportOptions {
            tls: ClientTls {
                ca: Some(trusting.to_path_buf()),
                ..ClientTls::default()
            },
            server_name: Some("localhost".into()),
            ..TransportOptions::default()
        };
        let stream = bounded("QUIC handshake", transport::open(&endpoint, &options))
            .await
            .ok()?;
        let mut conn = Connection::over(stream, Version::V5);
        let connect = packets::connect(Version::V5, "rotated", true, 30).unwrap();
        Some(
            bounded("CONNACK", exchange::connect(&mut conn, &connect))
                .await
                .unwrap(),
        )
    };
    assert_eq!(connack(&old_ca.ca).await, Some(0));
    assert_eq!(
        connack(&new_ca.ca).await,
        None,
        "not yet the new certificate"
    );

    std::fs::write(&path, "transport = 7\n").unwrap();
    proxy.hangup();
    proxy.wait_for_log("reload refused").await;
    assert_eq!(connack(&old_ca.ca).await, Some(0), "old configuration kept");

    install_server_cert(&new_ca, &cert, &key);
    std::fs::write(&path, &good).unwrap();
    proxy.hangup();
    proxy.wait_for_log("configuration reloaded").await;
    assert_eq!(connack(&new_ca.ca).await, Some(0), "the new certificate");
    assert_eq!(connack(&old_ca.ca).await, None, "the old one is gone");
}
