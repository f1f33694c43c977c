//! The s-proxy's gRPC server, on our own HTTP/2 ([`crate::net::http2`]): each accepted connection
//! is one task that runs the HTTP/2 connection, pings the peer, and hands
//! each new call to the handler of its method ([`ServedCall`]), in that
//! task, with nothing spawned per call; what a call runs afterwards (the
//! relay's session) is the handler's own task. Unknown methods are
//! refused with `UNIMPLEMENTED`, requests that are not gRPC with HTTP 415.
//!
//! Stopping: connections get GOAWAY (no new calls; the calls open go on)
//! and the server completes once every connection has closed.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tonic::Status;
use tracing::{debug, warn};

use super::served::{PeerInfo, ServedCall};
use super::{CONNECTION_WINDOW, MAX_HEADER_LIST, STREAM_WINDOW, pings};
use crate::line::Keepalive;
use crate::net::http2;
use crate::net::woken::OnWake;

/// How every connection of a server is run.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// Calls open at once on one connection.
    pub max_streams: u32,
    /// Pings to the peer; a connection whose ping goes unanswered closes
    /// with every call on it.
    pub keepalive: Keepalive,
    /// How long a new connection may take to begin HTTP/2.
    pub handshake_timeout: Duration,
    /// Bytes a call's response may have waiting to be written before its
    /// sender waits (besides what the peer's flow-control window takes).
    pub send_buffer: usize,
    /// The largest request message accepted.
    pub max_message: usize,
}

/// What answers the calls of one method.
pub type Handler = Arc<dyn Fn(ServedCall) + Send + Sync>;

/// A gRPC server: its settings and its methods.
pub struct Server {
    settings: ServerSettings,
    /// `/package.Service/Method` and its handler.
    routes: Vec<(&'static str, Handler)>,
}

impl Server {
    /// A server without methods.
    pub fn new(settings: ServerSettings) -> Self {
        Self {
            settings,
            routes: Vec::new(),
        }
    }

    /// Serves calls of `path` (`/package.Service/Method`) with `handler`.
    pub fn route(mut self, path: &'static str, handler: Handler) -> Self {
        self.routes.push((path, handler));
        self
    }

    /// Serves the connections `incoming` yields until `stop` completes,
    /// then sends every connection GOAWAY and completes once all have
    /// closed (their calls ended).
    pub async fn serve<IO>(
        self,
        incoming: impl Stream<Item = (IO, PeerInfo)>,
        stop: impl Future<Output = ()>,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server = Arc::new(self);
        let (stopping, stopped) = watch::channel(false);
        // Each connection task holds a sender: all are gone when every
        // connection has closed.
        let (open, mut all_closed) = mpsc::channel::<()>(1);
        // Boxed to be dropped when the server stops: nothing accepts then.
        let mut incoming = Box::pin(incoming);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = incoming.next() => match accepted {
                    Some((io, peer)) => {
                        let connection = server.clone().connection(io, peer, stopped.clone(), open.clone());
                        tokio::spawn(connection);
                    }
                    None => break,
                },
                () = &mut stop => break,
            }
        }
        drop(incoming);
        let _ = stopping.send(true);
        drop(open);
        let _ = all_closed.recv().await;
    }

    /// Runs one connection until it closes, its peer stops answering
    /// pings, or (after GOAWAY, once the server stops) its last call ends.
    async fn connection<IO>(
        self: Arc<Self>,
        io: IO,
        peer: PeerInfo,
        mut stopped: watch::Receiver<bool>,
        _open: mpsc::Sender<()>,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let settings = &self.settings;
        let config = http2::Config {
            max_streams: settings.max_streams,
            stream_window: STREAM_WINDOW,
            connection_window: CONNECTION_WINDOW,
            max_header_list: MAX_HEADER_LIST,
            send_buffer: settings.send_buffer,
        };
        let handshake = http2::server::handshake(Box::new(io), config);
        let mut connection = match tokio::time::timeout(settings.handshake_timeout, handshake).await
        {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => {
                debug!(peer = ?peer.remote, error = %e, "HTTP/2 handshake failed");
                return;
            }
            Err(_) => {
                debug!(peer = ?peer.remote, "HTTP/2 handshake timed out");
                return;
            }
        };
        let peer = Arc::new(peer);
        let watch = pin!(pings::unanswered(
            connection.pinger(),
            settings.keepalive,
            || true
        ));
        // The ping watch's timer is looked at only when it fires, not on
        // every turn of the connection.
        let mut watch = OnWake::new(watch);
        // The calls' copy (the loop waits on its own).
        let stopping = stopped.clone();
        let mut going_away = *stopped.borrow();
        if going_away {
            connection.graceful_shutdown();
        }
        loop {
            tokio::select! {
                // In order: polled on every turn of the connection, where a
                // random draw each time costs more than the branches' looks.
                biased;
                accepted = connection.accept() => match accepted {
                    Some(Ok(incoming)) => self.dispatch(incoming, &peer, &stopping),
                    Some(Err(e)) => {
                        debug!(peer = ?peer.remote, error = %e, "gRPC connection failed");
                        break;
                    }
                    None => break,
                },
                () = until_true(&mut stopped), if !going_away => {
                    going_away = true;
                    connection.graceful_shutdown();
                }
                why = &mut watch => {
                    warn!(peer = ?peer.remote, "{why}; closing the gRPC connection");
                    break;
                }
            }
        }
        // Dropping the connection fails every call still open on it.
    }

    /// Hands a new call to the handler of its method.
    fn dispatch(
        &self,
        incoming: http2::Incoming,
        peer: &Arc<PeerInfo>,
        stopping: &watch::Receiver<bool>,
    ) {
        let head = &incoming.head;
        let grpc = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if head.method != "POST" || !grpc {
            let _ = incoming.respond(415, &http::HeaderMap::new(), true);
            return;
        }
        let handler = self
            .routes
            .iter()
            .find(|(path, _)| *path == head.path)
            .map(|(_, handler)| handler.clone());
        let call = ServedCall::new(
            incoming,
            peer.clone(),
            self.settings.max_message,
            stopping.clone(),
        );
        match handler {
            Some(handler) => handler(call),
            None => call.refuse(&Status::unimplemented("no such method")),
        }
    }
}

/// Resolves once `stop` holds true (or its sender is gone). The
/// connection's loop polls this on each of its wake-ups, one or more a
/// message: after the first poll registers the waker, a poll is an atomic
/// look at the channel's version instead of a turn through its `Notify`.
async fn until_true(stop: &mut watch::Receiver<bool>) {
    let probe = stop.clone();
    let became_true = stop.wait_for(|stop| *stop);
    tokio::pin!(became_true);
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(|cx| {
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
            && matches!(probe.has_changed(), Ok(false))
        {
            return Poll::Pending;
        }
        match became_true.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => {
                registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::grpc::{Channel, ChannelSettings, Messages, Target};
    use crate::line::outlet::Outlet;
    use crate::line::proto::mqtt::MqttStreamMessage;
    use tonic::Code;
    use tonic::metadata::MetadataMap;

    const ECHO: &str = "/test.Echo/Echo";
    const LIMIT: usize = 64 * 1024;
    const WITHIN: Duration = Duration::from_secs(10);

    /// Echoes every request; ends with the status a request numbered 0
    /// asks for (a message nobody would send), else OK.
    fn echo(call: ServedCall) {
        let Ok((responses, mut requests)) = call.accept::<MqttStreamMessage>(MetadataMap::new())
        else {
            return;
        };
        let outlet = Outlet::responses(responses, LIMIT);
        tokio::spawn(async move {
            while let Some(Ok(request)) = requests.next().await {
                let answer = match request.sequence_id {
                    0 => Err(Status::data_loss("gone: ünïcode 100%")),
                    _ => Ok(request.into()),
                };
                if outlet.send(answer).await.is_err() {
                    return;
                }
            }
        });
    }

    /// A server with the echo method on a loopback port, stopped when the
    /// sender is dropped or sent to; the handle completes when it has.
    async fn server() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let incoming = futures_util::stream::unfold(listener, |listener| async move {
            let (tcp, remote) = listener.accept().await.ok()?;
            let peer = PeerInfo {
                remote: Some(remote),
                certificate: None,
            };
            Some(((tcp, peer), listener))
        });
        let server = Server::new(ServerSettings {
            max_streams: 100,
            keepalive: Keepalive {
                interval: Duration::from_secs(20),
                timeout: Duration::from_secs(10),
            },
            handshake_timeout: WITHIN,
            send_buffer: 64 * 1024,
            max_message: LIMIT,
        })
        .route(ECHO, Arc::new(echo));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(incoming, async move {
            let _ = stopped.await;
        }));
        (addr, stop, serving)
    }

    fn channel(addr: std::net::SocketAddr) -> Channel {
        Channel::new(
            Target {
                addr: Some(addr),
                host_port: addr.to_string(),
                tls: None,
            },
            ChannelSettings {
                connect_timeout: WITHIN,
                keepalive: Keepalive {
                    interval: Duration::from_secs(20),
                    timeout: Duration::from_secs(10),
                },
                send_buffer: 64 * 1024,
            },
        )
    }

    async fn open(channel: &Channel) -> Result<(Outlet, Messages<MqttStreamMessage>), Status> {
        let call = channel.call(ECHO, &MetadataMap::new(), LIMIT).await?;
        let outlet = Outlet::requests(call.requests, LIMIT);
        let (_, responses) = tokio::time::timeout(WITHIN, call.response.head())
            .await
            .map_err(|_| Status::deadline_exceeded("no head"))??;
        Ok((outlet, responses))
    }

    async fn next(responses: &mut Messages<MqttStreamMessage>) -> Option<Result<u64, Status>> {
        tokio::time::timeout(WITHIN, responses.next())
            .await
            .expect("an answer in time")
            .map(|answer| answer.map(|m| m.sequence_id))
    }

    #[tokio::test]
    async fn a_call_gets_its_answers_then_the_status_it_ended_with() {
        let (addr, _stop, _serving) = server().await;
        let channel = channel(addr);
        let (outlet, mut responses) = open(&channel).await.expect("accepted");
        for n in 1..=3 {
            outlet
                .send(Ok(MqttStreamMessage::numbered(n).into()))
                .await
                .expect("sent");
        }
        for n in 1..=3 {
            assert_eq!(next(&mut responses).await.map(Result::ok), Some(Some(n)));
        }
        // Ending the requests ends the responses with OK.
        drop(outlet);
        assert!(next(&mut responses).await.is_none(), "a clean end");

        let (outlet, mut responses) = open(&channel).await.expect("accepted");
        outlet
            .send(Ok(MqttStreamMessage::numbered(0).into()))
            .await
            .expect("sent");
        let status = next(&mut responses)
            .await
            .and_then(Result::err)
            .expect("the error status");
        assert_eq!(status.code(), Code::DataLoss);
        assert_eq!(status.message(), "gone: ünïcode 100%", "sent and read back");
    }

    #[tokio::test]
    async fn unknown_methods_and_other_content_are_refused() {
        let (addr, _stop, _serving) = server().await;
        let channel = channel(addr);
        let call = channel
            .call("/test.Echo/Nothing", &MetadataMap::new(), LIMIT)
            .await
            .expect("started");
        let refused = call.response.head::<MqttStreamMessage>().await.err();
        assert_eq!(refused.map(|s| s.code()), Some(Code::Unimplemented));

        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (requests, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
        tokio::spawn(connection);
        let mut requests = requests.ready().await.expect("ready");
        let request = http::Request::post(format!("http://{addr}{ECHO}"))
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(())
            .expect("request");
        let (response, _) = requests.send_request(request, true).expect("sent");
        let response = tokio::time::timeout(WITHIN, response)
            .await
            .expect("in time")
            .expect("a response");
        assert_eq!(response.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn stopping_refuses_new_calls_and_waits_for_open_ones() {
        let (addr, stop, mut serving) = server().await;
        let channel = channel(addr);
        let (outlet, mut responses) = open(&channel).await.expect("accepted");
        let _ = stop.send(());
        // Once the connection has heard GOAWAY it takes no new call, and
        // nothing listens for another (calls made before that end at once).
        let refused = tokio::time::timeout(WITHIN, async {
            loop {
                if let Err(status) = open(&channel).await {
                    return status.code();
                }
            }
        })
        .await;
        assert_eq!(refused, Ok(Code::Unavailable), "a new call after the stop");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut serving)
                .await
                .is_err(),
            "the server waits for the open call"
        );
        outlet
            .send(Ok(MqttStreamMessage::numbered(7).into()))
            .await
            .expect("sent");
        assert_eq!(next(&mut responses).await.map(Result::ok), Some(Some(7)));
        drop(outlet);
        assert!(next(&mut responses).await.is_none(), "a clean end");
        tokio::time::timeout(WITHIN, serving)
            .await
            .expect("the server ends after its last call")
            .expect("no panic");
    }

    struct Counting(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn until_true_is_woken_by_the_change_and_resolves_on_true_or_a_gone_sender() {
        let (tx, mut rx) = watch::channel(false);
        let count = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        {
            let stop = until_true(&mut rx);
            tokio::pin!(stop);
            for _ in 0..3 {
                assert!(stop.as_mut().poll(&mut cx).is_pending());
            }
            tx.send_replace(false);
            assert!(stop.as_mut().poll(&mut cx).is_pending(), "still false");
            tx.send_replace(true);
            assert!(
                count.0.load(std::sync::atomic::Ordering::SeqCst) >= 1,
                "woken"
            );
            assert!(stop.as_mut().poll(&mut cx).is_ready());
        }
        let (tx, mut rx) = watch::channel(false);
        let stop = until_true(&mut rx);
        tokio::pin!(stop);
        assert!(stop.as_mut().poll(&mut cx).is_pending());
        drop(tx);
        assert!(stop.as_mut().poll(&mut cx).is_ready(), "sender gone");
    }
}
