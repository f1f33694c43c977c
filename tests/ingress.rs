//! Transports on both sides: MQTT clients reach the broker through r-proxy
//! over TLS (with and without client certificates), WebSocket (plain and
//! over TLS) and QUIC; scion-quic listens on several transports at once;
//! the client library's connectors speak TLS and WebSocket to mosquitto.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::net::broker::{BrokerConnector, BrokerTls};
use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
use mqttbridge::net::tls::ClientTls;
use mqttbridge::net::ws::WsByteStream;
use mqttbridge::service::r_proxy::{RProxy, RProxyConfig};
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// No PROXY header is written, so the client address is not used.
const ANY: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

async fn round_trip(mut conn: Connection, version: Version) {
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(version, "ingress", true, 30).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    bounded("suback", exchange::subscribe(&mut conn, 1, "in/#", 0))
        .await
        .unwrap();
    bounded(
        "publish",
        exchange::publish(&mut conn, "in/x", "hello", 0, false, 0, vec![]),
    )
    .await
    .unwrap();
    let got = bounded("delivery", exchange::receive(&mut conn))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_websocket_clients_reach_the_broker() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let mut config = mqttbridge::service::r_proxy::RProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: vec![format!("http://{}", chain.s_proxy.addr).parse().unwrap()],
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(certs.server_cert.clone()),
        tls_key: Some(certs.server_key.clone()),
        ws_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    let (_proxy, (tls_port, ws_addr)) = start_with::<RProxy, _>(config.clone(), |p| {
        (p.tls_addr().unwrap().port(), p.ws_addr().unwrap())
    })
    .await;

    // TLS (mqtts://) with the CA.
    let connector = BrokerConnector::new(
        &format!("mqtts://localhost:{tls_port}").parse().unwrap(),
        &BrokerTls {
            ca: Some(certs.ca.clone()),
            ..BrokerTls::default()
        },
        false,
    )
    .unwrap();
    for version in [Version::V3_1_1, Version::V5] {
        let stream = bounded("TLS connect", connector.connect(ANY))
            .await
            .unwrap();
        round_trip(Connection::over(stream, version), version).await;
    }

    // WebSocket with the mqtt subprotocol.
    let mut request = format!("ws://{ws_addr}/mqtt")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(ws_addr).await.unwrap();
    let (ws, response) = bounded(
        "WebSocket handshake",
        tokio_tungstenite::client_async(request, tcp),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    round_trip(
        Connection::over(Box::new(WsByteStream::new(ws)), Version::V5),
        Version::V5,
    )
    .await;

    // Client certificates required on the TLS listener.
    config.tls_client_ca = Some(certs.ca.clone());
    let (_strict, strict_port) =
        start_with::<RProxy, _>(config, |p| p.tls_addr().unwrap().port()).await;
    let url = format!("mqtts://localhost:{strict_port}").parse().unwrap();
    let with_cert = BrokerConnector::new(
        &url,
        &BrokerTls {
            ca: Some(certs.ca.clone()),
            cert: Some(certs.client_cert.clone()),
            key: Some(certs.client_key.clone()),
            server_name: None,
        },
        false,
    )
    .unwrap();
    let stream = bounded("mTLS connect", with_cert.connect(ANY))
        .await
        .unwrap();
    round_trip(Connection::over(stream, Version::V5), Version::V5).await;
    let without_cert = BrokerConnector::new(
        &url,
        &BrokerTls {
            ca: Some(certs.ca.clone()),
            ..BrokerTls::default()
        },
        false,
    )
    .unwrap();
    // TLS 1.3 reports the refusal on first use rather than in connect().
    let refused = match bounded("connect without a certificate", without_cert.connect(ANY)).await {
        Err(_) => true,
        Ok(stream) => {
            let mut conn = Connection::over(stream, Version::V5);
            let _ = conn
                .send(&packets::connect(Version::V5, "x", true, 30).unwrap())
                .await;
            matches!(bounded("refusal", conn.recv()).await, Ok(None) | Err(_))
        }
    };
    assert!(refused, "a TLS client without a certificate is refused");
}

/// The client library's connector for `url`, checking servers against `ca`.
async fn open(url: &str, ca: &std::path::Path) -> anyhow::Result<mqttbridge::net::BoxedStream> {
    let endpoint: Endpoint = url.parse().map_err(anyhow::Error::msg)?;
    let options = TransportOptions {
        tls: ClientTls {
            ca: Some(ca.to_path_buf()),
            ..ClientTls::default()
        },
        ..TransportOptions::default()
    };
    bounded(url, transport::open(&endpoint, &options)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connectors_speak_tls_and_websocket_to_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let (tls, ws, wss) = (free_port(), free_port(), free_port());
    let server = format!(
        "certfile {}\nkeyfile {}\n",
        certs.server_cert.display(),
        certs.server_key.display()
    );
    let broker = Mosquitto::start(&format!(
        "listener {tls} 127.0.0.1\n{server}\
         listener {ws} 127.0.0.1\nprotocol websockets\n\
         listener {wss} 127.0.0.1\nprotocol websockets\n{server}"
    ))
    .await
    .expect("mosquitto with TLS and websockets listeners");
    for url in [
        format!("mqtts://localhost:{tls}"),
        format!("ws://127.0.0.1:{ws}"),
        format!("ws://127.0.0.1:{ws}/any/path"),
        format!("wss://localhost:{wss}/mqtt"),
    ] {
        for version in [Version::V3_1_1, Version::V5] {
            let stream = open(&url, &certs.ca).await.expect(&url);
            round_trip(Connection::over(stream, version), version).await;
        }
    }
    // The server is checked: another CA, or a name the certificate lacks.
    let other = tempfile::tempdir().unwrap();
    let other = certs::generate(other.path(), &["localhost"]).unwrap();
    let err = open(&format!("mqtts://localhost:{tls}"), &other.ca)
        .await
        .err()
        .expect("another CA is refused");
    assert!(
        format!("{err:#}").contains("invalid peer certificate"),
        "{err:#}"
    );
    let err = open(&format!("wss://127.0.0.1:{wss}"), &certs.ca)
        .await
        .err()
        .expect("an IP address the certificate lacks is refused");
    assert!(format!("{err:#}").contains("not valid for name"), "{err:#}");
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_proxy_accepts_mqtt_over_quic_and_websocket_over_tls() {
    use mqttbridge::net::listener::Transport;
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost", "127.0.0.1"]).unwrap();
    let (mut proxy, (quic, wss)) = start_with::<RProxy, _>(
        RProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: vec![format!("http://{}", chain.s_proxy.addr).parse().unwrap()],
            listeners: vec![
                "quic://127.0.0.1:0".parse().unwrap(),
                "wss://127.0.0.1:0".parse().unwrap(),
            ],
            tls_cert: Some(certs.server_cert.clone()),
            tls_key: Some(certs.server_key.clone()),
            ..RProxyConfig::default()
        },
        |p| {
            (
                p.listener_addr(Transport::Quic).unwrap(),
                p.listener_addr(Transport::Wss).unwrap(),
            )
        },
    )
    .await;
    for url in [format!("quic://{quic}"), format!("wss://{wss}")] {
        for version in [Version::V3_1_1, Version::V5] {
            let stream = open(&url, &certs.ca).await.expect(&url);
            round_trip(Connection::over(stream, version), version).await;
        }
    }
    gauge_reaches("r-proxy connections closed", &mut proxy.active, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_quic_listens_on_several_transports_at_once() {
    use mqttbridge::net::listener::Transport;
    use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost", "127.0.0.1"]).unwrap();
    let config = ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        listeners: vec![
            "tcp://127.0.0.1:0".parse().unwrap(),
            "tls://127.0.0.1:0".parse().unwrap(),
            "ws://127.0.0.1:0".parse().unwrap(),
        ],
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    };
    let (mut proxy, urls) = start_with::<ScionQuic, _>(config, |p| {
        [
            (Transport::Quic, "quic"),
            (Transport::Tcp, "tcp"),
            (Transport::Tls, "mqtts"),
            (Transport::Ws, "ws"),
        ]
        .into_iter()
        .map(|(transport, scheme)| format!("{scheme}://{}", p.listener_addr(transport).unwrap()))
        .collect::<Vec<_>>()
    })
    .await;
    for url in &urls {
        for version in [Version::V3_1_1, Version::V5] {
            let stream = open(url, &certs.ca).await.expect(url);
            round_trip(Connection::over(stream, version), version).await;
        }
    }
    gauge_reaches("broker connections closed", &mut proxy.active, 0).await;
}
