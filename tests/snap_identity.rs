//! One SNAP token in several SCION processes at once, and a SCION server
//! restarted on its port: what an operator does (a `sub` left running while
//! `pub` sends, two proxies in one AS, `systemctl restart`), against an
//! in-process pocketscion whose SNAP data planes authorise one tunnel
//! identity per token and know each tunnel by its UDP address.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
use mqttbridge::service::scion_quic::{QuicTransport, ScionQuic, ScionQuicConfig};
use mqttbridge::tools::certs::{self, Certificates};
use mqttbridge::tools::mosquitto::Mosquitto;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{IA212, PsSetup, UnderlayType, minimal::minimal_topology};

/// A SCION network, a broker, certificates and the one token every process
/// here uses.
struct Setup {
    ps: PsSetup,
    broker: Mosquitto,
    certs: Certificates,
    token: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let ps = minimal_topology(UnderlayType::Snap).await;
        let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
        let token = dir.path().join("snap.token");
        std::fs::write(&token, dev_auth_token()).unwrap();
        Setup {
            ps,
            broker,
            certs,
            token,
            _dir: dir,
        }
    }

    /// scion-quic in IA212 at `listen` (any port when `None`).
    async fn scion_quic(&self, listen: Option<String>) -> Running {
        start::<ScionQuic>(ScionQuicConfig {
            transport: QuicTransport::Scion,
            listen,
            endhost_api: Some(self.ps.endhost_api(IA212).unwrap()),
            snap_token_file: Some(self.token.clone()),
            broker: self.broker.addr().to_string().parse().unwrap(),
            cert: Some(self.certs.server_cert.clone()),
            key: Some(self.certs.server_key.clone()),
            ..ScionQuicConfig::default()
        })
        .await
    }

    /// A client with a SCION stack of its own in IA132: another process's.
    async fn client(&self) -> TransportOptions {
        quic_client_options(Some(&self.ps), &self.certs).await
    }
}

async fn connected(url: &str, options: &TransportOptions, client_id: &str) -> Connection {
    let endpoint: Endpoint = url.parse().unwrap();
    let stream = bounded("open over SCION", transport::open(&endpoint, options))
        .await
        .expect("transport opens");
    let mut conn = Connection::over(stream, Version::V5);
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(Version::V5, client_id, true, 60).unwrap(),
        ),
    )
    .await
    .expect("CONNACK");
    assert_eq!(code, 0, "CONNACK for {client_id}");
    conn
}

/// `conn` subscribed to `filter` at QoS 1.
async fn subscribed(conn: &mut Connection, filter: &str) {
    let granted = bounded("suback", exchange::subscribe(conn, 1, filter, 1))
        .await
        .unwrap();
    assert_eq!(granted, 1, "granted QoS for {filter}");
}

/// A message from `publisher` reaches `subscriber` on `topic`.
async fn delivered(subscriber: &mut Connection, publisher: &mut Connection, topic: &str) {
    let got = publish_and_receive(publisher, subscriber, topic, topic.to_owned(), 1, 1).await;
    assert_eq!(got.payload, topic.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_token_all_keep_working() {
    let setup = Setup::new().await;

    // Two servers in one AS, two client processes in the other: each with
    // its own SCION stack and the same token.
    let first = setup.scion_quic(None).await;
    let first_url = format!("scion-quic://{}", first.addr);
    let first_client = setup.client().await;
    let mut subscriber = connected(&first_url, &first_client, "sub").await;
    subscribed(&mut subscriber, "id/#").await;
    let second = setup.scion_quic(None).await;
    let second_url = format!("scion-quic://{}", second.addr);
    let second_client = setup.client().await;
    let mut publisher = connected(&second_url, &second_client, "pub").await;

    // The first server's and the first client's tunnels still carry
    // traffic after the second ones registered.
    delivered(&mut subscriber, &mut publisher, "id/both").await;
    let mut first_publisher = connected(&first_url, &first_client, "pub-1").await;
    delivered(&mut subscriber, &mut first_publisher, "id/first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_on_its_port_serves_again_at_once() {
    let setup = Setup::new().await;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("[2-ff00:0:212,127.0.0.1]:{port}");

    let server = setup.scion_quic(Some(listen.clone())).await;
    let url = format!("scion-quic://{}", server.addr);
    let options = setup.client().await;
    let mut before = connected(&url, &options, "before").await;
    subscribed(&mut before, "restart/#").await;
    drop(before);
    drop(server);
    // The stopped server lets go of its UDP port.
    bounded("the port is free again", async {
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;

    // The data plane still holds the first server's tunnel from that port;
    // the new process's tunnel from the same port is accepted at once.
    let _server = bounded("the restarted server binds", setup.scion_quic(Some(listen))).await;
    let mut subscriber = connected(&url, &options, "after-sub").await;
    subscribed(&mut subscriber, "restart/#").await;
    let mut publisher = connected(&url, &options, "after-pub").await;
    delivered(&mut subscriber, &mut publisher, "restart/again").await;
}
