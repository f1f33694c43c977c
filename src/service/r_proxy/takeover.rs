//! Session takeover in the order the broker made it.
//!
//! When a client connects with the client id of a connection that is still
//! open, the broker closes the old connection at once and then answers the
//! new one [MQTT-3.1.4-3]. Across the gRPC line the old connection's end and
//! the new connection's CONNACK travel on two separate streams, so without
//! help a client may read the new CONNACK while its old connection is still
//! open, or see the old one closed a while later: a broker never shows
//! either. (The Paho interoperability suite's client, for one, then reads
//! one socket from two threads and sees garbage.)
//!
//! So the r-proxy keeps, per client id, the client sockets of the
//! connections the broker accepted ([`Takeovers`]). Right before a successful
//! CONNACK is written ([`TakeoverWriter`]), every other accepted connection of the same id has
//! its client socket shut down (FIN at once, as the broker's close) and is
//! told it was taken over; its session then ends as for a client that left.
//! A connection whose broker side ends while a newer one of its client id
//! awaits its CONNACK waits briefly for that CONNACK before closing its
//! client, so that the two still reach the client back to back.
//! Entries leave the table before their socket is closed, so a socket shut
//! down through the table is always the one entered. Empty client ids are
//! never entered (the broker assigns each a unique one).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use crate::net::Registered;

/// The connections whose CONNACK said yes, by client id.
#[derive(Default)]
pub struct Takeovers {
    by_client: Mutex<HashMap<String, ClientId>>,
    next_id: AtomicU64,
}

/// One client id's connections.
#[derive(Default)]
struct ClientId {
    accepted: Vec<Accepted>,
    /// Connections waiting for their CONNACK.
    pending: usize,
}

struct Accepted {
    id: u64,
    /// The client's TCP socket, open for as long as this entry exists;
    /// `None` for QUIC, whose connection ends when its task is told.
    socket: Option<RawFd>,
    taken_over: oneshot::Sender<()>,
}

/// What [`Takeovers::ticket`] gives a connection.
pub struct Entry<'a> {
    /// Kept while the connection's socket is open (see [`Ticket`]).
    pub ticket: Ticket<'a>,
    /// Used on the broker's CONNACK.
    pub acceptance: Acceptance<'a>,
    /// Resolves when a newer connection took this one over (its client
    /// socket is shut down by then).
    pub taken_over: oneshot::Receiver<()>,
}

/// A connection's place in [`Takeovers`]; dropping it removes the entry, so
/// it must be dropped before the client socket is closed.
pub struct Ticket<'a> {
    table: &'a Takeovers,
    client_id: &'a str,
    id: u64,
}

/// Enters a connection into [`Takeovers`] once the broker accepted it;
/// until then (or until dropped) the connection counts as pending.
pub struct Acceptance<'a> {
    table: &'a Takeovers,
    client_id: &'a str,
    id: u64,
    socket: Option<RawFd>,
    taken_over: Option<oneshot::Sender<()>>,
}

impl Takeovers {
    /// The place of a new connection of `client_id` whose client is on
    /// `socket` (`None` when there is no socket to cut). `None` for an empty
    /// client id.
    pub fn ticket<'a>(&'a self, client_id: &'a str, socket: Option<RawFd>) -> Option<Entry<'a>> {
        if client_id.is_empty() {
            return None;
        }
        let (tx, taken_over) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.table()
            .entry(client_id.to_string())
            .or_default()
            .pending += 1;
        Some(Entry {
            ticket: Ticket {
                table: self,
                client_id,
                id,
            },
            acceptance: Acceptance {
                table: self,
                client_id,
                id,
                socket,
                taken_over: Some(tx),
            },
            taken_over,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClientId>> {
        // A poisoned lock only means a panic elsewhere; the map is intact.
        self.by_client.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections entered now (tests check that entries leave).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table().values().map(|c| c.accepted.len()).sum()
    }

    /// Whether a connection of `client_id` is waiting for its CONNACK.
    pub fn newer_pending(&self, client_id: &str) -> bool {
        self.table().get(client_id).is_some_and(|c| c.pending > 0)
    }

    /// Whether no connection is entered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Resolves to true once a newer connection took this one over (`told`,
/// from its [`Entry`]); never resolves otherwise. A session looks at this
/// on each of its wake-ups: once its waker is registered, a look is a read
/// of the channel's state, not a registration again.
pub async fn newer_connection(told: &mut Option<oneshot::Receiver<()>>) -> bool {
    let Some(told) = told else {
        return std::future::pending().await;
    };
    let mut registered = Registered::default();
    std::future::poll_fn(|cx| {
        // Empty also once the sender is gone without a word: no takeover,
        // and nothing more to wait for.
        if registered.holds(cx) && told.is_empty() {
            return Poll::Pending;
        }
        let polled = Pin::new(&mut *told).poll(cx);
        registered.polled(cx, polled.is_pending());
        polled.map(|told| told.is_ok())
    })
    .await
}

impl Acceptance<'_> {
    /// The broker accepted this connection: shuts down the client socket of
    /// every other accepted connection of the same client id, tells them,
    /// and enters this one. Returns how many were taken over.
    pub fn accepted(mut self) -> usize {
        let Some(taken_over) = self.taken_over.take() else {
            return 0;
        };
        let mut table = self.table.table();
        let list = &mut table
            .entry(self.client_id.to_string())
            .or_default()
            .accepted;
        let others = std::mem::take(list);
        list.push(Accepted {
            id: self.id,
            socket: self.socket,
            taken_over,
        });
        for socket in others.iter().filter_map(|other| other.socket) {
            // SAFETY: shutdown(2) only acts on the socket behind the fd. The
            // fd is still that connection's open socket: its entry is removed
            // (under this lock) before the socket is closed (Ticket's doc).
            unsafe { libc::shutdown(socket, libc::SHUT_RDWR) };
        }
        let count = others.len();
        for other in others {
            // A session that is ending no longer listens; that is fine.
            let _ = other.taken_over.send(());
        }
        count
    }
}

impl Drop for Acceptance<'_> {
    fn drop(&mut self) {
        let mut table = self.table.table();
        if let Some(entry) = table.get_mut(self.client_id) {
            entry.pending = entry.pending.saturating_sub(1);
            if entry.accepted.is_empty() && entry.pending == 0 {
                table.remove(self.client_id);
            }
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut table = self.table.table();
        if let Some(entry) = table.get_mut(self.client_id) {
            entry.accepted.retain(|a| a.id != self.id);
            if entry.accepted.is_empty() && entry.pending == 0 {
                table.remove(self.client_id);
            }
        }
    }
}

/// Whether `bytes` start with a CONNACK that accepts the connection (return
/// or reason code 0, the byte after the flags in 3.1.1 and 5.0 alike).
pub fn starts_with_accepting_connack(bytes: &[u8]) -> bool {
    if bytes.first() != Some(&0x20) {
        return false;
    }
    // Skip the Remaining Length (1 to 4 bytes), then the flags byte.
    let Some(length_bytes) = bytes.iter().skip(1).take(4).position(|b| b & 0x80 == 0) else {
        return false;
    };
    bytes.get(1 + length_bytes + 1 + 1) == Some(&0)
}

/// The client's writer, which enters the connection into [`Takeovers`]
/// right before the broker's accepting CONNACK (always the first bytes a
/// client is sent) goes out: nothing lies between the older connections'
/// shutdown and this write, as nothing does at the broker.
pub struct TakeoverWriter<'a, W> {
    inner: W,
    acceptance: Option<Acceptance<'a>>,
}

impl<'a, W> TakeoverWriter<'a, W> {
    /// Wraps `inner`; without `acceptance` it only passes bytes on.
    pub fn new(inner: W, acceptance: Option<Acceptance<'a>>) -> Self {
        Self { inner, acceptance }
    }

    /// The writer it wraps.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TakeoverWriter<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(acceptance) = self.acceptance.take()
            && starts_with_accepting_connack(buf)
        {
            acceptance.accepted();
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsRawFd;

    use super::*;

    /// A connected pair of loopback sockets: (ours, the peer's).
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    }

    #[test]
    fn a_newer_connection_shuts_the_older_down_and_takes_its_place() {
        let table = Takeovers::default();
        let (old_socket, mut old_peer) = pair();
        let (new_socket, _new_peer) = pair();
        let mut old = table.ticket("c", Some(old_socket.as_raw_fd())).unwrap();
        assert_eq!(old.acceptance.accepted(), 0);
        assert_eq!(table.len(), 1);

        let new = table.ticket("c", Some(new_socket.as_raw_fd())).unwrap();
        assert!(
            table.newer_pending("c"),
            "a newer connection awaits its CONNACK"
        );
        assert_eq!(new.acceptance.accepted(), 1);
        assert!(!table.newer_pending("c"));
        old.taken_over.try_recv().expect("told it was taken over");
        let mut buf = [0u8; 1];
        assert_eq!(
            old_peer.read(&mut buf).unwrap(),
            0,
            "the old client sees FIN"
        );
        drop(old.ticket);
        assert_eq!(table.len(), 1, "only the new connection is left");
        drop(new.ticket);
        assert!(table.is_empty(), "entries leave with their connection");
        assert!(
            table.ticket("", None).is_none(),
            "empty client ids are not entered"
        );
    }

    #[test]
    fn accepting_connacks_are_told_from_refusals() {
        assert!(starts_with_accepting_connack(&[0x20, 0x02, 0x00, 0x00]));
        assert!(starts_with_accepting_connack(&[
            0x20, 0x03, 0x01, 0x00, 0x00, 0x30
        ]));
        // A v5 CONNACK with 200 bytes of properties: two length bytes.
        assert!(starts_with_accepting_connack(&[
            0x20, 0xcb, 0x01, 0x00, 0x00
        ]));
        assert!(!starts_with_accepting_connack(&[0x20, 0x02, 0x00, 0x05]));
        assert!(!starts_with_accepting_connack(&[
            0x20, 0x03, 0x00, 0x87, 0x00
        ]));
        assert!(!starts_with_accepting_connack(&[0x30, 0x02, 0x00, 0x00]));
        assert!(!starts_with_accepting_connack(&[
            0x20, 0x80, 0x80, 0x80, 0x80
        ]));
        assert!(!starts_with_accepting_connack(&[0x20]));
    }

    #[test]
    fn a_refused_connection_takes_nothing_over() {
        let table = Takeovers::default();
        let (old_socket, _old_peer) = pair();
        let mut old = table.ticket("c", Some(old_socket.as_raw_fd())).unwrap();
        old.acceptance.accepted();
        let refused = table.ticket("c", Some(old_socket.as_raw_fd())).unwrap();
        drop(refused);
        assert!(
            !table.newer_pending("c"),
            "a refused connection is no longer pending"
        );
        assert_eq!(table.len(), 1);
        assert!(old.taken_over.try_recv().is_err(), "the old one goes on");
    }
}
