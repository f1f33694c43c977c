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
            Ok(Some(bytes)) => {
                Some(M::decode_framed(bytes).map_err(|e| self.failed(undecodable(&e))))
            }
            Err(status) => Some(Err(self.failed(status))),
        }
    }
}

/// The status of a message from the peer that does not decode.
pub fn undecodable(error: &prost::DecodeError) -> Status {
    Status::internal(format!("undecodable message from the peer: {error}"))
}

impl<M> Messages<M> {
    /// As the stream, but each message's bytes go to `each` where they lie
    /// in the DATA, with no buffer of their own: `each` reads the message
    /// and says whether to go on (or fails, which fails the messages).
    /// `Ready(Some(Ok(())))` when `each` said stop, the rest kept for the
    /// next call; `Pending` when nothing more is ready (the task woken when
    /// more is); `Ready(None)` after a clean end; an error once.
    pub fn poll_each_in_place<F>(
        &mut self,
        cx: &mut Context<'_>,
        mut each: F,
    ) -> Poll<Option<Result<(), Status>>>
    where
        F: FnMut(&[u8]) -> Result<bool, Status>,
    {
        // Set when the chunk taken last was the last waiting: the stream
        // then holds this task's waker already.
        let mut drained = false;
        loop {
            if self.reading == Reading::Data {
                loop {
                    match self.frames.next_with(&mut each) {
                        Ok(Some(Ok(true))) => {}
                        Ok(Some(Ok(false))) => return Poll::Ready(Some(Ok(()))),
                        Ok(Some(Err(status))) | Err(status) => {
                            return Poll::Ready(Some(Err(self.failed(status))));
                        }
                        Ok(None) => break,
                    }
                }
                if drained {
                    return Poll::Pending;
                }
            }
            match ready!(self.poll_more(cx)) {
                More::Data { last } => drained = last,
                More::Over => return Poll::Ready(None),
                More::Failed(status) => return Poll::Ready(Some(Err(status))),
            }
        }
    }

    /// Takes the next DATA chunk into the deframer, or after the last one
    /// reads how the messages ended.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<More> {
        loop {
            match self.reading {
                Reading::Done => return Poll::Ready(More::Over),
                Reading::Data => {
                    let Some(body) = self.body.as_mut() else {
                        return Poll::Ready(More::Over);
                    };
                    // Taken, the chunk's bytes are released: the window may
                    // be refilled (the chunk is decoded before more is read).
                    match ready!(body.poll_taken(cx)) {
                        Some(Ok((chunk, last))) => {
                            self.frames.push(chunk);
                            return Poll::Ready(More::Data { last });
                        }
                        Some(Err(e)) => {
                            return Poll::Ready(More::Failed(self.failed(status::from_http2(&e))));
                        }
                        None if !self.frames.is_empty() => {
                            return Poll::Ready(More::Failed(
                                self.failed(Status::internal("the stream ended within a message")),
                            ));
                        }
                        None => self.reading = Reading::Trailers,
                    }
                }
                Reading::Trailers => {
                    let Some(body) = self.body.as_mut() else {
                        return Poll::Ready(More::Over);
                    };
                    let trailers = body.trailers();
                    self.reading = Reading::Done;
                    let outcome = match trailers {
                        Ok(Some(trailers)) => status::from_headers(&trailers),
                        // Requests end with END_STREAM alone.
                        Ok(None) if self.active.is_none() => return Poll::Ready(More::Over),
                        Ok(None) => None,
                        Err(e) => Some(status::from_http2(&e)),
                    };
                    return Poll::Ready(match outcome {
                        Some(status) if status.code() == tonic::Code::Ok => More::Over,
                        Some(status) => More::Failed(status),
                        None => {
                            More::Failed(Status::unknown("the stream ended without a gRPC status"))
                        }
                    });
                }
            }
        }
    }
}

/// What [`Messages::poll_more`] found.
enum More {
    /// A chunk of DATA, now in the deframer; `last` when it was the last
    /// waiting and the stream holds the task's waker.
    Data { last: bool },
    /// The messages are over: a clean end, or an error reported before.
    Over,
    /// The messages failed; nothing more is read.
    Failed(Status),
}

impl<M: WireDecode> Stream for Messages<M> {
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // As in `poll_each_in_place`.
        let mut drained = false;
        loop {
            if let Some(message) = this.next_taken() {
                return Poll::Ready(Some(message));
            }
            if drained {
                return Poll::Pending;
            }
            match ready!(this.poll_more(cx)) {
                More::Data { last } => drained = last,
                More::Over => return Poll::Ready(None),
                More::Failed(status) => return Poll::Ready(Some(Err(status))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::line::grpc::{framing, testing};
    use crate::line::proto::mqtt::MqttStreamMessage;

    fn sequence_id(bytes: &[u8]) -> u64 {
        prost::Message::decode(bytes).map_or(0, |m: MqttStreamMessage| m.sequence_id)
    }

    /// Reads in place until `each` stops or fails, or the messages end.
    async fn read(
        messages: &mut Messages<MqttStreamMessage>,
        mut each: impl FnMut(&[u8]) -> Result<bool, Status>,
    ) -> Option<Result<(), Status>> {
        let reading = std::future::poll_fn(|cx| messages.poll_each_in_place(cx, &mut each));
        tokio::time::timeout(Duration::from_secs(5), reading)
            .await
            .expect("read in time")
    }

    #[tokio::test]
    async fn messages_read_in_place_stop_when_told_and_end_with_the_stream() {
        let (mut requests, body, _response) = testing::call().await;
        let mut messages = testing::served::<MqttStreamMessage>(body);
        let framed: Vec<u8> = (1..=6)
            .flat_map(|n| {
                framing::encode(&MqttStreamMessage::numbered(n), 1024)
                    .expect("small")
                    .to_vec()
            })
            .collect();
        // Five whole messages and the start of the sixth.
        let cut = framed.len() - 3;
        requests
            .send_data(Bytes::copy_from_slice(&framed[..cut]), false)
            .expect("sent");
        let mut got = Vec::new();
        let stopped = read(&mut messages, |bytes| {
            got.push(sequence_id(bytes));
            Ok(got.len() < 3)
        })
        .await;
        assert!(matches!(stopped, Some(Ok(()))), "{stopped:?}");
        assert_eq!(got, [1, 2, 3], "none read past the stop");
        requests
            .send_data(Bytes::copy_from_slice(&framed[cut..]), true)
            .expect("sent");
        let ended = read(&mut messages, |bytes| {
            got.push(sequence_id(bytes));
            Ok(true)
        })
        .await;
        assert!(ended.is_none(), "a clean end: {ended:?}");
        assert_eq!(got, [1, 2, 3, 4, 5, 6], "the rest, the cut one whole");
    }

    /// A task's waker that tells whoever waits for its wake-ups.
    struct Woken(tokio::sync::Notify);

    impl std::task::Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify_one();
        }
    }

    #[tokio::test]
    async fn a_reader_that_took_the_last_chunk_is_woken_by_the_next() {
        let (mut requests, body, _response) = testing::call().await;
        let mut messages = testing::served::<MqttStreamMessage>(body);
        let woken = std::sync::Arc::new(Woken(tokio::sync::Notify::new()));
        let waker = std::task::Waker::from(woken.clone());
        let mut got = Vec::new();
        // Polls as a task would, each time its waker was used: `false` if
        // it was not within the time allowed.
        let mut poll_when_woken = async |got: &mut Vec<u64>| {
            if tokio::time::timeout(Duration::from_secs(5), woken.0.notified())
                .await
                .is_err()
            {
                return false;
            }
            let mut cx = Context::from_waker(&waker);
            let polled = messages.poll_each_in_place(&mut cx, |bytes| {
                got.push(sequence_id(bytes));
                Ok(true)
            });
            assert!(polled.is_pending(), "the stream goes on: {polled:?}");
            true
        };
        woken.0.notify_one(); // a task's first poll
        assert!(poll_when_woken(&mut got).await);
        let framed = |n| framing::encode(&MqttStreamMessage::numbered(n), 1024).expect("small");
        requests.send_data(framed(1), false).expect("sent");
        assert!(poll_when_woken(&mut got).await, "woken by the first");
        assert_eq!(got, [1], "the only chunk waiting, taken and read");
        requests.send_data(framed(2), false).expect("sent");
        assert!(
            poll_when_woken(&mut got).await,
            "the poll that took the last chunk left the waker with the stream"
        );
        assert_eq!(got, [1, 2]);
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_read_ends_the_messages() {
        let (mut requests, body, _response) = testing::call().await;
        let mut messages = testing::served::<MqttStreamMessage>(body);
        let framed = [
            framing::encode(&MqttStreamMessage::numbered(1), 1024).expect("small"),
            framing::encode(&MqttStreamMessage::numbered(2), 1024).expect("small"),
        ]
        .concat();
        requests.send_data(framed.into(), false).expect("sent");
        let failed = read(&mut messages, |_| Err(Status::internal("unreadable"))).await;
        assert!(
            matches!(&failed, Some(Err(status)) if status.message() == "unreadable"),
            "{failed:?}"
        );
        let after = read(&mut messages, |_| Ok(true)).await;
        assert!(after.is_none(), "nothing more is read: {after:?}");
    }
}
