//! Test harness: a real mosquitto, any service in-process ([`start`]) or as
//! a process ([`ModeProcess`]) on ephemeral loopback ports, the gRPC line
//! in front of mosquitto ([`Chain`]), and bounded waits.

#![allow(dead_code)]

mod command_line;
mod cut_relay;
mod netns;
mod process;
mod quic_client;
#[allow(unused_imports)]
pub use command_line::{Pocketscion, shell_commands, shell_words};
pub use cut_relay::CutRelay;
pub use netns::Netns;
#[allow(unused_imports)]
pub use process::*;
pub use quic_client::quic_client_options;

use std::future::Future;
use std::time::Duration;

use mqttbridge::client::packets::Received;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::{Packet, Version};
use mqttbridge::service::Service;
use mqttbridge::service::r_proxy::RProxy;
use mqttbridge::service::r_proxy::RProxyConfig;
use mqttbridge::service::s_proxy::SProxy;
use mqttbridge::service::s_proxy::SProxyConfig;
use mqttbridge::tools::mosquitto::Mosquitto;
use tokio::sync::{oneshot, watch};

/// Upper bound for any single wait in a test: a guard against hangs, not a
/// performance limit, so generous for a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// Awaits `f`, failing the test if it takes longer than [`WAIT`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// The next connection to a stand-in broker that carries data, skipping
/// the readiness probes (connections closed without a byte).
pub async fn accept_past_probes(broker: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    bounded("a broker connection with data", async {
        loop {
            let (stream, _) = broker.accept().await.unwrap();
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await.unwrap_or(0) > 0 {
                return stream;
            }
        }
    })
    .await
}

/// Asserts that every connection a stand-in broker has been offered so
/// far is a readiness probe (closed without a byte), none a client's.
pub async fn only_probes_so_far(broker: &tokio::net::TcpListener) {
    use futures_util::FutureExt;
    while let Some(Ok((stream, _))) = broker.accept().now_or_never() {
        let mut first = [0u8; 1];
        let read = bounded("the probe closes", stream.peek(&mut first)).await;
        assert_eq!(
            read.unwrap_or(0),
            0,
            "a connection with data reached the broker"
        );
    }
}

/// Waits until an in-process service is ready (its probes found the path up).
pub async fn becomes_ready(what: &str, ready: &mut watch::Receiver<bool>) {
    bounded(what, ready.wait_for(|ready| *ready))
        .await
        .expect("service alive");
}

/// Waits until a gauge reads `n`.
pub async fn gauge_reaches(what: &str, gauge: &mut watch::Receiver<usize>, n: usize) {
    bounded(what, gauge.wait_for(|v| *v == n))
        .await
        .expect("gauge owner alive");
}

/// A service running in this test's process; told to stop (and drain) when
/// dropped.
pub struct Running {
    /// Where its clients connect (its first listener).
    pub addr: String,
    /// Its open connections or sessions.
    pub active: watch::Receiver<usize>,
    /// Whether it is ready (serving, and its probes found the path up).
    pub ready: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts any service in-process with `config`; `inspect` sees it bound,
/// before it serves (extra listener addresses, its reloader).
pub async fn start_with<S: Service, T>(
    config: S::Config,
    inspect: impl FnOnce(&S) -> T,
) -> (Running, T) {
    let service = S::bind(config)
        .await
        .unwrap_or_else(|e| panic!("{} binds: {e:#}", S::NAME));
    let seen = inspect(&service);
    let (addr, active) = (service.address(), service.active());
    let ready = service.readiness().watch();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(service.serve(async move {
        let _ = stopped.await;
    }));
    let running = Running {
        addr,
        active,
        ready,
        stop: Some(stop),
    };
    (running, seen)
}

/// Starts any service in-process with `config`.
pub async fn start<S: Service>(config: S::Config) -> Running {
    start_with::<S, ()>(config, |_| ()).await.0
}

/// A running s-proxy.
pub struct SProxyHandle {
    pub addr: std::net::SocketAddr,
    pub sessions: watch::Receiver<usize>,
    pub ready: watch::Receiver<bool>,
    _running: Running,
}

/// Starts an s-proxy in front of `broker` with `tune` applied to its config.
pub async fn start_s_proxy(broker: &str, tune: impl FnOnce(&mut SProxyConfig)) -> SProxyHandle {
    let mut config = SProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        broker: broker.parse().unwrap(),
        ..SProxyConfig::default()
    };
    tune(&mut config);
    let running = start::<SProxy>(config).await;
    SProxyHandle {
        addr: running.addr.parse().expect("an IP address"),
        sessions: running.active.clone(),
        ready: running.ready.clone(),
        _running: running,
    }
}

/// A running r-proxy.
pub struct RProxyHandle {
    pub addr: String,
    pub connections: watch::Receiver<usize>,
    pub ready: watch::Receiver<bool>,
    _running: Running,
}

/// Starts an r-proxy towards `upstreams` with `tune` applied to its config.
pub async fn start_r_proxy(
    upstreams: &[String],
    tune: impl FnOnce(&mut RProxyConfig),
) -> RProxyHandle {
    let mut config = RProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: upstreams.iter().map(|u| u.parse().unwrap()).collect(),
        ..RProxyConfig::default()
    };
    tune(&mut config);
    let running = start::<RProxy>(config).await;
    RProxyHandle {
        addr: running.addr.clone(),
        connections: running.active.clone(),
        ready: running.ready.clone(),
        _running: running,
    }
}

/// mosquitto + s-proxy + r-proxy.
pub struct Chain {
    pub broker: Mosquitto,
    pub s_proxy: SProxyHandle,
    pub r_proxy: RProxyHandle,
}

impl Chain {
    /// The whole gRPC line in front of a fresh mosquitto (unlimited queues,
    /// so any loss seen is ours).
    pub async fn start() -> Chain {
        let broker = Mosquitto::start("max_queued_messages 0")
            .await
            .expect("mosquitto starts (apt-get install mosquitto)");
        let s_proxy = start_s_proxy(&broker.addr().to_string(), |_| {}).await;
        let r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |_| {}).await;
        Chain {
            broker,
            s_proxy,
            r_proxy,
        }
    }

    /// Waits until no client connection and no session is left.
    pub async fn wait_idle(&mut self) {
        gauge_reaches(
            "r-proxy connections back to 0",
            &mut self.r_proxy.connections,
            0,
        )
        .await;
        gauge_reaches("s-proxy sessions back to 0", &mut self.s_proxy.sessions, 0).await;
    }
}

/// Opens a connection to `addr` and completes CONNECT; panics unless the
/// CONNACK says success.
pub async fn connected(addr: &str, version: Version, client_id: &str) -> Connection {
    let mut conn = bounded("tcp connect", Connection::open(addr, version))
        .await
        .expect("tcp connect");
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(version, client_id, true, 60).unwrap(),
        ),
    )
    .await
    .expect("CONNACK");
    assert_eq!(code, 0, "CONNACK code for {client_id}");
    conn
}

/// Publishes `payload` to `topic` at `level` on `publisher` (with
/// `packet_id` when `level` > 0, no retain, no properties) and returns the
/// next message `receiver` gets; each step bounded.
pub async fn publish_and_receive(
    publisher: &mut Connection,
    receiver: &mut Connection,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    level: u8,
    packet_id: u16,
) -> Received {
    bounded(
        "publish",
        exchange::publish(publisher, topic, payload, level, false, packet_id, vec![]),
    )
    .await
    .unwrap();
    bounded("delivery", exchange::receive(receiver))
        .await
        .unwrap()
        .expect("a delivery")
}

/// Connects to `addr` (MQTT 5), subscribes to `topic`, publishes `payload`
/// to it at QoS 0 and asserts that it comes back: a message goes through.
pub async fn assert_round_trip(addr: &str, client_id: &str, topic: &str, payload: &str) {
    let mut client = connected(addr, Version::V5, client_id).await;
    bounded("suback", exchange::subscribe(&mut client, 1, topic, 1))
        .await
        .unwrap();
    bounded(
        "publish",
        exchange::publish(&mut client, topic, payload, 0, false, 0, vec![]),
    )
    .await
    .unwrap();
    let got = bounded("delivery", exchange::receive(&mut client))
        .await
        .unwrap()
        .expect("a delivery");
    assert_eq!(&got.payload[..], payload.as_bytes());
}

/// [`connected`] from `dialer`'s network (a namespace, say).
pub async fn connected_via(dialer: &Dialer, addr: &str, id: &str) -> Connection {
    let stream = bounded("tcp connect", dialer.tcp(addr)).await.unwrap();
    let mut conn = Connection::over(Box::new(stream), Version::V5);
    let code = bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(Version::V5, id, true, 30).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "CONNACK for {id}");
    conn
}

/// scion-quic on plain UDP/IP (loopback) in front of `broker`, serving
/// `certs`' server certificate.
pub async fn quic_listener(
    broker: &Mosquitto,
    certs: &mqttbridge::tools::certs::Certificates,
) -> Running {
    use mqttbridge::service::scion_quic::{QuicTransport, ScionQuic, ScionQuicConfig};
    start::<ScionQuic>(ScionQuicConfig {
        transport: QuicTransport::Quic,
        listen: Some("127.0.0.1:0".into()),
        broker: broker.addr().to_string().parse().unwrap(),
        cert: Some(certs.server_cert.clone()),
        key: Some(certs.server_key.clone()),
        ..ScionQuicConfig::default()
    })
    .await
}

/// The next packet, bounded.
pub async fn next_packet(conn: &mut Connection) -> Option<Packet> {
    bounded("next packet", conn.recv())
        .await
        .expect("valid packet")
}
