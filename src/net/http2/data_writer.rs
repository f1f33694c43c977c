//! DATA of one stream written straight into the connection's output,
//! several writes under one lock: the stream is looked up and the windows
//! read once, and what was written is taken off the windows and handed to
//! the output's writer ([`State::push_out`]) once, when the writer goes. A
//! burst of a session's envelopes costs one lock, one look-up and one
//! hand-over instead of one each per envelope, and leaves in one write.

use parking_lot::MutexGuard;

use super::Error;
use super::frame;
use super::state::{OpenData, State, sending_stream};

/// Writes DATA on one stream into the connection's output while it holds
/// the connection's lock.
pub struct DataWriter<'a> {
    state: MutexGuard<'a, State>,
    id: u32,
    /// The output's length when the writer was made.
    before: usize,
    /// What the windows let through now, less what was written.
    room: i64,
    /// Bytes written.
    wrote: usize,
}

impl<'a> DataWriter<'a> {
    /// A writer for stream `id`; writes nothing while data of the stream
    /// waits (it goes first). An error once the stream can send no more.
    pub(super) fn new(mut state: MutexGuard<'a, State>, id: u32) -> Result<Self, Error> {
        let s = &mut *state;
        let stream = sending_stream(&s.failed, &mut s.streams, id)?;
        let room = if stream.queued || !stream.pending.is_empty() {
            0
        } else {
            stream.send_window.min(s.send_window)
        };
        let before = s.out.len();
        Ok(Self {
            state,
            id,
            before,
            room,
            wrote: 0,
        })
    }

    /// Writes `len` bytes of DATA, `write` filling them, when the windows,
    /// the peer's largest frame and the output take all of them now:
    /// appended to the stream's DATA frame that the output ends with, if
    /// there is one with room, or as a frame of their own. `false`
    /// otherwise, with nothing done (the bytes then go by
    /// [`super::SendStream::send_data`], after this writer is gone).
    pub fn write(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> bool {
        let s = &mut *self.state;
        if len == 0 || len as i64 > self.room || s.out.len() >= s.out_limit {
            return false;
        }
        let before = s.out.len();
        let id = self.id;
        let joined = s.open_data.filter(|open| {
            open.id == id
                && open.end == before
                && open.end - open.head - frame::HEAD + len <= s.peer_max_frame
        });
        let head = match joined {
            Some(open) => {
                let frame_len = open.end - open.head - frame::HEAD + len;
                frame::set_len(&mut s.out[open.head..], frame_len);
                open.head
            }
            None if len > s.peer_max_frame => return false,
            None => {
                frame::put_head(&mut s.out, len, frame::DATA, 0, id);
                before
            }
        };
        self.room -= len as i64;
        self.wrote += len;
        let start = s.out.len();
        s.out.resize(start + len, 0);
        write(&mut s.out[start..]);
        s.open_data = Some(OpenData {
            id,
            head,
            end: s.out.len(),
        });
        true
    }
}

impl Drop for DataWriter<'_> {
    /// Takes what was written off the windows and hands the output over.
    fn drop(&mut self) {
        if self.wrote == 0 {
            return;
        }
        let s = &mut *self.state;
        let wrote = self.wrote as i64;
        s.send_window -= wrote;
        if let Some(stream) = s.streams.get_mut(&self.id) {
            stream.send_window -= wrote;
        }
        s.push_out(self.before);
    }
}
