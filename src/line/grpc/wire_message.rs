//! What the gRPC layer frames and reads: a prost message, whose encoding a
//! type may write by hand for its common shapes (the envelopes do:
//! `line::convert::envelope_wire`), with prost's as the default. A
//! session's pump reads its envelopes in place instead
//! (`Messages::poll_each_in_place`, `line::Received::read`).

use bytes::Bytes;

/// A message of a gRPC call; the bytes must be prost's for the same value.
pub trait WireMessage: prost::Message + Default {
    /// The encoded length, without the gRPC prefix.
    fn wire_len(&self) -> usize {
        self.encoded_len()
    }

    /// Writes the message into `out`, which is [`WireMessage::wire_len`]
    /// bytes long.
    fn wire_write(&self, out: &mut [u8]) {
        self.encode_raw(&mut &mut out[..]);
    }
}

/// What the gRPC layer can frame: a [`WireMessage`], or a value written as
/// one without being one (`line::Outgoing`).
pub trait WireEncode {
    /// The encoded length, without the gRPC prefix.
    fn framed_len(&self) -> usize;

    /// Writes the message into `out`, which is [`WireEncode::framed_len`]
    /// bytes long (a slice, not a `BufMut`: the hand-written envelopes
    /// store each byte, where a `BufMut` costs a call per integer).
    fn encode_framed(&self, out: &mut [u8]);
}

impl<M: WireMessage> WireEncode for M {
    fn framed_len(&self) -> usize {
        self.wire_len()
    }

    fn encode_framed(&self, out: &mut [u8]) {
        self.wire_write(out);
    }
}

/// What the gRPC layer can read: a [`WireMessage`], or a value read as one
/// without being one (`line::Received`).
pub trait WireDecode: Sized {
    /// Reads one message.
    fn decode_framed(bytes: Bytes) -> Result<Self, prost::DecodeError>;
}

impl<M: WireMessage> WireDecode for M {
    fn decode_framed(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        M::decode(bytes)
    }
}
