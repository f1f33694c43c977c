//! The handles a stream's users hold: [`SendStream`] for our side (DATA,
//! then trailers or END_STREAM, or a reset) and [`RecvStream`] for the
//! peer's (its DATA as it arrives, then its trailers). A stream given up
//! by every handle before it ended is reset, so the peer learns of it.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::Error;
use super::entry::{Receiving, Sending};
use super::frame::Reason;
use super::hpack;
use super::state::{Shared, State};
use crate::net::keep_waker;

/// One reference to a stream; the stream is settled when the last goes.
pub(super) struct StreamRef {
    shared: Arc<Shared>,
    id: u32,
}

impl StreamRef {
    /// The first reference to a stream just added with one handle.
    pub fn new(shared: Arc<Shared>, id: u32) -> Self {
        Self { shared, id }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.shared.lock()
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Another reference to the same stream.
    pub fn another(&self) -> Self {
        if let Some(stream) = self.lock().streams.get_mut(&self.id) {
            stream.handles += 1;
        }
        Self {
            shared: self.shared.clone(),
            id: self.id,
        }
    }

    /// Sends a header block on the stream now (a response's head),
    /// ending our side if `end`.
    pub fn send_headers(&self, block: &[u8], end: bool) -> Result<(), Error> {
        let mut state = self.lock();
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        let max_frame = state.peer_max_frame;
        let State { out, streams, .. } = &mut *state;
        let stream = streams.get_mut(&self.id).ok_or(Error::Closed)?;
        if let Receiving::Failed(e) = &stream.receiving {
            return Err(e.clone());
        }
        if !matches!(stream.sending, Sending::Open) {
            return Err(Error::Closed);
        }
        super::frame::put_headers(out, self.id, block, end, max_frame);
        if end {
            stream.sending = Sending::Closed;
            state.settle(self.id);
        }
        state.wake_driver();
        Ok(())
    }
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        let mut state = self.lock();
        if let Some(stream) = state.streams.get_mut(&self.id) {
            stream.handles = stream.handles.saturating_sub(1);
        }
        state.settle(self.id);
    }
}

/// Our side of a stream.
pub struct SendStream {
    stream: StreamRef,
}

impl SendStream {
    pub(super) fn new(stream: StreamRef) -> Self {
        Self { stream }
    }

    /// Sends `data`, ending our side if `end`. Never waits: what the
    /// windows do not let out yet waits in the stream (see
    /// [`SendStream::has_room`]).
    pub fn send_data(&mut self, data: Bytes, end: bool) -> Result<(), Error> {
        self.stream.lock().send_data(self.stream.id, data, end)
    }

    /// Writes `len` bytes of DATA, `write` filling them, straight into
    /// the connection's output when nothing of the stream waits and the
    /// windows take them all now; `Ok(false)` (nothing done) otherwise.
    pub fn write_data(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> Result<bool, Error> {
        self.stream.lock().write_data(self.stream.id, len, write)
    }

    /// Ends our side with `trailers`, after any data still waiting.
    pub fn send_trailers(&mut self, trailers: HeaderMap) -> Result<(), Error> {
        let mut block = BytesMut::new();
        for (name, value) in &trailers {
            hpack::put_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
        self.stream
            .lock()
            .send_trailers(self.stream.id, block.freeze())
    }

    /// Resets the stream: both sides end at once.
    pub fn send_reset(&mut self, reason: Reason) {
        let mut state = self.stream.lock();
        if state.failed.is_none() {
            state.reset(self.stream.id, reason, false);
        }
    }

    /// Whether more data may be sent now: less than the send buffer waits
    /// for the windows. An error once the stream can send no more.
    pub fn has_room(&self) -> Result<bool, Error> {
        let state = self.stream.lock();
        Self::room(&state, self.stream.id)
    }

    fn room(state: &State, id: u32) -> Result<bool, Error> {
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        let stream = state.streams.get(&id).ok_or(Error::Closed)?;
        match (&stream.sending, &stream.receiving) {
            (Sending::Open, _) => Ok(state.has_room(stream)),
            (_, Receiving::Failed(e)) => Err(e.clone()),
            _ => Err(Error::Closed),
        }
    }

    /// Ready once the peer reset the stream (or the connection ended):
    /// it reads none of what is sent any more.
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let mut state = self.stream.lock();
        if let Some(e) = &state.failed {
            return Poll::Ready(e.clone());
        }
        let Some(stream) = state.streams.get_mut(&self.stream.id) else {
            return Poll::Ready(Error::Closed);
        };
        if let Receiving::Failed(e) = &stream.receiving {
            return Poll::Ready(e.clone());
        }
        stream.send_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready once there is room (or the stream can send no more).
    pub fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut state = self.stream.lock();
        match Self::room(&state, self.stream.id) {
            Ok(false) => {
                if let Some(stream) = state.streams.get_mut(&self.stream.id) {
                    stream.send_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Ok(true) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The peer's side of a stream.
pub struct RecvStream {
    stream: StreamRef,
}

impl RecvStream {
    pub(super) fn new(stream: StreamRef) -> Self {
        Self { stream }
    }

    /// The next DATA the peer sent; `None` once it ended its side (then
    /// [`RecvStream::trailers`] says how). Give each chunk's length back
    /// with [`RecvStream::release`] once taken, or the peer stops.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        self.poll_chunk(cx, false)
            .map(|chunk| chunk.map(|taken| taken.map(|(chunk, _)| chunk)))
    }

    /// [`RecvStream::poll_data`] and [`RecvStream::release`] of what it
    /// gives, under one lock: for a reader that consumes each chunk
    /// before it asks for the next. With the chunk, whether it was the
    /// last one waiting while the stream stays open: then the task's waker
    /// is already left with the stream, as a `Pending` would leave it, so a
    /// reader that consumes the chunk within this poll need not ask again
    /// before it waits.
    pub fn poll_taken(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Bytes, bool), Error>>> {
        self.poll_chunk(cx, true)
    }

    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
        release: bool,
    ) -> Poll<Option<Result<(Bytes, bool), Error>>> {
        let mut state = self.stream.lock();
        let id = self.stream.id;
        let Some(stream) = state.streams.get_mut(&id) else {
            return Poll::Ready(Some(Err(Error::Closed)));
        };
        if let Some(chunk) = stream.received.pop() {
            let last = release
                && stream.received.is_empty()
                && matches!(stream.receiving, Receiving::Open);
            if last {
                keep_waker(&mut stream.recv_waker, cx.waker());
            }
            if release {
                state.release(id, chunk.len());
            }
            return Poll::Ready(Some(Ok((chunk, last))));
        }
        match &stream.receiving {
            Receiving::Open => {
                keep_waker(&mut stream.recv_waker, cx.waker());
                Poll::Pending
            }
            Receiving::Ended(_) => Poll::Ready(None),
            Receiving::Failed(e) => Poll::Ready(Some(Err(e.clone()))),
        }
    }

    /// The next DATA, as [`RecvStream::poll_data`].
    pub async fn data(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_data(cx)).await
    }

    /// `n` bytes of what was received are taken: the peer may send more.
    pub fn release(&mut self, n: usize) {
        self.stream.lock().release(self.stream.id, n);
    }

    /// After the end: the trailers the peer sent, if any.
    pub fn trailers(&mut self) -> Result<Option<HeaderMap>, Error> {
        let mut state = self.stream.lock();
        let stream = state
            .streams
            .get_mut(&self.stream.id)
            .ok_or(Error::Closed)?;
        match &mut stream.receiving {
            Receiving::Ended(trailers) => Ok(trailers.take().map(|t| *t)),
            Receiving::Failed(e) => Err(e.clone()),
            Receiving::Open => Err(Error::Closed),
        }
    }
}
