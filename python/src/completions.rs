//! Finishing asyncio futures from the runtime's threads without taking the
//! GIL for each: a finished call queues its future and outcome, and only
//! the first of a batch wakes the event loop, through a socket the loop
//! watches (`loop.add_reader`). The loop then runs `drain`, which settles
//! every queued future in one go on its own thread.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;

/// Turns a call's result into the future's value or exception (needs the
/// GIL). Told `false` when the future was cancelled meanwhile, so what the
/// call got (a received message) can be kept for the next caller.
pub type Outcome = Box<dyn FnOnce(Python<'_>, bool) -> PyResult<Py<PyAny>> + Send>;

/// The futures finished since the loop last looked, and the wake-up line.
pub struct Completions {
    finished: Mutex<Vec<(Py<PyAny>, Outcome)>>,
    wake: UnixStream,
    woken: UnixStream,
}

impl Completions {
    pub fn new() -> std::io::Result<Self> {
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        Ok(Self {
            finished: Mutex::new(Vec::new()),
            wake,
            woken,
        })
    }

    /// The descriptor the event loop watches for readability.
    pub fn fd(&self) -> RawFd {
        self.woken.as_raw_fd()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(Py<PyAny>, Outcome)>> {
        self.finished
            .lock()
            // Pushing to or taking a Vec cannot leave it torn by a panic.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `future`'s outcome; wakes the loop if it was not woken yet.
    pub fn finish(&self, future: Py<PyAny>, outcome: Outcome) {
        let first = {
            let mut queue = self.queue();
            queue.push((future, outcome));
            queue.len() == 1
        };
        if first {
            // A full socket buffer means wake-ups are pending already.
            let _ = (&self.wake).write(&[1]);
        }
    }

    /// Settles every queued future (on the loop's thread); a future that
    /// was cancelled meanwhile is left alone (its outcome is told so).
    pub fn drain(&self, py: Python<'_>) -> PyResult<()> {
        let mut sink = [0u8; 256];
        loop {
            match (&self.woken).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let finished = std::mem::take(&mut *self.queue());
        for (future, outcome) in finished {
            let future = future.bind(py);
            if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                // Nobody waits for it: a failure has nobody to tell.
                let _ = outcome(py, false);
                continue;
            }
            match outcome(py, true) {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
                Err(error) => {
                    future.call_method1(intern!(py, "set_exception"), (error.value(py),))?
                }
            };
        }
        Ok(())
    }
}
