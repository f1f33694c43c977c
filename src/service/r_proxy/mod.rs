//! `r-proxy`: accepts MQTT/TCP clients and carries each connection as one
//! gRPC stream to an s-proxy.
//!
//! Per connection: read the CONNECT (bounded in time and size), open a
//! stream on a healthy s-proxy, then pump both directions independently.
//! When the client leaves, the stream is half-closed and the r-proxy waits
//! (bounded) until the s-proxy has written everything to the broker, so a
//! final DISCONNECT is never lost. When the s-proxy side ends, the client is
//! closed at once; an MQTT 5 client is told why first (DISCONNECT 0x80
//! "upstream unavailable", see `mqtt::replies`).

mod config;
mod takeover;

pub use config::{RProxyArgs, RProxyConfig};

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::line::convert::packet_to_payload;
use crate::line::proto::mqtt::mqtt_stream_message::Payload;
use crate::line::proto::mqtt::session_control::ControlType;
use crate::line::proto::mqtt::{MessageDirection, SessionControl};
use crate::line::resume::{End, Link, LinkReceiver, LinkSender, envelopes, keep_edge};
use crate::line::{
    InboundEnd, OutboundEnd, Traffic, envelope, pump_envelopes_to_writer, pump_reader_to_envelopes,
};
use crate::line::{Opened, Upstreams, new_session_id};
use crate::mqtt::{ClientConnect, PacketReader, receive_connect};
use crate::mqtt::{Version, client_id, replies};
use crate::net::connector::BoxedStream;
use crate::net::listener::{Certificates, ClientStream, Listeners, Transport};
use crate::ops::gauge::Gauge;
use crate::ops::telemetry::METRICS;
use crate::service::frame::{InForce, Reload, Service, drain};
use takeover::{TakeoverWriter, Takeovers};

/// The mode label in metrics.
const MODE: &str = "r-proxy";

/// How long a connection whose broker side ended waits for a newer
/// connection of its client id (already waiting for its CONNACK) to take it
/// over; the broker answers that CONNACK right after closing this one.
const TAKEOVER_GRACE: Duration = Duration::from_millis(500);

/// When a session ends here (shutdown, takeover) on a resumable line, how
/// long to spend telling the s-proxy so (TERMINATE and its acknowledgement).
const TERMINATE_WITHIN: Duration = Duration::from_secs(1);

/// What a reload (SIGHUP) replaces: settings and s-proxy channels (the
/// listeners' certificates are swapped beside it).
struct Live {
    config: RProxyConfig,
    upstreams: Upstreams,
}

impl Live {
    /// Checks `config` and prepares everything it needs (reading files).
    fn prepare(config: RProxyConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let token = match &config.auth_token_file {
            Some(path) => crate::line::read_tokens(path)?.into_iter().next(),
            None => None,
        };
        let upstreams = Upstreams::new(
            &config.upstream,
            &upstream_tls(&config)?,
            token.as_deref(),
            config.upstream_connect_timeout_ms.duration(),
            config.upstream_retry_ms.duration(),
            config.max_packet_size.get(),
            crate::line::Keepalive {
                interval: config.keepalive_interval_ms.duration(),
                timeout: config.keepalive_timeout_ms.duration(),
            },
        )?;
        Ok(Self { config, upstreams })
    }
}

struct Shared {
    live: InForce<Live>,
    /// Accepted connections by client id, to order session takeovers.
    takeovers: Takeovers,
    connections: Gauge,
    /// Becomes true when the shutdown grace period is over: sessions still
    /// open end now (MQTT 5 clients hear DISCONNECT 0x8B).
    ending: watch::Sender<bool>,
}

impl Shared {
    /// The settings in force now.
    fn live(&self) -> Arc<Live> {
        self.live.current()
    }
}

/// A bound r-proxy, ready to serve.
pub struct RProxy {
    /// Plain TCP first, then TLS, WebSocket and `listeners` as configured.
    listeners: Listeners,
    shared: Arc<Shared>,
}

/// Applies new settings to a running r-proxy (SIGHUP).
#[derive(Clone)]
pub struct Reloader(Arc<Shared>, Certificates);

impl Reload<RProxyConfig> for Reloader {
    /// Replaces the settings for new connections: s-proxies, TLS
    /// certificates, tokens, timeouts and limits. Listen addresses only
    /// change with a restart. A config that does not check out is refused
    /// and the running one kept.
    fn apply(&self, config: RProxyConfig) -> anyhow::Result<()> {
        let old = self.0.live();
        if config.listen_urls() != old.config.listen_urls() {
            warn!("listen addresses only change with a restart; keeping the current ones");
        }
        let live = Live::prepare(config)?;
        self.1.reload(&live.config.listen_settings())?;
        self.0.live.replace(live);
        info!("configuration reloaded");
        Ok(())
    }
}

impl RProxy {
    /// Where MQTT clients connect over plain TCP.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.addr_of(Transport::Tcp)
            .ok_or_else(|| std::io::Error::other("no TCP listener"))
    }

    /// Where MQTT clients connect over TLS, when configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.addr_of(Transport::Tls)
    }

    /// Where MQTT clients connect over WebSocket, when configured.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.addr_of(Transport::Ws)
    }

    /// Where MQTT clients connect over `transport` (for SCION: use
    /// [`RProxy::listener_addr`]).
    pub fn addr_of(&self, transport: Transport) -> Option<SocketAddr> {
        self.listeners.local_addr(transport)?.parse().ok()
    }

    /// Where the first listener of `transport` listens, as its transport
    /// writes addresses (`[ISD-AS,IP]:port` for SCION).
    pub fn listener_addr(&self, transport: Transport) -> Option<String> {
        self.listeners.local_addr(transport).map(str::to_string)
    }

    /// The number of client connections being served.
    pub fn connections(&self) -> watch::Receiver<usize> {
        self.shared.connections.watch()
    }
}

/// TLS towards `https://` s-proxies: the configured CA (or the system's
/// roots), server name and client certificate.
fn upstream_tls(config: &RProxyConfig) -> anyhow::Result<ClientTlsConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    if config.upstream.iter().any(|u| u.is_tls()) {
        // Installs the process-wide rustls provider (ring) once.
        scion_sdk_utils::rustls::select_ring_crypto_provider();
    }
    let mut tls = ClientTlsConfig::new();
    tls = match &config.upstream_ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => tls.with_native_roots(),
    };
    if let Some(name) = &config.upstream_server_name {
        tls = tls.domain_name(name.clone());
    }
    if let (Some(cert), Some(key)) = (&config.upstream_cert, &config.upstream_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}

/// What ended a relayed connection, first seen on either side.
enum FirstEnd {
    Client(InboundEnd),
    Upstream(OutboundEnd),
    Shutdown,
    /// A newer connection of the same client id was accepted.
    TakenOver,
}

/// Relays one client connection; `client_socket` is its TCP socket under any
/// TLS or WebSocket layer (for session takeover), `None` for QUIC.
async fn serve_client(
    stream: BoxedStream,
    client_socket: Option<RawFd>,
    peer: SocketAddr,
    shared: &Shared,
    live: &Arc<Live>,
) {
    let config = &live.config;
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Futures of the connecting steps are boxed and the CONNECT dropped once
    // used, so that what a session task holds while it relays (most of its
    // life, mostly idle) is only what relaying needs.
    let Some(ClientConnect {
        version,
        packet: connect,
        ..
    }) = Box::pin(receive_connect(
        &mut rd,
        &mut wr,
        config.connect_timeout_ms.duration(),
        config.max_packet_size.get(),
    ))
    .await
    else {
        return;
    };
    let mut reader = PacketReader::new(rd, config.max_packet_size.get());
    let client_id = client_id(&connect).to_string();

    let session_id = new_session_id();
    let mut sequence_id = 0;
    let establish = match version {
        Version::V3_1_1 => ControlType::Establishv3,
        Version::V5 => ControlType::Establishv5,
    };
    let opening = vec![
        envelope(
            &mut sequence_id,
            MessageDirection::ClientToBroker,
            Payload::SessionControl(SessionControl {
                control_type: establish as i32,
                client_id: client_id.clone(),
            }),
        ),
        envelope(
            &mut sequence_id,
            MessageDirection::ClientToBroker,
            packet_to_payload(&connect),
        ),
    ];
    drop(connect);
    let connecting = Instant::now();
    let opened = Box::pin(live.upstreams.open(
        &session_id,
        peer,
        &client_id,
        &opening,
        config.queue_depth.get(),
        !config.no_resume,
    ))
    .await;
    let Opened {
        outlet,
        inbound,
        endpoint,
        resume_token,
    } = match opened {
        Ok(opened) => opened,
        Err(e) => {
            METRICS.upstream_error(MODE);
            warn!(error = %e, "no s-proxy reachable");
            replies::refuse_server_unavailable(&mut wr, version).await;
            return;
        }
    };
    METRICS.connected_after(MODE, connecting.elapsed());
    let mut session = METRICS.session(MODE);
    info!(session = %session_id, client_id = %client_id, %version,
          resumable = resume_token.is_some(), "relaying");
    let (mut line, mut inbound, link) = match resume_token {
        Some(token) => {
            let link = Link::new(
                End::Edge,
                version,
                MODE,
                config.replay_buffer_bytes.get(),
                outlet,
                inbound,
            );
            link.sent_before(&opening);
            let live = live.clone();
            let depth = config.queue_depth.get();
            let restore = keep_edge(
                link.clone(),
                MODE,
                config.resume_window_ms.duration(),
                token,
                move |token, received| {
                    let live = live.clone();
                    async move {
                        live.upstreams
                            .resume(endpoint, &token, received, depth)
                            .await
                    }
                },
            );
            tokio::spawn(restore.in_current_span());
            (
                LinkSender::resumable(&link),
                LinkReceiver::resumable(&link),
                Some(link),
            )
        }
        None => (
            LinkSender::Plain(Some(outlet)),
            LinkReceiver::Plain(inbound),
            None,
        ),
    };
    drop(opening);

    // Older connections of this client id are closed right before a
    // successful CONNACK is written, as the broker closed them
    // (see takeover.rs). The ticket is declared after `reader`, whose read
    // half keeps the socket open until the ticket has left the table.
    let (_ticket, acceptance, mut taken_over) =
        match shared.takeovers.ticket(&client_id, client_socket) {
            Some(entry) => (
                Some(entry.ticket),
                Some(entry.acceptance),
                Some(entry.taken_over),
            ),
            None => (None, None, None),
        };
    let mut wr = TakeoverWriter::new(wr, acceptance);

    // Ended here (shutdown, takeover) on a resumable line: the s-proxy is
    // told, rather than left holding the session for a resume window.
    let mut tell_s_proxy = false;
    // What an MQTT 5 client is told when the relay ends on our side.
    let farewell: Option<Vec<u8>> = {
        let to_client = pump_envelopes_to_writer(
            &mut inbound,
            &mut wr,
            version,
            Traffic {
                mode: MODE,
                direction: MessageDirection::BrokerToClient,
            },
        );
        tokio::pin!(to_client);
        let first = {
            let to_upstream = pump_reader_to_envelopes(
                &mut reader,
                version,
                MODE,
                MessageDirection::ClientToBroker,
                &mut sequence_id,
                &mut line,
            );
            let mut ending = shared.ending.subscribe();
            let newer_connection = async {
                match &mut taken_over {
                    Some(told) => told.await.is_ok(),
                    None => false,
                }
            };
            tokio::select! {
                end = to_upstream => FirstEnd::Client(end),
                end = &mut to_client => FirstEnd::Upstream(end),
                _ = ending.wait_for(|e| *e) => FirstEnd::Shutdown,
                true = newer_connection => FirstEnd::TakenOver,
            }
        };
        match first {
            FirstEnd::Client(end) => {
                debug!(?end, "client side ended");
                session.close_reason(match end {
                    InboundEnd::Eof | InboundEnd::Disconnected => "client_closed",
                    InboundEnd::Codec(_) => "client_bad_packet",
                    InboundEnd::Io(_) => "client_error",
                    InboundEnd::QueueClosed => "upstream_lost",
                });
                // The s-proxy writes what it has, closes the broker
                // connection and ends its stream: told by a half-close, or
                // on a resumable line by TERMINATE (a break is no end).
                if line.is_resumable() {
                    let end = envelope(
                        &mut sequence_id,
                        MessageDirection::ClientToBroker,
                        envelopes::terminate(),
                    );
                    let _ = timeout(config.drain_timeout_ms.duration(), line.send(end, 0)).await;
                }
                line.finish();
                if timeout(config.drain_timeout_ms.duration(), &mut to_client)
                    .await
                    .is_err()
                {
                    warn!("s-proxy did not confirm the end of the session in time");
                }
                match end {
                    InboundEnd::Codec(e) => {
                        Some(replies::disconnect_v5(e.v5_reason_code()).to_vec())
                    }
                    _ => None,
                }
            }
            FirstEnd::Shutdown => {
                tell_s_proxy = true;
                Some(replies::disconnect_v5(replies::REASON_SERVER_SHUTTING_DOWN).to_vec())
            }
            FirstEnd::TakenOver => {
                // The client socket is shut down already; the broker has
                // closed this connection's side too.
                debug!("taken over by a newer connection of the same client id");
                tell_s_proxy = true;
                session.close_reason("taken_over");
                None
            }
            FirstEnd::Upstream(end) => {
                debug!(?end, "s-proxy side ended");
                // Taken over, most likely: the newer connection closes this
                // one right before its CONNACK, as the broker did.
                if let Some(told) = &mut taken_over
                    && shared.takeovers.newer_pending(&client_id)
                {
                    let _ = timeout(TAKEOVER_GRACE, told).await;
                }
                let refused = link.as_ref().is_some_and(Link::was_refused);
                let before_connack = link.as_ref().is_some_and(|l| l.received() == 0);
                match end {
                    OutboundEnd::Finished | OutboundEnd::Io(_) => None,
                    OutboundEnd::Failed(_) if before_connack => {
                        // Lost before the broker's CONNACK came through: the
                        // client still waits for one.
                        Some(replies::connack_server_unavailable(version))
                    }
                    OutboundEnd::Failed(_) if refused => {
                        Some(replies::DISCONNECT_NOT_RESUMED.to_vec())
                    }
                    OutboundEnd::Failed(_) | OutboundEnd::Invalid(_) => {
                        Some(replies::DISCONNECT_UPSTREAM_LOST.to_vec())
                    }
                }
            }
        }
    };
    if let Some(link) = &link {
        if tell_s_proxy {
            let end = envelope(
                &mut sequence_id,
                MessageDirection::ClientToBroker,
                envelopes::terminate(),
            );
            let _ = timeout(TERMINATE_WITHIN, line.send(end, 0)).await;
            let _ = timeout(TERMINATE_WITHIN, link.all_acknowledged()).await;
        }
        link.close();
    }
    // A CONNACK refusal goes to either version; a DISCONNECT to MQTT 5 only.
    if let Some(farewell) = farewell
        && (version == Version::V5 || farewell.first() == Some(&0x20))
    {
        let _ = wr.write_all(&farewell).await;
    }
    let _ = wr.shutdown().await;
    info!(session = %session_id, "closed");
}

impl Service for RProxy {
    const NAME: &'static str = MODE;
    type Config = RProxyConfig;
    type Reloader = Reloader;

    /// Binds the MQTT listener and prepares the s-proxy channels.
    async fn bind(config: RProxyConfig) -> anyhow::Result<Self> {
        let live = Live::prepare(config)?;
        let config = &live.config;
        let listeners = Listeners::bind(&config.listen_urls(), &config.listen_settings()).await?;
        Ok(Self {
            listeners,
            shared: Arc::new(Shared {
                live: InForce::new(live),
                takeovers: Takeovers::default(),
                connections: Gauge::default(),
                ending: watch::Sender::new(false),
            }),
        })
    }

    /// A handle that applies new settings while serving.
    fn reloader(&self) -> Reloader {
        Reloader(self.shared.clone(), self.listeners.certificates())
    }

    fn address(&self) -> String {
        RProxy::local_addr(self)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn active(&self) -> watch::Receiver<usize> {
        self.connections()
    }

    /// Accepts clients until `shutdown` completes; then lets the open
    /// connections finish for up to `shutdown_grace_ms`, ends the rest
    /// (MQTT 5 clients get DISCONNECT 0x8B, server shutting down) and returns
    /// once every connection is closed.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limit = Arc::new(Semaphore::new(
            self.shared.live().config.max_connections.get(),
        ));
        info!(listen = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              listeners = ?self.listeners.summary(),
              upstreams = ?self.shared.live().config.upstream.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
              "r-proxy serving");
        tokio::pin!(shutdown);
        let mut listeners = self.listeners;
        loop {
            let incoming = tokio::select! {
                _ = &mut shutdown => break,
                incoming = listeners.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => break,
                },
            };
            let peer = incoming.peer;
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                warn!(peer = %incoming.peer_name, "connection limit reached, closing new connection");
                continue;
            };
            let shared = self.shared.clone();
            let live = shared.live();
            let span = info_span!("client", peer = %incoming.peer_name, ingress = incoming.transport.name());
            tokio::spawn(
                async move {
                    let _live = shared.connections.enter();
                    // The handshake counts against the CONNECT timeout.
                    let limit = live.config.connect_timeout_ms.duration();
                    match timeout(limit, Box::pin(incoming.handshake())).await {
                        Ok(Ok(ClientStream { stream, socket })) => {
                            serve_client(stream, socket, peer, &shared, &live).await
                        }
                        Ok(Err(e)) => debug!(error = %e, "handshake failed"),
                        Err(_) => debug!("handshake timed out"),
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        }
        drop(listeners);
        // Once told, each session only writes its DISCONNECT and closes.
        drain(
            self.shared.connections.watch(),
            self.shared.live().config.shutdown_grace_ms.duration(),
            &self.shared.ending,
            Duration::from_secs(5),
        )
        .await;
        Ok(())
    }
}
