//! Writing a connection's output to its socket. The driver writes it
//! whenever it runs; a stream handle that adds output while the driver
//! is idle writes it itself, from its own task ([`State::push_out`]), so
//! a lone message costs no wake-up and no turn of the driver's task.
//!
//! Output from several handles in one turn of the runtime (a burst: many
//! sessions woken at once, or a session sending more after its first
//! frame) is one write when the driver makes it, but two when a handle
//! wrote the first frame itself. So after a burst, handles leave the
//! writing to the driver for its next [`THROUGH_PAUSE`] turns: under a
//! bursty load the output goes out in as few writes as before, and a lone
//! message in light traffic still costs no turn of the driver. (A/B under
//! 100 publishers, with handles writing every time: 7-20 % more CPU per
//! message in each proxy; BENCHMARKS.md.) A turn of the runtime is told
//! apart by [`unparked`], which the services' runtimes call each time
//! their thread wakes; without it, any output after a handle's write and
//! before the driver ran counts as a burst.
//!
//! Everything is done under the state's lock, the socket included, so
//! whoever writes takes the output in order.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use tokio::io::AsyncWrite;

use super::Error;
use super::state::State;

/// Turns of the driver after a burst for which handles do not write.
pub(super) const THROUGH_PAUSE: u32 = 64;

thread_local! {
    /// Wake-ups of this thread's runtime so far.
    static WAKE_UPS: Cell<u64> = const { Cell::new(0) };
}

/// Counts a wake-up of the calling thread's runtime (for
/// `tokio::runtime::Builder::on_thread_unpark`).
pub fn unparked() {
    WAKE_UPS.with(|n| n.set(n.get().wrapping_add(1)));
}

fn wake_ups() -> u64 {
    WAKE_UPS.with(Cell::get)
}

impl State {
    /// Output was added (`out` held `before` bytes): written now from the
    /// caller's task when nothing else waits to be written and the driver
    /// is idle; otherwise, if the socket does not take all of it, or if
    /// streams wait for room in the output, the driver is woken to write
    /// it.
    pub fn push_out(&mut self, before: usize) {
        let now = wake_ups();
        if self.wrote_through && self.through_at == now {
            // A burst: the driver's one write would have taken it all.
            self.through_paused = THROUGH_PAUSE;
        }
        if before == 0
            && !self.driver_woken
            && self.through_paused == 0
            && !self.unflushed
            && self.failed.is_none()
            && let Some(driver) = self.driver.take()
        {
            // The driver's waker: if the socket is full, the driver is the
            // one told when it has room.
            let written = self.write_socket(&mut Context::from_waker(&driver));
            self.driver = Some(driver);
            if matches!(written, Ok(true)) {
                self.wrote_through = true;
                self.through_at = now;
                // Streams that stopped at the output's limit (a large
                // message, say) go on when the driver lets them: it must
                // run, or they would wait for its next wake-up for
                // something else.
                if self.blocked.is_empty() {
                    return;
                }
            }
        }
        self.wake_driver();
    }

    /// The driver's write: lets waiting streams add their data as room
    /// allows, and writes until the output is all written or the socket
    /// is full.
    pub fn write_out(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        loop {
            self.unblock();
            if self.out.is_empty() {
                // Flushes what an earlier write left unflushed.
                return self.write_socket(cx).map(|_| ());
            }
            if !self.write_socket(cx)? {
                return Ok(());
            }
        }
    }

    /// Writes `out` to the socket and flushes it; true if all of it is
    /// written and flushed, false if the socket took no more for now
    /// (`cx` is woken when it will).
    fn write_socket(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let Some(io) = self.io.as_mut() else {
            return Err(Error::Io("the connection was closed here".into()));
        };
        let mut wrote = false;
        while !self.out.is_empty() {
            match Pin::new(&mut *io).poll_write(cx, &self.out) {
                Poll::Pending => return Ok(false),
                Poll::Ready(Ok(0)) => return Err(Error::Io("the connection took no bytes".into())),
                Poll::Ready(Ok(n)) => {
                    wrote = true;
                    self.out.advance(n);
                    // What follows goes into a frame of its own.
                    self.open_data = None;
                }
                Poll::Ready(Err(e)) => return Err(Error::Io(e.to_string().into())),
            }
        }
        // Keeps the allocation for the next output.
        self.out.clear();
        // A TLS stream may hold written bytes until flushed, and flushing
        // may have to wait for the socket: until it completes, each turn
        // of the driver flushes again.
        self.unflushed |= wrote;
        if self.unflushed {
            match Pin::new(&mut *io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Err(Error::Io(e.to_string().into())),
                Poll::Pending => return Ok(false),
            }
        }
        Ok(true)
    }
}
