//! The admin endpoint of a running r-proxy: health, readiness (false while
//! draining) and metrics that move as traffic flows.

use crate::common;

use std::process::Stdio;

use common::*;
use mqttbridge::client::exchange;
use mqttbridge::mqtt::Version;

/// GET `path` from the admin endpoint at `addr`: status code and body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    http_get(stream, path).await
}

/// The value of the sample line starting with `prefix` (0 when absent).
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_of_a_live_r_proxy() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nupstream = [\"http://{}\"]\nshutdown_grace_ms = 5000\n",
            s_proxy.addr
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args([
            "--admin",
            &format!("127.0.0.1:{admin_port}"),
            "r-proxy",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let admin = format!("127.0.0.1:{admin_port}");
    bounded("admin endpoint up", async {
        while tokio::net::TcpStream::connect(&admin).await.is_err() {
            // Retry interval while the process starts.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(get(&admin, "/healthz").await.0, 200);
    // Ready once the first probe found the s-proxy serving.
    bounded("ready", async {
        while get(&admin, "/readyz").await.0 != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    let before = get(&admin, "/metrics").await.1;
    let publishes = "mqttbridge_packets_total{mode=\"r-proxy\",direction=\"client_to_broker\",packet_type=\"publish\"}";
    let opened = "mqttbridge_sessions_opened_total{mode=\"r-proxy\"}";
    let active = "mqttbridge_sessions_active{mode=\"r-proxy\"}";

    let addr = format!("127.0.0.1:{port}");
    let mut client = connected(&addr, Version::V5, "metered").await;
    for i in 1..=3u16 {
        bounded(
            "publish",
            exchange::publish(&mut client, "m", "x", 1, false, i, vec![]),
        )
        .await
        .unwrap();
    }
    let after = get(&admin, "/metrics").await.1;
    assert_eq!(
        sample(&after, publishes) - sample(&before, publishes),
        3.0,
        "{after}"
    );
    assert_eq!(sample(&after, opened) - sample(&before, opened), 1.0);
    assert_eq!(sample(&after, active), 1.0);
    assert!(
        after.contains("mqttbridge_bytes_total{mode=\"r-proxy\",direction=\"broker_to_client\"")
    );
    assert!(after.contains("mqttbridge_connect_seconds_count{mode=\"r-proxy\"} 1"));

    // Draining: the client is still connected, readiness is false.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    bounded("readiness false while draining", async {
        while get(&admin, "/readyz").await.0 != 503 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(client);
    let status = bounded("exit", child.wait()).await.unwrap();
    assert!(status.success());
}
