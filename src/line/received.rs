//! What a session receives from its peer on the line: an envelope, or one
//! holding a plain PUBLISH, kept as the bytes it came in. Nearly everything
//! a session receives is the second kind, and it needs no protobuf message:
//! its MQTT bytes are written straight from the envelope's (see
//! `line::pumps`). Anything else is read by prost, as before.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::Status;

use crate::line::convert::envelope_wire::{self, PublishEnvelope};
use crate::line::grpc::WireDecode;
use crate::line::proto::mqtt::MqttStreamMessage;

/// An envelope from the peer.
#[derive(Debug, Clone)]
pub enum Received {
    /// Any envelope. Boxed: the envelope is 272 bytes, and this passes
    /// through every stream on the way to the pump.
    Envelope(Box<MqttStreamMessage>),
    /// An envelope holding a plain PUBLISH.
    Publish(PublishEnvelope),
}

impl Received {
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
}

impl From<MqttStreamMessage> for Received {
    fn from(envelope: MqttStreamMessage) -> Self {
        Received::Envelope(Box::new(envelope))
    }
}

impl WireDecode for Received {
    fn decode_framed(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        match envelope_wire::read_publish(bytes) {
            Ok(publish) => Ok(Received::Publish(publish)),
            Err(bytes) => <MqttStreamMessage as prost::Message>::decode(bytes).map(Received::from),
        }
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
        F: FnMut(Received) -> bool;
}

/// [`ReceiveEach::poll_each`] over a stream of envelopes: each as the
/// stream yields it.
pub fn poll_each_of<S, F>(
    stream: &mut S,
    cx: &mut Context<'_>,
    mut each: F,
) -> Poll<Option<Result<(), Status>>>
where
    S: Stream<Item = Result<Received, Status>> + Unpin,
    F: FnMut(Received) -> bool,
{
    loop {
        match std::task::ready!(stream.poll_next_unpin(cx)) {
            Some(Ok(message)) => {
                if !each(message) {
                    return Poll::Ready(Some(Ok(())));
                }
            }
            Some(Err(status)) => return Poll::Ready(Some(Err(status))),
            None => return Poll::Ready(None),
        }
    }
}
