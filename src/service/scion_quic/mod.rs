//! `scion-quic`: terminates MQTT over QUIC, over SCION or plain UDP/IP, and
//! opens one MQTT/TCP connection to the broker per client.
//!
//! Per connection: the client certificate is checked (when required)
//! before anything else; the CONNECT is read (bounded in time and size) and
//! checked; only then is the broker dialled. A broker that cannot be
//! reached gets the client a CONNACK "server unavailable". After that the
//! stream's bytes are relayed both ways untouched.

mod config;

pub use config::{QuicTransport, ScionQuicArgs, ScionQuicConfig};

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::mqtt::{ClientConnect, RelayEnd, Relayed, receive_connect, relay_session};
use crate::mqtt::{Version, client_id, replies};
use crate::net::BoxedStream;
use crate::net::broker::BrokerConnector;
use crate::net::listener::{Certificates, ClientStream, Incoming, Listeners, Transport};
use crate::ops::gauge::{Gauge, GaugeGuard};
use crate::ops::readiness::{Readiness, start_probing};
use crate::ops::telemetry::{self, METRICS, Prepared, SessionGuard};
use crate::service::frame::{InForce, Reload, Service, drain};

/// The mode label in metrics.
const MODE: &str = "scion-quic";

/// Once the grace period is over, how long a session may take to finish the
/// packet it is passing to the client before its DISCONNECT is written.
const FINISH_PACKET_WITHIN: Duration = Duration::from_secs(1);

/// What a reload (SIGHUP) replaces for new sessions.
struct Live {
    config: ScionQuicConfig,
    connector: BrokerConnector,
}

impl Live {
    /// Checks `config` and prepares the broker connector.
    fn prepare(config: ScionQuicConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let connector =
            BrokerConnector::new(&config.broker, &config.broker_tls, config.proxy_protocol)?;
        Ok(Self { config, connector })
    }
}

type SharedLive = InForce<Live>;

/// A bound scion-quic proxy, ready to serve.
/// Reads every file `config` names (certificate, key, which must match,
/// client CA, broker TLS files, SNAP token) as a start would, binding
/// nothing: what `check-config` runs.
pub fn check_files(config: &ScionQuicConfig) -> anyhow::Result<()> {
    Live::prepare(config.clone())?;
    Listeners::check_files(&config.listen_urls(), &config.listen_settings())
}

pub struct ScionQuic {
    listeners: Listeners,
    live: SharedLive,
    sessions: Gauge,
    /// Becomes true when the shutdown grace period is over: open sessions
    /// end now (MQTT 5 clients hear DISCONNECT 0x8B).
    ending: watch::Sender<bool>,
    /// Serving, and the broker answering its probes.
    readiness: Readiness,
}

/// Applies new settings to a running scion-quic (SIGHUP).
#[derive(Clone)]
pub struct Reloader {
    live: SharedLive,
    certificates: Certificates,
}

impl Reload<ScionQuicConfig> for Reloader {
    /// Replaces, for new connections, the certificate, key and client CA,
    /// the broker and its TLS, and the timeouts and limits. Where it
    /// listens (transport, address, SCION attachment) only changes with a
    /// restart. A config that does not check out is refused and the
    /// running one kept.
    fn apply(&self, config: ScionQuicConfig) -> anyhow::Result<()> {
        let old = self.live.current();
        if config.listen_urls() != old.config.listen_urls()
            || config.endhost_api != old.config.endhost_api
            || config.snap_token_file != old.config.snap_token_file
            || config.path_acl != old.config.path_acl
        {
            warn!("the transport, listen address and SCION settings only change with a restart");
        }
        let live = Live::prepare(config)?;
        self.certificates.reload(&live.config.listen_settings())?;
        self.live.replace(live);
        info!("configuration reloaded");
        Ok(())
    }
}

impl ScionQuic {
    /// Where clients connect over the main QUIC listener: `IP:port` or
    /// `[ISD-AS,IP]:port`.
    pub fn local_addr(&self) -> String {
        self.listeners
            .bound()
            .first()
            .map(|(_, local)| local.clone())
            .unwrap_or_default()
    }

    /// Where the first listener of `transport` listens, as its transport
    /// writes addresses (`[ISD-AS,IP]:port` for SCION).
    pub fn listener_addr(&self, transport: Transport) -> Option<String> {
        self.listeners.local_addr(transport).map(str::to_string)
    }

    /// The number of sessions relaying to the broker.
    pub fn sessions(&self) -> watch::Receiver<usize> {
        self.sessions.watch()
    }
}

/// What every session task needs.
#[derive(Clone)]
struct Sessions {
    live: SharedLive,
    gauge: Gauge,
    ending: watch::Receiver<bool>,
}

async fn accept_loop(
    mut listeners: Listeners,
    sessions: Sessions,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            _ = &mut shutdown => break,
            incoming = listeners.accept() => match incoming {
                Some(incoming) => incoming,
                None => {
                    warn!("every listener stopped");
                    break;
                }
            },
        };
        let sessions = sessions.clone();
        // Boxed: the task keeps what it captures for as long as it lives,
        // and the connection is needed only while the session opens.
        let incoming = Box::new(incoming);
        tokio::spawn(async move {
            let live = sessions.live.current();
            serve_connection(incoming, &live, &sessions).await;
        });
    }
}

async fn serve_connection(mut incoming: Box<Incoming>, live: &Live, sessions: &Sessions) {
    // The session's log lines name the client in a span, entered while the
    // session opens and for its closing line: a span kept open for the
    // session's life would cost an idle session about 300 bytes, and each
    // poll an enter and an exit.
    let peer = std::mem::take(&mut incoming.peer_name);
    let transport = incoming.transport.name();
    let span = || info_span!("client", %peer, transport);
    // The opening's steps are boxed and over before relaying starts, so
    // the task keeps room only for what relaying needs (an idle session
    // holds the task for as long as it lives).
    let Some(opened) = Box::pin(open(incoming, live, sessions).instrument(span())).await else {
        return;
    };
    // Its fields used in place: taken apart, they would be kept twice.
    let mut opened = opened;
    let (up, down, reason) = relay(
        &mut opened.client,
        &mut opened.broker,
        opened.version,
        sessions.ending.clone(),
    )
    .await;
    opened.session.close_reason(reason);
    // The CONNECT went to the broker before the relay started.
    let up = up + opened.connect_len;
    METRICS.relayed_bytes(MODE, telemetry::CLIENT_TO_BROKER, up);
    METRICS.relayed_bytes(MODE, telemetry::BROKER_TO_CLIENT, down);
    span().in_scope(|| {
        info!(
            reason,
            duration_ms = opened.connecting.elapsed().as_millis() as u64,
            bytes_from_client = up,
            bytes_to_client = down,
            "closed"
        )
    });
}

/// A session ready to relay: the client's CONNECT has gone to the broker.
struct Opened {
    client: BoxedStream,
    broker: BoxedStream,
    version: Version,
    /// Bytes of the CONNECT relayed.
    connect_len: u64,
    /// When the broker connection was started.
    connecting: std::time::Instant,
    /// Counts the session as live while held.
    _live: GaugeGuard,
    session: SessionGuard,
}

/// The handshake, the client's CONNECT, the broker connection and the
/// CONNECT relayed to it; `None` when any of them failed (said in the
/// metrics and logs, and to the client when the broker is unreachable).
async fn open(incoming: Box<Incoming>, live: &Live, sessions: &Sessions) -> Option<Opened> {
    let Live { config, connector } = live;
    let client = incoming.peer;
    let stream: BoxedStream = match timeout(
        config.connect_timeout_ms.duration(),
        Box::pin(incoming.handshake()),
    )
    .await
    {
        Ok(Ok(ClientStream { stream, .. })) => stream,
        Ok(Err(e)) => {
            METRICS.refused(MODE, "tls_handshake");
            debug!(error = %e, "handshake failed");
            return None;
        }
        Err(_) => {
            METRICS.refused(MODE, "connect_timeout");
            debug!("handshake timed out");
            return None;
        }
    };
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    let ClientConnect {
        wire,
        version,
        packet: connect,
    } = match receive_connect(
        &mut from_client,
        &mut to_client,
        config.connect_timeout_ms.duration(),
        config.max_packet_size.get(),
    )
    .await
    {
        Ok(connect) => connect,
        Err(no_connect) => {
            if let Some(reason) = no_connect.refusal_reason() {
                METRICS.refused(MODE, reason);
            }
            return None;
        }
    };
    let connecting = std::time::Instant::now();
    let mut broker = match connector
        .connect_within(client, config.broker_connect_timeout_ms.duration())
        .await
    {
        Ok(stream) => stream,
        Err(reason) => {
            warn!(broker = %config.broker, %reason, "broker unreachable");
            METRICS.upstream_error(MODE, &config.broker.to_string());
            METRICS.refused(MODE, "upstream_unavailable");
            replies::refuse_server_unavailable(&mut to_client, version).await;
            return None;
        }
    };
    let live = sessions.gauge.enter();
    METRICS.connected_after(MODE, connecting.elapsed());
    let session = METRICS.session(MODE);
    info!(client_id = %client_id(&connect), %version, "relaying");
    if let Err(e) = broker.write_all(&wire).await {
        debug!(error = %e, "writing CONNECT to the broker failed");
        return None;
    }
    if let Err(e) = broker.flush().await {
        debug!(error = %e, "writing CONNECT to the broker failed");
        return None;
    }
    Some(Opened {
        // Whole again: the relay reads and writes it in one task.
        client: from_client.unsplit(to_client),
        broker,
        version,
        connect_len: wire.len() as u64,
        connecting,
        _live: live,
        session,
    })
}

/// Relays the session's bytes both ways untouched until both sides are
/// done, or until `ending` says the server is shutting down: then the
/// client hears DISCONNECT 0x8B (MQTT 5) at a packet boundary and the
/// broker connection is dropped. Returns the bytes relayed up and down and
/// why the session closed.
async fn relay(
    client: &mut BoxedStream,
    broker: &mut BoxedStream,
    version: Version,
    mut ending: watch::Receiver<bool>,
) -> (u64, u64, &'static str) {
    let farewell = replies::disconnect_v5(replies::REASON_SERVER_SHUTTING_DOWN);
    let stop = std::pin::pin!(async move {
        // The server is stopping, or gone.
        let _ = ending.wait_for(|stopping| *stopping).await;
    });
    let Relayed {
        up,
        down,
        client_first,
    } = relay_session(
        client,
        broker,
        stop,
        FINISH_PACKET_WITHIN,
        (version == Version::V5).then_some(&farewell[..]),
    )
    .await;
    let up = up.unwrap_or(0);
    match down {
        RelayEnd::Eof { bytes } if client_first => (up, bytes, "client_closed"),
        RelayEnd::Eof { bytes } => (up, bytes, "broker_closed"),
        RelayEnd::Failed(_) => (up, 0, "broker_error"),
        RelayEnd::Stopped { bytes, .. } => (up, bytes, "shutdown"),
    }
}

impl Service for ScionQuic {
    const NAME: &'static str = MODE;
    type Config = ScionQuicConfig;
    type Reloader = Reloader;

    /// Binds the listeners: QUIC on SCION or UDP/IP, and any others
    /// configured.
    async fn bind(config: ScionQuicConfig) -> anyhow::Result<Self> {
        let live = Live::prepare(config)?;
        let config = &live.config;
        METRICS.prepare(&Prepared {
            mode: MODE,
            packet_types: &[],
            upstreams: &[config.broker.to_string()],
            resumes: false,
        });
        let listeners = Listeners::bind(&config.listen_urls(), &config.listen_settings()).await?;
        Ok(Self {
            listeners,
            live: InForce::new(live),
            sessions: Gauge::default(),
            ending: watch::Sender::new(false),
            readiness: Readiness::probing("the broker"),
        })
    }

    /// A handle that applies new settings while serving.
    fn reloader(&self) -> Reloader {
        Reloader {
            live: self.live.clone(),
            certificates: self.listeners.certificates(),
        }
    }

    fn address(&self) -> String {
        ScionQuic::local_addr(self)
    }

    fn active(&self) -> watch::Receiver<usize> {
        self.sessions()
    }

    fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets open
    /// sessions go on for up to `shutdown_grace_ms`, ends the rest (MQTT 5
    /// clients get DISCONNECT 0x8B, server shutting down) and returns once
    /// every session is closed.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let live = self.live.current();
        info!(listen = %self.local_addr(), listeners = ?self.listeners.summary(), broker = %live.config.broker,
              mtls = live.config.client_ca.is_some(), "scion-quic serving");
        let probed = self.live.clone();
        let _probing = start_probing(
            self.readiness.clone(),
            live.config.broker_probe_ms.duration(),
            move || {
                let live = probed.current();
                async move {
                    let limit = live.config.broker_connect_timeout_ms.duration();
                    let fresh = live.config.broker_probe_ms.duration();
                    live.connector.probe(limit, fresh).await
                }
            },
        );
        let sessions = Sessions {
            live: self.live.clone(),
            gauge: self.sessions.clone(),
            ending: self.ending.subscribe(),
        };
        self.readiness.set(true);
        accept_loop(self.listeners, sessions, shutdown).await;
        self.readiness.set(false);
        drain(
            self.sessions.watch(),
            self.live.current().config.shutdown_grace_ms.duration(),
            || {
                self.ending.send_replace(true);
            },
            FINISH_PACKET_WITHIN + Duration::from_secs(4),
        )
        .await;
        Ok(())
    }
}
