//! No loss, no duplicates where the QoS forbids them, order kept per
//! publisher: 100,000 QoS 1 and 100,000 QoS 2 messages through each line to
//! a real mosquitto (unlimited queues, so any loss seen is ours), once with
//! a subscriber that keeps up and once with a slow one (10,000 msg/s, about
//! half of what the lines carry here), so that every queue between the
//! broker and the subscriber fills. The load is
//! `mqttbridge bench throughput` run as a user would, read from its JSON.

use crate::common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
use mqttbridge::service::scion_udp::ScionUdp;
use mqttbridge::service::scion_udp::ScionUdpConfig;
use mqttbridge::tools::certs::{self, Certificates};
use mqttbridge::tools::mosquitto::Mosquitto;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{
    IA132, IA212, PsSetup, UnderlayType, minimal::minimal_topology,
};
use serde_json::Value;

/// Publishers, and messages each: 100,000 in all.
const PUBLISHERS: &str = "2";
const PER_PUBLISHER: u64 = 50_000;
/// What the slow subscriber takes at most, messages per second: below what
/// every line carries, so the backlog builds on the way.
const SLOW_RATE: &str = "10000";
/// A guard against a hung run, not a performance limit: 100,000 messages
/// take 5 to 15 s each here.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Runs the four loads through `url` and checks each report.
async fn no_loss(line: &str, url: &str, client_flags: &[String]) {
    for (qos, slow) in [(1u8, false), (2, false), (1, true), (2, true)] {
        let mut args: Vec<String> = [
            "bench",
            "throughput",
            "-L",
            url,
            "-p",
            PUBLISHERS,
            "-s",
            "1",
        ]
        .map(String::from)
        .to_vec();
        args.extend(client_flags.iter().cloned());
        args.extend([
            "-q".into(),
            qos.to_string(),
            "-n".into(),
            PER_PUBLISHER.to_string(),
            "--json".into(),
        ]);
        if slow {
            args.extend(["--subscriber-rate".into(), SLOW_RATE.into()]);
        }
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
            .args(&args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(RUN_LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{line} QoS {qos}: no report within {RUN_LIMIT:?}"))
            .unwrap();
        assert!(
            output.status.success(),
            "{line} QoS {qos}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let what = format!(
            "{line}, QoS {qos}{}",
            if slow { ", slow subscriber" } else { "" }
        );
        println!(
            "{what}: {} delivered in {:.1} s, {} lost, {} duplicates, {} out of order",
            report["received"],
            report["seconds"],
            report["lost"],
            report["duplicates"],
            report["out_of_order"]
        );
        let total = 2 * PER_PUBLISHER;
        assert_eq!(report["sent"], total, "{what}: all sent");
        assert_eq!(report["lost"], 0, "{what}: at least once");
        assert_eq!(report["out_of_order"], 0, "{what}: in order per publisher");
        if qos == 2 {
            assert_eq!(report["duplicates"], 0, "{what}: exactly once");
        }
    }
}

/// mosquitto queueing without limit, so that any loss is the line's, and
/// sending QoS 1/2 messages without waiting for acknowledgements (no
/// in-flight window), so that a slow subscriber's backlog fills the line's
/// queues rather than staying in the broker.
async fn broker() -> Mosquitto {
    Mosquitto::start("max_queued_messages 0\nmax_inflight_messages 0")
        .await
        .expect("mosquitto starts (apt-get install mosquitto)")
}

/// What a client needs to trust `certs` under `name`.
fn tls_flags(certs: &Certificates, name: &str) -> Vec<String> {
    vec![
        "--cafile".into(),
        certs.ca.display().to_string(),
        "--server-name".into(),
        name.into(),
    ]
}

/// A SNAP token file for pocketscion's endhost APIs.
fn token_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("snap.token");
    std::fs::write(&path, dev_auth_token()).unwrap();
    path
}

/// The bench joins the SCION network in IA132.
fn scion_client_flags(ps: &PsSetup, token: &Path) -> Vec<String> {
    vec![
        "--endhost-api".into(),
        ps.endhost_api(IA132).unwrap().to_string(),
        "--snap-token-file".into(),
        token.display().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_line_loses_nothing() {
    let broker = broker().await;
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |_| {}).await;
    no_loss("gRPC line", &format!("tcp://{}", r_proxy.addr), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_over_udp_loses_nothing() {
    let broker = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let quic = quic_listener(&broker, &certs).await;
    let addr = quic.addr.clone();
    no_loss(
        "scion-quic over UDP/IP",
        &format!("quic://{addr}"),
        &tls_flags(&certs, "localhost"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_over_scion_loses_nothing() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let token = token_file(dir.path());
    let proxy = start::<ScionQuic>(ScionQuicConfig {
        transport: QuicTransport::Scion,
        endhost_api: ps.endhost_api(IA212),
        snap_token_file: Some(token.clone()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    })
    .await;
    let url = format!("scion-quic://{}", proxy.addr);
    let mut flags = tls_flags(&certs, "localhost");
    flags.extend(scion_client_flags(&ps, &token));
    no_loss("scion-quic over SCION", &url, &flags).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_udp_relay_loses_nothing() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["broker.example"]).unwrap();
    let token = token_file(dir.path());
    let quic = quic_listener(&broker, &certs).await;
    let quic_addr = quic.addr.clone();
    let relay = start::<ScionUdp>(ScionUdpConfig {
        endhost_api: ps.endhost_api(IA212),
        snap_token_file: Some(token.clone()),
        broker: quic_addr.parse().unwrap(),
        ..ScionUdpConfig::default()
    })
    .await;
    let url = format!("scion-quic://{}", relay.addr);
    let mut flags = tls_flags(&certs, "broker.example");
    flags.extend(scion_client_flags(&ps, &token));
    no_loss("scion-udp relay", &url, &flags).await;
}
