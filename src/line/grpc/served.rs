//! One call to the server, before it is answered: what the request says
//! (its metadata, the connection it came on) and the two ways to answer,
//! refusing it with a status in the response's head (trailers-only) or
//! accepting it, which sends the response's head and hands over both
//! streams.

use http::{HeaderMap, HeaderValue, header};
use tokio::sync::watch;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::messages::Messages;
use crate::net::http2::{Incoming, SendStream};

/// What a call knows of its connection.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    /// The peer's address.
    pub remote: Option<std::net::SocketAddr>,
    /// The DER of the client certificate the peer presented (mutual TLS).
    pub certificate: Option<Vec<u8>>,
}

/// A call waiting for its answer.
pub struct ServedCall {
    /// The request's custom metadata.
    pub metadata: MetadataMap,
    /// The connection's peer.
    pub peer: std::sync::Arc<PeerInfo>,
    incoming: Incoming,
    max_message: usize,
    stopping: watch::Receiver<bool>,
}

/// gRPC's content type, as every response says it.
const GRPC_CONTENT: HeaderValue = HeaderValue::from_static("application/grpc");

impl ServedCall {
    pub(super) fn new(
        mut incoming: Incoming,
        peer: std::sync::Arc<PeerInfo>,
        max_message: usize,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let headers = std::mem::take(&mut incoming.head.headers);
        Self {
            metadata: MetadataMap::from_headers(headers),
            peer,
            incoming,
            max_message,
            stopping,
        }
    }

    /// Answers with `status` alone (trailers-only: one HEADERS frame that
    /// ends the stream).
    pub fn refuse(self, status: &Status) {
        let mut head = HeaderMap::new();
        head.insert(header::CONTENT_TYPE, GRPC_CONTENT);
        append_status(&mut head, status);
        if let Err(e) = self.incoming.respond(200, &head, true) {
            tracing::debug!(error = %e, "the refused call was gone already");
        }
    }

    /// Accepts the call: sends the response's head with `metadata`, and
    /// returns where the response's messages go (end them with trailers,
    /// [`trailers`]) and the request's messages.
    pub fn accept<M>(self, metadata: MetadataMap) -> Result<(SendStream, Messages<M>), Status> {
        let mut head = metadata.into_headers();
        head.insert(header::CONTENT_TYPE, GRPC_CONTENT);
        let (responses, requests) = self
            .incoming
            .respond(200, &head, false)
            .map_err(|e| super::status::from_http2(&e))?;
        Ok((responses, Messages::new(requests, self.max_message, None)))
    }

    /// Completes once the server stops (its connections are told to go
    /// away); long calls that never end by themselves end then.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.clone();
        async move {
            // An error means the server is gone: stopped as well.
            let _ = stopping.wait_for(|stopped| *stopped).await;
        }
    }
}

/// The trailers that end a served call with `status`.
pub fn trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    append_status(&mut trailers, status);
    trailers
}

/// Adds `grpc-status` and `grpc-message` (percent-encoded) for `status`.
fn append_status(headers: &mut HeaderMap, status: &Status) {
    if status.add_header(headers).is_err() {
        // Only a message that cannot be a header value fails; the code
        // alone still says what happened.
        headers.insert("grpc-status", HeaderValue::from(status.code() as i32));
    }
}
