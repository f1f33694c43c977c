//! What a session receives from its peer on the line: an envelope, or one
//! holding a plain PUBLISH, read where it lies in the DATA it came in.
//! Nearly everything a session receives is the second kind, and it needs
//! neither a protobuf message nor a buffer of its own: its MQTT bytes are
//! written straight from the envelope's (see `line::pumps`) before the
//! next envelope is read. Anything else is read by prost, as before.

use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::Status;

use crate::line::Inbound;
use crate::line::convert::envelope_wire::{self, PublishEnvelope};
use crate::line::grpc::WireDecode;
use crate::line::proto::mqtt::MqttStreamMessage;

/// An envelope from the peer.
#[derive(Debug, Clone)]
pub enum Received<'a> {
    /// Any envelope. Boxed: the envelope is 272 bytes, and this passes
    /// through every stream on the way to the pump.
    Envelope(Box<MqttStreamMessage>),
    /// An envelope holding a plain PUBLISH, read where it lies in the
    /// DATA it came in.
    Publish(PublishEnvelope<'a>),
}

impl<'a> Received<'a> {
    /// Reads one envelope: a plain PUBLISH where it lies, anything else by
    /// prost.
    pub fn read(bytes: &'a [u8]) -> Result<Self, prost::DecodeError> {
        match envelope_wire::read_publish(bytes) {
            Some(publish) => Ok(Received::Publish(publish)),
            None => Self::decode(bytes),
        }
    }

    /// prost's reading, apart: its frame (an envelope and prost's
    /// temporaries, over a kilobyte) is not part of every plain PUBLISH's
    /// stack, nor its code of the lines each one runs.
    #[cold]
    #[inline(never)]
    fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        <MqttStreamMessage as prost::Message>::decode(bytes).map(Received::from)
    }

    /// The sender's sequence number (0: unnumbered).
    pub fn sequence_id(&self) -> u64 {
        match self {
            Received::Envelope(envelope) => envelope.sequence_id,
            Received::Publish(publish) => publish.head().sequence_id,
        }
    }

    /// The acknowledgement it carries (0: none).
    pub fn acknowledged(&self) -> u64 {
        match self {
            Received::Envelope(envelope) => envelope.acknowledged,
            Received::Publish(publish) => publish.head().acknowledged,
        }
    }

    /// The envelope, unless it holds a plain PUBLISH (which is no ping and
    /// no session control).
    pub fn envelope(&self) -> Option<&MqttStreamMessage> {
        match self {
            Received::Envelope(envelope) => Some(envelope),
            Received::Publish(_) => None,
        }
    }

    /// The envelope as prost reads it, whichever kind.
    pub fn into_envelope(self) -> MqttStreamMessage {
        match self {
            Received::Envelope(envelope) => *envelope,
            Received::Publish(publish) => publish.to_envelope(),
        }
    }

    /// The envelope on its own, no longer borrowing the bytes it came in.
    pub fn into_owned(self) -> Received<'static> {
        match self {
            Received::Envelope(envelope) => Received::Envelope(envelope),
            Received::Publish(publish) => Received::from(publish.to_envelope()),
        }
    }
}

impl From<MqttStreamMessage> for Received<'_> {
    fn from(envelope: MqttStreamMessage) -> Self {
        Received::Envelope(Box::new(envelope))
    }
}

/// Envelopes read one by one (a session's first, and tests) are prost's;
/// a session's pump reads them where they lie ([`ReceiveEach`]).
impl WireDecode for Received<'static> {
    fn decode_framed(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        <MqttStreamMessage as prost::Message>::decode(bytes).map(Received::from)
    }
}

/// Where a session's pump reads what the peer sends: everything that is
/// ready comes in one call, so work done once per call (the resumable
/// line's lock and checks) is done once per DATA chunk, not per envelope.
pub trait ReceiveEach {
    /// Hands the envelopes that are ready to `each`, in order, until `each`
    /// returns `false` (then `Ready(Some(Ok(())))`, the rest kept for the
    /// next call) or nothing more is ready (then `Pending`, the task woken
    /// when more is). `Ready(None)` at a clean end, an error at a failed
    /// one, either after handing over what came before it.
    fn poll_each<F>(&mut self, cx: &mut Context<'_>, each: F) -> Poll<Option<Result<(), Status>>>
    where
        F: FnMut(Received<'_>) -> bool;
}

/// [`ReceiveEach::poll_each`] over a line's messages: each envelope read
/// where it lies in the DATA it came in, and `take` deciding what of it
/// reaches `each` (`None`: nothing, go on).
pub fn poll_each_read<F, T>(
    inbound: &mut Inbound,
    cx: &mut Context<'_>,
    mut take: T,
    mut each: F,
) -> Poll<Option<Result<(), Status>>>
where
    T: FnMut(Received<'_>) -> Option<Received<'_>>,
    F: FnMut(Received<'_>) -> bool,
{
    inbound.poll_each_in_place(cx, |bytes| {
        let message = Received::read(bytes).map_err(|e| crate::line::grpc::undecodable(&e))?;
        Ok(take(message).is_none_or(&mut each))
    })
}
