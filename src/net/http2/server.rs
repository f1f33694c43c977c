//! The server's side of a connection: the handshake (our SETTINGS, the
//! client's preface and SETTINGS), new calls as they come
//! ([`Connection::accept`], which also runs the connection), GOAWAY when
//! the server stops, and pings to see that the client is still there.

use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use http::HeaderMap;

use super::driver::{Accepted, Driver};
use super::frame;
use super::hpack;
use super::state::Shared;
use super::stream::{RecvStream, SendStream, StreamRef};
use super::{Config, Error, Pinger};
use crate::net::BoxedStream;

/// A request's head: what a gRPC server routes by, and its metadata.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

/// A server's HTTP/2 connection. Dropping it fails every stream on it.
pub struct Connection {
    driver: Driver,
    shared: Arc<Shared>,
}

/// Begins HTTP/2 on a connection a client opened: completes once the
/// client's preface and SETTINGS have come.
pub async fn handshake(io: BoxedStream, config: Config) -> Result<Connection, Error> {
    let shared = Shared::new(io, &config);
    let mut connection = Connection {
        driver: Driver::server(config, shared.clone()),
        shared,
    };
    connection.driver.settings_exchanged().await?;
    Ok(connection)
}

impl Connection {
    /// Runs the connection until the client opens a stream (`Some`), the
    /// connection ends cleanly (`None`) or fails.
    pub async fn accept(&mut self) -> Option<Result<Incoming, Error>> {
        std::future::poll_fn(|cx| {
            if let Some(accepted) = self.driver.accepted.pop_front() {
                return Poll::Ready(Some(Ok(Incoming::new(accepted))));
            }
            let outcome = self.driver.poll(cx);
            if let Some(accepted) = self.driver.accepted.pop_front() {
                return Poll::Ready(Some(Ok(Incoming::new(accepted))));
            }
            match outcome {
                Poll::Ready(Ok(())) => Poll::Ready(None),
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Sends GOAWAY: the client opens no more streams; the connection
    /// ends once those open have.
    pub fn graceful_shutdown(&mut self) {
        let mut state = self.shared.lock();
        if !state.going_away && state.failed.is_none() {
            state.going_away = true;
            frame::put_goaway(
                &mut state.out,
                self.driver.last_peer_stream(),
                frame::Reason::NO_ERROR,
            );
            state.wake_driver();
        }
    }

    /// Sends pings on this connection.
    pub fn pinger(&self) -> Pinger {
        Pinger::new(self.shared.clone())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// A new call: its head, and the stream to answer it on.
pub struct Incoming {
    pub head: RequestHead,
    stream: StreamRef,
}

impl Incoming {
    fn new(accepted: Accepted) -> Self {
        Self {
            head: accepted.head,
            stream: accepted.stream,
        }
    }

    /// Sends the response's head (`:status` and `headers`); with `end` it
    /// is the whole response. Returns our side and the request's body.
    pub fn respond(
        self,
        status: u16,
        headers: &HeaderMap,
        end: bool,
    ) -> Result<(SendStream, RecvStream), Error> {
        let mut block = BytesMut::new();
        if status == 200 {
            hpack::put_indexed(&mut block, 8);
        } else {
            hpack::put_field(&mut block, b":status", status.to_string().as_bytes());
        }
        for (name, value) in headers {
            hpack::put_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
        self.stream.send_headers(&block, end)?;
        let send = SendStream::new(self.stream.another());
        Ok((send, RecvStream::new(self.stream)))
    }
}
