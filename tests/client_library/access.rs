//! Reaching brokers the way real deployments guard them: user names and
//! passwords (in the URL or as options), ACLs, TLS with and without client
//! certificates, WebSocket and WebSocket over TLS.

use mqttbridge::client::{Client, ClientError, ClientOptions};
use mqttbridge::mqtt::Version;
use mqttbridge::net::tls::ClientTls;
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;

use crate::common::{bounded, free_port};

const ACL: &str = "user alice\ntopic readwrite alice/#\n";

async fn refusal(options: ClientOptions) -> (u8, String) {
    match bounded("CONNACK", Client::connect(options)).await {
        Err(e @ ClientError::Refused { .. }) => (e.reason_code().unwrap(), e.to_string()),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

#[tokio::test]
async fn user_name_and_password_from_the_url_or_the_options() {
    let broker = Mosquitto::start_with_users(&[("alice", "p@ss:word")], ACL, "")
        .await
        .unwrap();
    let addr = broker.addr();
    // mosquitto 2.0 answers a wrong password and a missing one alike: "not
    // authorized" (MQTT 5 0x87, MQTT 3.1.1 return code 5).
    for (version, not_authorized) in [(Version::V5, 0x87), (Version::V3_1_1, 0x05)] {
        // Percent-encoded in the URL.
        let url = format!("tcp://alice:p%40ss%3Aword@{addr}");
        let (client, mut messages) = Client::connect(ClientOptions {
            version,
            ..ClientOptions::new(&url, "alice-1")
        })
        .await
        .unwrap_or_else(|e| panic!("{version}: {e}"));
        client.subscribe("alice/#", 1).await.unwrap();
        client.publish("alice/x", "mine", 1, false).await.unwrap();
        let got = bounded("delivery", messages.recv()).await.unwrap();
        assert_eq!(got.payload, "mine");
        client.disconnect().await.unwrap();

        // As options, which win over the URL's.
        let options = ClientOptions {
            version,
            username: Some("alice".into()),
            password: Some("wrong".into()),
            ..ClientOptions::new(&format!("tcp://alice:p%40ss%3Aword@{addr}"), "alice-2")
        };
        let (code, message) = refusal(options).await;
        assert_eq!(code, not_authorized, "{version}: {message}");
        assert!(message.contains("not authorized"), "{message}");

        let (code, _) = refusal(ClientOptions {
            version,
            ..ClientOptions::new(&format!("tcp://{addr}"), "nobody")
        })
        .await;
        assert_eq!(code, not_authorized, "{version}: no credentials");
    }
    // MQTT 3.1.1 cannot carry a password without a user name: said before
    // anything is sent.
    let options = ClientOptions {
        version: Version::V3_1_1,
        password: Some("secret".into()),
        ..ClientOptions::new(&format!("tcp://{addr}"), "x")
    };
    assert!(matches!(
        Client::connect(options).await,
        Err(ClientError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_acl_decides_what_a_user_may_publish_and_receive() {
    let broker = Mosquitto::start_with_users(&[("alice", "pw")], ACL, "")
        .await
        .unwrap();
    let url = format!("tcp://alice:pw@{}", broker.addr());
    let (client, mut messages) = Client::connect(ClientOptions::new(&url, "acl"))
        .await
        .unwrap();
    client.subscribe("#", 1).await.unwrap();
    // mosquitto acknowledges a denied publish with "not authorized" (MQTT 5).
    let denied = client.publish("bob/x", "not mine", 1, false).await;
    assert_eq!(
        denied.as_ref().err().and_then(ClientError::reason_code),
        Some(0x87),
        "{denied:?}"
    );
    client.publish("alice/x", "mine", 1, false).await.unwrap();
    let got = bounded("delivery", messages.recv()).await.unwrap();
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("alice/x", &b"mine"[..])
    );
}

/// mosquitto with a TLS listener and a WebSocket-over-TLS listener (and a
/// plain WebSocket one); returns it and the three ports.
async fn tls_broker(
    certs: &certs::Certificates,
    require_certificate: bool,
) -> (Mosquitto, u16, u16, u16) {
    let (tls, wss, ws) = (free_port(), free_port(), free_port());
    let files = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_certificate}\n",
        certs.ca.display(),
        certs.server_cert.display(),
        certs.server_key.display(),
    );
    let extra = format!(
        "listener {tls} 127.0.0.1\n{files}listener {wss} 127.0.0.1\nprotocol websockets\n{files}listener {ws} 127.0.0.1\nprotocol websockets\n"
    );
    (Mosquitto::start(&extra).await.unwrap(), tls, wss, ws)
}

async fn round_trip(options: ClientOptions) -> Result<(), ClientError> {
    let (client, mut messages) = bounded("connect", Client::connect(options)).await?;
    client.subscribe("secure/#", 1).await?;
    client
        .publish("secure/x", "over the wire", 1, false)
        .await?;
    let got = bounded("delivery", messages.recv()).await.unwrap();
    assert_eq!(got.payload, "over the wire");
    client.disconnect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_websocket_listeners_with_and_without_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost", "127.0.0.1"]).unwrap();
    let trust = ClientTls {
        ca: Some(certs.ca.clone()),
        ..ClientTls::default()
    };
    let with_cert = ClientTls {
        cert_chain: Some(certs.client_cert.clone()),
        private_key: Some(certs.client_key.clone()),
        ..trust.clone()
    };
    let options = |url: String, tls: &ClientTls| {
        let mut options = ClientOptions::new(&url, "secure");
        options.transport.tls = tls.clone();
        options
    };

    let (_open, tls, wss, ws) = tls_broker(&certs, false).await;
    round_trip(options(format!("mqtts://localhost:{tls}"), &trust))
        .await
        .unwrap();
    // An IP literal is checked against the certificate's IP addresses.
    round_trip(options(format!("mqtts://127.0.0.1:{tls}"), &trust))
        .await
        .unwrap();
    round_trip(options(format!("wss://localhost:{wss}/mqtt"), &trust))
        .await
        .unwrap();
    round_trip(options(format!("ws://127.0.0.1:{ws}"), &trust))
        .await
        .unwrap();
    // A server certificate from an unknown CA is refused.
    let stranger = certs::generate(&dir.path().join("other"), &["localhost"]).unwrap();
    let untrusted = ClientTls {
        ca: Some(stranger.ca.clone()),
        ..ClientTls::default()
    };
    let refused = round_trip(options(format!("mqtts://localhost:{tls}"), &untrusted)).await;
    assert!(
        matches!(refused, Err(ClientError::Transport(_))),
        "{refused:?}"
    );

    let (_strict, tls, wss, _) = tls_broker(&certs, true).await;
    round_trip(options(format!("mqtts://localhost:{tls}"), &with_cert))
        .await
        .unwrap();
    round_trip(options(format!("wss://localhost:{wss}"), &with_cert))
        .await
        .unwrap();
    let without = round_trip(options(format!("mqtts://localhost:{tls}"), &trust)).await;
    assert!(
        matches!(
            without,
            Err(ClientError::Transport(_) | ClientError::ConnectionLost)
        ),
        "a broker requiring a client certificate refuses one without: {without:?}"
    );
}
