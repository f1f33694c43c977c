//! The peer's messages on one gRPC call, decoded from the HTTP/2 DATA as
//! they come: a call's responses (whose trailers carry the call's status)
//! or a served call's requests (which end with END_STREAM alone). Reads no
//! further ahead than one DATA chunk: the stream's flow-control window is
//! given back as each chunk is taken, so the peer can send at most a
//! window's worth more than the session has consumed.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use tonic::Status;

use super::calls::ActiveCall;
use super::framing::Deframer;
use super::status;
use super::wire_message::WireDecode;
use crate::net::http2::RecvStream;

/// The peer's messages of type `M`; ends with `None` after a clean end
/// (an OK status), or with the error once.
pub struct Messages<M> {
    body: Option<RecvStream>,
    frames: Deframer,
    reading: Reading,
    /// For a call made here: counts it as open on its connection while the
    /// responses are read (the keep-alive pings only then), and its end
    /// must carry a status. `None` for the requests of a served call.
    active: Option<ActiveCall>,
    _message: PhantomData<fn() -> M>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Data,
    Trailers,
    Done,
}

impl<M> Messages<M> {
    /// The responses of a call made here (`active`), or with `None` the
    /// requests of a served call; messages over `max_message` bytes fail.
    pub(super) fn new(body: RecvStream, max_message: usize, active: Option<ActiveCall>) -> Self {
        Self {
            body: Some(body),
            frames: Deframer::new(max_message),
            reading: Reading::Data,
            active,
            _message: PhantomData,
        }
    }

    /// A response that ended in its headers, with an OK status.
    pub(super) fn ended(active: ActiveCall) -> Self {
        Self {
            body: None,
            frames: Deframer::new(0),
            reading: Reading::Done,
            active: Some(active),
            _message: PhantomData,
        }
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<M, Status>>> {
        Poll::Ready(Some(Err(self.failed(status))))
    }

    /// Nothing more is read after `status`.
    fn failed(&mut self, status: Status) -> Status {
        self.reading = Reading::Done;
        self.frames = Deframer::new(0);
        status
    }
}

impl<M: WireDecode> Messages<M> {
    /// The next message in the DATA taken so far, without reading more;
    /// `None` when the next needs more DATA, or the messages are over.
    fn next_taken(&mut self) -> Option<Result<M, Status>> {
        if self.reading != Reading::Data {
            return None;
        }
        match self.frames.next_message() {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(M::decode_framed(bytes).map_err(|e| {
                self.failed(Status::internal(format!(
                    "undecodable message from the peer: {e}"
                )))
            })),
            Err(status) => Some(Err(self.failed(status))),
        }
    }
}

impl<M: WireDecode> Stream for Messages<M> {
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.reading {
                Reading::Done => return Poll::Ready(None),
                Reading::Data => {
                    if let Some(message) = this.next_taken() {
                        return Poll::Ready(Some(message));
                    }
                    let Some(body) = this.body.as_mut() else {
                        return Poll::Ready(None);
                    };
                    // Taken, the chunk's bytes are released: the window may
                    // be refilled (the chunk is decoded before more is read).
                    match ready!(body.poll_taken(cx)) {
                        Some(Ok(chunk)) => this.frames.push(chunk),
                        Some(Err(e)) => return this.fail(status::from_http2(&e)),
                        None if !this.frames.is_empty() => {
                            return this
                                .fail(Status::internal("the stream ended within a message"));
                        }
                        None => this.reading = Reading::Trailers,
                    }
                }
                Reading::Trailers => {
                    let Some(body) = this.body.as_mut() else {
                        return Poll::Ready(None);
                    };
                    let trailers = body.trailers();
                    this.reading = Reading::Done;
                    let outcome = match trailers {
                        Ok(Some(trailers)) => status::from_headers(&trailers),
                        // Requests end with END_STREAM alone.
                        Ok(None) if this.active.is_none() => return Poll::Ready(None),
                        Ok(None) => None,
                        Err(e) => Some(status::from_http2(&e)),
                    };
                    return match outcome {
                        Some(status) if status.code() == tonic::Code::Ok => Poll::Ready(None),
                        Some(status) => Poll::Ready(Some(Err(status))),
                        None => Poll::Ready(Some(Err(Status::unknown(
                            "the stream ended without a gRPC status",
                        )))),
                    };
                }
            }
        }
    }
}
