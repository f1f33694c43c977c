//! `scion-udp` end to end: a SCION client speaks QUIC through the relay to a
//! QUIC-terminating broker side on UDP/IP (the project's own `quic`
//! listener in front of a real mosquitto). QUIC and TLS run end to end; the
//! relay only moves datagrams. A reload moves new clients to another broker.

use crate::common;

use std::sync::Arc;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
use mqttbridge::net::tls::ClientTls;
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
use mqttbridge::service::scion_udp::ScionUdp;
use mqttbridge::service::scion_udp::ScionUdpConfig;
use mqttbridge::service::{Reload, Service};
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{IA132, IA212, UnderlayType, minimal::minimal_topology};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_end_to_end_through_the_scion_udp_relay() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["broker.example"]).unwrap();

    // The QUIC-capable broker side on UDP/IP.
    let quic = quic_listener(&broker, &certs).await;
    let quic_addr = quic.addr.clone();

    // The relay in IA212.
    let token = dir.path().join("snap.token");
    std::fs::write(&token, dev_auth_token()).unwrap();
    let relay_config = ScionUdpConfig {
        endhost_api: ps.endhost_api(IA212),
        snap_token_file: Some(token),
        broker: quic_addr.parse().unwrap(),
        ..ScionUdpConfig::default()
    };
    let (relay, reloader) =
        start_with::<ScionUdp, _>(relay_config.clone(), |relay| relay.reloader()).await;
    let relay_addr = relay.addr.clone();

    // Clients in IA132; TLS is checked against the broker side's name and
    // certificate, end to end through the relay.
    let stack =
        mqttbridge::net::scion::build_stack(ps.endhost_api(IA132).unwrap(), Some(dev_auth_token()))
            .await
            .unwrap();
    let options = TransportOptions {
        tls: ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        server_name: Some("broker.example".into()),
        scion_stack: Some(Arc::new(stack)),
        ..TransportOptions::default()
    };
    let endpoint: Endpoint = format!("scion-quic://{relay_addr}").parse().unwrap();
    let open = |version, options: &TransportOptions| {
        let endpoint = endpoint.clone();
        let options = options.clone();
        async move {
            let stream = bounded("open through relay", transport::open(&endpoint, &options))
                .await
                .expect("QUIC through the relay");
            Connection::over(stream, version)
        }
    };
    for version in [Version::V3_1_1, Version::V5] {
        let mut sub = open(version, &options).await;
        let code = exchange::connect(
            &mut sub,
            &packets::connect(version, "rs", true, 30).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        bounded("suback", exchange::subscribe(&mut sub, 1, "relay/#", 2))
            .await
            .unwrap();
        let mut publisher = open(version, &options).await;
        let code = exchange::connect(
            &mut publisher,
            &packets::connect(version, "rp", true, 30).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        for level in 0..=2u8 {
            let topic = format!("relay/{level}");
            let got = publish_and_receive(
                &mut publisher,
                &mut sub,
                &topic,
                "through the relay",
                level,
                3,
            )
            .await;
            assert_eq!(got.topic, topic);
            assert_eq!(got.payload, b"through the relay");
        }
    }

    // A reload points new clients at another broker side (with its own CA,
    // so a successful handshake proves where the datagrams went).
    let other_certs = certs::generate(&dir.path().join("other"), &["broker.example"]).unwrap();
    let mut other_broker = start::<ScionQuic>(ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(other_certs.server_cert.clone()),
        key: Some(other_certs.server_key.clone()),
        ..ScionQuicConfig::default()
    })
    .await;
    let other_addr = other_broker.addr.clone();
    let bad = ScionUdpConfig {
        broker: "no-such-host.invalid:1".parse().unwrap(),
        ..relay_config.clone()
    };
    assert!(
        reloader.apply(bad).is_err(),
        "an unresolvable broker is refused"
    );
    reloader
        .apply(ScionUdpConfig {
            broker: other_addr.parse().unwrap(),
            ..relay_config
        })
        .unwrap();
    let other_options = TransportOptions {
        tls: ClientTls {
            ca: Some(other_certs.ca.clone()),
            ..ClientTls::default()
        },
        ..options.clone()
    };
    let mut moved = open(Version::V5, &other_options).await;
    let code = exchange::connect(
        &mut moved,
        &packets::connect(Version::V5, "moved", true, 30).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    gauge_reaches(
        "session on the new broker side",
        &mut other_broker.active,
        1,
    )
    .await;
}
