//! Where a session's envelopes go: its side of the gRPC call, the request stream of
//! the call the r-proxy made or the response stream of the call the
//! s-proxy serves. The task that sends an envelope frames it and hands it
//! to HTTP/2 itself, so no queue holds it and no other task is woken for
//! it (the connection's task writes it out). An envelope is framed right
//! in the connection's output when the windows take it (no buffer of the
//! outlet's, no copy), and the envelopes of a burst from the MQTT side
//! join one DATA frame there: a frame per envelope would cost the peer a
//! frame's overhead each, and h2 peers close a connection that sends too
//! many small frames ("excessive load generating behavior"). When the
//! output does not take them, they are gathered in a batch of the
//! outlet's ([`Outlet::try_send_batched`], then [`Outlet::flush`] before
//! the pump waits). Room is HTTP/2's: the stream's flow-control window and
//! its send buffer (`send_buffer_bytes` in both proxies); when either is
//! used up, senders wait until the connection has written or the peer has
//! granted more.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tonic::Status;

use super::Outgoing;
use crate::line::grpc::framing;
use crate::line::proto::mqtt::MqttStreamMessage;
use crate::net::http2::{Reason, SendStream};

/// What an outlet carries: an envelope, or the error that ends the stream.
pub type Queued = Result<Outgoing, Status>;

/// Why an outlet did not take an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room now: the flow-control window or the send buffer is used up.
    Full,
    /// The stream was ended or failed.
    Closed,
}

/// A call's stream as an outlet; clones share it, and the last one to go
/// ends the stream: a request stream with END_STREAM (the s-proxy sees a
/// half-close), a response stream with trailers carrying the call's
/// status (OK, or the error sent into it).
pub struct Outlet {
    sink: Arc<Sink>,
}

struct Sink {
    state: Mutex<State>,
    /// Room was seen by one waiter: the others look again. (HTTP/2 wakes
    /// one waiter per stream, the last to ask.)
    room: Notify,
    max_message: usize,
}

/// A batch is handed to HTTP/2 once it holds this much (a DATA frame's
/// default largest size).
const BATCH: usize = 16 * 1024;

struct State {
    stream: SendStream,
    /// The stream is a served call's response: it ends with trailers.
    answers: bool,
    /// Envelopes framed but not yet handed to HTTP/2, while the
    /// connection's output does not take them (the windows are used up or
    /// the output is full); empty (no allocation) otherwise.
    batch: BytesMut,
    /// How long the last batch handed over was: a new batch takes that
    /// much room at once instead of doubling up from nothing (the batches
    /// of a steady flow are alike). Unused room is at most the last
    /// batch's length, and only in the batch after it.
    last_batch: u32,
    senders: usize,
    /// The stream was ended here or failed: nothing more goes out.
    ended: bool,
}

impl Outlet {
    /// Sends on the request stream of a call made; messages over
    /// `max_message` bytes are refused.
    pub fn requests(stream: SendStream, max_message: usize) -> Self {
        Self::new(stream, false, max_message)
    }

    /// Sends on the response stream of a served call.
    pub fn responses(stream: SendStream, max_message: usize) -> Self {
        Self::new(stream, true, max_message)
    }

    fn new(stream: SendStream, answers: bool, max_message: usize) -> Self {
        Self {
            sink: Arc::new(Sink {
                state: Mutex::new(State {
                    stream,
                    answers,
                    batch: BytesMut::new(),
                    last_batch: 0,
                    senders: 1,
                    ended: false,
                }),
                room: Notify::new(),
                max_message,
            }),
        }
    }

    /// Sends the messages that open a session whether or not there is room
    /// (there are a few, and the call waits for them to be answered).
    pub fn send_opening(&self, messages: &[MqttStreamMessage]) -> Result<(), Status> {
        let mut framed = BytesMut::new();
        for message in messages {
            framing::encode_into(message, self.sink.max_message, &mut framed)?;
        }
        let mut state = self.sink.lock();
        state
            .stream
            .send_data(framed.freeze(), false)
            .map_err(|e| crate::line::grpc::status_of_http2(&e))
    }

    /// Sends `value` now if the stream has room (after any batch). An
    /// error ends the stream: a response's trailers carry it; a request
    /// just ends (a client has no status to send; the s-proxy sees the
    /// end).
    pub fn try_send(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        self.offer(value, false)
    }

    /// As [`Outlet::try_send`], but the envelope may wait in the batch
    /// until [`Outlet::flush`] (or the batch is full, or any other send).
    pub fn try_send_batched(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        self.offer(value, true)
    }

    /// Hands the batch to HTTP/2.
    pub fn flush(&self) {
        self.sink.lock().flush();
    }

    /// As [`Outlet::try_send`] (or [`Outlet::try_send_batched`]), framing
    /// an envelope the caller keeps (a resumable line's replay buffer).
    pub fn try_send_ref(&self, envelope: &Outgoing, batched: bool) -> Result<(), Refused> {
        self.offer_envelope(&mut self.sink.lock(), envelope, batched)
    }

    /// The outlet locked for a burst of envelopes, each offered without
    /// taking the lock again.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            outlet: self,
            state: self.sink.lock(),
        }
    }

    fn offer(&self, value: Queued, batched: bool) -> Result<(), TrySendError<Queued>> {
        let mut state = self.sink.lock();
        match value {
            Ok(envelope) => match self.offer_envelope(&mut state, &envelope, batched) {
                Ok(()) => Ok(()),
                Err(Refused::Full) => Err(TrySendError::Full(Ok(envelope))),
                Err(Refused::Closed) => Err(TrySendError::Closed(Ok(envelope))),
            },
            Err(status) if state.ended => Err(TrySendError::Closed(Err(status))),
            Err(status) => {
                state.end(&status);
                Ok(())
            }
        }
    }

    fn offer_envelope(
        &self,
        state: &mut State,
        envelope: &Outgoing,
        batched: bool,
    ) -> Result<(), Refused> {
        if state.ended {
            return Err(Refused::Closed);
        }
        let len = match framing::framed_len(envelope, self.sink.max_message) {
            Ok(len) => len,
            Err(status) => {
                tracing::warn!(%status, "envelope too large for the line; ending the stream");
                state.batch = BytesMut::new();
                state.stream.send_reset(Reason::INTERNAL_ERROR);
                state.ended = true;
                return Err(Refused::Closed);
            }
        };
        if state.batch.is_empty() {
            // Framed where the connection will write it from, when the
            // windows allow: no batch to allocate and no copy, and the
            // envelopes of a burst join one DATA frame there.
            match state
                .stream
                .write_data(len, |out| framing::write_framed(envelope, out))
            {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "stream closed");
                    state.ended = true;
                    return Err(Refused::Closed);
                }
            }
        } else if state.batch.len() >= BATCH {
            state.flush();
        }
        let room = state.stream.has_room();
        if !matches!(room, Ok(true)) || state.ended {
            state.ended |= room.is_err();
            state.flush();
            return Err(if state.ended {
                Refused::Closed
            } else {
                Refused::Full
            });
        }
        let start = state.batch.len();
        if start == 0 {
            state.batch.reserve(len.max(state.last_batch as usize));
        }
        state.batch.resize(start + len, 0);
        framing::write_framed(envelope, &mut state.batch[start..]);
        if !batched {
            state.flush();
        }
        if state.ended {
            return Err(Refused::Closed);
        }
        Ok(())
    }

    /// Sends `value`, waiting for room; fails once the stream is gone.
    pub async fn send(&self, mut value: Queued) -> Result<(), SendError<Queued>> {
        loop {
            // Made before looking, so news from another waiter after the
            // look is not missed.
            let told = self.sink.room.notified();
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(SendError(back)),
                Err(TrySendError::Full(back)) => value = back,
            }
            let mut waiting = PassOn {
                room: &self.sink.room,
                armed: true,
            };
            tokio::select! {
                // Told by another waiter: nothing to pass on.
                () = told => waiting.armed = false,
                () = poll_fn(|cx| self.poll_room(cx)) => {}
            }
            drop(waiting);
        }
    }

    /// Ready when HTTP/2 has made room on the stream, or it has closed.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.sink.lock();
        match state.stream.poll_room(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Ready(Err(_)) => {
                state.ended = true;
                Poll::Ready(())
            }
        }
    }
}

/// An outlet locked for a burst ([`Outlet::lock`]).
pub struct Locked<'a> {
    outlet: &'a Outlet,
    state: MutexGuard<'a, State>,
}

impl Locked<'_> {
    /// [`Outlet::try_send_ref`] of a batched envelope.
    pub fn offer(&mut self, envelope: &Outgoing) -> Result<(), Refused> {
        self.outlet.offer_envelope(&mut self.state, envelope, true)
    }
}

/// Wakes the other waiters when a waiter that HTTP/2 may have been
/// remembering stops (room came, or it was cancelled): HTTP/2 only wakes
/// the last waiter of a stream, so that one passes the news on.
struct PassOn<'a> {
    room: &'a Notify,
    armed: bool,
}

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.room.notify_waiters();
        }
    }
}

impl Sink {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }
}

impl State {
    /// Hands the batch to HTTP/2, keeping no room for the next one.
    fn flush(&mut self) {
        if self.batch.is_empty() || self.ended {
            return;
        }
        self.last_batch = u32::try_from(self.batch.len()).unwrap_or(u32::MAX);
        let batch = std::mem::take(&mut self.batch).freeze();
        match self.stream.send_data(batch, false) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(error = %e, "request stream closed");
                self.ended = true;
            }
        }
    }

    /// Ends the stream after the batch, once: a response with trailers
    /// carrying `status`, a request with END_STREAM.
    fn end(&mut self, status: &Status) {
        self.flush();
        if !self.ended {
            self.ended = true;
            if self.answers {
                let _ = self
                    .stream
                    .send_trailers(crate::line::grpc::trailers(status));
            } else {
                let _ = self.stream.send_data(Bytes::new(), true);
            }
        }
    }
}

impl Clone for Outlet {
    fn clone(&self) -> Self {
        self.sink.lock().senders += 1;
        Self {
            sink: self.sink.clone(),
        }
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        let mut state = self.sink.lock();
        state.senders -= 1;
        if state.senders == 0 {
            state.end(&Status::ok(""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(sequence_id: u64) -> Queued {
        Ok(MqttStreamMessage::numbered(sequence_id).into())
    }

    #[tokio::test]
    async fn a_burst_goes_out_in_few_frames_and_in_order() {
        let (requests, mut body, _response) = crate::line::grpc::testing::call().await;
        let sink = Outlet::requests(requests, 1024);
        for n in 1..=2_000 {
            sink.try_send_batched(numbered(n)).expect("room");
        }
        sink.flush();
        drop(sink);
        let mut frames = 0;
        let mut deframer = framing::Deframer::new(1024);
        let mut got = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("data");
            body.release(chunk.len());
            frames += 1;
            deframer.push(chunk);
            while let Some(message) = deframer.next_message().expect("valid") {
                got.push(
                    prost::Message::decode(message).map_or(0, |m: MqttStreamMessage| m.sequence_id),
                );
            }
        }
        assert_eq!(
            got,
            (1..=2_000).collect::<Vec<u64>>(),
            "every envelope, in order"
        );
        // 2,000 envelopes of a few bytes each: a frame per 16 KiB batch,
        // not a frame per envelope.
        assert!(frames <= 4, "{frames} DATA frames for one burst");
    }

    #[tokio::test]
    async fn a_new_batch_takes_the_last_batch_s_room_at_once() {
        let (requests, _body, _response) = crate::line::grpc::testing::call().await;
        let sink = Outlet::requests(requests, 1024);
        let batched = |sink: &Outlet| !sink.sink.lock().batch.is_empty();
        // Nobody reads the stream: once its window is used up, envelopes
        // wait in a batch.
        let mut n = 0;
        while !batched(&sink) && n < 100_000 {
            n += 1;
            sink.try_send_batched(numbered(n)).expect("room");
        }
        for _ in 0..50 {
            n += 1;
            sink.try_send_batched(numbered(n)).expect("room");
        }
        let last = sink.sink.lock().batch.len();
        assert!(last > 50, "a burst waited in the batch: {last} bytes");
        sink.flush();
        assert_eq!(sink.sink.lock().batch.capacity(), 0, "handed over whole");
        // The next burst's first envelope brings the room the last batch
        // needed, not its own few bytes.
        sink.try_send_batched(numbered(n + 1)).expect("room");
        let state = sink.sink.lock();
        assert!(
            !state.batch.is_empty(),
            "the next burst waits in a batch too"
        );
        assert!(
            state.batch.capacity() >= last,
            "{} bytes of room, the last batch held {last}",
            state.batch.capacity()
        );
    }

    #[tokio::test]
    async fn an_unbatched_send_goes_out_at_once() {
        let (requests, mut body, _response) = crate::line::grpc::testing::call().await;
        let sink = Outlet::requests(requests, 1024);
        // The first goes straight into the connection's output, the second
        // waits in the batch...
        sink.try_send_batched(numbered(1)).expect("room");
        sink.try_send_batched(numbered(2)).expect("room");
        // ...until another send, not batched, takes it along.
        sink.try_send(numbered(3)).expect("room");
        let sequence =
            |b| prost::Message::decode(b).map_or(0, |m: MqttStreamMessage| m.sequence_id);
        let mut frames = Vec::new();
        while frames.iter().map(Vec::len).sum::<usize>() < 3 {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), body.data())
                .await
                .expect("sent without a flush")
                .expect("data")
                .expect("no error");
            body.release(chunk.len());
            let mut deframer = framing::Deframer::new(1024);
            deframer.push(chunk);
            let mut messages = Vec::new();
            while let Some(message) = deframer.next_message().expect("valid") {
                messages.push(sequence(message));
            }
            frames.push(messages);
        }
        assert_eq!(frames, [vec![1], vec![2, 3]]);
    }
}
