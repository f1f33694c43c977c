//! The s-proxy endpoints an r-proxy may use (each URL's host resolved to
//! all its addresses, [`super::discovery`]): new streams go round-robin to
//! the healthy ones; an endpoint that fails is skipped for a while and the
//! stream is tried on the next.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::ClientConfig;
use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::Inbound;
use super::discovery::{Channels, Endpoint, Pool};
use super::grpc::{Call, ChannelSettings, HEALTH_CHECK};
use super::proto::mqtt::MqttStreamMessage;
use super::resume::grant::{
    RESUME_BUFFER_KEY, RESUME_OFFER_KEY, RESUME_RECEIVED_KEY, RESUME_TOKEN_KEY, read_number,
};
use super::resume::{Outlet, ResumeError, Resumed};
use super::{
    CLIENT_ADDR_KEY, CLIENT_ID_KEY, Keepalive, RELAY_METHOD, RELAY_SERVICE, SESSION_ID_KEY,
    encode_client_id, max_message_size,
};
use crate::net::HostPort;
use crate::ops::telemetry::METRICS;

/// The mode label of the metrics counted here (only the r-proxy opens
/// streams to s-proxies).
const MODE: &str = "r-proxy";

/// No s-proxy accepted the stream.
#[derive(Debug, thiserror::Error)]
#[error("no s-proxy accepted the stream (last error: {last})")]
pub struct OpenError {
    /// What the last endpoint tried said.
    pub last: Status,
}

/// A stream an s-proxy accepted for a new session.
pub struct Opened {
    /// Where the session's envelopes go.
    pub outlet: Outlet,
    /// The s-proxy's envelopes.
    pub inbound: Inbound,
    /// Which endpoint took it: a resume goes there and nowhere else.
    pub endpoint: UpstreamEndpoint,
    /// The resume token, when resumption was offered and granted.
    pub resume_token: Option<String>,
    /// The s-proxy's replay buffer in bytes, when it granted resumption
    /// and said.
    pub peer_replay_bytes: Option<u64>,
}

/// The s-proxy a session started on, for its resume.
#[derive(Clone)]
pub struct UpstreamEndpoint(Arc<Endpoint>);

/// The pool of s-proxy endpoints, one HTTP/2 connection each, shared by
/// all client connections.
pub struct Upstreams {
    pool: Pool,
    /// `authorization` metadata value sent with every stream.
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    next: AtomicUsize,
    connect_timeout: Duration,
    retry_after: Duration,
    max_message_size: usize,
}

impl Upstreams {
    /// Prepares channels to `urls`; nothing connects until the first
    /// stream, and each host name is resolved to all its addresses at the
    /// first probe and every `resolve_every` after. `https://` URLs use
    /// `tls` (expecting `server_name`, else the URL's host); `token` goes
    /// out as a bearer token.
    pub fn new(
        urls: &[UpstreamUrl],
        tls: Option<Arc<ClientConfig>>,
        server_name: Option<&str>,
        token: Option<&str>,
        timing: UpstreamTiming,
        max_packet_size: u32,
    ) -> anyhow::Result<Self> {
        let authorization = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| {
                anyhow::anyhow!("the auth token has characters gRPC metadata cannot carry")
            })?;
        let channels = Channels {
            tls,
            server_name: server_name.map(str::to_string),
            settings: ChannelSettings {
                connect_timeout: timing.connect_timeout,
                keepalive: timing.keepalive,
                send_buffer: timing.send_buffer,
            },
        };
        Ok(Self {
            pool: Pool::new(urls, channels, timing.resolve_every)?,
            authorization,
            next: AtomicUsize::new(0),
            connect_timeout: timing.connect_timeout,
            retry_after: timing.retry_after,
            max_message_size: max_message_size(max_packet_size),
        })
    }

    /// Opens one relay stream for a client connection, trying each endpoint
    /// at most once, healthy ones first. `first` are the messages that open
    /// the session; they are sent again on each endpoint tried. With
    /// `offer_resume` (this side's replay buffer in bytes) the stream asks
    /// for a resumable session.
    pub async fn open(
        &self,
        session_id: &str,
        client_addr: std::net::SocketAddr,
        client_id: &str,
        first: &[MqttStreamMessage],
        offer_resume: Option<usize>,
    ) -> Result<Opened, OpenError> {
        let endpoints = self.pool.endpoints();
        let n = endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let order = (0..n).map(|i| (start + i) % n);
        let (healthy, down): (Vec<usize>, Vec<usize>) =
            order.partition(|&i| !endpoints[i].is_down(now));
        let mut last = Status::unavailable("no s-proxy endpoint configured");
        for i in healthy.into_iter().chain(down) {
            let upstream = &endpoints[i];
            let opening = Opening {
                session_id,
                client_addr,
                client_id,
                first,
                offer_resume,
            };
            let result =
                tokio::time::timeout(self.connect_timeout, self.open_on(upstream, opening))
                    .await
                    .unwrap_or_else(|_| Err(Status::deadline_exceeded("s-proxy did not answer")));
            match result {
                Ok((outlet, metadata, inbound)) => {
                    upstream.mark(None);
                    let resume_token = metadata
                        .get(RESUME_TOKEN_KEY)
                        .and_then(|v| v.to_str().ok())
                        .filter(|_| offer_resume.is_some())
                        .map(str::to_string);
                    return Ok(Opened {
                        outlet,
                        inbound,
                        endpoint: UpstreamEndpoint(upstream.clone()),
                        resume_token,
                        peer_replay_bytes: read_number(&metadata, RESUME_BUFFER_KEY),
                    });
                }
                Err(status) => {
                    METRICS.upstream_error(MODE, upstream.url.as_str());
                    tracing::debug!(upstream = %upstream.label(), %status, "s-proxy refused stream");
                    upstream.mark(Some(Instant::now() + self.retry_after));
                    last = status;
                }
            }
        }
        Err(OpenError { last })
    }

    /// Asks every endpoint's gRPC health service whether it serves
    /// `MqttRelayService` (an s-proxy without the service, such as the seed
    /// system's, counts as serving once it answers at all); endpoints that
    /// do not are tried last. `Ok` when at least one serves, else the
    /// reasons.
    pub async fn probe(&self) -> Result<(), String> {
        self.pool.resolve().await;
        let endpoints = self.pool.endpoints();
        let checks = endpoints.iter().map(|upstream| async move {
            let found = self.check_health(upstream).await;
            upstream.set_healthy(found.is_ok());
            found.map_err(|why| format!("{}: {why}", upstream.label()))
        });
        let found = futures_util::future::join_all(checks).await;
        if found.iter().any(Result::is_ok) {
            return Ok(());
        }
        let reasons: Vec<String> = found.into_iter().filter_map(Result::err).collect();
        Err(format!("no s-proxy serves ({})", reasons.join("; ")))
    }

    async fn check_health(&self, upstream: &Endpoint) -> Result<(), String> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
        let request = HealthCheckRequest {
            service: RELAY_SERVICE.to_string(),
        };
        let check = upstream.channel.unary::<_, HealthCheckResponse>(
            HEALTH_CHECK,
            &request,
            self.max_message_size,
        );
        match tokio::time::timeout(self.connect_timeout, check).await {
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
            Ok(Ok(response)) => match response.status() {
                ServingStatus::Serving => Ok(()),
                status => Err(format!("health {}", status.as_str_name())),
            },
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => Ok(()),
            Ok(Err(status)) => Err(status.message().to_string()),
        }
    }

    /// Starts the relay call on `upstream` and sends the opening messages:
    /// where the session's envelopes go, the response's metadata and the
    /// s-proxy's envelopes.
    async fn open_on(
        &self,
        upstream: &Endpoint,
        opening: Opening<'_>,
    ) -> Result<(Outlet, MetadataMap, Inbound), Status> {
        let mut metadata = MetadataMap::new();
        if let Ok(v) = opening.session_id.parse() {
            metadata.insert(SESSION_ID_KEY, v);
        }
        if let Ok(v) = encode_client_id(opening.client_id).parse() {
            metadata.insert(CLIENT_ID_KEY, v);
        }
        if let Ok(v) = opening.client_addr.to_string().parse() {
            metadata.insert(CLIENT_ADDR_KEY, v);
        }
        if let Some(replay_bytes) = opening.offer_resume {
            metadata.insert(RESUME_OFFER_KEY, MetadataValue::from_static("1"));
            metadata.insert(RESUME_BUFFER_KEY, replay_bytes.into());
        }
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        let Call { requests, response } = upstream
            .channel
            .call(RELAY_METHOD, &metadata, self.max_message_size)
            .await?;
        let sink = Outlet::requests(requests, self.max_message_size);
        sink.send_opening(opening.first)?;
        let (metadata, responses) = response.head().await?;
        Ok((sink, metadata, responses))
    }

    /// Asks endpoint `endpoint` to continue the session of `token` on a new
    /// stream; `received` is the last sequence this side received.
    pub async fn resume(
        &self,
        endpoint: &UpstreamEndpoint,
        token: &str,
        received: u64,
    ) -> Result<Resumed, ResumeError> {
        let upstream = &*endpoint.0;
        let mut metadata = MetadataMap::new();
        let token_value = token.parse().map_err(|_| {
            ResumeError::Refused(Status::invalid_argument("malformed resume token"))
        })?;
        metadata.insert(RESUME_TOKEN_KEY, token_value);
        metadata.insert(RESUME_RECEIVED_KEY, received.into());
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        let attempt = async {
            let Call { requests, response } = upstream
                .channel
                .call(RELAY_METHOD, &metadata, self.max_message_size)
                .await?;
            let (metadata, responses) = response.head().await?;
            Ok::<_, Status>((requests, metadata, responses))
        };
        let (requests, metadata, responses) =
            match tokio::time::timeout(self.connect_timeout, attempt).await {
                Err(_) => {
                    return Err(ResumeError::Unreachable(Status::deadline_exceeded(
                        "s-proxy did not answer",
                    )));
                }
                Ok(Err(status)) => return Err(classify(status)),
                Ok(Ok(answered)) => answered,
            };
        let peer_received = read_number(&metadata, RESUME_RECEIVED_KEY);
        let next = metadata
            .get(RESUME_TOKEN_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match (peer_received, next) {
            (Some(peer_received), Some(token)) => Ok(Resumed {
                outlet: Outlet::requests(requests, self.max_message_size),
                inbound: responses,
                peer_received,
                token,
            }),
            _ => Err(ResumeError::Refused(Status::failed_precondition(
                "the s-proxy did not take the session back",
            ))),
        }
    }
}

/// What opens a new session's stream.
#[derive(Clone, Copy)]
struct Opening<'a> {
    session_id: &'a str,
    client_addr: std::net::SocketAddr,
    client_id: &'a str,
    first: &'a [MqttStreamMessage],
    offer_resume: Option<usize>,
}

/// Whether a failed resume is worth another try: an answer from the
/// s-proxy that names the session is final; a transport failure is not.
fn classify(status: Status) -> ResumeError {
    use tonic::Code;
    match status.code() {
        Code::NotFound
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::InvalidArgument
        | Code::Unauthenticated => ResumeError::Refused(status),
        _ => ResumeError::Unreachable(status),
    }
}

/// An s-proxy endpoint URL: `https://host:port` (TLS) or `http://host:port`
/// (plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl(String);

impl UpstreamUrl {
    /// A default URL written in the code.
    pub(crate) fn literal(s: &'static str) -> Self {
        UpstreamUrl(s.to_string())
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UpstreamUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| format!("`{s}` must start with https:// or http://"))?;
        HostPort::from_str(rest.trim_end_matches('/'))
            .map_err(|e| format!("upstream `{s}`: {e}"))?;
        Ok(UpstreamUrl(s.to_string()))
    }
}

impl UpstreamUrl {
    /// Whether the URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `host:port`, as the URL gives it.
    pub fn host_port(&self) -> &str {
        let rest = self
            .0
            .split_once("://")
            .map_or(self.0.as_str(), |(_, rest)| rest);
        rest.trim_end_matches('/')
    }

    /// The host (a name, or an IP address without brackets).
    pub fn host(&self) -> &str {
        let host_port = self.host_port();
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The timing of an r-proxy's s-proxy connections.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTiming {
    /// How long connecting (and opening a stream) may take.
    pub connect_timeout: Duration,
    /// How long an s-proxy that failed is skipped.
    pub retry_after: Duration,
    /// How often host names are resolved again.
    pub resolve_every: Duration,
    /// HTTP/2 keep-alive.
    pub keepalive: Keepalive,
    /// Bytes each stream may have waiting to be written (see
    /// [`ChannelSettings`]).
    pub send_buffer: usize,
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::net::deserialize_from_str!(UpstreamUrl);
