//! `r-proxy`: accepts MQTT/TCP clients and carries each connection as one
//! gRPC stream to an s-proxy.
//!
//! Per connection: read the CONNECT (bounded in time and size), open a
//! stream on a healthy s-proxy, then pump both directions independently.
//! When the client leaves, the stream is half-closed and the r-proxy waits
//! (bounded) until the s-proxy has written everything to the broker, so a
//! final DISCONNECT is never lost. When the s-proxy side ends, the client is
//! closed at once; an MQTT 5 client is told why first (DISCONNECT 0x80
//! "upstream unavailable", see `mqtt::replies`). A broken stream is
//! resumed when the s-proxy granted it (`line::resume`). One connection's
//! life is in `session.rs`.

mod config;
mod session;
mod takeover;

use session::{Arrival, serve_client};

pub use config::{RProxyArgs, RProxyConfig};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::timeout;
use tokio_rustls::rustls::ClientConfig;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::line::{UpstreamTiming, Upstreams};
use crate::net::listener::{Certificates, ClientStream, Listeners, Transport};
use crate::net::tls::ClientTls;
use crate::ops::gauge::{Gauge, GaugeGuard};
use crate::ops::readiness::{Readiness, start_probing};
use crate::ops::session_span::SessionSpan;
use crate::ops::telemetry::{METRICS, Prepared};
use crate::service::frame::{Ending, InForce, Reload, Service, drain};
use takeover::Takeovers;

/// The mode label in metrics.
const MODE: &str = "r-proxy";

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
            upstream_tls(&config)?,
            config.upstream_server_name.as_deref(),
            token.as_deref(),
            UpstreamTiming {
                connect_timeout: config.upstream_connect_timeout_ms.duration(),
                retry_after: config.upstream_retry_ms.duration(),
                resolve_every: config.upstream_resolve_ms.duration(),
                keepalive: crate::line::Keepalive {
                    interval: config.keepalive_interval_ms.duration(),
                    timeout: config.keepalive_timeout_ms.duration(),
                },
                send_buffer: config.send_buffer_bytes.get(),
            },
            config.max_packet_size.get(),
        )?;
        Ok(Self { config, upstreams })
    }
}

struct Shared {
    live: InForce<Live>,
    /// Accepted connections by client id, to order session takeovers.
    takeovers: Takeovers,
    connections: Gauge,
    /// Told when the shutdown grace period is over: sessions still open
    /// end now (MQTT 5 clients hear DISCONNECT 0x8B).
    ending: Ending,
}

/// A connection's place in the limits (the open-connections gauge and the
/// `max_connections` permit), kept until its session ends.
struct Held {
    _counted: GaugeGuard,
    _permit: OwnedSemaphorePermit,
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
    /// Serving, and at least one s-proxy serving by its health probes.
    readiness: Readiness,
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
        prepare_metrics(&live.config);
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

/// Reads every file `config` names (tokens, CAs, certificates and their
/// keys, which must match, the SNAP token) as a start would, binding
/// nothing: what `check-config` runs.
pub fn check_files(config: &RProxyConfig) -> anyhow::Result<()> {
    Live::prepare(config.clone())?;
    if let (Some(cert), Some(key)) = (&config.upstream_cert, &config.upstream_key) {
        crate::net::tls::client_config(&crate::net::tls::ClientTls {
            ca: config.upstream_ca.clone(),
            cert_chain: Some(cert.clone()),
            private_key: Some(key.clone()),
            ..Default::default()
        })
        .context("the client certificate towards s-proxies")?;
    }
    Listeners::check_files(&config.listen_urls(), &config.listen_settings())
}

/// Every series the r-proxy can produce, at zero (a reload adds the
/// series of new upstreams).
fn prepare_metrics(config: &RProxyConfig) {
    let upstreams: Vec<String> = config
        .upstream
        .iter()
        .map(|u| u.as_str().to_string())
        .collect();
    METRICS.prepare(&Prepared {
        mode: MODE,
        packet_types: &crate::mqtt::PACKET_TYPE_NAMES[1..],
        upstreams: &upstreams,
        resumes: true,
    });
}

/// TLS towards `https://` s-proxies: the configured CA (or the system's
/// roots) and client certificate, offering HTTP/2 by ALPN as gRPC needs;
/// `None` when no upstream asks for TLS.
fn upstream_tls(config: &RProxyConfig) -> anyhow::Result<Option<Arc<ClientConfig>>> {
    if !config.upstream.iter().any(|u| u.is_tls()) {
        return Ok(None);
    }
    let mut tls = crate::net::tls::client_config(&ClientTls {
        ca: config.upstream_ca.clone(),
        cert_chain: config.upstream_cert.clone(),
        private_key: config.upstream_key.clone(),
        ..ClientTls::default()
    })?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(Arc::new(tls)))
}

impl Service for RProxy {
    const NAME: &'static str = MODE;
    type Config = RProxyConfig;
    type Reloader = Reloader;

    /// Binds the MQTT listener and prepares the s-proxy channels.
    async fn bind(config: RProxyConfig) -> anyhow::Result<Self> {
        let live = Live::prepare(config)?;
        let config = &live.config;
        prepare_metrics(config);
        let listeners = Listeners::bind(&config.listen_urls(), &config.listen_settings()).await?;
        Ok(Self {
            listeners,
            shared: Arc::new(Shared {
                live: InForce::new(live),
                takeovers: Takeovers::default(),
                connections: Gauge::default(),
                ending: Ending::default(),
            }),
            readiness: Readiness::probing("the s-proxies"),
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

    fn readiness(&self) -> Readiness {
        self.readiness.clone()
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
        let probed = self.shared.clone();
        let _probing = start_probing(
            self.readiness.clone(),
            self.shared.live().config.upstream_probe_ms.duration(),
            move || {
                let live = probed.live();
                async move { live.upstreams.probe().await }
            },
        );
        self.readiness.set(true);
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
                METRICS.refused(MODE, "connection_limit");
                warn!(peer = %incoming.peer_name, "connection limit reached, closing new connection");
                continue;
            };
            let shared = self.shared.clone();
            let live = shared.live();
            let log = {
                let (peer, ingress) = (incoming.peer_name.clone(), incoming.transport.name());
                SessionSpan::new(move || info_span!("client", peer = %peer, ingress))
            };
            let opening = log.span();
            // Boxed: the task keeps what it captures for its whole life.
            let incoming = Box::new(incoming);
            tokio::spawn(
                async move {
                    let counted = shared.connections.enter();
                    // The handshake counts against the CONNECT timeout.
                    let limit = live.config.connect_timeout_ms.duration();
                    match timeout(limit, Box::pin(incoming.handshake())).await {
                        Ok(Ok(ClientStream { stream, socket })) => {
                            let arrival = Arrival {
                                began: std::time::Instant::now(),
                                client_socket: socket,
                                shared,
                                live,
                                _held: Held {
                                    _counted: counted,
                                    _permit: permit,
                                },
                            };
                            serve_client(stream, peer, arrival, log).await
                        }
                        Ok(Err(e)) => {
                            METRICS.refused(MODE, "tls_handshake");
                            debug!(error = %e, "handshake failed");
                        }
                        Err(_) => {
                            METRICS.refused(MODE, "connect_timeout");
                            debug!("handshake timed out");
                        }
                    }
                }
                .instrument(opening),
            );
        }
        self.readiness.set(false);
        drop(listeners);
        // Once told, each session only writes its DISCONNECT and closes.
        drain(
            self.shared.connections.watch(),
            self.shared.live().config.shutdown_grace_ms.duration(),
            || self.shared.ending.end(),
            Duration::from_secs(5),
        )
        .await;
        Ok(())
    }
}
