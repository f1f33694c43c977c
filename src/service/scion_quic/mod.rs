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

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use scion_stack::stack::{ScionStack, UdpScionSocket};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::mqtt::{ClientConnect, RelayEnd, receive_connect, relay_to_client};
use crate::mqtt::{Version, client_id, replies};
use crate::net::broker::BrokerConnector;
use crate::net::quic::{
    Accepted, DatagramSocket, QuicLimits, QuicListener, ServerConfigSlot, ServerTls, server_config,
};
use crate::ops::gauge::Gauge;
use crate::ops::telemetry::{self, METRICS};

/// The mode label in metrics.
const MODE: &str = "scion-quic";

/// Established connections waiting for their session task.
const ACCEPT_BACKLOG: usize = 128;

/// Once the grace period is over, how long a session may take to finish the
/// packet it is passing to the client before its DISCONNECT is written.
const FINISH_PACKET_WITHIN: Duration = Duration::from_secs(1);

enum Listener {
    Udp(QuicListener<UdpSocket>),
    Scion(QuicListener<UdpScionSocket>, ScionStack),
}

/// What a reload (SIGHUP) replaces for new sessions.
struct Live {
    config: ScionQuicConfig,
    connector: BrokerConnector,
}

impl Live {
    /// Checks `config` and prepares the broker connector and the QUIC
    /// settings (reading the certificate files).
    fn prepare(config: ScionQuicConfig) -> anyhow::Result<(Self, quiche::Config)> {
        config.validate()?;
        let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
            anyhow::bail!("scion-quic needs `cert` and `key`");
        };
        let tls = ServerTls {
            cert_chain: cert.clone(),
            private_key: key.clone(),
            client_ca: config.client_ca.clone(),
        };
        let limits = QuicLimits {
            idle_timeout: config.idle_timeout_ms.duration(),
            stream_window: config.stream_window.get().into(),
            connection_window: u64::from(config.stream_window.get()) * 2,
            ..QuicLimits::default()
        };
        let quic = server_config(&tls, &limits)?;
        let connector =
            BrokerConnector::new(&config.broker, &config.broker_tls, config.proxy_protocol)?;
        Ok((Self { config, connector }, quic))
    }
}

type SharedLive = Arc<RwLock<Arc<Live>>>;

fn current(live: &SharedLive) -> Arc<Live> {
    // A poisoned lock only means a panic elsewhere; the Arc is intact.
    live.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A bound scion-quic proxy, ready to serve.
pub struct ScionQuic {
    listener: Listener,
    live: SharedLive,
    sessions: Gauge,
    /// Becomes true when the shutdown grace period is over: open sessions
    /// end now (MQTT 5 clients hear DISCONNECT 0x8B).
    ending: watch::Sender<bool>,
}

/// Applies new settings to a running scion-quic (SIGHUP).
#[derive(Clone)]
pub struct Reloader {
    live: SharedLive,
    quic: ServerConfigSlot,
}

impl Reloader {
    /// Replaces, for new connections, the certificate, key and client CA,
    /// the broker and its TLS, and the timeouts and limits. Where it
    /// listens (transport, address, SCION attachment) only changes with a
    /// restart. A config that does not check out is refused and the
    /// running one kept.
    pub fn apply(&self, config: ScionQuicConfig) -> anyhow::Result<()> {
        let old = current(&self.live);
        if config.transport != old.config.transport
            || config.listen != old.config.listen
            || config.endhost_api != old.config.endhost_api
            || config.snap_token_file != old.config.snap_token_file
            || config.path_acl != old.config.path_acl
        {
            warn!("the transport, listen address and SCION settings only change with a restart");
        }
        let (live, quic) = Live::prepare(config)?;
        self.quic.replace(quic);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
        info!("configuration reloaded");
        Ok(())
    }
}

impl ScionQuic {
    /// Binds the QUIC listener on SCION or UDP/IP.
    pub async fn bind(config: ScionQuicConfig) -> anyhow::Result<Self> {
        let (live, quic) = Live::prepare(config)?;
        let config = &live.config;
        let max = config.max_connections.get();
        let lifetime = config.retry_token_lifetime_ms.duration();
        let listener = match config.transport {
            QuicTransport::Quic => {
                let listen = config.listen.as_deref().unwrap_or("0.0.0.0:14567");
                let socket = UdpSocket::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on UDP {listen}"))?;
                Listener::Udp(QuicListener::new(
                    socket,
                    quic,
                    max,
                    ACCEPT_BACKLOG,
                    lifetime,
                )?)
            }
            QuicTransport::Scion => {
                let (stack, socket) = crate::net::scion::attach(crate::net::scion::Attachment {
                    endhost_api: config.endhost_api.as_ref(),
                    snap_token_file: config.snap_token_file.as_deref(),
                    listen: config.listen.as_deref(),
                    path_acl: config.path_acl.as_ref(),
                })
                .await?;
                Listener::Scion(
                    QuicListener::new(socket, quic, max, ACCEPT_BACKLOG, lifetime)?,
                    stack,
                )
            }
        };
        Ok(Self {
            listener,
            live: Arc::new(RwLock::new(Arc::new(live))),
            sessions: Gauge::default(),
            ending: watch::Sender::new(false),
        })
    }

    /// A handle that applies new settings while serving.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            live: self.live.clone(),
            quic: match &self.listener {
                Listener::Udp(l) => l.config_slot(),
                Listener::Scion(l, _) => l.config_slot(),
            },
        }
    }

    /// Where clients connect: `IP:port` or `[ISD-AS,IP]:port`.
    pub fn local_addr(&self) -> String {
        match &self.listener {
            Listener::Udp(l) => l.local_addr().to_string(),
            Listener::Scion(l, _) => l.local_addr().to_string(),
        }
    }

    /// The number of sessions relaying to the broker.
    pub fn sessions(&self) -> watch::Receiver<usize> {
        self.sessions.watch()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets open
    /// sessions go on for up to `shutdown_grace_ms`, ends the rest (MQTT 5
    /// clients get DISCONNECT 0x8B, server shutting down) and returns once
    /// every session is closed.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let live = current(&self.live);
        info!(listen = %self.local_addr(), transport = ?live.config.transport,
              broker = %live.config.broker, mtls = live.config.client_ca.is_some(),
              "scion-quic serving");
        let mut open = self.sessions.watch();
        let sessions = Sessions {
            live: self.live.clone(),
            gauge: self.sessions.clone(),
            ending: self.ending.subscribe(),
        };
        match self.listener {
            Listener::Udp(l) => accept_loop(l, sessions, shutdown).await,
            Listener::Scion(l, _stack) => accept_loop(l, sessions, shutdown).await,
        }
        let grace = current(&self.live).config.shutdown_grace_ms.duration();
        info!(open = *open.borrow(), ?grace, "draining");
        if timeout(grace, open.wait_for(|n| *n == 0)).await.is_err() {
            info!(
                open = *open.borrow(),
                "grace period over, closing the remaining sessions"
            );
            self.ending.send_replace(true);
            let last = FINISH_PACKET_WITHIN + Duration::from_secs(4);
            let _ = timeout(last, open.wait_for(|n| *n == 0)).await;
        }
    }
}

/// What every session task needs.
#[derive(Clone)]
struct Sessions {
    live: SharedLive,
    gauge: Gauge,
    ending: watch::Receiver<bool>,
}

async fn accept_loop<S: DatagramSocket>(
    mut listener: QuicListener<S>,
    sessions: Sessions,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Some(a) => a,
                None => {
                    warn!("quic listener stopped");
                    break;
                }
            },
        };
        let span = info_span!("quic-client", peer = %accepted.peer);
        let client = S::ip_of(&accepted.peer);
        let sessions = sessions.clone();
        tokio::spawn(
            async move {
                let live = current(&sessions.live);
                serve_connection(accepted, client, &live, &sessions).await;
            }
            .instrument(span),
        );
    }
}

async fn serve_connection<A>(
    accepted: Accepted<A>,
    client: std::net::SocketAddr,
    live: &Live,
    sessions: &Sessions,
) {
    let Live { config, connector } = live;
    let Accepted {
        stream, peer_cert, ..
    } = accepted;
    if config.client_ca.is_some() && peer_cert.is_none() {
        // Dropping the stream ends the QUIC connection.
        warn!("client presented no certificate, refused");
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let Some(ClientConnect {
        wire,
        version,
        packet: connect,
    }) = receive_connect(
        &mut rd,
        &mut wr,
        config.connect_timeout_ms.duration(),
        config.max_packet_size.get(),
    )
    .await
    else {
        return;
    };
    let connecting = std::time::Instant::now();
    let mut broker = match timeout(
        config.broker_connect_timeout_ms.duration(),
        Box::pin(connector.connect(client)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        result => {
            let reason = match result {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            warn!(broker = %config.broker, %reason, "broker unreachable");
            METRICS.upstream_error(MODE);
            let _ = wr
                .write_all(&replies::connack_server_unavailable(version))
                .await;
            let _ = wr.shutdown().await;
            return;
        }
    };
    let _live = sessions.gauge.enter();
    METRICS.connected_after(MODE, connecting.elapsed());
    let mut session = METRICS.session(MODE);
    info!(client_id = %client_id(&connect), %version, "relaying");
    if let Err(e) = broker.write_all(&wire).await {
        debug!(error = %e, "writing CONNECT to the broker failed");
        return;
    }
    let (up, down, reason) = relay(rd, wr, broker, version, sessions.ending.clone()).await;
    session.close_reason(reason);
    // The CONNECT went to the broker before the relay started.
    METRICS.relayed_bytes(MODE, telemetry::CLIENT_TO_BROKER, up + wire.len() as u64);
    METRICS.relayed_bytes(MODE, telemetry::BROKER_TO_CLIENT, down);
    info!(reason, "closed");
}

/// Relays the session's bytes both ways untouched until both sides are
/// done, or until `ending` says the server is shutting down: then the
/// client hears DISCONNECT 0x8B (MQTT 5) at a packet boundary and the
/// broker connection is dropped. Returns the bytes relayed up and down and
/// why the session closed.
async fn relay<S, B>(
    mut from_client: tokio::io::ReadHalf<S>,
    mut to_client: tokio::io::WriteHalf<S>,
    broker: B,
    version: Version,
    ending: watch::Receiver<bool>,
) -> (u64, u64, &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut from_broker, mut to_broker) = tokio::io::split(broker);
    let up = async {
        let copied = tokio::io::copy(&mut from_client, &mut to_broker).await;
        let _ = to_broker.shutdown().await;
        copied
    };
    let down = async {
        let end = relay_to_client(
            &mut from_broker,
            &mut to_client,
            ending,
            FINISH_PACKET_WITHIN,
        )
        .await;
        if let RelayEnd::Stopped {
            at_boundary: true, ..
        } = end
            && version == Version::V5
        {
            let _ = to_client
                .write_all(&replies::disconnect_v5(
                    replies::REASON_SERVER_SHUTTING_DOWN,
                ))
                .await;
        }
        let _ = to_client.shutdown().await;
        end
    };
    tokio::pin!(up, down);
    let (up, down) = tokio::select! {
        end = &mut down => {
            let up = match end {
                // The broker is done: the client hears the end of the stream
                // and closes, or the QUIC idle timeout closes it.
                RelayEnd::Eof { .. } => up.await.ok(),
                RelayEnd::Failed(_) | RelayEnd::Stopped { .. } => None,
            };
            (up, end)
        }
        copied = &mut up => (copied.ok(), down.await),
    };
    let up = up.unwrap_or(0);
    match down {
        RelayEnd::Eof { bytes } => (up, bytes, "closed"),
        RelayEnd::Failed(_) => (up, 0, "error"),
        RelayEnd::Stopped { bytes, .. } => (up, bytes, "shutdown"),
    }
}
