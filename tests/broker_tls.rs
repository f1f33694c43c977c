//! Reaching a TLS-only broker listener (mqtts://): s-proxy and scion-quic
//! with a CA bundle and, where the broker demands one, a client certificate.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;

/// mosquitto with an extra TLS-only listener; returns it and that port.
async fn tls_broker(certs: &certs::Certificates, require_client_cert: bool) -> (Mosquitto, u16) {
    let port = free_port();
    let extra = format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
        require_client_cert
    );
    (Mosquitto::start(&extra).await.unwrap(), port)
}

#[tokio::test]
async fn s_proxy_reaches_a_tls_only_broker() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let (_broker, port) = tls_broker(&certs, true).await;
    let url = format!("mqtts://localhost:{port}");

    let with_cert = start_s_proxy(&url, |c| {
        c.broker_tls.ca = Some(certs.ca.clone());
        c.broker_tls.cert = Some(certs.client_cert.clone());
        c.broker_tls.key = Some(certs.client_key.clone());
    })
    .await;
    let r_proxy = start_r_proxy(&[format!("http://{}", with_cert.addr)], |_| {}).await;
    let mut client = connected(&r_proxy.addr, Version::V5, "over-tls").await;
    bounded("suback", exchange::subscribe(&mut client, 1, "tls/#", 1))
        .await
        .unwrap();
    bounded(
        "publish",
        exchange::publish(&mut client, "tls/x", "secret", 0, false, 0, vec![]),
    )
    .await
    .unwrap();
    let got = bounded("delivery", exchange::receive(&mut client))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, b"secret");

    // The broker requires a client certificate: without one, the client
    // hears "server unavailable".
    let without_cert = start_s_proxy(&url, |c| c.broker_tls.ca = Some(certs.ca.clone())).await;
    let r_proxy = start_r_proxy(&[format!("http://{}", without_cert.addr)], |_| {}).await;
    let mut conn = Connection::open(&r_proxy.addr, Version::V5).await.unwrap();
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(Version::V5, "x", true, 30).unwrap(),
        ),
    )
    .await;
    assert!(matches!(code, Ok(0x88) | Err(_)), "{code:?}");
}

#[tokio::test]
async fn broker_certificate_must_verify() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let other = certs::generate(&dir.path().join("other"), &["localhost"]).unwrap();
    let (_broker, port) = tls_broker(&certs, false).await;
    // Trusting another CA: the broker's certificate does not verify.
    let s_proxy = start_s_proxy(&format!("mqtts://localhost:{port}"), |c| {
        c.broker_tls.ca = Some(other.ca.clone());
    })
    .await;
    let r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |_| {}).await;
    let mut conn = Connection::open(&r_proxy.addr, Version::V3_1_1)
        .await
        .unwrap();
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(Version::V3_1_1, "x", true, 30).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(code, 0x03);
}

#[tokio::test]
async fn scion_quic_reaches_a_tls_only_broker() {
    use mqttbridge::client::{Client, ClientOptions};
    use mqttbridge::service::scion_quic::ScionQuic;
    use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};

    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let (_broker, port) = tls_broker(&certs, false).await;
    let mut config = ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: format!("mqtts://localhost:{port}").parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    };
    config.broker_tls.ca = Some(certs.ca.clone());
    let proxy = start::<ScionQuic>(config).await;
    let url = format!("quic://{}", proxy.addr);
    let mut options = ClientOptions::new(&url, "quic-to-mqtts");
    options.transport.tls.ca = Some(certs.ca.clone());
    options.transport.server_name = Some("localhost".into());
    let (client, mut messages) = bounded("connect", Client::connect(options)).await.unwrap();
    client.subscribe("q", 1).await.unwrap();
    client.publish("q", "via mqtts", 1, false).await.unwrap();
    assert_eq!(
        bounded("delivery", messages.recv()).await.unwrap().payload,
        "via mqtts"
    );
}
