//! Where a session's envelopes go: the gRPC stream of its call, bounded
//! like a channel (a full outlet makes senders wait, so the pump stops
//! reading its socket and TCP slows the sender down). Two kinds, one per
//! end of the line:
//!
//! - the s-proxy answers a call, and tonic's server reads the response
//!   stream: the outlet is a small [`queue`] that stream drains;
//! - the r-proxy made the call: the sender frames each envelope and hands
//!   it to HTTP/2 itself ([`call`]), with no queue or task in between.

mod call;
mod queue;

use tokio::sync::mpsc::error::{SendError, TrySendError};
use tonic::Status;

pub use call::CallSink;
pub use queue::OutletStream;

use super::QueuedEnvelope;

/// What an outlet carries: an envelope, or the error that ends the stream.
pub type Queued = Result<QueuedEnvelope, Status>;

/// The sending side of a session's stream; clones send to the same one,
/// which ends once every clone is gone.
#[derive(Clone)]
pub struct Outlet(Kind);

#[derive(Clone)]
enum Kind {
    Queue(queue::Sender),
    Call(CallSink),
}

/// A queue holding at most `capacity` (at least 1) envelopes, read as a
/// stream (the s-proxy's response).
pub fn channel(capacity: usize) -> (Outlet, OutletStream) {
    let (sender, stream) = queue::channel(capacity);
    (Outlet(Kind::Queue(sender)), stream)
}

impl From<CallSink> for Outlet {
    fn from(sink: CallSink) -> Self {
        Outlet(Kind::Call(sink))
    }
}

impl Outlet {
    /// Sends `value` if there is room.
    pub fn try_send(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        match &self.0 {
            Kind::Queue(queue) => queue.try_send(value),
            Kind::Call(call) => call.try_send(value),
        }
    }

    /// As [`Outlet::try_send`], but the envelope may wait until
    /// [`Outlet::flush`] to go out with those after it (the r-proxy's
    /// outlet gathers a burst into one DATA frame).
    pub fn try_send_batched(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        match &self.0 {
            Kind::Queue(queue) => queue.try_send(value),
            Kind::Call(call) => call.try_send_batched(value),
        }
    }

    /// Sends what [`Outlet::try_send_batched`] gathered.
    pub fn flush(&self) {
        if let Kind::Call(call) = &self.0 {
            call.flush();
        }
    }

    /// Sends `value`, waiting for room; fails once the stream is gone.
    pub async fn send(&self, value: Queued) -> Result<(), SendError<Queued>> {
        match &self.0 {
            Kind::Queue(queue) => queue.send(value).await,
            Kind::Call(call) => call.send(value).await,
        }
    }

    /// Whether an envelope would have to wait for room now.
    pub fn is_full(&self) -> bool {
        match &self.0 {
            Kind::Queue(queue) => queue.is_full(),
            Kind::Call(call) => call.is_full(),
        }
    }
}
