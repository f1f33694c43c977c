//! What a connection's driver and its stream handles share, behind one
//! lock: the output buffer that frames are appended to, each stream's
//! windows, unsent data and received data, and the connection's windows.
//! A handle sending DATA writes the frame into the output buffer itself
//! (when the windows allow), and writes the buffer to the socket too when
//! the driver is idle ([`super::output`]); the socket is here as well.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::task::Waker;

use bytes::{Bytes, BytesMut};

use super::Error;
use super::entry::{Receiving, Sending, Stream};
use super::frame::{self, Reason};
use super::id_hasher::IdHasher;
use crate::net::BoxedStream;
use crate::net::keep_waker;

/// A connection's streams by id.
pub(super) type Streams = HashMap<u32, Box<Stream>, BuildHasherDefault<IdHasher>>;

/// Stream `id`, when our side of it may still send; otherwise why not.
/// (Takes the two fields it reads, so the caller keeps the others.)
fn sending_stream<'a>(
    failed: &Option<Error>,
    streams: &'a mut Streams,
    id: u32,
) -> Result<&'a mut Stream, Error> {
    if let Some(e) = failed {
        return Err(e.clone());
    }
    let stream = streams.get_mut(&id).ok_or(Error::Closed)?;
    match (&stream.sending, &stream.receiving) {
        (Sending::Open, _) => Ok(stream),
        (_, Receiving::Failed(e)) => Err(e.clone()),
        _ => Err(Error::Closed),
    }
}

/// The connection's PING of ours, if one is out.
#[derive(Default)]
pub(super) struct Ping {
    pub sent: Option<[u8; 8]>,
    pub answered: bool,
    pub waker: Option<Waker>,
}

/// The DATA frame a handle wrote last, while it is what `out` ends with:
/// more data of its stream joins it instead of making a frame of its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenData {
    id: u32,
    /// Where its header begins in `out`.
    head: usize,
    /// `out`'s length right after it: while nothing is written out, only
    /// an append changes that length (it grows), so an equal length means
    /// nothing came after the frame.
    end: usize,
}

pub(super) struct State {
    /// The connection's socket; `None` once the connection is dropped.
    pub io: Option<BoxedStream>,
    /// Frames waiting to be written.
    pub out: BytesMut,
    /// The DATA frame `out` ends with, if a handle wrote it and nothing of
    /// `out` was written out since (which forgets it).
    pub(super) open_data: Option<OpenData>,
    /// Written to `io`, not yet flushed.
    pub unflushed: bool,
    /// A handle wrote the output itself since the driver last ran, in
    /// the runtime's turn `through_at`.
    pub wrote_through: bool,
    pub through_at: u64,
    /// Turns of the driver for which handles leave the writing to it
    /// (see [`super::output`]).
    pub through_paused: u32,
    /// Data goes into `out` while it holds less than this; beyond, it
    /// waits in its stream (counted against the stream's send buffer).
    pub out_limit: usize,
    /// Bytes a stream may have waiting before its sender is told to wait.
    pub send_buffer: usize,
    pub driver: Option<Waker>,
    /// The driver was woken and has not run since.
    pub driver_woken: bool,
    /// Boxed: the table holds room for more streams than are open.
    pub streams: Streams,
    /// Streams with data waiting for window or for room in `out`.
    pub(super) blocked: VecDeque<u32>,
    /// The connection's send window (the peer's grant).
    pub send_window: i64,
    /// The peer's SETTINGS: a new stream's send window, its largest frame.
    pub peer_initial_window: i64,
    pub peer_max_frame: usize,
    /// What the peer may still send on the connection.
    pub recv_window: i64,
    pub recv_released: u32,
    /// Our windows: when half is read, it is granted again.
    pub stream_window: u32,
    pub connection_window: u32,
    /// The connection ended: every operation fails with this.
    pub failed: Option<Error>,
    /// GOAWAY was sent: no new streams; the connection ends when the last
    /// one has.
    pub going_away: bool,
    pub ping: Ping,
    /// A client's next stream id (0 on a server: it opens none).
    pub next_stream: u32,
    /// Streams the peer lets us have open at once.
    pub peer_max_streams: usize,
    /// Callers waiting for a stream to end so that theirs may open.
    pub slot_waiters: Vec<Waker>,
}

impl State {
    pub fn new(
        io: BoxedStream,
        stream_window: u32,
        connection_window: u32,
        send_buffer: usize,
    ) -> Self {
        Self {
            io: Some(io),
            out: BytesMut::new(),
            open_data: None,
            unflushed: false,
            wrote_through: false,
            through_at: 0,
            through_paused: 0,
            out_limit: send_buffer.max(frame::DEFAULT_MAX_FRAME),
            send_buffer,
            driver: None,
            driver_woken: false,
            streams: HashMap::default(),
            blocked: VecDeque::new(),
            send_window: i64::from(frame::DEFAULT_WINDOW),
            peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            recv_window: i64::from(frame::DEFAULT_WINDOW),
            recv_released: 0,
            stream_window,
            connection_window,
            failed: None,
            going_away: false,
            ping: Ping::default(),
            next_stream: 0,
            peer_max_streams: u32::MAX as usize,
            slot_waiters: Vec::new(),
        }
    }

    /// The driver runs: handles need not wake it; its waker is kept.
    pub fn driver_running(&mut self, waker: &Waker) {
        self.driver_woken = true;
        self.wrote_through = false;
        self.through_paused = self.through_paused.saturating_sub(1);
        keep_waker(&mut self.driver, waker);
    }

    /// The driver is about to wait: what a handle adds from now wakes it.
    pub fn driver_idle(&mut self) {
        self.driver_woken = false;
    }

    /// Wakes the driver to write what was added, once per run of it.
    pub fn wake_driver(&mut self) {
        if !self.driver_woken {
            self.driver_woken = true;
            if let Some(w) = &self.driver {
                w.wake_by_ref();
            }
        }
    }

    /// Whether a stream has room for more data from its sender.
    pub fn has_room(&self, stream: &Stream) -> bool {
        stream.pending_len < self.send_buffer
    }

    /// Sends `data` on stream `id` (with END_STREAM if `end`): into `out`
    /// as far as the windows allow, the rest waiting in the stream.
    pub fn send_data(&mut self, id: u32, data: Bytes, end: bool) -> Result<(), Error> {
        let stream = sending_stream(&self.failed, &mut self.streams, id)?;
        if !data.is_empty() {
            stream.pending_len += data.len();
            stream.pending.push(data);
        }
        if end {
            stream.sending = Sending::Closing(None);
        }
        self.progress(id);
        Ok(())
    }

    /// Writes `len` bytes of DATA on stream `id` straight into `out`,
    /// `write` filling them, when nothing of the stream waits and the
    /// windows, the peer's largest frame and `out` take all of them now:
    /// appended to the stream's DATA frame that `out` ends with, if there
    /// is one with room, or as a frame of their own. `Ok(false)` otherwise,
    /// with nothing done: the bytes then go by [`State::send_data`]. Saves
    /// the sender a buffer of its own and a copy, and a burst of small
    /// messages makes few frames.
    pub fn write_data(
        &mut self,
        id: u32,
        len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<bool, Error> {
        let stream = sending_stream(&self.failed, &mut self.streams, id)?;
        let window = stream.send_window.min(self.send_window);
        if stream.queued
            || !stream.pending.is_empty()
            || len == 0
            || len as i64 > window
            || self.out.len() >= self.out_limit
        {
            return Ok(false);
        }
        let before = self.out.len();
        let joined = self.open_data.filter(|open| {
            open.id == id
                && open.end == before
                && open.end - open.head - frame::HEAD + len <= self.peer_max_frame
        });
        let head = match joined {
            Some(open) => {
                let frame_len = open.end - open.head - frame::HEAD + len;
                frame::set_len(&mut self.out[open.head..], frame_len);
                open.head
            }
            None if len > self.peer_max_frame => return Ok(false),
            None => {
                frame::put_head(&mut self.out, len, frame::DATA, 0, id);
                before
            }
        };
        stream.send_window -= len as i64;
        self.send_window -= len as i64;
        let start = self.out.len();
        self.out.resize(start + len, 0);
        write(&mut self.out[start..]);
        self.open_data = Some(OpenData {
            id,
            head,
            end: self.out.len(),
        });
        self.push_out(before);
        Ok(true)
    }

    /// Ends stream `id` with a header block (trailers) once its data is out.
    pub fn send_trailers(&mut self, id: u32, block: Bytes) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.streams.get_mut(&id) {
            Some(stream) if matches!(stream.sending, Sending::Open) => {
                stream.sending = Sending::Closing(Some(Box::new(block)));
                self.progress(id);
                Ok(())
            }
            _ => Err(Error::Closed),
        }
    }

    /// Writes what stream `id` has waiting, as far as the windows and
    /// `out` allow, and queues it if more waits that a connection-level
    /// grant or room in `out` would let go.
    pub(super) fn progress(&mut self, id: u32) {
        let before = self.out.len();
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.queued {
            // Behind other streams: the driver writes it in turn.
            return;
        }
        let room_before = stream.pending_len < self.send_buffer;
        let max_frame = self.peer_max_frame;
        while let Some(chunk) = stream.pending.front_mut() {
            let allowed = stream.send_window.min(self.send_window);
            if allowed <= 0 || self.out.len() >= self.out_limit {
                break;
            }
            // `allowed` is positive and at most a window (2^31 - 1).
            let n = chunk.len().min(max_frame).min(allowed as usize);
            let part = chunk.split_to(n);
            if chunk.is_empty() {
                stream.pending.pop();
            }
            stream.pending_len -= n;
            stream.send_window -= n as i64;
            self.send_window -= n as i64;
            let last =
                stream.pending.is_empty() && matches!(stream.sending, Sending::Closing(None));
            frame::put_data(&mut self.out, id, &part, last);
            if last {
                stream.sending = Sending::Closed;
            }
        }
        if stream.pending.is_empty() {
            match std::mem::replace(&mut stream.sending, Sending::Closed) {
                Sending::Closing(None) => frame::put_data(&mut self.out, id, &[], true),
                Sending::Closing(Some(block)) => {
                    frame::put_headers(&mut self.out, id, &block, true, max_frame);
                }
                other => stream.sending = other,
            }
        } else if stream.send_window > 0 {
            // Waiting for the connection's window or for room in `out`.
            stream.queued = true;
            self.blocked.push_back(id);
        }
        if !room_before
            && stream.pending_len < self.send_buffer
            && let Some(w) = stream.send_waker.take()
        {
            w.wake();
        }
        if matches!(stream.sending, Sending::Closed) {
            self.settle(id);
        }
        if self.out.len() > before {
            self.push_out(before);
        }
    }

    /// Lets waiting streams write, in the order they began to wait, while
    /// the connection's window and `out` have room.
    pub fn unblock(&mut self) {
        while self.send_window > 0 && self.out.len() < self.out_limit {
            let Some(id) = self.blocked.pop_front() else {
                return;
            };
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.queued = false;
                self.progress(id);
            }
        }
    }

    /// Resets stream `id` (sending RST_STREAM unless the peer did): both
    /// directions fail with the reason.
    pub fn reset(&mut self, id: u32, reason: Reason, remote: bool) {
        if !remote && self.streams.contains_key(&id) {
            frame::put_reset(&mut self.out, id, reason);
            self.wake_driver();
        }
        if !remote && let Some(stream) = self.streams.get_mut(&id) {
            // We want none of what came: its window is free again.
            let unread = stream.received_len;
            stream.received.clear();
            stream.received_len = 0;
            self.release_connection(unread);
        }
        self.abandon(id, Error::Reset { reason, remote });
    }

    /// Ends stream `id` at once with `error`, sending nothing (the peer
    /// reset it, or said with GOAWAY that it will not process it). What
    /// the peer sent before is still read first: a client that sends its
    /// last messages and then cancels the call (as tonic's does when its
    /// side goes away) still has them delivered.
    pub fn abandon(&mut self, id: u32, error: Error) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.pending.clear();
        stream.pending_len = 0;
        stream.sending = Sending::Closed;
        stream.receiving = Receiving::Failed(error);
        stream.wake_all();
        self.settle(id);
    }

    /// Removes stream `id` once nothing refers to it and nothing of ours
    /// waits to be sent; a stream given up while still open is reset
    /// (CANCEL, or NO_ERROR from a server whose response had ended).
    pub fn settle(&mut self, id: u32) {
        let Some(stream) = self.streams.get(&id) else {
            return;
        };
        if stream.handles > 0 || matches!(stream.sending, Sending::Closing(_)) {
            return;
        }
        if self.failed.is_none() {
            let open = matches!(stream.receiving, Receiving::Open);
            match stream.sending {
                Sending::Open => frame::put_reset(&mut self.out, id, Reason::CANCEL),
                Sending::Closed if open => {
                    // A server whose response is complete says NO_ERROR: the
                    // client need not send the rest of its request.
                    let server = self.next_stream == 0;
                    let reason = if server {
                        Reason::NO_ERROR
                    } else {
                        Reason::CANCEL
                    };
                    frame::put_reset(&mut self.out, id, reason);
                }
                _ => {}
            }
            self.wake_driver();
        }
        if let Some(stream) = self.streams.remove(&id) {
            self.release_connection(stream.received_len);
        }
        self.wake_slot_waiters();
        if self.going_away && self.streams.is_empty() {
            self.wake_driver();
        }
    }

    /// Callers waiting to open a stream look again.
    pub fn wake_slot_waiters(&mut self) {
        for waker in self.slot_waiters.drain(..) {
            waker.wake();
        }
    }

    /// The connection ended: every stream and waiter learns `error`.
    pub fn fail(&mut self, error: Error) {
        if self.failed.is_some() {
            return;
        }
        for stream in self.streams.values_mut() {
            stream.pending.clear();
            stream.pending_len = 0;
            stream.sending = Sending::Closed;
            // A stream the peer had ended keeps what it sent.
            if matches!(stream.receiving, Receiving::Open) {
                stream.receiving = Receiving::Failed(error.clone());
            }
            stream.wake_all();
        }
        self.blocked.clear();
        self.failed = Some(error);
        self.wake_slot_waiters();
        if let Some(w) = self.ping.waker.take() {
            w.wake();
        }
        self.wake_driver();
    }
}

/// The state and its lock, shared by the driver and the handles.
pub(super) struct Shared {
    state: parking_lot::Mutex<State>,
}

impl Shared {
    /// A new connection's state, on socket `io`.
    pub fn new(io: BoxedStream, config: &super::Config) -> std::sync::Arc<Self> {
        let state = State::new(
            io,
            config.stream_window,
            config.connection_window,
            config.send_buffer,
        );
        std::sync::Arc::new(Self {
            state: parking_lot::Mutex::new(state),
        })
    }

    /// The connection is dropped: every stream fails, and the socket is
    /// closed (handles may hold the state longer).
    pub fn close(&self) {
        let io = {
            let mut state = self.lock();
            state.fail(Error::Io("the connection was closed here".into()));
            state.io.take()
        };
        drop(io);
    }

    pub fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }
}
