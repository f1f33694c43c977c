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

/// The value of the series exactly `series` (name and labels).
fn exact(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_is_there_at_zero_before_the_first_client() {
    let broker = mqttbridge::tools::mosquitto::Mosquitto::start("")
        .await
        .unwrap();
    let s_listen = format!("127.0.0.1:{}", free_port());
    let broker_addr = broker.addr().to_string();
    let s_proxy =
        ModeProcess::start(&["s-proxy", "--listen", &s_listen, "--broker", &broker_addr]).await;
    let upstream = format!("http://{s_listen}");
    let r_proxy_addr = format!("127.0.0.1:{}", free_port());
    let r_proxy = ModeProcess::start(&[
        "r-proxy",
        "--listen",
        &r_proxy_addr,
        "--upstream",
        &upstream,
    ])
    .await;
    let mut exported = String::new();
    for (process, mode, upstream) in [
        (&r_proxy, "r-proxy", &upstream),
        (&s_proxy, "s-proxy", &broker_addr),
    ] {
        let stream = tokio::net::TcpStream::connect(&process.admin)
            .await
            .unwrap();
        let metrics = http_get(stream, "/metrics").await.1;
        exported.push_str(&metrics);
        let m = format!("mode=\"{mode}\"");
        let mut zero = vec![
            format!("mqttbridge_sessions_active{{{m}}}"),
            format!("mqttbridge_sessions_opened_total{{{m}}}"),
            format!("mqttbridge_connect_seconds_count{{{m}}}"),
            format!("mqttbridge_upstream_errors_total{{{m},upstream=\"{upstream}\"}}"),
            format!("mqttbridge_resume_gap_seconds_count{{{m}}}"),
            format!("mqttbridge_replay_buffer_bytes{{{m}}}"),
        ];
        for reason in mqttbridge::ops::telemetry::CLOSE_REASONS {
            zero.push(format!(
                "mqttbridge_sessions_closed_total{{{m},reason=\"{reason}\"}}"
            ));
        }
        for reason in mqttbridge::ops::telemetry::REFUSAL_REASONS {
            zero.push(format!(
                "mqttbridge_connections_refused_total{{{m},reason=\"{reason}\"}}"
            ));
        }
        for outcome in ["resumed", "refused", "expired"] {
            zero.push(format!(
                "mqttbridge_resumes_total{{{m},outcome=\"{outcome}\"}}"
            ));
        }
        for direction in ["client_to_broker", "broker_to_client"] {
            let d = format!("direction=\"{direction}\"");
            zero.push(format!(
                "mqttbridge_bytes_total{{{m},{d},packet_type=\"all\"}}"
            ));
            zero.push(format!(
                "mqttbridge_queue_full_total{{{m},{d},packet_type=\"all\"}}"
            ));
            for packet_type in [
                "connect",
                "publish",
                "puback",
                "pubrel",
                "pingreq",
                "disconnect",
                "auth",
            ] {
                zero.push(format!(
                    "mqttbridge_packets_total{{{m},{d},packet_type=\"{packet_type}\"}}"
                ));
            }
        }
        for series in &zero {
            assert_eq!(
                exact(&metrics, series),
                Some(0.0),
                "{series} at 0 in {metrics}"
            );
        }
        // The connect histogram reaches past the 5 s connect timeouts.
        assert!(
            metrics.contains(&format!(
                "mqttbridge_connect_seconds_bucket{{le=\"32.768\",{m}}} 0"
            )),
            "{metrics}"
        );
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            metrics.contains(&format!(
                "mqttbridge_build_info{{version=\"{version}\",profile="
            )),
            "{metrics}"
        );
        for process_metric in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                exact(&metrics, process_metric).is_some_and(|v| v >= 0.0),
                "{process_metric} in {metrics}"
            );
        }
        assert!(!metrics.contains("unknown"), "no unknown reason: {metrics}");
    }
    // The alert rules and the dashboard in contrib/ use only what exists.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let alerts = std::fs::read_to_string(root.join("contrib/prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(root.join("contrib/grafana/mqttbridge.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").clone())
        .map(|target| target["expr"].as_str().expect("expr").to_string())
        .chain(
            alerts
                .lines()
                .filter_map(|l| l.trim().strip_prefix("expr: "))
                .map(str::to_string),
        )
        .collect();
    assert!(exprs.len() > 20, "{} expressions", exprs.len());
    let mut used = 0;
    for expr in &exprs {
        for name in metric_names(expr) {
            used += 1;
            let exists = exported.lines().any(|l| {
                l.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            });
            assert!(exists, "{name} (in `{expr}`) is not exported");
        }
    }
    assert!(used > 20, "{used} metric uses");

    // A session's end is one log line on each proxy with why, how long and
    // how many bytes each way.
    let r_addr = r_proxy_addr.clone();
    let mut client = connected(&r_addr, Version::V5, "logged").await;
    bounded(
        "publish",
        exchange::publish(&mut client, "logged", "x", 1, false, 1, vec![]),
    )
    .await
    .unwrap();
    client
        .send(&mqttbridge::client::packets::disconnect(Version::V5))
        .await
        .unwrap();
    assert_eq!(r_proxy.log_field("closed", "reason").await, "client_closed");
    let from_client: u64 = r_proxy
        .log_field("closed", "bytes_from_client")
        .await
        .parse()
        .unwrap();
    let to_client: u64 = r_proxy
        .log_field("closed", "bytes_to_client")
        .await
        .parse()
        .unwrap();
    assert!(
        from_client > 20 && to_client > 4,
        "{from_client} / {to_client}"
    );
    r_proxy.log_field("closed", "duration_ms").await;
    assert_eq!(
        s_proxy.log_field("session closed", "reason").await,
        "client_closed"
    );
    let to_broker: u64 = s_proxy
        .log_field("session closed", "bytes_to_broker")
        .await
        .parse()
        .unwrap();
    assert!(to_broker > 20, "{to_broker}");
    // The client ended the session, so the r-proxy did: the s-proxy waited
    // for nothing the r-proxy no longer sends (had that wait run out, at
    // its drain timeout, a warning would precede the line above).
    s_proxy.log_field("session closed", "duration_ms").await;
    assert!(!s_proxy.logged("the r-proxy did not acknowledge the end of the session in time"));
    // Each line names its session in the session's span.
    assert_eq!(r_proxy.log_span_field("closed", "ingress").await, "tcp");
    assert!(
        r_proxy
            .log_span_field("closed", "peer")
            .await
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        s_proxy
            .log_span_field("session closed", "peer_session")
            .await,
        r_proxy.log_field("closed", "session").await
    );
}

#[tokio::test]
async fn a_fatal_error_is_json_under_log_format_json() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args([
            "--log-format",
            "json",
            "r-proxy",
            "--config",
            "/nonexistent/edge.toml",
        ])
        .output();
    let out = bounded("mqttbridge exits", out).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(line["level"], "ERROR");
    let error = line["fields"]["error"].as_str().unwrap();
    // The cause once, not twice.
    assert_eq!(
        error.matches("No such file or directory").count(),
        1,
        "{error}"
    );
    assert!(error.contains("/nonexistent/edge.toml"), "{error}");
}

/// The mqttbridge_* and process_* names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    expr.split(|c: char| !word(c))
        .filter(|w| w.starts_with("mqttbridge_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect()
}
