//! Readiness that tells the truth, from outside as an operator's load
//! balancer sees it: `/readyz` of the r-proxy and the s-proxy, and the
//! s-proxy's standard gRPC health service (`grpc.health.v1.Health`, Check
//! and Watch, with tonic-health's client), while the broker and the
//! s-proxy are killed and started again. Real processes, real mosquitto.

use crate::common;

use common::*;
use mqttbridge::mqtt::Version;
use mqttbridge::tools::mosquitto::Mosquitto;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const RELAY: &str = "mqtt.MqttRelayService";

async fn health(s_proxy: &str) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{s_proxy}"))
        .unwrap()
        .connect_lazy();
    HealthClient::new(channel)
}

async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    bounded("health check", client.check(request))
        .await
        .expect("the health service answers")
        .into_inner()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_and_the_s_proxy() {
    let mut broker = Mosquitto::start("").await.unwrap();
    let s_listen = format!("127.0.0.1:{}", free_port());
    let broker_addr = broker.addr().to_string();
    let mut s_proxy = ModeProcess::start(&[
        "s-proxy",
        "--listen",
        &s_listen,
        "--broker",
        &broker_addr,
        "--broker-probe-ms",
        "200",
    ])
    .await;
    let upstream = format!("http://{s_listen}");
    let mut r_proxy = ModeProcess::start(&[
        "r-proxy",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--upstream",
        &upstream,
        "--upstream-probe-ms",
        "200",
    ])
    .await;
    let mut client = health(&s_listen).await;
    assert_eq!(check(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(check(&mut client, RELAY).await, ServingStatus::Serving);
    let mut watch = bounded(
        "watch",
        client.watch(HealthCheckRequest {
            service: RELAY.into(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let first = bounded("first status", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    // The broker goes: the s-proxy says so on both, and the r-proxy, whose
    // only s-proxy no longer serves, too.
    broker.kill();
    let why = s_proxy.readyz_becomes(503).await;
    assert!(why.contains(&broker_addr), "names the broker: {why}");
    let next = bounded("watch update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    assert_eq!(check(&mut client, RELAY).await, ServingStatus::NotServing);
    let why = r_proxy.readyz_becomes(503).await;
    assert!(
        why.contains("no s-proxy serves") && why.contains("NOT_SERVING"),
        "{why}"
    );

    // It comes back within seconds.
    broker.restart().await.unwrap();
    s_proxy.readyz_becomes(200).await;
    let back = bounded("watch update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status(), ServingStatus::Serving);
    r_proxy.readyz_becomes(200).await;

    // The s-proxy itself goes (kill -9), and comes back.
    s_proxy.kill9().await;
    let why = r_proxy.readyz_becomes(503).await;
    assert!(why.contains(&upstream), "names the s-proxy: {why}");
    s_proxy.restart().await;
    r_proxy.readyz_becomes(200).await;
    r_proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_go_to_the_s_proxy_whose_broker_answers() {
    let broker = Mosquitto::start("").await.unwrap();
    let nowhere = format!("127.0.0.1:{}", free_port());
    let mut serving = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
    let cut_off = start_s_proxy(&nowhere, |_| {}).await;
    becomes_ready("s-proxy with a broker ready", &mut serving.ready).await;
    let mut r_proxy = start_r_proxy(
        &[
            format!("http://{}", cut_off.addr),
            format!("http://{}", serving.addr),
        ],
        |_| {},
    )
    .await;
    becomes_ready("r-proxy ready", &mut r_proxy.ready).await;
    // Round robin alone would send every other client to the s-proxy whose
    // broker is gone (CONNACK "server unavailable"); the health probes
    // keep them all on the one that serves.
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(connected(&r_proxy.addr, Version::V5, &format!("healthy-{i}")).await);
    }
    gauge_reaches("all four on the serving s-proxy", &mut serving.sessions, 4).await;
}
