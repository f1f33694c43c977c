//! `scion-quic`: terminates MQTT over QUIC, over SCION or plain UDP/IP, and
//! opens one MQTT/TCP connection to the broker per client.
//!
//! Per connection: the client certificate is checked (when required)
//! before anything else; the CONNECT is read (bounded in time and size) and
//! checked; only then is the broker dialled. A broker that cannot be
//! reached gets the client a CONNACK "server unavailable". After that the
//! stream's bytes are relayed both ways untouched.

use std::sync::Arc;

use anyhow::Context;
use scion_stack::stack::{ScionStack, UdpScionSocket};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::broker::BrokerConnector;
use crate::codec::{client_id, replies};
use crate::config::{QuicTransport, ScionQuicConfig};
use crate::gauge::Gauge;
use crate::quic::{Accepted, DatagramSocket, QuicLimits, QuicListener, ServerTls, server_config};
use crate::relay::{ClientConnect, receive_connect};
use crate::telemetry::{self, METRICS, TrafficLabels};

/// The mode label in metrics.
const MODE: &str = "scion-quic";

/// Established connections waiting for their session task.
const ACCEPT_BACKLOG: usize = 128;

enum Listener {
    Udp(QuicListener<UdpSocket>),
    Scion(QuicListener<UdpScionSocket>, ScionStack),
}

/// A bound scion-quic proxy, ready to serve.
pub struct ScionQuic {
    listener: Listener,
    config: Arc<ScionQuicConfig>,
    connector: Arc<BrokerConnector>,
    sessions: Gauge,
}

impl ScionQuic {
    /// Binds the QUIC listener on SCION or UDP/IP.
    pub async fn bind(config: ScionQuicConfig) -> anyhow::Result<Self> {
        let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
            anyhow::bail!(
                "scion-quic needs a server certificate: set `cert` and `key` (or --cert/--key)"
            );
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
                let (stack, socket) = crate::scion::attach(crate::scion::Attachment {
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
            connector: Arc::new(BrokerConnector::new(
                &config.broker,
                &config.broker_tls,
                config.proxy_protocol,
            )?),
            config: Arc::new(config),
            sessions: Gauge::default(),
        })
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

    /// Serves until `shutdown` completes; then stops accepting and lets
    /// open sessions finish for up to `shutdown_grace_ms`.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        info!(listen = %self.local_addr(), transport = ?self.config.transport,
              broker = %self.config.broker, mtls = self.config.client_ca.is_some(),
              "scion-quic serving");
        let grace = self.config.shutdown_grace_ms.duration();
        let mut open = self.sessions.watch();
        let sessions = self.sessions.clone();
        match self.listener {
            Listener::Udp(l) => {
                accept_loop(l, self.config, self.connector, sessions, shutdown).await
            }
            Listener::Scion(l, _stack) => {
                accept_loop(l, self.config, self.connector, sessions, shutdown).await
            }
        }
        info!(open = *open.borrow(), ?grace, "draining");
        if tokio::time::timeout(grace, open.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            info!("grace period over, closing the remaining sessions");
        }
    }
}

async fn accept_loop<S: DatagramSocket>(
    mut listener: QuicListener<S>,
    config: Arc<ScionQuicConfig>,
    connector: Arc<BrokerConnector>,
    sessions: Gauge,
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
        let config = config.clone();
        let connector = connector.clone();
        let live = sessions.clone();
        tokio::spawn(
            async move {
                serve_connection(accepted, client, &config, &connector, &live).await;
            }
            .instrument(span),
        );
    }
}

async fn serve_connection<A>(
    accepted: Accepted<A>,
    client: std::net::SocketAddr,
    config: &ScionQuicConfig,
    connector: &BrokerConnector,
    sessions: &Gauge,
) {
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
    let mut stream = rd.unsplit(wr);
    let connecting = std::time::Instant::now();
    let broker = match timeout(
        config.broker_connect_timeout_ms.duration(),
        connector.connect(client),
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
            let _ = stream
                .write_all(&replies::connack_server_unavailable(version))
                .await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let _live = sessions.enter();
    METRICS.connected_after(MODE, connecting.elapsed());
    let mut session = METRICS.session(MODE);
    info!(client_id = %client_id(&connect), %version, "relaying");
    let mut broker = broker;
    if let Err(e) = broker.write_all(&wire).await {
        debug!(error = %e, "writing CONNECT to the broker failed");
        return;
    }
    match tokio::io::copy_bidirectional(&mut stream, &mut broker).await {
        Ok((up, down)) => {
            debug!(up, down, "session ended");
            session.close_reason("closed");
            // The CONNECT went to the broker before the copy started.
            for (direction, n) in [
                (telemetry::CLIENT_TO_BROKER, up + wire.len() as u64),
                (telemetry::BROKER_TO_CLIENT, down),
            ] {
                METRICS
                    .bytes
                    .get_or_create(&TrafficLabels {
                        mode: MODE,
                        direction,
                        packet_type: "all",
                    })
                    .inc_by(n);
            }
        }
        Err(e) => {
            debug!(error = %e, "session ended");
            session.close_reason("error");
        }
    }
    info!("closed");
}
