//! Which SCION client each broker-side UDP socket belongs to.
//!
//! A client is first known by its SCION address. Replies from the broker
//! teach the table the connection ids the broker chose (the source id of its
//! long-header packets), so a client whose SCION address or path changes is
//! recognised by the destination id of its packets and keeps its mapping:
//! QUIC connection migration works through the relay.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Identifies one mapping (and its broker-side socket).
pub type PeerId = u64;

struct Peer<A> {
    addr: A,
    last_active: Instant,
    cids: Vec<Vec<u8>>,
}

/// Connection ids remembered per peer (QUIC rotates them; a few suffice).
const CIDS_PER_PEER: usize = 8;

/// The mapping table, bounded in size.
pub struct PeerTable<A> {
    peers: HashMap<PeerId, Peer<A>>,
    by_addr: HashMap<A, PeerId>,
    by_cid: HashMap<Vec<u8>, PeerId>,
    /// Lengths of connection ids seen, to find the id in short headers.
    cid_lengths: Vec<usize>,
    next_id: PeerId,
    max_peers: usize,
    idle_timeout: Duration,
}

/// What to do with a datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Send it on this existing mapping's socket.
    Existing(PeerId),
    /// Open a socket for this new mapping, then send it.
    New(PeerId),
    /// Drop it: the table is full.
    Full,
}

impl<A: Copy + Eq + Hash> PeerTable<A> {
    /// At most `max_peers` mappings, each expiring after `idle_timeout`
    /// without traffic.
    pub fn new(max_peers: usize, idle_timeout: Duration) -> Self {
        Self {
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            by_cid: HashMap::new(),
            cid_lengths: Vec::new(),
            next_id: 1,
            max_peers,
            idle_timeout,
        }
    }

    /// Routes a datagram from client `from`.
    pub fn from_client(&mut self, from: A, datagram: &[u8], now: Instant) -> Route {
        if let Some(&id) = self.by_addr.get(&from) {
            self.touch(id, now);
            return Route::Existing(id);
        }
        if let Some(id) = self.find_by_cid(datagram) {
            // Same connection, new address: the client migrated.
            if let Some(peer) = self.peers.get_mut(&id) {
                self.by_addr.remove(&peer.addr);
                peer.addr = from;
                peer.last_active = now;
            }
            self.by_addr.insert(from, id);
            return Route::Existing(id);
        }
        if self.peers.len() >= self.max_peers {
            return Route::Full;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.peers.insert(
            id,
            Peer {
                addr: from,
                last_active: now,
                cids: Vec::new(),
            },
        );
        self.by_addr.insert(from, id);
        Route::New(id)
    }

    /// Records a datagram from the broker for mapping `id`; returns the
    /// client address to send it to.
    pub fn from_broker(&mut self, id: PeerId, datagram: &[u8], now: Instant) -> Option<A> {
        let scid = quic_long_header_scid(datagram).map(<[u8]>::to_vec);
        let peer = self.peers.get_mut(&id)?;
        peer.last_active = now;
        let addr = peer.addr;
        if let Some(cid) = scid
            && !cid.is_empty()
            && !self.by_cid.contains_key(&cid)
        {
            if peer.cids.len() >= CIDS_PER_PEER {
                let old = peer.cids.remove(0);
                self.by_cid.remove(&old);
            }
            if !self.cid_lengths.contains(&cid.len()) {
                self.cid_lengths.push(cid.len());
            }
            peer.cids.push(cid.clone());
            self.by_cid.insert(cid, id);
        }
        Some(addr)
    }

    /// Removes mappings idle for longer than the timeout; returns their ids
    /// so their sockets can be closed.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_active) > self.idle_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.remove(*id);
        }
        expired
    }

    /// Removes one mapping.
    pub fn remove(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.remove(&id) {
            self.by_addr.remove(&peer.addr);
            for cid in peer.cids {
                self.by_cid.remove(&cid);
            }
        }
    }

    /// Live mappings.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there are no mappings.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn touch(&mut self, id: PeerId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.last_active = now;
        }
    }

    /// The mapping whose broker connection id this datagram is addressed to.
    fn find_by_cid(&self, datagram: &[u8]) -> Option<PeerId> {
        let first = *datagram.first()?;
        if first & 0x80 != 0 {
            // Long header: the destination id carries its length.
            let len = *datagram.get(5)? as usize;
            let cid = datagram.get(6..6 + len)?;
            return self.by_cid.get(cid).copied();
        }
        // Short header: the id follows the first byte; try each known length.
        self.cid_lengths.iter().find_map(|&len| {
            let cid = datagram.get(1..1 + len)?;
            self.by_cid.get(cid).copied()
        })
    }
}

/// The source connection id of a QUIC long-header packet (RFC 9000 17.2).
pub fn quic_long_header_scid(datagram: &[u8]) -> Option<&[u8]> {
    let first = *datagram.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let dcid_len = *datagram.get(5)? as usize;
    let scid_len_at = 6 + dcid_len;
    let scid_len = *datagram.get(scid_len_at)? as usize;
    if scid_len > 20 {
        return None;
    }
    datagram.get(scid_len_at + 1..scid_len_at + 1 + scid_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long-header packet with the given ids.
    fn long(dcid: &[u8], scid: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0, 0, 0, 0, 1, dcid.len() as u8];
        p.extend_from_slice(dcid);
        p.push(scid.len() as u8);
        p.extend_from_slice(scid);
        p.extend_from_slice(&[0; 20]);
        p
    }

    fn short(dcid: &[u8]) -> Vec<u8> {
        let mut p = vec![0x40];
        p.extend_from_slice(dcid);
        p.extend_from_slice(&[9; 30]);
        p
    }

    #[test]
    fn migration_keeps_the_mapping_when_the_connection_id_matches() {
        let now = Instant::now();
        let mut table = PeerTable::new(10, Duration::from_secs(60));
        let Route::New(id) = table.from_client("a", &long(b"client-chosen", b"c"), now) else {
            panic!("first datagram makes a mapping")
        };
        // The broker answers with its own connection id.
        assert_eq!(
            table.from_broker(id, &long(b"c", b"broker-id"), now),
            Some("a")
        );
        // The client moves to a new address, still talking to broker-id.
        assert_eq!(
            table.from_client("b", &short(b"broker-id"), now),
            Route::Existing(id)
        );
        assert_eq!(table.from_broker(id, &short(b"c"), now), Some("b"));
        // An unrelated client is a new mapping.
        assert!(matches!(
            table.from_client("z", &short(b"other"), now),
            Route::New(_)
        ));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn idle_mappings_expire_and_the_table_is_bounded() {
        let now = Instant::now();
        let mut table = PeerTable::new(2, Duration::from_secs(10));
        let Route::New(a) = table.from_client(1, b"x", now) else {
            panic!()
        };
        let Route::New(_) = table.from_client(2, b"x", now + Duration::from_secs(5)) else {
            panic!()
        };
        assert_eq!(table.from_client(3, b"x", now), Route::Full);
        assert_eq!(table.expire(now + Duration::from_secs(11)), vec![a]);
        assert!(matches!(
            table.from_client(3, b"x", now + Duration::from_secs(11)),
            Route::New(_)
        ));
    }

    #[test]
    fn scid_of_garbage_is_none() {
        assert_eq!(quic_long_header_scid(b""), None);
        assert_eq!(quic_long_header_scid(b"\x40abc"), None);
        assert_eq!(quic_long_header_scid(b"\xc0\0\0\0\x01\x50"), None);
        assert_eq!(quic_long_header_scid(&long(b"d", b"sc")), Some(&b"sc"[..]));
    }
}
