//! The MQTT codec shared by every mode and the client: framing a byte
//! stream into packets under a maximum packet size, decoding them with
//! mqtt-protocol-core and encoding them back, reading one packet at a time
//! from a stream, and following packet boundaries in bytes relayed untouched.
//!
//! The version of a connection comes from its CONNECT packet
//! ([`connect_protocol`]); every later packet is decoded for that version.
//!
//! Layer rule: `mqtt` imports nothing else of the crate.

mod connect;
mod first_packet;
mod framer;
mod packet;
mod packet_reader;
mod passthrough;
mod publish_bytes;
mod reason;
pub mod remaining_length;
pub mod replies;
mod scratch_read;
mod session_relay;
mod slice_writer;
mod topic;
mod version;

pub use first_packet::{ClientConnect, NoConnect, read_first_packet, receive_connect};
pub use packet_reader::{PacketReader, ReadError};
pub use passthrough::{PacketBounds, RelayEnd};
pub use publish_bytes::{PUBLISH, PublishBytes};
pub use scratch_read::with_scratch;
pub use session_relay::{Relayed, relay_session};
pub use slice_writer::SliceWriter;

pub use connect::{ConnectRefusal, accept_connect, client_id, keep_alive, server_keep_alive};
pub use framer::{Framer, RawPacket};
pub use packet::{
    CodecError, PACKET_TYPE_NAMES, Packet, decode, encode, packet_type_name, packet_type_name_of,
    wire_size,
};
pub(crate) use packet::{has_wildcard, is_topic_name};
pub use reason::reason_name;
pub use topic::{TopicError, check_topic_filter, check_topic_name, topic_matches};
pub use version::{ProtocolLevel, Version, connect_protocol};

/// The default maximum size of one MQTT packet (fixed header included): 2 MiB,
/// so that a 1 MiB publish with generous properties passes.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 2 * 1024 * 1024;

/// The largest Remaining Length MQTT can express (four bytes of it).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
