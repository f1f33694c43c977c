//! Moving MQTT packets between a byte stream (the client's or the broker's
//! TCP connection) and a stream of protobuf envelopes (the gRPC line).
//!
//! Each direction is its own pump with its own bounded queue, so a slow
//! reader on one side stalls only that direction and two-way floods cannot
//! deadlock. The modes decide what to do when a pump ends.

mod first_packet;
mod packet_reader;
mod passthrough;
mod pumps;
mod takeover;

/// An envelope waiting in a relay queue. Boxed so that a queue's storage,
/// allocated per connection in blocks of 32 slots, costs 8 bytes a slot
/// instead of the envelope's 272: most connections are idle most of the
/// time.
pub type QueuedEnvelope = Box<crate::proto::mqtt::MqttStreamMessage>;

pub use first_packet::{ClientConnect, read_first_packet, receive_connect};
pub use packet_reader::{PacketReader, ReadError};
pub use passthrough::{PacketBounds, RelayEnd, relay_to_client};
pub use pumps::{
    InboundEnd, OutboundEnd, Traffic, envelope, pump_envelopes_to_writer, pump_reader_to_envelopes,
};
pub use takeover::{TakeoverWriter, Takeovers};
