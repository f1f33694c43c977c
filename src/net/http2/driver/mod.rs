//! A connection's task: reads frames from the socket and applies them to
//! the shared state (DATA into its stream, grants into the windows, new
//! streams into the queue of calls to accept), answers SETTINGS and PING,
//! and writes whatever the handles and it have put in the output buffer
//! and the handles have not written themselves.
//! A peer that breaks the protocol gets GOAWAY with the reason, and every
//! stream fails.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};

use super::frame::{self, Head, Reason};
use super::server::RequestHead;
use super::state::Shared;
use super::stream::StreamRef;
use super::{Config, Error, hpack};

mod fields;
mod frames;

/// How much is read at a time: a whole frame of the largest size we allow.
const READ_CHUNK: usize = frame::DEFAULT_MAX_FRAME + frame::HEAD;
/// Reads handled in one turn before the task lets others run.
const READS_PER_TURN: usize = 16;

/// A new stream the peer opened, waiting to be accepted.
pub(super) struct Accepted {
    pub head: RequestHead,
    pub stream: StreamRef,
}

/// A header block still waiting for its CONTINUATION frames.
struct Partial {
    stream: u32,
    end_stream: bool,
    block: BytesMut,
}

/// A connection error: GOAWAY with `reason`.
struct Broken(Reason, &'static str);

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Opens streams (odd ids); reads no preface.
    Client,
    /// Accepts streams; reads the client's preface first.
    Server,
}

pub(super) struct Driver {
    role: Role,
    shared: Arc<Shared>,
    config: Config,
    read: BytesMut,
    decoder: hpack::Decoder,
    partial: Option<Partial>,
    /// The client's preface has been read (a client reads none); the
    /// peer's first SETTINGS have come.
    preface_read: bool,
    settings_seen: bool,
    /// The highest stream the peer opened.
    last_peer_stream: u32,
    pub accepted: VecDeque<Accepted>,
    /// The peer closed its side.
    read_closed: bool,
    /// Ending with this once the output (GOAWAY) is written.
    ending: Option<Error>,
    /// The outcome, once the connection is over.
    done: Option<Result<(), Error>>,
}

impl Driver {
    /// A server's side of a new connection: our SETTINGS go first.
    pub fn server(config: Config, shared: Arc<Shared>) -> Self {
        Self::new(Role::Server, config, shared)
    }

    /// A client's side of a new connection: the preface and our SETTINGS
    /// go first.
    pub fn client(config: Config, shared: Arc<Shared>) -> Self {
        shared.lock().out.extend_from_slice(frame::PREFACE);
        Self::new(Role::Client, config, shared)
    }

    fn new(role: Role, config: Config, shared: Arc<Shared>) -> Self {
        {
            let mut state = shared.lock();
            let settings = match role {
                Role::Server => [
                    (frame::SETTINGS_MAX_CONCURRENT_STREAMS, config.max_streams),
                    (frame::SETTINGS_INITIAL_WINDOW_SIZE, config.stream_window),
                    (frame::SETTINGS_MAX_HEADER_LIST_SIZE, config.max_header_list),
                ],
                Role::Client => [
                    (frame::SETTINGS_ENABLE_PUSH, 0),
                    (frame::SETTINGS_INITIAL_WINDOW_SIZE, config.stream_window),
                    (frame::SETTINGS_MAX_HEADER_LIST_SIZE, config.max_header_list),
                ],
            };
            frame::put_settings(&mut state.out, &settings);
            let more = config
                .connection_window
                .saturating_sub(frame::DEFAULT_WINDOW);
            if more > 0 {
                frame::put_window_update(&mut state.out, 0, more);
                state.recv_window += i64::from(more);
            }
            if role == Role::Client {
                state.next_stream = 1;
            }
        }
        Self {
            role,
            shared,
            config,
            read: BytesMut::new(),
            decoder: hpack::Decoder::new(4096),
            partial: None,
            preface_read: role == Role::Client,
            settings_seen: false,
            last_peer_stream: 0,
            accepted: VecDeque::new(),
            read_closed: false,
            ending: None,
            done: None,
        }
    }

    /// Runs the connection until the peer's first SETTINGS have come (the
    /// end of the handshake at either end).
    pub async fn settings_exchanged(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| match self.poll(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Err(Error::Io("closed before the HTTP/2 handshake".into())))
            }
            Poll::Pending if self.settings_seen => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    /// Reads, applies and writes what it can; ready when the connection
    /// is over (cleanly: the peer closed it with no stream open, or we went
    /// away and the last stream ended).
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(done) = &self.done {
            return Poll::Ready(done.clone());
        }
        let outcome = self.turn(cx);
        if let Poll::Ready(done) = &outcome {
            let mut state = self.shared.lock();
            if let Err(e) = done {
                state.fail(e.clone());
            } else {
                state.fail(Error::Io("connection closed".into()));
            }
            self.done = Some(done.clone());
        }
        outcome
    }

    fn turn(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.lock().driver_running(cx.waker());
        let mut rounds = 0;
        let state = loop {
            rounds += 1;
            // Reading stopped for output the peer had not taken: once that
            // is written, read again (nothing else would wake the task).
            let mut backed_up = false;
            if self.ending.is_none() {
                match self.read_frames(cx) {
                    Ok(stopped) => backed_up = stopped,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let mut state = self.shared.lock();
            if let Err(e) = state.write_out(cx) {
                return Poll::Ready(Err(e));
            }
            if !state.out.is_empty() {
                // The socket is full: it wakes the task.
                break state;
            }
            if backed_up {
                if rounds < READS_PER_TURN {
                    continue;
                }
                // Others run first; this task comes back.
                cx.waker().wake_by_ref();
                break state;
            }
            // Done running: from here on a handle adding output writes it
            // or wakes the task (the output is empty, under this lock).
            state.driver_idle();
            break state;
        };
        if !state.out.is_empty() || state.unflushed {
            return Poll::Pending;
        }
        if let Some(e) = self.ending.take() {
            return Poll::Ready(Err(e));
        }
        let quiet = state.streams.is_empty() && self.accepted.is_empty();
        if self.read_closed {
            return Poll::Ready(if quiet {
                Ok(())
            } else {
                Err(Error::Io("the peer closed the connection".into()))
            });
        }
        if state.going_away && quiet {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Reads and applies frames until the socket has no more for now;
    /// true if it stopped because too much output waits to be written.
    fn read_frames(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        for _ in 0..READS_PER_TURN {
            if let Err(Broken(reason, detail)) = self.apply_frames() {
                self.go_away(reason, detail);
                return Ok(false);
            }
            let mut state = self.shared.lock();
            // Output not taken by the peer: read no more until it is.
            if state.out.len() >= 2 * self.config.send_buffer.max(READ_CHUNK) {
                return Ok(true);
            }
            if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
                self.read.reserve(READ_CHUNK);
            }
            let Some(io) = state.io.as_mut() else {
                return Err(Error::Io("the connection was closed here".into()));
            };
            match tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut self.read) {
                Poll::Pending => return Ok(false),
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    return Ok(false);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Err(Error::Io(e.to_string().into())),
            }
        }
        // More may be waiting: come back after others ran.
        cx.waker().wake_by_ref();
        Ok(false)
    }

    /// Ends the connection for a protocol error: GOAWAY, every stream fails.
    fn go_away(&mut self, reason: Reason, detail: &'static str) {
        tracing::debug!(%reason, detail, "HTTP/2 peer broke the protocol");
        let error = Error::GoAway {
            reason,
            remote: false,
            detail,
        };
        let mut state = self.shared.lock();
        frame::put_goaway(&mut state.out, self.last_peer_stream, reason);
        state.fail(error.clone());
        self.ending = Some(error);
    }

    /// Applies every whole frame in the read buffer.
    fn apply_frames(&mut self) -> Result<(), Broken> {
        if !self.preface_read {
            let n = self.read.len().min(frame::PREFACE.len());
            if self.read[..n] != frame::PREFACE[..n] {
                return Err(Broken(Reason::PROTOCOL_ERROR, "not the HTTP/2 preface"));
            }
            if n < frame::PREFACE.len() {
                return Ok(());
            }
            self.read.advance(n);
            self.preface_read = true;
        }
        loop {
            let Some(head) = self.read.get(..frame::HEAD) else {
                return Ok(());
            };
            // Nine bytes, checked just above.
            let head = Head::parse(head.try_into().unwrap_or(&[0; frame::HEAD]));
            if head.len > frame::DEFAULT_MAX_FRAME {
                return Err(Broken(Reason::FRAME_SIZE_ERROR, "a frame over 16 KiB"));
            }
            if self.read.len() < frame::HEAD + head.len {
                return Ok(());
            }
            self.read.advance(frame::HEAD);
            let payload = self.read.split_to(head.len).freeze();
            self.apply(head, payload)?;
        }
    }
}
