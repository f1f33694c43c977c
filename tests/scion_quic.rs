//! `scion-quic` end to end: MQTT clients speak QUIC over SCION (an
//! in-process pocketscion network) or over UDP/IP to the proxy, which opens
//! MQTT/TCP to a real mosquitto; and the same SCION clients through an
//! r-proxy's SCION listener and the gRPC line.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::net::connector::{self as transport, Endpoint, TransportOptions};
use mqttbridge::net::tls::ClientTls;
use mqttbridge::service::scion_quic::ScionQuic;
use mqttbridge::service::scion_quic::{QuicTransport, ScionQuicConfig};
use mqttbridge::tools::certs::{self, Certificates};
use mqttbridge::tools::mosquitto::Mosquitto;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{
    IA132, IA212, PsSetup, UnderlayType,
    minimal::{minimal_topology, two_path_topology},
};
use tokio::sync::watch;

const VERSIONS: [Version; 2] = [Version::V3_1_1, Version::V5];

/// A running scion-quic proxy and what clients need to reach it.
struct Proxy {
    url: String,
    options: TransportOptions,
    sessions: watch::Receiver<usize>,
    certs: Certificates,
    _dir: tempfile::TempDir,
    _running: Running,
    /// The s-proxy behind an r-proxy, when the SCION listener is the r-proxy's.
    _s_proxy: Option<SProxyHandle>,
}

impl Proxy {
    /// Starts scion-quic in front of `broker`: over SCION in IA212 when `ps`
    /// is given, over UDP/IP otherwise.
    async fn start(ps: Option<&PsSetup>, broker: &str, require_client_cert: bool) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
        let config = ScionQuicConfig {
            transport: if ps.is_some() {
                QuicTransport::Scion
            } else {
                QuicTransport::Quic
            },
            listen: if ps.is_some() {
                None
            } else {
                Some("127.0.0.1:0".into())
            },
            endhost_api: ps.map(|ps| ps.endhost_api(IA212).unwrap()),
            broker: broker.parse().unwrap(),
            cert: Some(certs.server_cert.clone()),
            key: Some(certs.server_key.clone()),
            client_ca: require_client_cert.then(|| certs.ca.clone()),
            ..ScionQuicConfig::default()
        };
        let config = if ps.is_some() {
            // The proxy's stack authenticates with the pocketscion dev token.
            let token = dir.path().join("snap.token");
            std::fs::write(&token, dev_auth_token()).unwrap();
            ScionQuicConfig {
                snap_token_file: Some(token),
                ..config
            }
        } else {
            config
        };
        Self::finish(config, ps, certs, dir).await
    }

    async fn finish(
        config: ScionQuicConfig,
        ps: Option<&PsSetup>,
        certs: Certificates,
        dir: tempfile::TempDir,
    ) -> Proxy {
        let proxy = start::<ScionQuic>(config).await;
        let scheme = if ps.is_some() { "scion-quic" } else { "quic" };
        Proxy {
            url: format!("{scheme}://{}", proxy.addr),
            options: quic_client_options(ps, &certs).await,
            sessions: proxy.active.clone(),
            certs,
            _dir: dir,
            _running: proxy,
            _s_proxy: None,
        }
    }

    /// The gRPC line whose r-proxy listens for MQTT over QUIC over SCION in
    /// IA212: SCION client -> r-proxy -> gRPC -> s-proxy -> `broker`.
    async fn line_with_scion_listener(ps: &PsSetup, broker: &str) -> Proxy {
        use mqttbridge::net::listener::Transport;
        use mqttbridge::service::r_proxy::{RProxy, RProxyConfig};
        let dir = tempfile::tempdir().unwrap();
        let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
        let token = dir.path().join("snap.token");
        std::fs::write(&token, dev_auth_token()).unwrap();
        let s_proxy = start_s_proxy(broker, |_| {}).await;
        let (proxy, scion) = start_with::<RProxy, _>(
            RProxyConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                upstream: vec![format!("http://{}", s_proxy.addr).parse().unwrap()],
                listeners: vec!["scion-quic://".parse().unwrap()],
                endhost_api: Some(ps.endhost_api(IA212).unwrap()),
                snap_token_file: Some(token),
                tls_cert: Some(certs.server_cert.clone()),
                tls_key: Some(certs.server_key.clone()),
                ..RProxyConfig::default()
            },
            |p| {
                p.listener_addr(Transport::ScionQuic)
                    .expect("a SCION listener")
            },
        )
        .await;
        Proxy {
            url: format!("scion-quic://{scion}"),
            options: quic_client_options(Some(ps), &certs).await,
            sessions: proxy.active.clone(),
            certs,
            _dir: dir,
            _running: proxy,
            _s_proxy: Some(s_proxy),
        }
    }

    fn with_client_cert(&self) -> TransportOptions {
        let mut options = self.options.clone();
        options.tls.cert_chain = Some(self.certs.client_cert.clone());
        options.tls.private_key = Some(self.certs.client_key.clone());
        options
    }

    async fn open(
        &self,
        version: Version,
        options: &TransportOptions,
    ) -> anyhow::Result<Connection> {
        let endpoint: Endpoint = self.url.parse().map_err(anyhow::Error::msg)?;
        let stream = bounded("open transport", transport::open(&endpoint, options)).await?;
        Ok(Connection::over(stream, version))
    }

    async fn connected(&self, version: Version, client_id: &str) -> Connection {
        let mut conn = self
            .open(version, &self.options)
            .await
            .expect("transport opens");
        let code = bounded(
            "CONNACK",
            exchange::connect(
                &mut conn,
                &packets::connect(version, client_id, true, 60).unwrap(),
            ),
        )
        .await
        .expect("CONNACK");
        assert_eq!(code, 0, "CONNACK for {client_id}");
        conn
    }
}

async fn pub_sub_every_qos(proxy: &Proxy) {
    for version in VERSIONS {
        let mut sub = proxy.connected(version, "sub").await;
        assert_eq!(
            bounded("suback", exchange::subscribe(&mut sub, 1, "sq/+", 2))
                .await
                .unwrap(),
            2
        );
        let mut publisher = proxy.connected(version, "pub").await;
        for level in 0..=2u8 {
            let topic = format!("sq/{level}");
            bounded(
                "publish",
                exchange::publish(
                    &mut publisher,
                    &topic,
                    format!("q{level}"),
                    level,
                    false,
                    5,
                    vec![],
                ),
            )
            .await
            .unwrap();
            let got = bounded(
                &format!("delivery {version} qos {level}"),
                exchange::receive(&mut sub),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(got.topic, topic);
            assert_eq!(got.payload, format!("q{level}").as_bytes());
            assert_eq!(got.qos, level);
        }
        let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 241) as u8).collect();
        let got =
            publish_and_receive(&mut publisher, &mut sub, "sq/big", payload.clone(), 1, 6).await;
        assert!(got.payload == payload, "1 MiB intact");
        publisher.send(&packets::disconnect(version)).await.unwrap();
        sub.send(&packets::disconnect(version)).await.unwrap();
    }
    // Clients gone: every broker connection is closed.
    gauge_reaches("broker connections closed", &mut proxy.sessions.clone(), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_quic_over_scion_every_qos_and_1_mib() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    let proxy = Proxy::start(Some(&ps), &broker.addr().to_string(), false).await;
    assert!(
        proxy.url.starts_with("scion-quic://[2-ff00:0:212,"),
        "{}",
        proxy.url
    );
    pub_sub_every_qos(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_client_through_the_r_proxy_and_the_grpc_line() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    let line = Proxy::line_with_scion_listener(&ps, &broker.addr().to_string()).await;
    assert!(
        line.url.starts_with("scion-quic://[2-ff00:0:212,"),
        "{}",
        line.url
    );
    pub_sub_every_qos(&line).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_plain_quic_every_qos_and_1_mib() {
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    let proxy = Proxy::start(None, &broker.addr().to_string(), false).await;
    pub_sub_every_qos(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scion_server_checked_against_the_default_name_with_reasons() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("").await.unwrap();
    let proxy = Proxy::start(Some(&ps), &broker.addr().to_string(), false).await;
    let refusal = |options: TransportOptions| {
        let proxy = &proxy;
        async move {
            match proxy.open(Version::V5, &options).await {
                Ok(_) => panic!("the handshake should be refused"),
                Err(e) => format!("{e:#}"),
            }
        }
    };
    // A SCION address names no host: the server name defaults to localhost.
    let mut options = proxy.options.clone();
    options.server_name = None;
    proxy
        .open(Version::V5, &options)
        .await
        .expect("the default name matches the certificate");

    options.server_name = Some("broker.example".into());
    let error = refusal(options.clone()).await;
    for words in ["name mismatch", "'broker.example'", "DNS:localhost"] {
        assert!(error.contains(words), "`{words}` missing from: {error}");
    }

    let dir = tempfile::tempdir().unwrap();
    let other = certs::generate(dir.path(), &["localhost"]).unwrap();
    options.server_name = None;
    options.tls.ca = Some(other.ca.clone());
    let error = refusal(options).await;
    assert!(error.contains("unknown CA"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_over_scion() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("max_queued_messages 0").await.unwrap();
    let proxy =
        std::sync::Arc::new(Proxy::start(Some(&ps), &broker.addr().to_string(), false).await);
    let clients = (0..50).map(|i| {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let version = VERSIONS[i % 2];
            let topic = format!("fifty/{i}");
            let mut conn = proxy.connected(version, &format!("c{i}")).await;
            exchange::subscribe(&mut conn, 1, &topic, 0).await.unwrap();
            exchange::publish(&mut conn, &topic, format!("m{i}"), 0, false, 0, vec![])
                .await
                .unwrap();
            let got = exchange::receive(&mut conn).await.unwrap().unwrap();
            assert_eq!(got.payload, format!("m{i}").as_bytes());
            conn.send(&packets::disconnect(version)).await.unwrap();
        })
    });
    for result in bounded("50 clients", futures_util::future::join_all(clients)).await {
        result.expect("client task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_required_certificate_is_refused_before_the_broker() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    // An observer in place of the broker: it must never see a connection
    // from a refused client.
    let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(Some(&ps), &observer.local_addr().unwrap().to_string(), true).await;

    let refused = proxy.open(Version::V5, &proxy.options).await;
    if let Ok(mut conn) = refused {
        let _ = conn
            .send(&packets::connect(Version::V5, "nocert", true, 30).unwrap())
            .await;
        let answer = bounded("refusal", conn.recv()).await;
        assert!(matches!(answer, Ok(None) | Err(_)), "refused: {answer:?}");
    }
    // No broker connection for a refused client (the s-proxy's readiness
    // probes connect and close without a byte).
    only_probes_so_far(&observer).await;

    // With the certificate, the same proxy lets the client through to the
    // (observer) broker.
    let mut allowed = proxy
        .open(Version::V5, &proxy.with_client_cert())
        .await
        .unwrap();
    allowed
        .send(&packets::connect(Version::V5, "withcert", true, 30).unwrap())
        .await
        .unwrap();
    let mut broker_side = accept_past_probes(&observer).await;
    let mut first = [0u8; 2];
    tokio::io::AsyncReadExt::read_exact(&mut broker_side, &mut first)
        .await
        .unwrap();
    assert_eq!(first[0], 0x10, "the CONNECT reaches the broker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_gives_a_clear_connack() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start(Some(&ps), &format!("127.0.0.1:{port}"), false).await;
    for (version, code) in [(Version::V3_1_1, 0x03), (Version::V5, 0x88)] {
        let mut conn = proxy.open(version, &proxy.options).await.unwrap();
        let got = bounded(
            "CONNACK",
            exchange::connect(
                &mut conn,
                &packets::connect(version, "x", true, 30).unwrap(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(got, code, "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_leave_sessions_working() {
    let ps = minimal_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("").await.unwrap();
    let proxy = Proxy::start(Some(&ps), &broker.addr().to_string(), false).await;
    let mut conn = proxy.connected(Version::V5, "steady").await;
    bounded("suback", exchange::subscribe(&mut conn, 1, "g", 0))
        .await
        .unwrap();

    // A SCION host in the other AS floods the proxy's address with junk.
    let Endpoint::ScionQuic(target) = proxy.url.parse::<Endpoint>().unwrap() else {
        unreachable!("SCION proxy URL")
    };
    let stack =
        mqttbridge::net::scion::build_stack(ps.endhost_api(IA132).unwrap(), Some(dev_auth_token()))
            .await
            .unwrap();
    let attacker = mqttbridge::net::scion::bind(&stack, None, None)
        .await
        .unwrap();
    for i in 0..1000u32 {
        let len = 1 + (i as usize * 53) % 1100;
        let junk: Vec<u8> = (0..len).map(|j| (i as usize + j * 13) as u8).collect();
        let _ = attacker.send_to(&junk, target).await;
    }

    bounded(
        "publish after flood",
        exchange::publish(&mut conn, "g", "still", 0, false, 0, vec![]),
    )
    .await
    .unwrap();
    let got = bounded("delivery after flood", exchange::receive(&mut conn))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, b"still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_either_path_going_down() {
    let ps = two_path_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("").await.unwrap();
    let proxy = Proxy::start(Some(&ps), &broker.addr().to_string(), false).await;
    let mut sub = proxy.connected(Version::V5, "path-sub").await;
    bounded("suback", exchange::subscribe(&mut sub, 1, "p", 1))
        .await
        .unwrap();
    let mut publisher = proxy.connected(Version::V5, "path-pub").await;
    // IA132 reaches IA212 directly (its interface 1) or through IA222 (its
    // interface 2). First the detour is down, so the sessions run over the
    // direct link; then the direct link goes down and the detour comes back:
    // the live sessions must move over to it.
    for (down, up) in [(2u16, 1u16), (1, 2)] {
        ps.runtime.set_link_state(IA132, up, true);
        ps.runtime.set_link_state(IA132, down, false);
        let payload = format!("with link {down} down");
        bounded(
            &format!("publish with link {down} down"),
            exchange::publish(&mut publisher, "p", payload.clone(), 1, false, down, vec![]),
        )
        .await
        .unwrap();
        let got = bounded("delivery with a link down", exchange::receive(&mut sub))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, payload.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ends_promptly_when_every_path_disappears() {
    use mqttbridge::client::{Client, ClientOptions};
    use std::time::Duration;
    // How soon both ends must notice: the client's 1 s MQTT keep-alive, the
    // proxy's 1.5 s QUIC idle timeout, with room for a loaded machine.
    const PROMPT: Duration = Duration::from_secs(10);
    let ps = two_path_topology(UnderlayType::Snap).await;
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let token = dir.path().join("snap.token");
    std::fs::write(&token, dev_auth_token()).unwrap();
    let config = dir.path().join("scion-quic.toml");
    std::fs::write(
        &config,
        format!(
            "transport = \"scion\"\nendhost_api = \"{}\"\nsnap_token_file = \"{}\"\n\
             broker = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nidle_timeout_ms = 1500\n",
            ps.endhost_api(IA212).unwrap(),
            token.display(),
            broker.addr(),
            certs.server_cert.display(),
            certs.server_key.display()
        ),
    )
    .unwrap();
    // The proxy as a process, so that its tasks, sockets and memory can be
    // read before and after.
    let mut proxy = ModeProcess::start(&["scion-quic", "--config", config.to_str().unwrap()]).await;
    let url = format!(
        "scion-quic://{}",
        proxy.log_field("scion-quic serving", "listen").await
    );
    let transport = |stack| TransportOptions {
        tls: ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        server_name: Some("localhost".into()),
        scion_stack: Some(std::sync::Arc::new(stack)),
        ..TransportOptions::default()
    };
    let client_stack = || async {
        mqttbridge::net::scion::build_stack(ps.endhost_api(IA132).unwrap(), Some(dev_auth_token()))
            .await
            .expect("client SCION stack")
    };
    let options = |id: &str, transport: &TransportOptions| ClientOptions {
        keep_alive: Duration::from_secs(1),
        transport: transport.clone(),
        ..ClientOptions::new(&url, id)
    };
    let first = transport(client_stack().await);
    let sessions_end = || async {
        while proxy.metric("mqttbridge_sessions_active").await > 0.0 {
            // Poll interval of the admin endpoint.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // A first session leaves what the proxy keeps per remote AS (scion-stack
    // state for the way back): part of the baseline.
    let (warm_up, _) = bounded("warm-up", Client::connect(options("warm-up", &first)))
        .await
        .unwrap();
    bounded("disconnect", warm_up.disconnect()).await.unwrap();
    bounded("warm-up session ends", sessions_end()).await;
    let base = proxy.footprint().await;
    let (client, mut messages) = bounded(
        "connect over SCION",
        Client::connect(options("lonely", &first)),
    )
    .await
    .unwrap();
    drop(first);
    bounded("subscribe", client.subscribe("alive", 0))
        .await
        .unwrap();
    // Keep-alive holds the session well past the proxy's idle timeout
    // while a path exists.
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        bounded("publish", client.publish("alive", format!("{i}"), 0, false))
            .await
            .unwrap();
        let got = bounded("delivery", messages.recv())
            .await
            .expect("session alive");
        assert_eq!(got.payload, format!("{i}").as_bytes());
    }

    ps.runtime.set_link_state(IA132, 1, false);
    ps.runtime.set_link_state(IA132, 2, false);
    let ended = tokio::time::timeout(PROMPT, messages.recv()).await;
    assert!(
        matches!(ended, Ok(None)),
        "client learns within {PROMPT:?} that its session is gone"
    );
    let released = tokio::time::timeout(PROMPT, sessions_end()).await;
    assert!(
        released.is_ok(),
        "proxy releases the session and its broker connection within {PROMPT:?}"
    );

    // The links come back: a new client (with a SCION stack of its own, as
    // a restarted device has) gets through.
    drop((client, messages));
    ps.runtime.set_link_state(IA132, 1, true);
    ps.runtime.set_link_state(IA132, 2, true);
    let fresh = transport(client_stack().await);
    let back = bounded("a new client once a path is back", async {
        loop {
            match Client::connect(options("back", &fresh)).await {
                Ok(pair) => return pair,
                Err(e) => {
                    eprintln!("retry: {e}");
                    // Retry interval.
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
    })
    .await;
    let (client, mut messages) = back;
    bounded("subscribe", client.subscribe("alive", 0))
        .await
        .unwrap();
    bounded("publish", client.publish("alive", "back", 0, false))
        .await
        .unwrap();
    let got = bounded("delivery", messages.recv()).await.unwrap();
    assert_eq!(got.payload, b"back".as_slice());
    bounded("disconnect", client.disconnect()).await.unwrap();
    proxy.settles_to(base, 4096).await;
    proxy.assert_alive();
}

/// With `client_ca` set, a client certificate is checked against that
/// bundle alone, never against the system's trusted CAs (here the bundle
/// in `SSL_CERT_FILE`, where BoringSSL looks for them).
#[tokio::test]
async fn client_certificates_are_checked_against_client_ca_alone() {
    use mqttbridge::client::{Client, ClientOptions};
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = certs::generate(&dir.path().join("ours"), &["localhost"]).unwrap();
    let system = certs::generate(&dir.path().join("system"), &["localhost"]).unwrap();
    let config = dir.path().join("scion-quic.toml");
    std::fs::write(
        &config,
        format!(
            "transport = \"quic\"\nlisten = \"127.0.0.1:0\"\nbroker = \"{}\"\n\
             cert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            broker.addr(),
            ours.server_cert.display(),
            ours.server_key.display(),
            ours.ca.display(),
        ),
    )
    .unwrap();
    let proxy = ModeProcess::start_with_env(
        &[("SSL_CERT_FILE", system.ca.to_str().unwrap())],
        &["scion-quic", "--config", config.to_str().unwrap()],
    )
    .await;
    let url = format!(
        "quic://{}",
        proxy.log_field("scion-quic serving", "listen").await
    );
    let options = |id: &str, client: &Certificates| ClientOptions {
        transport: TransportOptions {
            tls: ClientTls {
                ca: Some(ours.ca.clone()),
                cert_chain: Some(client.client_cert.clone()),
                private_key: Some(client.client_key.clone()),
                ..ClientTls::default()
            },
            server_name: Some("localhost".into()),
            ..TransportOptions::default()
        },
        ..ClientOptions::new(&url, id)
    };
    let refused = bounded("connect", Client::connect(options("other", &system))).await;
    assert!(
        refused.is_err(),
        "a certificate of a CA trusted by the system but not client_ca is refused"
    );
    let (trusted, _) = bounded("connect", Client::connect(options("trusted", &ours)))
        .await
        .expect("a certificate of client_ca is accepted");
    bounded("disconnect", trusted.disconnect()).await.unwrap();
}
