//! The r-proxy's outlet: the request stream of the call it made to the
//! s-proxy. The task that sends an envelope frames it and hands it to
//! HTTP/2 at once, so no queue holds it and no other task is woken for it
//! (the connection's task writes it out). Room is HTTP/2's: the stream's
//! flow-control window and its send buffer ([`ChannelSettings::send_buffer`]);
//! when either is used up, senders wait until the connection has written
//! or the peer has granted more.
//!
//! [`ChannelSettings::send_buffer`]: crate::line::grpc_client::ChannelSettings

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::SendStream;
use tokio::sync::Notify;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tonic::Status;

use super::Queued;
use crate::line::grpc_client::framing;
use crate::line::proto::mqtt::MqttStreamMessage;

/// A call's request stream as an outlet; clones share it, and the last one
/// to go ends the stream (END_STREAM: the s-proxy sees a half-close).
pub struct CallSink {
    sink: Arc<Sink>,
}

struct Sink {
    state: Mutex<State>,
    /// Room was seen by one waiter: the others look again. (HTTP/2 wakes
    /// one waiter per stream, the last to ask.)
    room: Notify,
    max_message: usize,
}

struct State {
    requests: SendStream<Bytes>,
    senders: usize,
    /// The stream was ended here or failed: nothing more goes out.
    ended: bool,
}

impl CallSink {
    /// Sends on `requests`; messages over `max_message` bytes are refused.
    pub fn new(requests: SendStream<Bytes>, max_message: usize) -> Self {
        Self {
            sink: Arc::new(Sink {
                state: Mutex::new(State {
                    requests,
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
        let mut state = self.sink.lock();
        for message in messages {
            let framed = framing::encode(message, self.sink.max_message)?;
            state
                .requests
                .send_data(framed, false)
                .map_err(|e| crate::line::grpc_client::status_of_h2(&e))?;
        }
        Ok(())
    }

    /// Sends `value` if the stream has room. An error ends the request
    /// stream (a client has no status to send; the s-proxy sees the end).
    pub fn try_send(&self, value: Queued) -> Result<(), TrySendError<Queued>> {
        let mut state = self.sink.lock();
        if state.ended {
            return Err(TrySendError::Closed(value));
        }
        let envelope = match value {
            Ok(envelope) => envelope,
            Err(_) => {
                state.end();
                return Ok(());
            }
        };
        // Asks for one byte beyond what waits, as hyper does: any room at
        // all takes the whole message, so a message larger than the send
        // buffer still goes.
        state.requests.reserve_capacity(1);
        if state.requests.capacity() == 0 {
            return Err(TrySendError::Full(Ok(envelope)));
        }
        let framed = match framing::encode(&*envelope, self.sink.max_message) {
            Ok(framed) => framed,
            Err(status) => {
                tracing::warn!(%status, "envelope too large for the line; ending the stream");
                state.requests.send_reset(h2::Reason::INTERNAL_ERROR);
                state.ended = true;
                return Err(TrySendError::Closed(Ok(envelope)));
            }
        };
        match state.requests.send_data(framed, false) {
            Ok(()) => {
                // Keep asking for a byte beyond what waits: HTTP/2 tells a
                // waiter of room only when the room grows, which it does
                // not if every byte asked for is spent (by an
                // acknowledgement sent by another task, say).
                state.requests.reserve_capacity(1);
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "request stream closed");
                state.ended = true;
                Err(TrySendError::Closed(Ok(envelope)))
            }
        }
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
        match state.requests.poll_capacity(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(_))) => Poll::Ready(()),
            Poll::Ready(None | Some(Err(_))) => {
                state.ended = true;
                Poll::Ready(())
            }
        }
    }

    /// Whether an envelope would have to wait for room now.
    pub fn is_full(&self) -> bool {
        let mut state = self.sink.lock();
        state.requests.reserve_capacity(1);
        !state.ended && state.requests.capacity() == 0
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
        // Every update leaves the state consistent; a panic elsewhere does
        // not make it unusable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Ends the request stream (END_STREAM), once.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            let _ = self.requests.send_data(Bytes::new(), true);
        }
    }
}

impl Clone for CallSink {
    fn clone(&self) -> Self {
        self.sink.lock().senders += 1;
        Self {
            sink: self.sink.clone(),
        }
    }
}

impl Drop for CallSink {
    fn drop(&mut self) {
        let mut state = self.sink.lock();
        state.senders -= 1;
        if state.senders == 0 {
            state.end();
        }
    }
}
