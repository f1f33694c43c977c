//! Where services accept MQTT byte streams. A listener is named by a URL
//! whose scheme is its transport: `tcp://`, `tls://`, `ws://`, `wss://`,
//! `quic://` or `scion-quic://`. Every service that accepts MQTT clients
//! opens its listeners here, so a transport added here serves them all.
//!
//! [`Listeners`] runs one accept task per listener and hands out
//! [`Incoming`] connections. Their handshake (TLS, WebSocket) runs in the
//! connection's own task ([`Incoming::handshake`]), so a slow client never
//! holds up accepting; QUIC connections arrive with the handshake done and
//! the client certificate checked.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

pub use super::listen_url::{ListenUrl, Transport};
use super::quic::{DatagramSocket, QuicLimits, QuicListener, ServerConfigSlot};
use super::scion::PathAcl;
use super::stream::BoxedStream;
use super::tls::ServerTls;

/// Connections accepted and not yet taken by the service.
const ACCEPT_BACKLOG: usize = 128;

/// Where a SCION listener attaches.
#[derive(Debug, Clone, Default)]
pub struct ScionAttach {
    /// Endhost API of the local AS.
    pub endhost_api: Option<url::Url>,
    /// File with the SNAP token for the endhost API.
    pub snap_token_file: Option<PathBuf>,
    /// Which paths replies may take.
    pub path_acl: Option<PathAcl>,
}

/// What a service's listeners share.
#[derive(Debug, Clone, Default)]
pub struct ListenSettings {
    /// The server's certificate, for every transport but tcp and ws.
    pub tls: Option<ServerTls>,
    /// QUIC flow control and idle timeout.
    pub quic: QuicLimits,
    /// How long a QUIC stateless-retry token stays valid.
    pub retry_token_lifetime: Duration,
    /// Live QUIC connections per QUIC listener at most.
    pub max_quic_connections: usize,
    /// SCION attachment, for scion-quic listeners.
    pub scion: ScionAttach,
}

impl ListenSettings {
    fn tls(&self, url: &ListenUrl) -> anyhow::Result<&ServerTls> {
        self.tls
            .as_ref()
            .with_context(|| format!("listener {url} needs a server certificate and key"))
    }
}

/// The certificate new TLS and WebSocket-over-TLS connections get; a reload
/// replaces it.
type AcceptorSlot = Arc<RwLock<TlsAcceptor>>;

fn acceptor(tls: &ServerTls) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(Arc::new(super::tls::server_config(tls)?)))
}

/// What an accepted TCP connection needs before it carries MQTT.
#[derive(Clone)]
enum Upgrade {
    Plain,
    Tls(AcceptorSlot),
    Ws,
    Wss(AcceptorSlot),
}

/// Where a reload puts new certificates.
enum CertificateSlot {
    Rustls(AcceptorSlot),
    Quic(ServerConfigSlot),
}

/// A service's bound listeners.
pub struct Listeners {
    incoming: mpsc::Receiver<Incoming>,
    bound: Vec<(ListenUrl, String)>,
    certificates: Certificates,
    /// The accept tasks; dropping the set stops them.
    _tasks: JoinSet<()>,
}

impl Listeners {
    /// Reads every file the listeners in `urls` would read at start (the
    /// certificate, its key, which must match it, the client CA, the SNAP
    /// token) without binding anything: `check-config`.
    pub fn check_files(urls: &[ListenUrl], settings: &ListenSettings) -> anyhow::Result<()> {
        for url in urls {
            match url.transport {
                Transport::Tcp | Transport::Ws => {}
                Transport::Tls | Transport::Wss => {
                    acceptor(settings.tls(url)?)?;
                }
                Transport::Quic | Transport::ScionQuic => {
                    super::quic::server_config(settings.tls(url)?, &settings.quic)?;
                }
            }
            if url.transport == Transport::ScionQuic
                && let Some(path) = &settings.scion.snap_token_file
            {
                super::scion::read_token(path)?;
            }
        }
        Ok(())
    }

    /// Binds every listener in `urls`, or none: an address in use or a
    /// missing certificate fails the whole set.
    pub async fn bind(urls: &[ListenUrl], settings: &ListenSettings) -> anyhow::Result<Self> {
        let (tx, incoming) = mpsc::channel(ACCEPT_BACKLOG);
        let mut tasks = JoinSet::new();
        let mut bound = Vec::new();
        let mut certificates = Vec::new();
        for url in urls {
            let addr = url.addr.as_deref().unwrap_or_default();
            let local = match url.transport {
                Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => {
                    let upgrade = match url.transport {
                        Transport::Tcp => Upgrade::Plain,
                        Transport::Ws => Upgrade::Ws,
                        transport => {
                            let slot = Arc::new(RwLock::new(acceptor(settings.tls(url)?)?));
                            certificates.push(CertificateSlot::Rustls(slot.clone()));
                            if transport == Transport::Tls {
                                Upgrade::Tls(slot)
                            } else {
                                Upgrade::Wss(slot)
                            }
                        }
                    };
                    let listener = TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on {url}"))?;
                    let local = listener.local_addr()?.to_string();
                    tasks.spawn(accept_tcp(listener, url.transport, upgrade, tx.clone()));
                    local
                }
                Transport::Quic => {
                    let socket = UdpSocket::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on {url}"))?;
                    let listener = quic_listener(socket, url, settings)?;
                    certificates.push(CertificateSlot::Quic(listener.config_slot()));
                    let local = listener.local_addr().to_string();
                    let mtls = settings.tls(url)?.client_ca.is_some();
                    tasks.spawn(accept_quic(listener, Transport::Quic, mtls, tx.clone(), ()));
                    local
                }
                Transport::ScionQuic => {
                    let scion = &settings.scion;
                    let (stack, socket) = super::scion::attach(super::scion::Attachment {
                        endhost_api: scion.endhost_api.as_ref(),
                        snap_token_file: scion.snap_token_file.as_deref(),
                        listen: url.addr.as_deref(),
                        path_acl: scion.path_acl.as_ref(),
                    })
                    .await
                    .with_context(|| format!("cannot listen on {url}"))?;
                    let listener = quic_listener(socket, url, settings)?;
                    certificates.push(CertificateSlot::Quic(listener.config_slot()));
                    let local = listener.local_addr().to_string();
                    let mtls = settings.tls(url)?.client_ca.is_some();
                    tasks.spawn(accept_quic(
                        listener,
                        Transport::ScionQuic,
                        mtls,
                        tx.clone(),
                        stack,
                    ));
                    local
                }
            };
            bound.push((url.clone(), local));
        }
        Ok(Self {
            incoming,
            bound,
            certificates: Certificates(Arc::new(certificates)),
            _tasks: tasks,
        })
    }

    /// Each listener's URL and where it actually listens (the port the
    /// system chose for port 0).
    pub fn bound(&self) -> &[(ListenUrl, String)] {
        &self.bound
    }

    /// Each listener as `URL (at ADDRESS)`, for the log line that says a
    /// service is serving.
    pub fn summary(&self) -> Vec<String> {
        self.bound
            .iter()
            .map(|(url, local)| format!("{url} (at {local})"))
            .collect()
    }

    /// Where the first listener of `transport` listens.
    pub fn local_addr(&self, transport: Transport) -> Option<&str> {
        self.bound
            .iter()
            .find(|(url, _)| url.transport == transport)
            .map(|(_, local)| local.as_str())
    }

    /// The next connection from any listener; `None` once all have failed.
    pub async fn accept(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// A handle that replaces the listeners' certificates (a reload).
    pub fn certificates(&self) -> Certificates {
        self.certificates.clone()
    }
}

/// The certificates of a service's listeners, for new connections.
#[derive(Clone)]
pub struct Certificates(Arc<Vec<CertificateSlot>>);

impl Certificates {
    /// Gives new connections the certificates in `settings` (read now; on
    /// an error nothing changes). Addresses stay as bound.
    pub fn reload(&self, settings: &ListenSettings) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let tls = settings
            .tls
            .as_ref()
            .context("the running listeners need a server certificate and key")?;
        let rustls = acceptor(tls)?;
        // quiche configurations cannot be cloned: one per QUIC listener, all
        // built before any is replaced.
        let mut quic = Vec::new();
        for slot in self.0.iter() {
            if let CertificateSlot::Quic(_) = slot {
                quic.push(super::quic::server_config(tls, &settings.quic)?);
            }
        }
        let mut quic = quic.into_iter();
        for slot in self.0.iter() {
            match slot {
                CertificateSlot::Rustls(slot) => {
                    *slot.write().unwrap_or_else(|e| e.into_inner()) = rustls.clone();
                }
                CertificateSlot::Quic(slot) => {
                    if let Some(config) = quic.next() {
                        slot.replace(config);
                    }
                }
            }
        }
        Ok(())
    }
}

fn quic_listener<S: DatagramSocket>(
    socket: S,
    url: &ListenUrl,
    settings: &ListenSettings,
) -> anyhow::Result<QuicListener<S>> {
    let config = super::quic::server_config(settings.tls(url)?, &settings.quic)?;
    Ok(QuicListener::new(
        socket,
        config,
        settings.max_quic_connections,
        ACCEPT_BACKLOG,
        settings.retry_token_lifetime,
    )?)
}

async fn accept_tcp(
    listener: TcpListener,
    transport: Transport,
    upgrade: Upgrade,
    tx: mpsc::Sender<Incoming>,
) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let incoming = Incoming {
                    peer,
                    peer_name: peer.to_string(),
                    transport,
                    pending: Pending::Tcp(tcp, upgrade.clone()),
                };
                if tx.send(incoming).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead
                // of spinning on the error.
                warn!(error = %e, listener = transport.name(), "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Hands out a QUIC listener's connections; `_keep` (the SCION stack) lives
/// as long as the listener.
async fn accept_quic<S: DatagramSocket, K>(
    mut listener: QuicListener<S>,
    transport: Transport,
    client_certificate_required: bool,
    tx: mpsc::Sender<Incoming>,
    _keep: K,
) {
    while let Some(accepted) = listener.accept().await {
        if client_certificate_required && accepted.peer_cert.is_none() {
            // Dropping the stream ends the QUIC connection.
            warn!(peer = %accepted.peer, "client presented no certificate, refused");
            continue;
        }
        let incoming = Incoming {
            peer: S::ip_of(&accepted.peer),
            peer_name: accepted.peer.to_string(),
            transport,
            pending: Pending::Ready(Box::new(accepted.stream)),
        };
        if tx.send(incoming).await.is_err() {
            return;
        }
    }
    warn!(listener = transport.name(), "QUIC listener stopped");
}

/// An accepted connection whose handshake may still be to do.
pub struct Incoming {
    /// The client's IP address and port (for SCION, the host address
    /// inside its AS).
    pub peer: SocketAddr,
    /// The client's address as its transport names it (for SCION
    /// `[ISD-AS,IP]:port`), for logs.
    pub peer_name: String,
    /// How it came.
    pub transport: Transport,
    pending: Pending,
}

enum Pending {
    Tcp(TcpStream, Upgrade),
    Ready(BoxedStream),
}

/// An accepted connection ready to carry MQTT.
pub struct ClientStream {
    /// The MQTT byte stream.
    pub stream: BoxedStream,
    /// The TCP socket under it (TLS and WebSocket included), so that another
    /// task can cut the connection (session takeover); `None` for QUIC.
    pub socket: Option<RawFd>,
}

impl Incoming {
    /// Completes the TLS or WebSocket handshake (QUIC's is done already).
    pub async fn handshake(self) -> std::io::Result<ClientStream> {
        let (tcp, upgrade) = match self.pending {
            Pending::Ready(stream) => {
                return Ok(ClientStream {
                    stream,
                    socket: None,
                });
            }
            Pending::Tcp(tcp, upgrade) => (tcp, upgrade),
        };
        tcp.set_nodelay(true)?;
        let socket = Some(tcp.as_raw_fd());
        let current = |slot: &AcceptorSlot| slot.read().unwrap_or_else(|e| e.into_inner()).clone();
        let stream: BoxedStream = match upgrade {
            Upgrade::Plain => Box::new(tcp),
            Upgrade::Tls(slot) => Box::new(current(&slot).accept(tcp).await?),
            Upgrade::Ws => Box::new(super::ws::accept(tcp).await?),
            Upgrade::Wss(slot) => {
                let tls = current(&slot).accept(tcp).await?;
                Box::new(super::ws::accept(tls).await?)
            }
        };
        debug!(transport = self.transport.name(), "handshake done");
        Ok(ClientStream { stream, socket })
    }
}
