//! `mqttbridge bench` against a real mosquitto: tiny runs whose counts are
//! known, checked through the JSON a machine would read, and the SVG chart.

use std::process::Command;

use mqttbridge::tools::mosquitto::Mosquitto;
use serde_json::Value;

/// Runs `mqttbridge bench <args>` and returns its JSON report.
fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_counts_every_delivery_at_every_qos() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    // QoS 1 at a fixed rate (paced publishers), the others as fast as possible.
    for (qos, version, rate) in [
        ("0", "5", None),
        ("1", "311", Some("3000")),
        ("2", "5", None),
    ] {
        let mut args = vec![
            "throughput",
            "-L",
            &url,
            "-V",
            version,
            "-q",
            qos,
            "-p",
            "2",
            "-s",
            "3",
            "-n",
            "150",
        ];
        if let Some(rate) = rate {
            args.extend(["--rate", rate]);
        }
        let report = bench(&args);
        assert_eq!(report["mode"], "throughput");
        assert_eq!(report["sent"], 300, "QoS {qos}: 2 publishers x 150");
        assert_eq!(
            report["expected"], 900,
            "QoS {qos}: every subscriber gets all"
        );
        assert_eq!(report["received"], 900, "QoS {qos}");
        assert_eq!(report["lost"], 0);
        assert_eq!(report["duplicates"], 0);
        assert_eq!(report["out_of_order"], 0);
        assert_eq!(report["latency"]["samples"], 900);
        assert!(report["delivery_rate"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_reports_percentiles_and_draws_the_cdf() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("cdf.svg");
    let report = bench(&[
        "latency",
        "-L",
        &url,
        "-q",
        "1",
        "-n",
        "200",
        "--warmup",
        "10",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let latency = &report["latency"];
    assert_eq!(latency["samples"], 200);
    let p = |k: &str| latency[k].as_f64().unwrap();
    assert!(p("min_us") > 0.0);
    assert!(p("min_us") <= p("p50_us") && p("p50_us") <= p("p90_us"));
    assert!(p("p90_us") <= p("p99_us") && p("p99_us") <= p("p999_us"));
    assert!(p("p999_us") <= p("max_us"));
    let cdf = report["cdf"].as_array().unwrap();
    assert_eq!(cdf.last().unwrap()[1].as_f64().unwrap(), 100.0);
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.starts_with("<svg") && drawing.contains("<polyline"));
    assert!(drawing.contains("latency CDF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_hold_and_measure_the_broker() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let watch = format!("mosquitto={}", broker.pid());
    let report = bench(&[
        "connections",
        "-L",
        &url,
        "-n",
        "50",
        "--rate",
        "0",
        "--hold",
        "0.2",
        "--watch",
        &watch,
    ]);
    assert_eq!(report["requested"], 50);
    assert_eq!(report["opened"], 50);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["alive_after_hold"], 50);
    assert_eq!(report["connect_latency"]["samples"], 50);
    let memory = &report["memory"][0];
    assert_eq!(memory["name"], "mosquitto");
    assert!(memory["rss_before_kib"].as_u64().unwrap() > 0);
    // Measured from when 5 of the 50 were open, over the 45 since.
    assert!(memory["marginal_bytes"].is_f64(), "{memory}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_clear_error() {
    // Nothing listens on the port: the run fails, saying where it tried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["bench", "latency", "-L", &format!("tcp://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&port.to_string()), "{stderr}");
}
