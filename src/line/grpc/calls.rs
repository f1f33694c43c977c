//! Starting gRPC calls on a [`Channel`]: the request's headers (path,
//! `content-type: application/grpc`, `te: trailers`, the caller's
//! metadata), then the response's head, which either accepts the call
//! (HTTP 200, a gRPC content type) or refuses it with a status.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use h2::SendStream;
use h2::client::ResponseFuture;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::channel::Channel;
use super::framing;
use super::messages::{Body, Messages};
use super::status;

/// Counts a call as open on its connection while it lives.
pub struct ActiveCall(Arc<AtomicUsize>);

impl ActiveCall {
    fn new(calls: Arc<AtomicUsize>) -> Self {
        calls.fetch_add(1, Ordering::Relaxed);
        Self(calls)
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call whose request went out, waiting for the response's head.
pub struct PendingResponse {
    response: ResponseFuture,
    active: ActiveCall,
    max_message: usize,
}

/// A started call: where its request messages go, and its response.
pub struct Call {
    /// The request stream; its messages are framed by the caller
    /// ([`crate::line::outlet`] for the relay).
    pub requests: SendStream<Bytes>,
    /// The response's head, to wait for after the first messages are sent.
    pub response: PendingResponse,
}

impl Channel {
    /// Starts a call of `path` (`/package.Service/Method`) with `metadata`;
    /// responses larger than `max_message` bytes fail the call. A broken
    /// connection kept from before is replaced once, at once.
    pub async fn call(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        max_message: usize,
    ) -> Result<Call, Status> {
        // A second connection made now is not replaced again.
        for _ in 0..2 {
            let (connection, made_now) = self.connection().await?;
            let request = self.request(path, metadata)?;
            let started = match connection.requests.clone().ready().await {
                Ok(mut requests) => requests.send_request(request, false),
                Err(e) => Err(e),
            };
            match started {
                Ok((response, requests)) => {
                    return Ok(Call {
                        requests,
                        response: PendingResponse {
                            response,
                            active: ActiveCall::new(connection.calls.clone()),
                            max_message,
                        },
                    });
                }
                Err(e) if !made_now && (e.is_io() || e.is_go_away()) => {
                    tracing::debug!(error = %e, "the kept connection had broken; connecting again");
                    self.forget(&connection).await;
                }
                Err(e) => return Err(status::from_h2(&e)),
            }
        }
        Err(Status::unavailable(
            "the s-proxy's connection broke twice in a row",
        ))
    }

    /// A unary call: `request` out, one response back.
    pub async fn unary<Req, Resp>(
        &self,
        path: &'static str,
        request: &Req,
        max_message: usize,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let Call {
            mut requests,
            response,
        } = self.call(path, &MetadataMap::new(), max_message).await?;
        requests
            .send_data(framing::encode(request, max_message)?, true)
            .map_err(|e| status::from_h2(&e))?;
        let (_, mut responses) = response.head::<Resp>().await?;
        match responses.next().await {
            Some(answer) => answer,
            None => Err(Status::internal("the call ended without a response")),
        }
    }

    fn request(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
    ) -> Result<http::Request<()>, Status> {
        let uri = http::Uri::builder()
            .scheme(self.scheme())
            .authority(self.authority())
            .path_and_query(path)
            .build()
            .map_err(|e| Status::internal(format!("no request URI: {e}")))?;
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(
                http::header::USER_AGENT,
                concat!("mqttbridge/", env!("CARGO_PKG_VERSION")),
            )
            .body(())
            .map_err(|e| Status::internal(format!("no request: {e}")))?;
        request
            .headers_mut()
            .extend(metadata.clone().into_headers());
        Ok(request)
    }
}

impl PendingResponse {
    /// Waits for the response's head: its metadata and the response
    /// messages, or the status that refused the call.
    pub async fn head<M>(self) -> Result<(MetadataMap, Messages<M>), Status> {
        let response = self.response.await.map_err(|e| status::from_h2(&e))?;
        let (head, body) = response.into_parts();
        if let Some(status) = status::from_headers(&head.headers) {
            // Trailers-only: the call ended in its head.
            return match status.code() {
                tonic::Code::Ok => Ok((
                    MetadataMap::from_headers(head.headers),
                    Messages::ended(self.active),
                )),
                _ => Err(status),
            };
        }
        if head.status != http::StatusCode::OK {
            return Err(status::from_http(head.status));
        }
        let grpc_content = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if !grpc_content {
            return Err(Status::unknown("the response is not gRPC (content-type)"));
        }
        Ok((
            MetadataMap::from_headers(head.headers),
            Messages::new(Body::H2(body), self.max_message, Some(self.active)),
        ))
    }
}
