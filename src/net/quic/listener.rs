//! The server side: one task reads the socket, routes datagrams to their
//! connection by destination connection id, and answers new clients with
//! version negotiation and a stateless retry before any state is kept.
//! Established connections come out of [`QuicListener::accept`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, warn};

use super::connection::{DATAGRAM_QUEUE, Driver, Role};
use super::datagram_queue::{DatagramSender, datagram_queue};
use super::retry::RetryTokens;
use super::{DatagramSocket, QuicStream};

/// Length of the connection ids this server chooses.
const CID_LEN: usize = quiche::MAX_CONN_ID_LEN;

/// An established connection, ready for the application.
pub struct Accepted<A> {
    /// The MQTT stream.
    pub stream: QuicStream,
    /// The client's address.
    pub peer: A,
    /// The client's certificate (DER), when it presented one.
    pub peer_cert: Option<Vec<u8>>,
}

type Routes<A> = Arc<Mutex<HashMap<Vec<u8>, DatagramSender<A>>>>;

/// The TLS and transport settings that new connections get. Replacing them
/// (a reload) leaves open connections as they are.
#[derive(Clone)]
pub struct ServerConfigSlot(Arc<Mutex<quiche::Config>>);

impl ServerConfigSlot {
    /// New connections use `config` from now on.
    pub fn replace(&self, config: quiche::Config) {
        *self.lock() = config;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, quiche::Config> {
        // A poisoned lock only means a panic elsewhere; the config is whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A QUIC server on a datagram socket. Dropping it stops new connections;
/// the ones already open carry on until they close.
pub struct QuicListener<S: DatagramSocket> {
    accepted: mpsc::Receiver<Accepted<S::Addr>>,
    local: S::Addr,
    routes: Routes<S::Addr>,
    config: ServerConfigSlot,
}

impl<S: DatagramSocket> QuicListener<S> {
    /// Serves QUIC on `socket`. At most `max_connections` live at once;
    /// `backlog` established connections wait for `accept`.
    pub fn new(
        socket: S,
        config: quiche::Config,
        max_connections: usize,
        backlog: usize,
        retry_token_lifetime: Duration,
    ) -> std::io::Result<Self> {
        let local = socket.local()?;
        let (accepted_tx, accepted) = mpsc::channel(backlog.max(1));
        let routes: Routes<S::Addr> = Arc::default();
        let config = ServerConfigSlot(Arc::new(Mutex::new(config)));
        let demux = Demux {
            socket: Arc::new(socket),
            config: config.clone(),
            routes: routes.clone(),
            accepted: accepted_tx,
            tokens: RetryTokens::new(retry_token_lifetime),
            max_connections,
            connection_ended: Arc::new(Notify::new()),
        };
        tokio::spawn(demux.run());
        Ok(Self {
            accepted,
            local,
            routes,
            config,
        })
    }

    /// Where to put new settings for connections accepted from now on.
    pub fn config_slot(&self) -> ServerConfigSlot {
        self.config.clone()
    }

    /// The next established connection; `None` once the socket failed.
    pub async fn accept(&mut self) -> Option<Accepted<S::Addr>> {
        self.accepted.recv().await
    }

    /// Where the listener receives.
    pub fn local_addr(&self) -> S::Addr {
        self.local
    }

    /// Connections currently alive (handshaking or established).
    pub fn connection_count(&self) -> usize {
        lock(&self.routes).len()
    }
}

/// The routing table stays consistent even if a task panicked holding it.
fn lock<A>(routes: &Routes<A>) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, DatagramSender<A>>> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

struct Demux<S: DatagramSocket> {
    socket: Arc<S>,
    config: ServerConfigSlot,
    routes: Routes<S::Addr>,
    accepted: mpsc::Sender<Accepted<S::Addr>>,
    tokens: RetryTokens,
    max_connections: usize,
    /// Signalled by each connection task as it ends.
    connection_ended: Arc<Notify>,
}

impl<S: DatagramSocket> Demux<S> {
    async fn run(mut self) {
        let mut buf = vec![0u8; super::MAX_DATAGRAM];
        let mut out = vec![0u8; super::MAX_DATAGRAM];
        let mut errors = 0;
        let local = match self.socket.local() {
            Ok(a) => S::ip_of(&a),
            Err(e) => {
                warn!(error = %e, "quic listener has no local address");
                return;
            }
        };
        loop {
            // Once the listener is dropped, serve the open connections to
            // their end, then stop.
            let listener_gone = self.accepted.is_closed();
            if listener_gone && lock(&self.routes).is_empty() {
                return;
            }
            let received = tokio::select! {
                received = self.socket.recv_from(&mut buf) => received,
                () = self.accepted.closed(), if !listener_gone => continue,
                () = self.connection_ended.notified(), if listener_gone => continue,
            };
            let (n, from) = match received {
                Ok(r) => {
                    errors = 0;
                    r
                }
                Err(e) => {
                    errors += 1;
                    debug!(error = %e, "receive failed");
                    if errors >= super::MAX_RECV_ERRORS {
                        warn!(error = %e, "quic listener socket keeps failing, stopping");
                        return;
                    }
                    continue;
                }
            };
            self.route(&mut buf[..n], from, local, &mut out).await;
        }
    }

    /// Handles one datagram. Anything malformed or unexpected is dropped.
    async fn route(
        &mut self,
        datagram: &mut [u8],
        from: S::Addr,
        local: std::net::SocketAddr,
        out: &mut [u8],
    ) {
        let header = match quiche::Header::from_slice(datagram, CID_LEN) {
            Ok(h) => h,
            Err(e) => {
                debug!(peer = %from, error = %e, "not a QUIC packet");
                return;
            }
        };
        let known = lock(&self.routes).get(header.dcid.as_ref()).cloned();
        if let Some(tx) = known {
            // A full queue drops the datagram; QUIC retransmits.
            tx.try_send((datagram.to_vec(), from));
            return;
        }
        if header.ty != quiche::Type::Initial {
            debug!(peer = %from, "packet for an unknown connection");
            return;
        }
        if !quiche::version_is_supported(header.version) {
            if let Ok(len) = quiche::negotiate_version(&header.scid, &header.dcid, out) {
                let _ = self.socket.send_to(&out[..len], from).await;
            }
            return;
        }
        let peer_key = from.to_string();
        let token = header.token.as_deref().unwrap_or_default();
        if token.is_empty() {
            let new_cid: [u8; CID_LEN] = rand::random();
            let new_cid = quiche::ConnectionId::from_ref(&new_cid);
            let token = self
                .tokens
                .mint(&peer_key, header.dcid.as_ref(), SystemTime::now());
            match quiche::retry(
                &header.scid,
                &header.dcid,
                &new_cid,
                &token,
                header.version,
                out,
            ) {
                Ok(len) => {
                    let _ = self.socket.send_to(&out[..len], from).await;
                }
                Err(e) => debug!(error = %e, "retry failed"),
            }
            return;
        }
        let Some(odcid) = self.tokens.validate(&peer_key, token, SystemTime::now()) else {
            debug!(peer = %from, "invalid retry token");
            return;
        };
        if self.accepted.is_closed() {
            return;
        }
        if lock(&self.routes).len() >= self.max_connections {
            warn!(peer = %from, "connection limit reached, dropping new connection");
            return;
        }
        let odcid = quiche::ConnectionId::from_vec(odcid.to_vec());
        let scid = header.dcid.clone().into_owned();
        let conn = match quiche::accept(
            &scid,
            Some(&odcid),
            local,
            S::ip_of(&from),
            &mut self.config.lock(),
        ) {
            Ok(c) => c,
            Err(e) => {
                debug!(peer = %from, error = %e, "accept failed");
                return;
            }
        };
        let (tx, rx) = datagram_queue(DATAGRAM_QUEUE);
        tx.try_send((datagram.to_vec(), from));
        let key = scid.as_ref().to_vec();
        lock(&self.routes).insert(key.clone(), tx);
        let driver = Box::new(Driver {
            conn,
            socket: self.socket.clone(),
            peer: from,
            local,
            datagrams: rx,
            role: Role::Server,
        });
        let (handshake_tx, handshake_rx) = oneshot::channel();
        let routes = self.routes.clone();
        let ended = self.connection_ended.clone();
        tokio::spawn(async move {
            driver.run(handshake_tx).await;
            lock(&routes).remove(&key);
            ended.notify_one();
        });
        let accepted = self.accepted.clone();
        tokio::spawn(async move {
            if let Ok(Ok((stream, peer_cert))) = handshake_rx.await {
                let _ = accepted
                    .send(Accepted {
                        stream,
                        peer: from,
                        peer_cert,
                    })
                    .await;
            }
        });
    }
}
