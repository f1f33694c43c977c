//! One stream's entry in its connection's table: its windows, what waits
//! to be sent and what was received, where each side stands, and who
//! waits for it. The table and the rules that move an entry along are the
//! connection's ([`super::state`]).

use std::collections::VecDeque;
use std::task::Waker;

use bytes::Bytes;
use http::HeaderMap;

use super::Error;

/// Chunks a queue behind the first has room for when it forms.
const MORE_CHUNKS: usize = 16;

/// Chunks in order, the first held inline: a stream usually has at most
/// one waiting, and an idle stream then holds no allocation.
#[derive(Default)]
pub(super) struct Chunks {
    first: Option<Bytes>,
    // Boxed: 8 bytes in every stream instead of 32, for a queue that
    // exists only while more than one chunk waits.
    #[allow(clippy::box_collection)]
    more: Option<Box<VecDeque<Bytes>>>,
}

impl Chunks {
    pub fn push(&mut self, chunk: Bytes) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            // Room for a few at once: a queue that forms is usually
            // some chunks long, and grows by copying.
            self.more
                .get_or_insert_with(|| Box::new(VecDeque::with_capacity(MORE_CHUNKS)))
                .push_back(chunk);
        }
    }

    pub fn pop(&mut self) -> Option<Bytes> {
        let first = self.first.take();
        if let Some(more) = &mut self.more {
            self.first = more.pop_front();
            if more.is_empty() {
                self.more = None;
            }
        }
        first
    }

    pub fn front_mut(&mut self) -> Option<&mut Bytes> {
        self.first.as_mut()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Whether our side of a stream may still send.
pub(super) enum Sending {
    Open,
    /// Ended by the caller while data waits for window: after it, the
    /// trailers' block (or an empty DATA with END_STREAM).
    Closing(Option<Box<Bytes>>),
    Closed,
}

/// A stream we opened: its response's head, once it came.
pub(super) enum Response {
    /// Not a stream of ours (a served call).
    NotOurs,
    Waiting,
    Arrived(Box<(u16, HeaderMap)>),
    /// Handed to the caller.
    Taken,
}

/// What the peer's side of a stream has done.
pub(super) enum Receiving {
    Open,
    /// END_STREAM came, with trailers if the peer sent any.
    Ended(Option<Box<HeaderMap>>),
    /// Reset, or the connection failed.
    Failed(Error),
}

pub(super) struct Stream {
    pub send_window: i64,
    pub pending: Chunks,
    pub pending_len: usize,
    pub sending: Sending,
    /// A sender waiting for room.
    pub send_waker: Option<Waker>,
    /// In the connection's queue of streams with data waiting.
    pub queued: bool,
    pub received: Chunks,
    /// Bytes in `received`: given back to the connection's window if the
    /// stream goes before they are read.
    pub received_len: usize,
    pub receiving: Receiving,
    /// The reader, or the caller waiting for the response's head.
    pub recv_waker: Option<Waker>,
    pub response: Response,
    /// What the peer may still send on this stream.
    pub recv_window: i64,
    /// Read but not yet granted back with WINDOW_UPDATE.
    pub recv_released: u32,
    /// Handles alive (the accepted call's, then its send and receive sides).
    pub handles: u8,
}

impl Stream {
    pub fn new(send_window: i64, recv_window: u32, ended: bool) -> Self {
        Self {
            send_window,
            pending: Chunks::default(),
            pending_len: 0,
            sending: Sending::Open,
            send_waker: None,
            queued: false,
            received: Chunks::default(),
            received_len: 0,
            receiving: if ended {
                Receiving::Ended(None)
            } else {
                Receiving::Open
            },
            recv_waker: None,
            response: Response::NotOurs,
            recv_window: i64::from(recv_window),
            recv_released: 0,
            handles: 1,
        }
    }

    pub fn wake_all(&mut self) {
        if let Some(w) = self.send_waker.take() {
            w.wake();
        }
        if let Some(w) = self.recv_waker.take() {
            w.wake();
        }
    }
}
