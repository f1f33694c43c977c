//! The peer's envelopes on one gRPC call, whichever end made it: the
//! request stream tonic's server hands the s-proxy, or the response
//! stream of the call the r-proxy made itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tonic::{Status, Streaming};

use super::grpc_client::Responses;
use super::proto::mqtt::MqttStreamMessage;

/// The peer's envelopes; ends with `None` after a clean end, or with the
/// error that ended the call.
pub enum Inbound {
    /// A call the s-proxy serves.
    Served(Streaming<MqttStreamMessage>),
    /// A call the r-proxy made.
    Called(Responses<MqttStreamMessage>),
}

impl Stream for Inbound {
    type Item = Result<MqttStreamMessage, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Inbound::Served(streaming) => Pin::new(streaming).poll_next(cx),
            Inbound::Called(responses) => Pin::new(responses).poll_next(cx),
        }
    }
}
