//! `s-proxy`: serves `MqttRelayService`; each stream becomes one MQTT/TCP
//! connection to the configured broker.
//!
//! A session ends when either side ends: the r-proxy closing its request
//! stream (everything it sent is written to the broker first, so a client's
//! DISCONNECT always arrives), the broker closing, or an error. Sessions are
//! independent tasks keyed by nothing but their stream; two clients with the
//! same (or an empty) client id are two sessions.

mod config;
mod session;

use session::{Line, run_session};

pub use config::{SProxyArgs, SProxyConfig};

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::{debug, info, info_span, warn};

use crate::line::grpc::{ServedCall, Server, ServerSettings, serve_health};
use crate::line::incoming::Admission;
use crate::line::outlet::Outlet;
use crate::line::resume::grant::{
    Owner, RESUME_BUFFER_KEY, RESUME_OFFER_KEY, RESUME_RECEIVED_KEY, RESUME_TOKEN_KEY, new_token,
    read_number,
};
use crate::line::resume::{
    End, Link, LinkReceiver, LinkSender, ResumableSessions, keep_cloud, take_resume,
};
use crate::line::server::{StreamOrigin, check_token};
use crate::line::{Keepalive, RELAY_METHOD, RELAY_SERVICE, max_message_size, new_session_id};
use crate::mqtt;
use crate::net::broker::BrokerConnector;
use crate::net::tls::ServerTls;
use crate::ops::gauge::Gauge;
use crate::ops::readiness::{Readiness, start_probing};
use crate::ops::session_span::SessionSpan;
use crate::ops::telemetry::{METRICS, Prepared};
use crate::service::frame::{Ending, InForce, Reload, Service};

/// The mode label in metrics.
const MODE: &str = "s-proxy";

/// Once the grace period is over, how long the sessions still open have to
/// send their DISCONNECT and end before the server is dropped.
const SESSIONS_END_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// What a reload (SIGHUP) replaces for new sessions.
struct Live {
    config: SProxyConfig,
    connector: BrokerConnector,
    /// Accepted bearer tokens; empty when tokens are not required.
    tokens: Vec<String>,
    /// TLS for new gRPC connections; `None` for plaintext.
    tls: Option<TlsAcceptor>,
}

impl Live {
    /// Checks `config` and prepares what it needs (reading files).
    fn prepare(config: SProxyConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let tokens = match &config.auth_token_file {
            Some(path) => crate::line::read_tokens(path)?,
            None => Vec::new(),
        };
        let connector =
            BrokerConnector::new(&config.broker, &config.broker_tls, config.proxy_protocol)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let mut tls = crate::net::tls::server_config(&ServerTls {
                    cert_chain: cert.clone(),
                    private_key: key.clone(),
                    client_ca: config.client_ca.clone(),
                })?;
                // gRPC runs over HTTP/2 only.
                tls.alpn_protocols = vec![b"h2".to_vec()];
                Some(TlsAcceptor::from(Arc::new(tls)))
            }
            _ => None,
        };
        Ok(Self {
            config,
            connector,
            tokens,
            tls,
        })
    }
}

type SharedLive = InForce<Live>;

/// The relay method's handler: one task per session.
struct Relay {
    live: SharedLive,
    limit: Arc<Semaphore>,
    sessions: Gauge,
    /// Told when the shutdown grace period is over.
    ending: Arc<Ending>,
    /// Sessions a broken stream may resume, by token.
    resumable: ResumableSessions,
    /// The largest message on the line.
    max_message: usize,
}

impl Relay {
    /// Answers a call: refused (token, limit), a resume, or a new session.
    fn serve(&self, call: ServedCall) {
        let live = self.live.current();
        if let Err(refused) = check_token(&call.metadata, &live.tokens) {
            METRICS.refused(MODE, "not_authorized");
            warn!(peer = ?call.peer.remote, "r-proxy without a valid token refused");
            return call.refuse(&refused);
        }
        let owner = Owner::of(call.peer.certificate.as_deref(), &call.metadata);
        if let Some(token) = call.metadata.get(RESUME_TOKEN_KEY) {
            let token = token.to_str().unwrap_or("").to_string();
            return self.resume(call, &token, owner);
        }
        let Ok(permit) = self.limit.clone().try_acquire_owned() else {
            METRICS.refused(MODE, "connection_limit");
            return call.refuse(&Status::resource_exhausted("s-proxy session limit reached"));
        };
        let offered = call.metadata.contains_key(RESUME_OFFER_KEY) && !live.config.no_resume;
        let peer = call.peer.remote;
        let StreamOrigin {
            peer_session,
            client,
        } = StreamOrigin::of(&call.metadata, &call.peer);
        let token = offered.then(new_token);
        let replay_bytes = live.config.replay_buffer_bytes.get();
        let peer_replay_bytes = read_number(&call.metadata, RESUME_BUFFER_KEY);
        let mut metadata = MetadataMap::new();
        if let Some(token) = token.as_deref().and_then(|t| t.parse().ok()) {
            metadata.insert(RESUME_TOKEN_KEY, token);
            metadata.insert(RESUME_BUFFER_KEY, replay_bytes.into());
        }
        let (responses, inbound) = match call.accept(metadata) {
            Ok(accepted) => accepted,
            Err(status) => {
                debug!(?peer, %status, "the call was gone before its answer");
                return;
            }
        };
        let tx = Outlet::responses(responses, self.max_message);
        let counted = self.sessions.enter();
        let ending = self.ending.clone();
        let session_id = new_session_id();
        let log = SessionSpan::new(
            move || info_span!("session", id = %session_id, peer_session = %peer_session, peer = ?peer),
        );
        let (line, receiver, link, registration) = match token {
            Some(token) => {
                // The version is the CONNECT's, known once it arrives.
                let link = Link::new(
                    End::Cloud,
                    mqtt::Version::V5,
                    MODE,
                    replay_bytes,
                    peer_replay_bytes,
                    tx,
                    inbound,
                );
                keep_cloud(
                    &link,
                    MODE,
                    live.config.resume_window_ms.duration(),
                    log.clone(),
                );
                let registration = self
                    .resumable
                    .register(token, owner, link.clone(), log.clone());
                (
                    LinkSender::resumable(&link),
                    LinkReceiver::resumable(&link),
                    Some(link),
                    Some(registration),
                )
            }
            None => (
                LinkSender::Plain(Some(tx)),
                LinkReceiver::Plain(Box::new(inbound)),
                None,
                None,
            ),
        };
        let line = Box::new(Line {
            sender: line,
            receiver,
            link,
        });
        tokio::spawn(async move {
            run_session(line, &live.config, &live.connector, client, ending, &log).await;
            drop(registration);
            drop(permit);
            drop(counted);
        });
    }

    /// Hands the stream of a resume to the session of `token`, answering
    /// with what the session received and its next token; refused for an
    /// unknown or spent token, an ended session or another owner.
    fn resume(&self, call: ServedCall, token: &str, owner: Option<Owner>) {
        let peer = call.peer.remote;
        let refuse = |call: ServedCall, status: Status| {
            METRICS.resumed(MODE, "refused", None);
            warn!(?peer, %status, "resume refused");
            call.refuse(&status);
        };
        let Some(peer_received) = read_number(&call.metadata, RESUME_RECEIVED_KEY) else {
            let status = Status::invalid_argument("a resume needs mqttbridge-resume-received");
            return refuse(call, status);
        };
        let (next, link, log) = match self.resumable.claim(token, owner) {
            Ok(claimed) => claimed,
            Err(status) => return refuse(call, status),
        };
        let Some(received) = link.detach_for_resume() else {
            let status = Status::not_found("session cannot be resumed: it has ended");
            return refuse(call, status);
        };
        let mut metadata = MetadataMap::new();
        metadata.insert(RESUME_RECEIVED_KEY, received.into());
        if let Ok(next) = next.parse() {
            metadata.insert(RESUME_TOKEN_KEY, next);
        }
        match call.accept(metadata) {
            Ok((responses, inbound)) => {
                let outlet = Outlet::responses(responses, self.max_message);
                take_resume(link, MODE, &log, outlet, inbound, peer_received);
            }
            // The session waits in its gap as after any break.
            Err(status) => debug!(?peer, %status, "the resume was gone before its answer"),
        }
    }
}

/// Reads every file `config` names (tokens, the gRPC certificate and its
/// key, which must match, the client CA, the broker's TLS files) as a
/// start would, binding nothing: what `check-config` runs.
pub fn check_files(config: &SProxyConfig) -> anyhow::Result<()> {
    Live::prepare(config.clone()).map(drop)
}

/// A bound s-proxy, ready to serve.
pub struct SProxy {
    listener: TcpListener,
    live: SharedLive,
    sessions: Gauge,
    /// Serving, and the broker answering its probes; the gRPC health
    /// service follows it.
    readiness: Readiness,
}

/// Applies new settings to a running s-proxy (SIGHUP).
#[derive(Clone)]
pub struct Reloader(SharedLive);

impl Reload<SProxyConfig> for Reloader {
    /// Replaces the settings for new connections and sessions: the gRPC
    /// certificate, key and client CA (re-read even when the paths are the
    /// same), broker and its TLS, tokens, timeouts. The listen address, the
    /// session limit, the send buffer and the HTTP/2 keep-alive change only
    /// with a restart. A config that does not check
    /// out is refused and the running one kept.
    fn apply(&self, config: SProxyConfig) -> anyhow::Result<()> {
        let old = self.0.current();
        if config.listen != old.config.listen
            || config.max_sessions != old.config.max_sessions
            || config.send_buffer_bytes != old.config.send_buffer_bytes
            || config.keepalive_interval_ms != old.config.keepalive_interval_ms
            || config.keepalive_timeout_ms != old.config.keepalive_timeout_ms
        {
            warn!(
                "listen address, max_sessions, send_buffer_bytes and keep-alive only change \
                 with a restart; keeping them"
            );
        }
        let live = Live::prepare(config)?;
        self.0.replace(live);
        info!("configuration reloaded");
        Ok(())
    }
}

impl SProxy {
    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The number of live sessions.
    pub fn sessions(&self) -> tokio::sync::watch::Receiver<usize> {
        self.sessions.watch()
    }
}

impl Service for SProxy {
    const NAME: &'static str = MODE;
    type Config = SProxyConfig;
    type Reloader = Reloader;

    /// Binds the gRPC listener.
    async fn bind(config: SProxyConfig) -> anyhow::Result<Self> {
        let live = Live::prepare(config)?;
        let config = &live.config;
        METRICS.prepare(&Prepared {
            mode: MODE,
            packet_types: &crate::mqtt::PACKET_TYPE_NAMES[1..],
            upstreams: &[config.broker.to_string()],
            resumes: true,
        });
        let listener = TcpListener::bind(config.listen.as_str())
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self {
            listener,
            live: InForce::new(live),
            sessions: Gauge::default(),
            readiness: Readiness::probing("the broker"),
        })
    }

    /// A handle that applies new settings while serving.
    fn reloader(&self) -> Reloader {
        Reloader(self.live.clone())
    }

    fn address(&self) -> String {
        SProxy::local_addr(self)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn active(&self) -> watch::Receiver<usize> {
        self.sessions()
    }

    fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets open
    /// sessions go on for up to `shutdown_grace_ms` and ends the rest
    /// (MQTT 5 clients get DISCONNECT 0x8B, server shutting down).
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = self.live.current().config.clone();
        let grace = config.shutdown_grace_ms.duration();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limit = max_message_size(config.max_packet_size.get());
        let ending = Arc::new(Ending::default());
        let relay = Arc::new(Relay {
            limit: Arc::new(Semaphore::new(config.max_sessions.get() as usize)),
            live: self.live.clone(),
            sessions: self.sessions.clone(),
            ending: ending.clone(),
            resumable: ResumableSessions::default(),
            max_message: limit,
        });
        let probed = self.live.clone();
        let _probing = start_probing(
            self.readiness.clone(),
            config.broker_probe_ms.duration(),
            move || {
                let live = probed.current();
                async move {
                    let limit = live.config.broker_connect_timeout_ms.duration();
                    let fresh = live.config.broker_probe_ms.duration();
                    live.connector.probe(limit, fresh).await
                }
            },
        );
        info!(listen = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
              broker = %config.broker, "s-proxy serving");
        let live = self.live.clone();
        let incoming = crate::line::incoming::accept(
            self.listener,
            move || {
                let live = live.current();
                Admission {
                    tls: live.tls.clone(),
                    handshake_timeout: live.config.connect_timeout_ms.duration(),
                }
            },
            config.max_sessions.get() as usize,
        );
        let server = Server::new(ServerSettings {
            max_streams: config.max_sessions.get(),
            keepalive: Keepalive {
                interval: config.keepalive_interval_ms.duration(),
                timeout: config.keepalive_timeout_ms.duration(),
            },
            handshake_timeout: config.connect_timeout_ms.duration(),
            send_buffer: config.send_buffer_bytes.get(),
            max_message: limit,
        })
        .route(RELAY_METHOD, Arc::new(move |call| relay.serve(call)));
        // Before the first request: not serving until the broker answers.
        let server = serve_health(server, self.readiness.watch(), &["", RELAY_SERVICE]).serve(
            incoming,
            async move {
                let _ = stopped.await;
            },
        );
        self.readiness.set(true);
        tokio::pin!(server);
        tokio::select! {
            () = &mut server => return Ok(()),
            () = shutdown => {}
        }
        self.readiness.set(false);
        info!(open = *self.sessions.watch().borrow(), ?grace, "draining");
        let _ = stop.send(());
        if tokio::time::timeout(grace, &mut server).await.is_ok() {
            return Ok(());
        }
        info!(
            open = *self.sessions.watch().borrow(),
            "grace period over, closing the remaining sessions"
        );
        // MQTT 5 clients hear DISCONNECT 0x8B through their r-proxy.
        ending.end();
        let _ = tokio::time::timeout(SESSIONS_END_WITHIN, &mut server).await;
        Ok(())
    }
}
