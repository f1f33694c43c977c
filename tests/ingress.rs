//! MQTT clients reach the broker through r-proxy over TLS (with and
//! without client certificates) and over WebSocket.

mod common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::net::broker::{BrokerConnector, BrokerTls};
use mqttbridge::net::listener::WsByteStream;
use mqttbridge::tools::certs;
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
    let proxy = mqttbridge::service::r_proxy::RProxy::bind(config.clone())
        .await
        .unwrap();
    let tls_port = proxy.tls_addr().unwrap().port();
    let ws_addr = proxy.ws_addr().unwrap();
    tokio::spawn(proxy.serve(std::future::pending()));

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
    let strict = mqttbridge::service::r_proxy::RProxy::bind(config)
        .await
        .unwrap();
    let strict_port = strict.tls_addr().unwrap().port();
    tokio::spawn(strict.serve(std::future::pending()));
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
