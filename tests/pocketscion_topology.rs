//! `mqttbridge pocketscion --topology FILE` as a process: the example
//! topology file runs a SCION network that carries MQTT over QUIC between
//! two leaf ASes (paths up to the core and down again), with a SNAP token
//! of its own for each side; a broken file is refused naming the file, the
//! key and the line.

use crate::common;

use common::*;
use mqttbridge::client::{Client, ClientOptions};
use mqttbridge::net::connector::TransportOptions;
use mqttbridge::net::tls::ClientTls;
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
use mqttbridge::tools::certs;
use mqttbridge::tools::mosquitto::Mosquitto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_file_network_carries_mqtt_between_leaf_ases() {
    let dir = tempfile::tempdir().unwrap();
    // A token for the proxy, one for the client: each file its own.
    let proxy_token = dir.path().join("proxy.token");
    let client_token = dir.path().join("client.token");
    let network = Pocketscion::start(
        "config/topology-three-as.toml",
        &[proxy_token.clone(), client_token.clone()],
        2,
    )
    .await;
    let apis = &network.endhost_apis;
    assert_eq!(
        apis.keys().collect::<Vec<_>>(),
        ["1-ff00:0:111", "1-ff00:0:112"],
        "one endhost API per AS with an endhost, none for the core"
    );

    let client_token = std::fs::read_to_string(&client_token).unwrap();
    assert_ne!(
        std::fs::read_to_string(&proxy_token).unwrap(),
        client_token,
        "every token file gets a token of its own"
    );

    let broker = Mosquitto::start("").await.unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let proxy = start::<ScionQuic>(ScionQuicConfig {
        transport: QuicTransport::Scion,
        endhost_api: Some(apis["1-ff00:0:112"].clone()),
        snap_token_file: Some(proxy_token),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    })
    .await;
    let url = format!("scion-quic://{}", proxy.addr);
    assert!(url.contains("1-ff00:0:112"), "{url}");

    // The client attaches to 1-ff00:0:111 as any user's would: from the
    // endhost API and token (the process's shared stack).
    let options = ClientOptions {
        transport: TransportOptions {
            tls: ClientTls {
                ca: Some(certs.ca.clone()),
                ..ClientTls::default()
            },
            server_name: Some("localhost".into()),
            endhost_api: Some(apis["1-ff00:0:111"].clone()),
            snap_token: Some(client_token.trim().to_string()),
            ..TransportOptions::default()
        },
        ..ClientOptions::new(&url, "leaf")
    };
    let (client, mut messages) = bounded("connect across the topology", Client::connect(options))
        .await
        .unwrap();
    bounded("subscribe", client.subscribe("leaf/#", 1))
        .await
        .unwrap();
    bounded("publish", client.publish("leaf/t", "up and down", 1, false))
        .await
        .unwrap();
    let got = bounded("delivery", messages.recv()).await.unwrap();
    assert_eq!(got.payload, b"up and down".as_slice());
    assert_eq!(got.qos, 1);
}

/// Runs `pocketscion --topology` on a file holding `text`; asserts it is
/// refused and returns the file's path and what it said on stderr.
async fn refused(dir: &std::path::Path, text: &str) -> (String, String) {
    let path = dir.join("broken.toml");
    std::fs::write(&path, text).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqttbridge"))
        .args(["pocketscion", "--topology"])
        .arg(&path)
        .output();
    let output = bounded("pocketscion refuses", output).await.unwrap();
    assert!(!output.status.success(), "{text}");
    (
        path.display().to_string(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn broken_topology_file_is_refused_with_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stderr) = refused(
        dir.path(),
        "[[as]]\nisd_as = \"1-ff00:0:110\"\ncore = true\n\n[[link]]\nfrom = \"1-ff00:0:110\"\nto = \"1-ff00:0:111#1\"\ntype = \"core\"\n",
    )
    .await;
    assert!(stderr.contains(&path), "{stderr}");
    assert!(stderr.contains("line 6, key `from`"), "{stderr}");
    assert!(stderr.contains("ISD-AS#interface"), "{stderr}");

    // A link to an AS the file does not list is refused too.
    let (_, stderr) = refused(
        dir.path(),
        "[[as]]\nisd_as = \"1-ff00:0:110\"\ncore = true\n\n[[link]]\nfrom = \"1-ff00:0:110#1\"\nto = \"1-ff00:0:111#1\"\ntype = \"core\"\n",
    )
    .await;
    assert!(
        stderr.contains("1-ff00:0:111"),
        "names the unknown AS: {stderr}"
    );
}
