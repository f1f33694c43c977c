//! One QUIC connection: a task that owns the `quiche::Connection`, feeds it
//! datagrams and timer events, and moves the MQTT stream's bytes between
//! quiche and the application.
//!
//! Backpressure both ways: application bytes are read only once quiche has
//! taken the previous ones (partial `stream_send` writes are kept, never
//! dropped), and stream data is read from quiche only while the application
//! keeps up, so quiche's flow control holds the peer back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace};

use super::DatagramSocket;
use super::server_identity::alert_words;

/// The MQTT stream of an established connection, for the application.
pub type QuicStream = DuplexStream;

/// Bytes buffered between quiche and the application in each direction.
pub const STREAM_BUFFER: usize = 64 * 1024;

/// Datagrams queued for one connection; more are dropped (QUIC recovers).
pub(crate) const DATAGRAM_QUEUE: usize = 256;

/// Peer addresses remembered per connection (migration, SCION path changes).
const KNOWN_PEER_ADDRS: usize = 8;

/// Application error code sent when the application side went away.
const APP_GONE: u64 = 0x1;

/// A datagram for a connection task.
pub(crate) type Datagram<A> = (Vec<u8>, A);

/// What the handshake gave: the application's stream and the peer's
/// certificate (DER), or why it failed.
pub(crate) type Handshake = Result<(QuicStream, Option<Vec<u8>>), String>;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// The state of the MQTT stream between quiche and the application.
struct StreamPump {
    id: Option<u64>,
    /// Application bytes quiche has not taken yet.
    outbound: BytesMut,
    /// Peer bytes the application has not taken yet.
    inbound: BytesMut,
    app_finished_writing: bool,
    fin_sent: bool,
    peer_finished: bool,
    app_told_eof: bool,
    from_app: ReadHalf<DuplexStream>,
    to_app: WriteHalf<DuplexStream>,
}

/// What one delivery to the application did.
enum Delivered {
    Bytes(usize),
    Eof,
}

/// Writes pending peer bytes to the application, or, once there are none
/// and the peer finished, tells the application end of stream.
async fn deliver(
    to_app: &mut WriteHalf<DuplexStream>,
    inbound: &[u8],
) -> std::io::Result<Delivered> {
    if inbound.is_empty() {
        to_app.shutdown().await?;
        Ok(Delivered::Eof)
    } else {
        to_app.write(inbound).await.map(Delivered::Bytes)
    }
}

/// Drives one connection until it is closed.
pub(crate) struct Driver<S: DatagramSocket> {
    pub conn: quiche::Connection,
    pub socket: Arc<S>,
    pub peer: S::Addr,
    pub local: SocketAddr,
    pub datagrams: mpsc::Receiver<Datagram<S::Addr>>,
    pub role: Role,
}

impl<S: DatagramSocket> Driver<S> {
    /// Runs the connection; `handshake` learns the outcome of the handshake.
    pub async fn run(mut self, handshake: oneshot::Sender<Handshake>) {
        let (app_end, our_end) = tokio::io::duplex(STREAM_BUFFER);
        let (from_app, to_app) = tokio::io::split(our_end);
        // The application's end waits here until the handshake completes.
        let mut awaiting_handshake = Some((handshake, app_end));
        let mut pump = StreamPump {
            id: (self.role == Role::Client).then_some(0),
            outbound: BytesMut::new(),
            inbound: BytesMut::new(),
            app_finished_writing: false,
            fin_sent: false,
            peer_finished: false,
            app_told_eof: false,
            from_app,
            to_app,
        };
        let mut known_peers = HashMap::from([(S::ip_of(&self.peer), self.peer)]);
        let mut out = vec![0u8; super::MAX_DATAGRAM];
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);

        loop {
            self.move_stream_data(&mut pump);
            if self.conn.is_established()
                && let Some((tx, stream)) = awaiting_handshake.take()
            {
                let cert = self.conn.peer_cert().map(<[u8]>::to_vec);
                if tx.send(Ok((stream, cert))).is_err() {
                    let _ = self.conn.close(true, APP_GONE, b"not accepted");
                }
            }
            // Both directions done and, once quiche has collected the
            // stream, every byte acknowledged: the connection has served
            // its purpose. (Closing earlier would drop unacknowledged data.)
            if pump.fin_sent
                && pump.peer_finished
                && pump.app_told_eof
                && !self.conn.is_draining()
                && pump.id.is_some_and(|id| {
                    matches!(
                        self.conn.stream_capacity(id),
                        Err(quiche::Error::InvalidStreamState(_))
                    )
                })
            {
                let _ = self.conn.close(true, 0, b"");
            }
            self.flush(&mut out, &known_peers).await;
            if self.conn.is_closed() {
                break;
            }
            // One timer for the connection, re-armed from quiche each turn.
            let deadline = self
                .conn
                .timeout_instant()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            timer.as_mut().reset(deadline.into());

            if pump.outbound.is_empty() && pump.outbound.capacity() < STREAM_BUFFER / 4 {
                pump.outbound.reserve(STREAM_BUFFER / 4);
            }
            let can_read_app = pump.id.is_some()
                && self.conn.is_established()
                && pump.outbound.is_empty()
                && !pump.app_finished_writing;
            let app_has_work =
                !pump.inbound.is_empty() || (pump.peer_finished && !pump.app_told_eof);
            let from_app = &mut pump.from_app;
            let outbound = &mut pump.outbound;
            let to_app = &mut pump.to_app;
            let inbound = &pump.inbound;
            tokio::select! {
                datagram = self.datagrams.recv() => match datagram {
                    Some(d) => {
                        self.receive(d, &mut known_peers);
                        while let Ok(d) = self.datagrams.try_recv() {
                            self.receive(d, &mut known_peers);
                        }
                    }
                    None => {
                        // The socket side is gone: nothing can arrive any more.
                        let _ = self.conn.close(false, 0x0, b"endpoint closed");
                        self.flush(&mut out, &known_peers).await;
                        break;
                    }
                },
                () = &mut timer => self.conn.on_timeout(),
                read = from_app.read_buf(outbound), if can_read_app => {
                    if matches!(read, Ok(0) | Err(_)) {
                        pump.app_finished_writing = true;
                    }
                }
                delivered = deliver(to_app, inbound), if app_has_work => match delivered {
                    Ok(Delivered::Bytes(n)) => pump.inbound.advance(n),
                    Ok(Delivered::Eof) => pump.app_told_eof = true,
                    Err(_) => {
                        // The application dropped its end.
                        pump.inbound.clear();
                        pump.app_told_eof = true;
                        let _ = self.conn.close(true, APP_GONE, b"application closed");
                    }
                },
            }
        }
        if let Some((tx, _)) = awaiting_handshake.take() {
            let _ = tx.send(Err(self.failure()));
        }
        debug!(peer = %self.peer, reason = %self.failure(), "quic connection closed");
    }

    /// Why the connection ended, for logs and dial errors.
    fn failure(&self) -> String {
        if let Some(e) = self.conn.peer_error() {
            closed_with("peer closed", true, e)
        } else if let Some(e) = self.conn.local_error() {
            closed_with("closed locally", false, e)
        } else if self.conn.is_timed_out() {
            "timed out".to_string()
        } else {
            "closed".to_string()
        }
    }

    fn receive(
        &mut self,
        (mut data, from): Datagram<S::Addr>,
        known: &mut HashMap<SocketAddr, S::Addr>,
    ) {
        let from_ip = S::ip_of(&from);
        let info = quiche::RecvInfo {
            from: from_ip,
            to: self.local,
        };
        match self.conn.recv(&mut data, info) {
            Ok(_) => {
                if from != self.peer {
                    trace!(old = %self.peer, new = %from, "peer address changed");
                    self.peer = from;
                }
                if known.len() >= KNOWN_PEER_ADDRS && !known.contains_key(&from_ip) {
                    known.clear();
                }
                known.insert(from_ip, from);
            }
            // A datagram quiche cannot use is dropped; the connection goes on.
            Err(e) => debug!(peer = %from, error = %e, "dropped datagram"),
        }
    }

    async fn flush(&mut self, out: &mut [u8], known: &HashMap<SocketAddr, S::Addr>) {
        loop {
            match self.conn.send(out) {
                Ok((n, info)) => {
                    let to = known.get(&info.to).copied().unwrap_or(self.peer);
                    if let Err(e) = self.socket.send_to(&out[..n], to).await {
                        debug!(peer = %to, error = %e, "send failed");
                    }
                }
                Err(quiche::Error::Done) => break,
                Err(e) => {
                    debug!(error = %e, "quiche send failed");
                    let _ = self.conn.close(false, 0x1, b"internal error");
                    break;
                }
            }
        }
    }

    /// Moves bytes between quiche and the stream buffers without waiting.
    fn move_stream_data(&mut self, pump: &mut StreamPump) {
        if pump.id.is_none() {
            pump.id = self.conn.readable().find(|id| id % 4 == 0);
        }
        // Streams other than the MQTT one carry nothing we use.
        let extra: Vec<u64> = self
            .conn
            .readable()
            .filter(|id| Some(*id) != pump.id)
            .collect();
        for id in extra {
            let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Read, 0);
        }
        let Some(id) = pump.id else { return };

        if !pump.outbound.is_empty() {
            match self.conn.stream_send(id, &pump.outbound, false) {
                Ok(n) => pump.outbound.advance(n),
                Err(quiche::Error::Done) => {}
                Err(e) => {
                    debug!(error = %e, "stream send failed");
                    pump.outbound.clear();
                    pump.app_finished_writing = true;
                    pump.fin_sent = true;
                }
            }
        }
        if pump.outbound.is_empty() && pump.app_finished_writing && !pump.fin_sent {
            match self.conn.stream_send(id, &[], true) {
                Ok(_) => pump.fin_sent = true,
                Err(quiche::Error::Done) => {}
                Err(_) => pump.fin_sent = true,
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        while pump.inbound.len() < STREAM_BUFFER && !pump.peer_finished {
            match self.conn.stream_recv(id, &mut chunk) {
                Ok((n, fin)) => {
                    pump.inbound.extend_from_slice(&chunk[..n]);
                    pump.peer_finished = fin;
                }
                // Nothing yet (or, on a client, the stream not opened yet).
                Err(quiche::Error::Done | quiche::Error::InvalidStreamState(_)) => break,
                Err(e) => {
                    // Reset by the peer, or closed: no more data will come.
                    debug!(error = %e, "stream receive failed");
                    pump.peer_finished = true;
                }
            }
        }
    }
}

/// "`side`: words" for a TLS alert, else "`side`: code 0x.. reason".
fn closed_with(side: &str, by_peer: bool, e: &quiche::ConnectionError) -> String {
    match alert_words(by_peer, e.error_code).filter(|_| !e.is_app) {
        Some(words) => format!("{side}: {words}"),
        None => format!(
            "{side}: code {:#x} {}",
            e.error_code,
            String::from_utf8_lossy(&e.reason)
        ),
    }
}
