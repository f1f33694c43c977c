//! Starting gRPC calls on a [`Channel`]: the request's headers (path,
//! `content-type: application/grpc`, `te: trailers`, the caller's
//! metadata), then the response's head, which either accepts the call
//! (HTTP 200, a gRPC content type) or refuses it with a status.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::channel::Channel;
use super::framing;
use super::messages::Messages;
use super::status;
use super::wire_message::WireMessage;
use crate::net::http2::SendStream;
use crate::net::http2::client::{Request, ResponseFuture};

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
    pub requests: SendStream,
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
            let headers = self.request_headers(metadata);
            let request = Request {
                https: self.target_is_tls(),
                authority: self.authority(),
                path,
                headers: &headers,
            };
            match connection.requests.send_request(request, false).await {
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
                Err(e) => return Err(status::from_http2(&e)),
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
        Req: WireMessage,
        Resp: WireMessage,
    {
        let Call {
            mut requests,
            response,
        } = self.call(path, &MetadataMap::new(), max_message).await?;
        requests
            .send_data(framing::encode(request, max_message)?, true)
            .map_err(|e| status::from_http2(&e))?;
        let (_, mut responses) = response.head::<Resp>().await?;
        match responses.next().await {
            Some(answer) => answer,
            None => Err(Status::internal("the call ended without a response")),
        }
    }

    /// A call's request headers besides the pseudo-headers: gRPC's
    /// content type, `te: trailers`, who we are, the caller's metadata.
    fn request_headers(&self, metadata: &MetadataMap) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("mqttbridge/", env!("CARGO_PKG_VERSION"))),
        );
        headers.extend(metadata.clone().into_headers());
        headers
    }
}

impl PendingResponse {
    /// Waits for the response's head: its metadata and the response
    /// messages, or the status that refused the call.
    pub async fn head<M>(self) -> Result<(MetadataMap, Messages<M>), Status> {
        let (head, body) = self.response.await.map_err(|e| status::from_http2(&e))?;
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
        if head.status != 200 {
            let code = http::StatusCode::from_u16(head.status)
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            return Err(status::from_http(code));
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
            Messages::new(body, self.max_message, Some(self.active)),
        ))
    }
}
