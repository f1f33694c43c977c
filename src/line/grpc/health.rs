//! The standard gRPC health service (`grpc.health.v1.Health`) on our
//! server: `Check` answers once, `Watch` streams every change until the
//! caller cancels or the server stops. The services it knows are SERVING
//! while the readiness it follows holds, else NOT_SERVING; others are
//! NOT_FOUND to `Check` and SERVICE_UNKNOWN to `Watch`, as the protocol
//! says. gRPC-aware balancers, Kubernetes' gRPC probes and the r-proxy's
//! upstream probes read it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::WireMessage;
use super::served::{ServedCall, trailers};
use super::server::Server;
use crate::net::http2::SendStream;

/// Framed and read as prost writes and reads them.
impl WireMessage for HealthCheckRequest {}
impl WireMessage for HealthCheckResponse {}

/// The health service's methods.
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
pub const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

/// How long a caller may take to send its one request.
const REQUEST_WITHIN: Duration = Duration::from_secs(10);
/// The largest health answer (a status: a few bytes).
const MAX_ANSWER: usize = 64;

/// What the health service reports.
#[derive(Clone)]
struct Health {
    /// Whether the server is ready.
    ready: watch::Receiver<bool>,
    /// The services that follow it; `""` is the whole server.
    services: &'static [&'static str],
}

impl Health {
    fn status_of(&self, service: &str, ready: bool) -> ServingStatus {
        match (self.services.contains(&service), ready) {
            (false, _) => ServingStatus::ServiceUnknown,
            (true, true) => ServingStatus::Serving,
            (true, false) => ServingStatus::NotServing,
        }
    }
}

/// Adds `Check` and `Watch` to `server`, reporting `services` (`""`, the
/// whole server, among them) by `ready`.
pub fn serve_health(
    server: Server,
    ready: watch::Receiver<bool>,
    services: &'static [&'static str],
) -> Server {
    let health = Health { ready, services };
    let watched = health.clone();
    server
        .route(
            HEALTH_CHECK,
            Arc::new(move |call| {
                tokio::spawn(check(call, health.clone()));
            }),
        )
        .route(
            HEALTH_WATCH,
            Arc::new(move |call| {
                tokio::spawn(watch(call, watched.clone()));
            }),
        )
}

/// Accepts a health call and reads its request.
async fn opened(call: ServedCall) -> Result<(SendStream, String), ()> {
    let (mut responses, mut requests) = call
        .accept::<HealthCheckRequest>(MetadataMap::new())
        .map_err(drop)?;
    let request = tokio::time::timeout(REQUEST_WITHIN, requests.next()).await;
    match request {
        Ok(Some(Ok(request))) => Ok((responses, request.service)),
        Ok(Some(Err(status))) => {
            let _ = responses.send_trailers(trailers(&status));
            Err(())
        }
        Ok(None) => {
            let status = Status::invalid_argument("no health request");
            let _ = responses.send_trailers(trailers(&status));
            Err(())
        }
        Err(_) => {
            let status = Status::deadline_exceeded("no health request in time");
            let _ = responses.send_trailers(trailers(&status));
            Err(())
        }
    }
}

async fn check(call: ServedCall, health: Health) {
    let Ok((mut responses, service)) = opened(call).await else {
        return;
    };
    let status = health.status_of(&service, *health.ready.borrow());
    let outcome = match status {
        ServingStatus::ServiceUnknown => Status::not_found("unknown service"),
        status => match send(&mut responses, status) {
            Ok(()) => Status::ok(""),
            Err(()) => return,
        },
    };
    let _ = responses.send_trailers(trailers(&outcome));
}

async fn watch(call: ServedCall, mut health: Health) {
    let stopping = call.stopping();
    let Ok((mut responses, service)) = opened(call).await else {
        return;
    };
    tokio::pin!(stopping);
    let mut last = None;
    loop {
        let ready = *health.ready.borrow_and_update();
        let status = health.status_of(&service, ready);
        if last != Some(status) {
            if send(&mut responses, status).is_err() {
                return;
            }
            last = Some(status);
        }
        tokio::select! {
            changed = health.ready.changed() => if changed.is_err() { break },
            () = &mut stopping => break,
            // The caller cancelled: nothing more to send.
            _ = std::future::poll_fn(|cx| responses.poll_reset(cx)) => return,
        }
    }
    let _ = responses.send_trailers(trailers(&Status::unavailable("the server is stopping")));
}

/// Sends one health answer (a few bytes: HTTP/2 buffers it whatever the
/// window, and a watch sends one per change only).
fn send(responses: &mut SendStream, status: ServingStatus) -> Result<(), ()> {
    let answer = HealthCheckResponse {
        status: status as i32,
    };
    let framed = super::framing::encode(&answer, MAX_ANSWER).map_err(drop)?;
    responses.send_data(framed, false).map_err(drop)
}
