//! Datagram relaying between SCION and UDP/IP for `scion-udp`: QUIC runs end
//! to end between a SCION client and a QUIC-capable broker; the relay only
//! moves datagrams. The mapping logic is sans-I/O ([`PeerTable`]); the mode
//! drives it with sockets.

mod table;

pub use table::{PeerId, PeerTable, Route, quic_long_header_scid};
