//! The client's side of a connection: the handshake (our preface and
//! SETTINGS out, the server's SETTINGS in), calls started on it
//! ([`SendRequest::send_request`], waiting while the server's limit of
//! concurrent streams is reached), their responses' heads
//! ([`ResponseFuture`]), and the connection itself, a future to run in a
//! task of its own ([`Connection`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use http::HeaderMap;

use super::driver::Driver;
use super::entry::{Receiving, Response, Sending, Stream};
use super::state::{Shared, State};
use super::stream::{RecvStream, SendStream, StreamRef};
use super::{Config, Error, Pinger, frame, hpack};
use crate::net::BoxedStream;

/// A request's head (always POST: gRPC's only method).
pub struct Request<'a> {
    pub https: bool,
    /// `host:port`.
    pub authority: &'a str,
    /// `/package.Service/Method`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// A response's head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: HeaderMap,
}

/// Begins HTTP/2 on a connection to a server: completes once the server's
/// SETTINGS have come. Run the returned [`Connection`] in a task.
pub async fn handshake(
    io: BoxedStream,
    config: Config,
) -> Result<(SendRequest, Connection), Error> {
    let shared = Shared::new(io, &config);
    let mut driver = Driver::client(config, shared.clone());
    driver.settings_exchanged().await?;
    Ok((
        SendRequest {
            shared: shared.clone(),
        },
        Connection { driver, shared },
    ))
}

/// Starts calls on a connection; clones share it.
#[derive(Clone)]
pub struct SendRequest {
    shared: Arc<Shared>,
}

impl SendRequest {
    /// Sends a request's head (ending the request if `end`), once the
    /// server's limit of concurrent streams lets one more open. Fails once
    /// the connection has failed or is going away.
    pub async fn send_request(
        &self,
        request: Request<'_>,
        end: bool,
    ) -> Result<(ResponseFuture, SendStream), Error> {
        let mut block = BytesMut::new();
        // `:method: POST`, `:scheme: http` or `https` from the static table.
        hpack::put_indexed(&mut block, 3);
        hpack::put_indexed(&mut block, if request.https { 7 } else { 6 });
        hpack::put_field(&mut block, b":path", request.path.as_bytes());
        hpack::put_field(&mut block, b":authority", request.authority.as_bytes());
        for (name, value) in request.headers {
            hpack::put_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
        let id = std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(e) = &state.failed {
                return Poll::Ready(Err(e.clone()));
            }
            if state.going_away {
                return Poll::Ready(Err(Error::GoAway {
                    reason: frame::Reason::NO_ERROR,
                    remote: true,
                    detail: "",
                }));
            }
            if state.streams.len() >= state.peer_max_streams {
                state.slot_waiters.push(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Self::open(&mut state, &block, end))
        })
        .await?;
        let stream = StreamRef::new(self.shared.clone(), id);
        let send = SendStream::new(stream.another());
        Ok((
            ResponseFuture {
                stream: Some(stream),
            },
            send,
        ))
    }

    /// Opens the next stream with the header block `block`.
    fn open(state: &mut State, block: &[u8], end: bool) -> Result<u32, Error> {
        let id = state.next_stream;
        if id > frame::MAX_WINDOW {
            return Err(Error::Io("the connection's stream ids are used up".into()));
        }
        state.next_stream += 2;
        let mut stream = Stream::new(state.peer_initial_window, state.stream_window, false);
        stream.response = Response::Waiting;
        if end {
            stream.sending = Sending::Closed;
        }
        frame::put_headers(&mut state.out, id, block, end, state.peer_max_frame);
        state.streams.insert(id, Box::new(stream));
        state.wake_driver();
        Ok(id)
    }
}

/// A call's response, until its head comes.
pub struct ResponseFuture {
    stream: Option<StreamRef>,
}

impl Future for ResponseFuture {
    type Output = Result<(ResponseHead, RecvStream), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(stream) = self.stream.as_ref() else {
            return Poll::Ready(Err(Error::Closed));
        };
        let head = {
            let mut state = stream.shared().lock();
            let Some(entry) = state.streams.get_mut(&stream.id()) else {
                return Poll::Ready(Err(Error::Closed));
            };
            match std::mem::replace(&mut entry.response, Response::Taken) {
                Response::Arrived(head) => {
                    let (status, headers) = *head;
                    ResponseHead { status, headers }
                }
                waiting => {
                    entry.response = waiting;
                    if let Receiving::Failed(e) = &entry.receiving {
                        return Poll::Ready(Err(e.clone()));
                    }
                    entry.recv_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        let Some(stream) = self.stream.take() else {
            return Poll::Ready(Err(Error::Closed));
        };
        Poll::Ready(Ok((head, RecvStream::new(stream))))
    }
}

/// A client's HTTP/2 connection: run it (await it) until it ends.
/// Dropping it fails every stream on it.
pub struct Connection {
    driver: Driver,
    shared: Arc<Shared>,
}

impl Connection {
    /// Sends pings on this connection.
    pub fn pinger(&self) -> Pinger {
        Pinger::new(self.shared.clone())
    }
}

impl Future for Connection {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.driver.poll(cx)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close();
    }
}
