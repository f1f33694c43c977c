//! One QUIC connection: a task that owns the `quiche::Connection`, feeds it
//! datagrams and timer events, and moves the MQTT stream's bytes between
//! quiche and the application's [`QuicStream`].
//!
//! Backpressure both ways: the application waits while quiche has not taken
//! what it wrote (partial `stream_send` writes are kept, never dropped), and
//! stream data is read from quiche only while the application keeps up, so
//! quiche's flow control holds the peer back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{debug, trace};

use super::DatagramSocket;
use super::app_stream::{ConnectionEnd, Pipe, QuicStream, STREAM_BUFFER, stream_pair};
use super::datagram_queue::{Datagram, DatagramReceiver};
use super::delayed_ack::AckSchedule;
use super::server_identity::alert_words;

/// Datagrams queued for one connection; more are dropped (QUIC recovers).
pub(crate) const DATAGRAM_QUEUE: usize = 256;

/// Peer addresses remembered per connection (migration, SCION path changes).
const KNOWN_PEER_ADDRS: usize = 8;

/// Application error code sent when the application side went away.
const APP_GONE: u64 = 0x1;

/// What the handshake gave: the application's stream and the peer's
/// certificate (DER), or why it failed.
pub(crate) type Handshake = Result<(QuicStream, Option<Vec<u8>>), String>;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// The MQTT stream on quiche's side.
struct StreamState {
    /// quiche's id of the MQTT stream, once known.
    id: Option<u64>,
    fin_sent: bool,
}

/// The peer's addresses by the address quiche knows each by (for SCION,
/// an IP stand-in for a SCION address and path), most recent kept. A
/// handful at most, so a list: looked up for every datagram either way.
struct KnownPeers<A>(Vec<(SocketAddr, A)>);

impl<A: Copy + PartialEq> KnownPeers<A> {
    fn get(&self, ip: SocketAddr) -> Option<A> {
        self.0.iter().find(|(k, _)| *k == ip).map(|(_, a)| *a)
    }

    fn remember(&mut self, ip: SocketAddr, addr: A) {
        match self.0.iter_mut().find(|(k, _)| *k == ip) {
            Some(known) => known.1 = addr,
            None => {
                if self.0.len() >= KNOWN_PEER_ADDRS {
                    self.0.clear();
                }
                self.0.push((ip, addr));
            }
        }
    }
}

/// What moving the stream's bytes found.
struct Moved {
    /// The application has read the whole stream (or went away and the
    /// peer finished).
    all_read: bool,
    /// quiche has the application's bytes or end of stream to send.
    to_send: bool,
}

/// Drives one connection until it is closed. Runs boxed: quiche's
/// connection is about 8 KiB, and a future keeps its async fn's arguments
/// twice (once captured, once moved in).
pub(crate) struct Driver<S: DatagramSocket> {
    pub conn: quiche::Connection,
    pub socket: Arc<S>,
    pub peer: S::Addr,
    pub local: SocketAddr,
    pub datagrams: DatagramReceiver<S::Addr>,
    pub role: Role,
}

impl<S: DatagramSocket> Driver<S> {
    /// Runs the connection; `handshake` learns the outcome of the handshake.
    pub async fn run(mut self: Box<Self>, handshake: oneshot::Sender<Handshake>) {
        let (app_stream, app) = stream_pair();
        // The application's end waits here until the handshake completes.
        let mut awaiting_handshake = Some((handshake, app_stream));
        let mut stream = StreamState {
            id: (self.role == Role::Client).then_some(0),
            fin_sent: false,
        };
        let mut known_peers = KnownPeers(vec![(S::ip_of(&self.peer), self.peer)]);
        // The send buffer (see `flush`).
        let mut out = Vec::new();
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut acks = AckSchedule::default();

        loop {
            let moved = self.move_stream_data(&mut stream, &app);
            let all_read = moved.all_read;
            if moved.to_send {
                acks.send_now();
            }
            if self.conn.is_established()
                && let Some((tx, app_stream)) = awaiting_handshake.take()
            {
                // The handshake's last packets are acknowledged at once.
                acks.send_now();
                let cert = self.conn.peer_cert().map(<[u8]>::to_vec);
                if tx.send(Ok((app_stream, cert))).is_err() {
                    let _ = self.conn.close(true, APP_GONE, b"not accepted");
                }
            }
            // Both directions done and, once quiche has collected the
            // stream, every byte acknowledged: the connection has served
            // its purpose. (Closing earlier would drop unacknowledged data.)
            if stream.fin_sent
                && all_read
                && !self.conn.is_draining()
                && stream.id.is_some_and(|id| {
                    matches!(
                        self.conn.stream_capacity(id),
                        Err(quiche::Error::InvalidStreamState(_))
                    )
                })
            {
                let _ = self.conn.close(true, 0, b"");
            }
            if !self.conn.is_established()
                || self.conn.is_draining()
                || self.conn.local_error().is_some()
            {
                acks.send_now();
            }
            let now = Instant::now();
            if !acks.sends(now) {
                // Only datagrams arrived: send now all the same if one of
                // them acknowledged packets quiche now knows to be lost.
                acks.lost(self.conn.stats().lost);
            }
            if acks.sends(now) {
                self.flush(&mut out, &known_peers).await;
                acks.sent();
            }
            if self.conn.is_closed() {
                break;
            }
            // One timer for the connection, re-armed from quiche (and an
            // acknowledgement that waits) each turn.
            let deadline = [self.conn.timeout_instant(), acks.deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| now + Duration::from_secs(3600));
            timer.as_mut().reset(deadline.into());

            tokio::select! {
                datagram = self.datagrams.recv() => match datagram {
                    Some(d) => {
                        self.receive(d, &mut known_peers);
                        let mut received = 1;
                        while let Some(d) = self.datagrams.try_recv() {
                            self.receive(d, &mut known_peers);
                            received += 1;
                        }
                        acks.received(received, Instant::now());
                    }
                    None => {
                        // The socket side is gone: nothing can arrive any more.
                        let _ = self.conn.close(false, 0x0, b"endpoint closed");
                        self.flush(&mut out, &known_peers).await;
                        break;
                    }
                },
                () = &mut timer => {
                    // quiche's own timers (it looks at each), or an
                    // acknowledgement's time.
                    self.conn.on_timeout();
                    acks.send_now();
                }
                () = app.app_changed() => acks.send_now(),
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

    fn receive(&mut self, (mut data, from): Datagram<S::Addr>, known: &mut KnownPeers<S::Addr>) {
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
                known.remember(from_ip, from);
            }
            // A datagram quiche cannot use is dropped; the connection goes on.
            Err(e) => debug!(peer = %from, error = %e, "dropped datagram"),
        }
    }

    async fn flush(&mut self, out: &mut Vec<u8>, known: &KnownPeers<S::Addr>) {
        // quiche writes at most this much per datagram (more once the peer
        // allows it, up to the configured limit).
        out.resize(self.conn.max_send_udp_payload_size(), 0);
        let mut sent = false;
        loop {
            match self.conn.send(out) {
                Ok((n, info)) => {
                    sent = true;
                    let to = known.get(info.to).unwrap_or(self.peer);
                    let datagram = &out[..n];
                    let sent = match self.socket.try_send_to(datagram, to) {
                        // Rarely: boxed, so the task keeps no room for a
                        // send in progress.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            Box::pin(self.socket.send_to(datagram, to)).await
                        }
                        sent => sent,
                    };
                    if let Err(e) = sent {
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
        // Kept while the connection sends; a turn with nothing to send gives
        // it back, so an idle connection holds no send buffer.
        if !sent {
            *out = Vec::new();
        }
    }

    /// Moves bytes between quiche and the application's stream without
    /// waiting.
    fn move_stream_data(&mut self, stream: &mut StreamState, app: &ConnectionEnd) -> Moved {
        if stream.id.is_none() {
            stream.id = self.conn.readable().find(|id| id % 4 == 0);
        }
        // Streams other than the MQTT one carry nothing we use.
        let extra: Vec<u64> = self
            .conn
            .readable()
            .filter(|id| Some(*id) != stream.id)
            .collect();
        for id in extra {
            let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Read, 0);
        }
        let Some(id) = stream.id else {
            return Moved {
                all_read: false,
                to_send: false,
            };
        };
        // The application writes only once the handshake is done.
        let mut pipe = app.pipe();
        let fin_sent = stream.fin_sent;
        let had_outbound = !pipe.outbound.is_empty();

        if !pipe.outbound.is_empty() {
            match self.conn.stream_send(id, &pipe.outbound, false) {
                Ok(n) => pipe.took_outbound(n),
                Err(quiche::Error::Done) => {}
                Err(e) => {
                    debug!(error = %e, "stream send failed");
                    pipe.sending_failed();
                    stream.fin_sent = true;
                }
            }
        }
        if pipe.outbound.is_empty() && pipe.app_finished && !stream.fin_sent {
            match self.conn.stream_send(id, &[], true) {
                Ok(_) => stream.fin_sent = true,
                Err(quiche::Error::Done) => {}
                Err(_) => stream.fin_sent = true,
            }
        }
        // Through the thread's scratch buffer, not one on the stack that
        // was zeroed (16 KiB) on each of a connection's turns.
        crate::mqtt::with_scratch(|chunk| {
            while pipe.inbound.len() < STREAM_BUFFER
                && !pipe.peer_finished
                && self.receive_stream_chunk(id, chunk, &mut pipe)
            {}
        });
        Moved {
            all_read: pipe.app_read_all(),
            // Bytes quiche took go out now; so do bytes it left here (it
            // takes only what its congestion window and the peer's flow
            // control allow), since what just arrived may have made room.
            to_send: had_outbound || stream.fin_sent != fin_sent,
        }
    }

    /// Reads one chunk of the MQTT stream out of quiche into the pipe;
    /// false once quiche has nothing more for now.
    fn receive_stream_chunk(&mut self, id: u64, chunk: &mut [u8], pipe: &mut Pipe) -> bool {
        match self.conn.stream_recv(id, chunk) {
            Ok((0, false)) => return false,
            Ok((n, fin)) if pipe.app_gone => {
                if n > 0 {
                    // Nobody reads it any more.
                    let _ = self.conn.close(true, APP_GONE, b"application closed");
                }
                if fin || n > 0 {
                    pipe.peer_stopped();
                }
            }
            Ok((n, fin)) => pipe.deliver(&chunk[..n], fin),
            // Nothing yet (or, on a client, the stream not opened yet).
            Err(quiche::Error::Done | quiche::Error::InvalidStreamState(_)) => return false,
            Err(e) => {
                // Reset by the peer, or closed: no more data will come.
                debug!(error = %e, "stream receive failed");
                pipe.peer_stopped();
            }
        }
        true
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
