//! Flow control as the connection's state keeps it: the peer's grants
//! (WINDOW_UPDATE, a new initial window) letting waiting data go, and ours,
//! granted again as the readers take what came.

use super::entry::Receiving;
use super::frame::{self, Reason};
use super::state::State;

impl State {
    /// The peer granted `increment` more on stream `id` (0: the connection).
    pub fn grant(&mut self, id: u32, increment: u32) -> Result<(), Reason> {
        if id == 0 {
            self.send_window += i64::from(increment);
            if self.send_window > i64::from(frame::MAX_WINDOW) {
                return Err(Reason::FLOW_CONTROL_ERROR);
            }
            self.unblock();
            return Ok(());
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        stream.send_window += i64::from(increment);
        if stream.send_window > i64::from(frame::MAX_WINDOW) {
            self.reset(id, Reason::FLOW_CONTROL_ERROR, false);
            return Ok(());
        }
        self.progress(id);
        Ok(())
    }

    /// The peer changed SETTINGS_INITIAL_WINDOW_SIZE: every stream's
    /// window moves by the difference.
    pub fn set_initial_window(&mut self, window: u32) -> Result<(), Reason> {
        if window > frame::MAX_WINDOW {
            return Err(Reason::FLOW_CONTROL_ERROR);
        }
        let delta = i64::from(window) - self.peer_initial_window;
        self.peer_initial_window = i64::from(window);
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.send_window += delta;
                if stream.send_window > i64::from(frame::MAX_WINDOW) {
                    return Err(Reason::FLOW_CONTROL_ERROR);
                }
                if delta > 0 {
                    self.progress(id);
                }
            }
        }
        Ok(())
    }

    /// `n` bytes of the connection's window were used up by the peer and
    /// are free again: granted back once half the window is.
    pub fn release_connection(&mut self, n: usize) {
        // At most a frame's or a window's bytes at a time.
        self.recv_released = self.recv_released.saturating_add(n as u32);
        if self.recv_released >= self.connection_window / 2 {
            frame::put_window_update(&mut self.out, 0, self.recv_released);
            self.recv_window += i64::from(self.recv_released);
            self.recv_released = 0;
            self.wake_driver();
        }
    }

    /// The reader of stream `id` has taken `n` bytes.
    pub fn release(&mut self, id: u32, n: usize) {
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.received_len = stream.received_len.saturating_sub(n);
            if matches!(stream.receiving, Receiving::Open) {
                stream.recv_released = stream.recv_released.saturating_add(n as u32);
                if stream.recv_released >= self.stream_window / 2 {
                    frame::put_window_update(&mut self.out, id, stream.recv_released);
                    stream.recv_window += i64::from(stream.recv_released);
                    stream.recv_released = 0;
                    self.wake_driver();
                }
            }
        }
        self.release_connection(n);
    }
}
