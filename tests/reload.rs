//! SIGHUP re-reads the r-proxy's configuration: a broken file is refused and
//! the running configuration kept; a good one takes effect for new
//! connections without dropping the open ones.

mod common;

use std::process::Stdio;

use common::*;
use mqttbridge::codec::Version;
use tokio::io::AsyncBufReadExt;

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_serving_on_a_broken_config_and_applies_a_good_one() {
    let broker = mqttbridge::mosquitto::Mosquitto::start("").await.unwrap();
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
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["r-proxy", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut logs = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for_log = async |needle: &str| {
        bounded(needle, async {
            while let Some(line) = logs.next_line().await.unwrap() {
                if line.contains(needle) {
                    return;
                }
            }
            panic!("r-proxy exited before logging {needle}");
        })
        .await
    };
    wait_for_log("r-proxy serving").await;
    let addr = format!("127.0.0.1:{port}");
    let _first = connected(&addr, Version::V5, "first").await;
    gauge_reaches("first on s-proxy a", &mut a.sessions, 1).await;

    std::fs::write(&path, "upstream = 5\n").unwrap();
    hangup(child.id().unwrap());
    wait_for_log("reload refused").await;
    let _second = connected(&addr, Version::V5, "second").await;
    gauge_reaches("second still on s-proxy a", &mut a.sessions, 2).await;

    std::fs::write(&path, config(&b.addr)).unwrap();
    hangup(child.id().unwrap());
    wait_for_log("configuration reloaded").await;
    let _third = connected(&addr, Version::V5, "third").await;
    gauge_reaches("third on s-proxy b", &mut b.sessions, 1).await;
    assert_eq!(*a.sessions.borrow(), 2, "open sessions kept");
}
