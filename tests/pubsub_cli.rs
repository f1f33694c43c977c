//! `mqttbridge pub` and `sub` as a user runs them, against a real mosquitto
//! directly and through the project's QUIC listener.

use crate::common;

use std::process::Output;

use common::*;
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;

pub(crate) async fn run(args: Vec<String>) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(&args)
        .kill_on_drop(true)
        .output();
    common::bounded("mqttbridge pub/sub", child)
        .await
        .expect("binary runs")
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn retained_publish_then_subscribe_over_tcp() {
    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let out = run(strings(&[
        "pub",
        "-L",
        &url,
        "-V",
        "311",
        "-t",
        "cli/t",
        "-m",
        "hello cli",
        "-q",
        "1",
        "-r",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(strings(&[
        "sub", "-L", &url, "-t", "cli/#", "-C", "1", "-W", "10", "-v",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cli/t hello cli\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_over_quic() {
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let quic = quic_listener(&broker, &certs).await;
    let url = format!("quic://{}", quic.addr);
    let ca = certs.ca.display().to_string();
    let out = run(strings(&[
        "pub",
        "-L",
        &url,
        "--cafile",
        &ca,
        "--server-name",
        "localhost",
        "-t",
        "q/t",
        "-m",
        "over quic",
        "-q",
        "2",
        "-r",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(strings(&[
        "sub",
        "-L",
        &url,
        "--cafile",
        &ca,
        "--server-name",
        "localhost",
        "-t",
        "q/t",
        "-C",
        "1",
        "-W",
        "10",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over quic\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_server_verified_by_its_ip_address() {
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(&dir.path().join("ip"), &["127.0.0.1"]).unwrap();
    let other = certs::generate(&dir.path().join("other"), &["127.0.0.1"]).unwrap();
    // 127.0.0.1:PORT: the URL's host is an IP literal.
    let quic = quic_listener(&broker, &certs).await;
    let url = format!("quic://{}", quic.addr);
    let ca = certs.ca.display().to_string();
    let publish = |extra: &[&str]| {
        let mut args = strings(&["pub", "-L", &url, "-t", "ip/t", "-m", "by ip"]);
        args.extend(strings(extra));
        run(args)
    };
    let out = publish(&["--cafile", &ca]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (extra, words) in [
        (
            vec!["--cafile", &ca, "--server-name", "broker.example"],
            "name mismatch: connected to name 'broker.example', but the server's certificate (CN=127.0.0.1) is for IP:127.0.0.1",
        ),
        (
            vec!["--cafile", other.ca.to_str().unwrap()],
            "unknown CA: the server's certificate (CN=127.0.0.1) is not signed by a CA in the CA file",
        ),
    ] {
        let out = publish(&extra).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} refused");
        assert!(stderr.contains(words), "{extra:?}: {stderr}");
    }
}

#[tokio::test]
async fn clear_errors_for_bad_url_and_timeout() {
    let out = run(strings(&["pub", "-L", "ftp://x:1", "-t", "a", "-m", "b"])).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown scheme"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let broker = Mosquitto::start("").await.unwrap();
    let url = format!("tcp://{}", broker.addr());
    let out = run(strings(&[
        "sub", "-L", &url, "-t", "silent", "-C", "1", "-W", "1",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[path = "pubsub_cli/mosquitto_habits.rs"]
mod mosquitto_habits;
mod sub_flags;
