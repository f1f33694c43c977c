//! `scion-udp`: a datagram relay between SCION and UDP/IP. Each SCION client
//! gets its own UDP socket towards the broker, so the broker's replies find
//! their way back; QUIC (and its TLS) stays end to end between the client
//! and the broker. Idle mappings expire; a client that migrates keeps its
//! mapping (see `net::udp_relay::PeerTable`).

mod config;

pub use config::{ScionUdpArgs, ScionUdpConfig};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use scion_stack::stack::{ScionStack, UdpScionSocket};
use sciparse::address::ip_socket_addr::ScionSocketIpAddr;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::net::quic::MAX_DATAGRAM;
use crate::net::udp_relay::{PeerId, PeerTable, Route};
use crate::ops::gauge::{Gauge, GaugeGuard};
use crate::ops::telemetry::{self, METRICS, Prepared, SessionGuard};
use crate::service::frame::{InForce, Reload, Service};
use tokio::sync::watch;

type Table = Arc<Mutex<PeerTable<ScionSocketIpAddr>>>;

/// Consecutive receive errors after which a socket is taken as broken.
const MAX_RECV_ERRORS: u32 = 1000;

/// One relayed client: its socket towards the broker and the task reading it.
struct Mapping {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    /// Counts the mapping as a session in the metrics.
    _session: SessionGuard,
    /// Counts it in [`ScionUdp`]'s peers.
    _peer: GaugeGuard,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The mode label in metrics.
const MODE: &str = "scion-udp";

fn count_bytes(direction: &'static str, n: usize) {
    METRICS.relayed_bytes(MODE, direction, n as u64);
}

/// The settings in force and the broker address they resolve to.
/// Reads what `config` names (the SNAP token) and resolves the broker as
/// a start would, binding nothing: what `check-config` runs.
pub fn check_files(config: &ScionUdpConfig) -> anyhow::Result<()> {
    if let Some(path) = &config.snap_token_file {
        crate::net::scion::read_token(path)?;
    }
    Live::prepare(config.clone()).map(drop)
}

struct Live {
    config: ScionUdpConfig,
    broker: SocketAddr,
}

impl Live {
    /// Checks `config` and resolves its broker.
    fn prepare(config: ScionUdpConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let broker = std::net::ToSocketAddrs::to_socket_addrs(config.broker.as_str())
            .with_context(|| format!("resolving broker {}", config.broker))?
            .next()
            .with_context(|| format!("broker {} has no address", config.broker))?;
        Ok(Self { config, broker })
    }
}

type SharedLive = InForce<Live>;

/// A bound scion-udp relay, ready to serve.
pub struct ScionUdp {
    scion: Arc<UdpScionSocket>,
    _stack: ScionStack,
    live: SharedLive,
    /// Clients relayed now.
    peers: Gauge,
}

/// Applies new settings to a running scion-udp (SIGHUP).
#[derive(Clone)]
pub struct Reloader(SharedLive);

impl Reload<ScionUdpConfig> for Reloader {
    /// Sends clients that arrive from now on to the (re-resolved) broker;
    /// clients already relayed keep theirs. The SCION attachment and the
    /// table limits only change with a restart. A config that does not
    /// check out is refused and the running one kept. Resolving a broker
    /// host name blocks the calling thread.
    fn apply(&self, config: ScionUdpConfig) -> anyhow::Result<()> {
        let old = self.0.current();
        if config.listen != old.config.listen
            || config.endhost_api != old.config.endhost_api
            || config.snap_token_file != old.config.snap_token_file
            || config.path_acl != old.config.path_acl
            || config.max_peers != old.config.max_peers
            || config.idle_timeout_ms != old.config.idle_timeout_ms
        {
            warn!("only `broker` changes live; the other settings need a restart");
        }
        let live = Live::prepare(config)?;
        info!(broker = %live.broker, "configuration reloaded");
        self.0.replace(live);
        Ok(())
    }
}

fn lock(table: &Table) -> std::sync::MutexGuard<'_, PeerTable<ScionSocketIpAddr>> {
    // The table stays consistent even if a task panicked holding it.
    table.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScionUdp {
    /// The SCION address clients send to.
    pub fn local_addr(&self) -> ScionSocketIpAddr {
        self.scion.local_addr()
    }

    async fn open_mapping(&self, id: PeerId, table: &Table) -> std::io::Result<Mapping> {
        let broker = self.live.current().broker;
        let bind = if broker.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(broker).await?;
        let socket = Arc::new(socket);
        let reader = tokio::spawn(relay_replies(
            id,
            socket.clone(),
            self.scion.clone(),
            table.clone(),
        ));
        let mut session = METRICS.session(MODE);
        session.close_reason("idle");
        Ok(Mapping {
            socket,
            reader,
            _session: session,
            _peer: self.peers.enter(),
        })
    }
}

/// Sends every datagram the broker writes to this mapping back to its client.
async fn relay_replies(
    id: PeerId,
    socket: Arc<UdpSocket>,
    scion: Arc<UdpScionSocket>,
    table: Table,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut errors = 0;
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => {
                errors = 0;
                n
            }
            // E.g. ICMP port unreachable from a broker that is down: QUIC
            // retransmits, so keep the mapping.
            Err(e) => {
                debug!(error = %e, "broker receive failed");
                errors += 1;
                if errors >= MAX_RECV_ERRORS {
                    return;
                }
                continue;
            }
        };
        let Some(client) = lock(&table).from_broker(id, &buf[..n], Instant::now()) else {
            return;
        };
        match scion.send_to(&buf[..n], client).await {
            Ok(()) => count_bytes(telemetry::BROKER_TO_CLIENT, n),
            Err(e) => debug!(%client, error = %e, "send to client failed"),
        }
    }
}

impl Service for ScionUdp {
    const NAME: &'static str = MODE;
    type Config = ScionUdpConfig;
    type Reloader = Reloader;

    /// Attaches to SCION and resolves the broker.
    async fn bind(config: ScionUdpConfig) -> anyhow::Result<Self> {
        let live = tokio::task::spawn_blocking(move || Live::prepare(config)).await??;
        let config = &live.config;
        METRICS.prepare(&Prepared {
            mode: MODE,
            packet_types: &[],
            upstreams: &[config.broker.to_string()],
            resumes: false,
        });
        let (stack, scion) = crate::net::scion::attach(crate::net::scion::Attachment {
            endhost_api: config.endhost_api.as_ref(),
            snap_token_file: config.snap_token_file.as_deref(),
            listen: config.listen.as_deref(),
            path_acl: config.path_acl.as_ref(),
        })
        .await?;
        Ok(Self {
            scion: Arc::new(scion),
            _stack: stack,
            live: InForce::new(live),
            peers: Gauge::default(),
        })
    }

    /// A handle that applies new settings while relaying.
    fn reloader(&self) -> Reloader {
        Reloader(self.live.clone())
    }

    fn address(&self) -> String {
        ScionUdp::local_addr(self).to_string()
    }

    fn active(&self) -> watch::Receiver<usize> {
        self.peers.watch()
    }

    /// Relays until `shutdown` completes.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let live = self.live.current();
        info!(listen = %self.local_addr(), broker = %live.broker, "scion-udp relaying");
        let idle = live.config.idle_timeout_ms.duration();
        let table: Table = Arc::new(Mutex::new(PeerTable::new(
            live.config.max_peers.get(),
            idle,
        )));
        let mut mappings: HashMap<PeerId, Mapping> = HashMap::new();
        let mut janitor = tokio::time::interval(idle / 4);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut errors = 0;
        tokio::pin!(shutdown);
        loop {
            let (n, from) = tokio::select! {
                _ = &mut shutdown => break,
                _ = janitor.tick() => {
                    for id in lock(&table).expire(Instant::now()) {
                        mappings.remove(&id);
                    }
                    continue;
                }
                received = self.scion.recv_from(&mut buf) => match received {
                    Ok(r) => {
                        errors = 0;
                        r
                    }
                    Err(e) => {
                        debug!(error = %e, "SCION receive failed");
                        errors += 1;
                        if errors >= MAX_RECV_ERRORS {
                            warn!(error = %e, "SCION socket keeps failing, stopping");
                            break;
                        }
                        continue;
                    }
                },
            };
            let datagram = &buf[..n];
            let route = lock(&table).from_client(from, datagram, Instant::now());
            let id = match route {
                Route::Existing(id) => id,
                Route::New(id) => match self.open_mapping(id, &table).await {
                    Ok(mapping) => {
                        debug!(client = %from, "new mapping");
                        mappings.insert(id, mapping);
                        id
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot open a socket towards the broker");
                        lock(&table).remove(id);
                        continue;
                    }
                },
                Route::Full => {
                    debug!(client = %from, "relay full, datagram dropped");
                    continue;
                }
            };
            if let Some(mapping) = mappings.get(&id) {
                match mapping.socket.send(datagram).await {
                    Ok(n) => count_bytes(telemetry::CLIENT_TO_BROKER, n),
                    Err(e) => debug!(error = %e, "send to broker failed"),
                }
            }
        }
        Ok(())
    }
}
