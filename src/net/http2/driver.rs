//! A connection's task: reads frames from the socket and applies them to
//! the shared state (DATA into its stream, grants into the windows, new
//! streams into the queue of calls to accept), answers SETTINGS and PING,
//! and writes whatever the handles and it have put in the output buffer.
//! A peer that breaks the protocol gets GOAWAY with the reason, and every
//! stream fails.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{self, Head, Reason};
use super::server::RequestHead;
use super::state::{Receiving, Shared, Stream};
use super::stream::StreamRef;
use super::{Config, Error, hpack};

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

pub(super) struct Driver<IO> {
    io: IO,
    shared: Arc<Shared>,
    config: Config,
    read: BytesMut,
    writing: BytesMut,
    decoder: hpack::Decoder,
    partial: Option<Partial>,
    /// The client's preface has been read; its SETTINGS have come.
    preface_read: bool,
    pub settings_seen: bool,
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

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    /// A server's side of a new connection: our SETTINGS go first.
    pub fn server(io: IO, config: Config, shared: Arc<Shared>) -> Self {
        {
            let mut state = shared.lock();
            frame::put_settings(
                &mut state.out,
                &[
                    (frame::SETTINGS_MAX_CONCURRENT_STREAMS, config.max_streams),
                    (frame::SETTINGS_INITIAL_WINDOW_SIZE, config.stream_window),
                    (frame::SETTINGS_MAX_HEADER_LIST_SIZE, config.max_header_list),
                ],
            );
            let more = config
                .connection_window
                .saturating_sub(frame::DEFAULT_WINDOW);
            if more > 0 {
                frame::put_window_update(&mut state.out, 0, more);
                state.recv_window += i64::from(more);
            }
        }
        Self {
            io,
            shared,
            config,
            read: BytesMut::new(),
            writing: BytesMut::new(),
            decoder: hpack::Decoder::new(4096),
            partial: None,
            preface_read: false,
            settings_seen: false,
            last_peer_stream: 0,
            accepted: VecDeque::new(),
            read_closed: false,
            ending: None,
            done: None,
        }
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
        if self.ending.is_none() {
            if let Err(e) = self.read_frames(cx) {
                return Poll::Ready(Err(e));
            }
        }
        loop {
            if let Err(e) = self.write(cx) {
                return Poll::Ready(Err(e));
            }
            // Done running: from here on a handle adding output wakes the
            // task; if one did since the write, write again.
            let mut state = self.shared.lock();
            state.driver_idle();
            if state.out.is_empty() || !self.writing.is_empty() {
                break;
            }
            state.driver_running(cx.waker());
        }
        if !self.writing.is_empty() {
            return Poll::Pending;
        }
        if let Some(e) = self.ending.take() {
            return Poll::Ready(Err(e));
        }
        let state = self.shared.lock();
        let quiet = state.streams.is_empty() && self.accepted.is_empty() && state.out.is_empty();
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

    /// Reads and applies frames until the socket has no more for now.
    fn read_frames(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        for _ in 0..READS_PER_TURN {
            if let Err(Broken(reason, detail)) = self.apply_frames() {
                self.go_away(reason, detail);
                return Ok(());
            }
            // Output not taken by the peer: read no more until it is.
            if self.shared.lock().out.len() >= 2 * self.config.send_buffer.max(READ_CHUNK) {
                return Ok(());
            }
            if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
                self.read.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    return Ok(());
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Err(Error::Io(e.to_string().into())),
            }
        }
        // More may be waiting: come back after others ran.
        cx.waker().wake_by_ref();
        Ok(())
    }

    /// Writes the output until it is all written or the socket is full.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let mut wrote = false;
        loop {
            if self.writing.is_empty() {
                let mut state = self.shared.lock();
                state.unblock();
                if state.out.is_empty() {
                    break;
                }
                std::mem::swap(&mut self.writing, &mut state.out);
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.writing) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => return Err(Error::Io("the connection took no bytes".into())),
                Poll::Ready(Ok(n)) => {
                    wrote = true;
                    self.writing.advance(n);
                    if self.writing.is_empty() {
                        // Keeps the allocation for the next swap.
                        self.writing.clear();
                    }
                }
                Poll::Ready(Err(e)) => return Err(Error::Io(e.to_string().into())),
            }
        }
        if wrote {
            if let Poll::Ready(Err(e)) = Pin::new(&mut self.io).poll_flush(cx) {
                return Err(Error::Io(e.to_string().into()));
            }
        }
        Ok(())
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

    fn apply(&mut self, head: Head, payload: Bytes) -> Result<(), Broken> {
        if !self.settings_seen && head.kind != frame::SETTINGS {
            return Err(Broken(Reason::PROTOCOL_ERROR, "the first frame was not SETTINGS"));
        }
        if self.partial.is_some() && head.kind != frame::CONTINUATION {
            return Err(Broken(Reason::PROTOCOL_ERROR, "a frame inside a header block"));
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload),
            frame::HEADERS => self.on_headers(head, &payload),
            frame::CONTINUATION => self.on_continuation(head, &payload),
            frame::PRIORITY => {
                if head.stream == 0 {
                    return Err(Broken(Reason::PROTOCOL_ERROR, "PRIORITY on stream 0"));
                }
                if head.len != 5 {
                    self.shared
                        .lock()
                        .reset(head.stream, Reason::FRAME_SIZE_ERROR, false);
                }
                Ok(())
            }
            frame::RST_STREAM => self.on_reset(head, &payload),
            frame::SETTINGS => self.on_settings(head, &payload),
            frame::PING => self.on_ping(head, &payload),
            frame::GOAWAY => self.on_goaway(head, &payload),
            frame::WINDOW_UPDATE => self.on_window_update(head, &payload),
            frame::PUSH_PROMISE => Err(Broken(Reason::PROTOCOL_ERROR, "PUSH_PROMISE")),
            // Unknown frame types are ignored.
            _ => Ok(()),
        }
    }

    /// The highest stream the peer opened (for GOAWAY).
    pub fn last_peer_stream(&self) -> u32 {
        self.last_peer_stream
    }

    /// Whether `id` is a stream the peer has not opened yet.
    fn idle(&self, id: u32) -> bool {
        id % 2 == 1 && id > self.last_peer_stream
    }

    fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), Broken> {
        if head.stream == 0 {
            return Err(Broken(Reason::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let range = frame::unpadded(&head, &payload)
            .ok_or(Broken(Reason::PROTOCOL_ERROR, "bad padding"))?;
        let data_len = range.len();
        let len = head.len;
        let mut state = self.shared.lock();
        state.recv_window -= len as i64;
        if state.recv_window < 0 {
            return Err(Broken(
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection's window",
            ));
        }
        let Some(stream) = state.streams.get_mut(&head.stream) else {
            if self.idle(head.stream) {
                return Err(Broken(Reason::PROTOCOL_ERROR, "DATA on an idle stream"));
            }
            // A stream that is gone: its bytes are free again.
            state.release_connection(len);
            return Ok(());
        };
        match stream.receiving {
            Receiving::Open => {}
            Receiving::Ended(_) => {
                state.release_connection(len);
                state.reset(head.stream, Reason::STREAM_CLOSED, false);
                return Ok(());
            }
            Receiving::Failed(_) => {
                state.release_connection(len);
                return Ok(());
            }
        }
        stream.recv_window -= len as i64;
        if stream.recv_window < 0 {
            state.release_connection(len);
            state.reset(head.stream, Reason::FLOW_CONTROL_ERROR, false);
            return Ok(());
        }
        if data_len > 0 {
            stream.received.push_back(payload.slice(range));
            stream.received_len += data_len;
        }
        if head.has(frame::END_STREAM) {
            stream.receiving = Receiving::Ended(None);
        }
        if let Some(w) = stream.recv_waker.take() {
            w.wake();
        }
        // Padding is not the reader's to give back.
        let padding = len - data_len;
        if padding > 0 {
            stream.received_len += padding;
            state.release(head.stream, padding);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        if head.stream == 0 {
            return Err(Broken(Reason::PROTOCOL_ERROR, "HEADERS on stream 0"));
        }
        let range = frame::unpadded(&head, payload)
            .ok_or(Broken(Reason::PROTOCOL_ERROR, "bad padding"))?;
        let mut fragment = &payload[range];
        if head.has(frame::PRIORITY_FLAG) {
            fragment = fragment
                .get(5..)
                .ok_or(Broken(Reason::FRAME_SIZE_ERROR, "short HEADERS"))?;
        }
        let end_stream = head.has(frame::END_STREAM);
        if head.has(frame::END_HEADERS) {
            return self.on_block(head.stream, end_stream, fragment);
        }
        self.partial = Some(Partial {
            stream: head.stream,
            end_stream,
            block: BytesMut::from(fragment),
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        let Some(partial) = self.partial.as_mut() else {
            return Err(Broken(Reason::PROTOCOL_ERROR, "CONTINUATION without HEADERS"));
        };
        if partial.stream != head.stream {
            return Err(Broken(Reason::PROTOCOL_ERROR, "CONTINUATION of another stream"));
        }
        partial.block.put_slice(payload);
        // A block need not be larger than the list it decodes to (plus
        // some room for encodings that are longer than their fields).
        if partial.block.len() > self.config.max_header_list as usize + 1024 {
            return Err(Broken(Reason::ENHANCE_YOUR_CALM, "a header block too large"));
        }
        if !head.has(frame::END_HEADERS) {
            return Ok(());
        }
        let Some(partial) = self.partial.take() else {
            return Ok(());
        };
        self.on_block(partial.stream, partial.end_stream, &partial.block)
    }

    /// A whole header block: a new request, or a stream's trailers.
    fn on_block(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<(), Broken> {
        let mut fields = Fields::default();
        let fits = self
            .decoder
            .decode(block, self.config.max_header_list as usize, |n, v| {
                fields.add(n, v)
            })
            .map_err(|e| Broken(Reason::COMPRESSION_ERROR, e.0))?;
        let mut state = self.shared.lock();
        if let Some(stream) = state.streams.get_mut(&id) {
            // Trailers: they end the stream and carry no pseudo-headers.
            if !matches!(stream.receiving, Receiving::Open) {
                state.reset(id, Reason::STREAM_CLOSED, false);
            } else if !end_stream || !fits || fields.malformed || fields.pseudo {
                state.reset(id, Reason::PROTOCOL_ERROR, false);
            } else {
                stream.receiving = Receiving::Ended(Some(fields.headers));
                if let Some(w) = stream.recv_waker.take() {
                    w.wake();
                }
            }
            return Ok(());
        }
        if !self.idle(id) {
            return Err(Broken(Reason::PROTOCOL_ERROR, "HEADERS on a closed or even stream"));
        }
        self.last_peer_stream = id;
        let refused = if state.going_away || state.failed.is_some() {
            Some(Reason::REFUSED_STREAM)
        } else if state.streams.len() >= self.config.max_streams as usize {
            Some(Reason::REFUSED_STREAM)
        } else if !fits || fields.malformed || fields.method.is_none() || fields.path.is_none() {
            Some(Reason::PROTOCOL_ERROR)
        } else {
            None
        };
        if let Some(reason) = refused {
            frame::put_reset(&mut state.out, id, reason);
            return Ok(());
        }
        let send_window = state.peer_initial_window;
        state.streams.insert(
            id,
            Stream::new(send_window, self.config.stream_window, end_stream),
        );
        drop(state);
        self.accepted.push_back(Accepted {
            head: RequestHead {
                method: fields.method.unwrap_or_default(),
                path: fields.path.unwrap_or_default(),
                headers: fields.headers,
            },
            stream: StreamRef::new(self.shared.clone(), id),
        });
        Ok(())
    }

    fn on_reset(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        let code: [u8; 4] = payload
            .try_into()
            .map_err(|_| Broken(Reason::FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes"))?;
        if head.stream == 0 || self.idle(head.stream) {
            return Err(Broken(Reason::PROTOCOL_ERROR, "RST_STREAM on an idle stream"));
        }
        let reason = Reason(u32::from_be_bytes(code));
        self.shared.lock().reset(head.stream, reason, true);
        Ok(())
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        if head.stream != 0 {
            return Err(Broken(Reason::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if head.has(frame::ACK) {
            return if payload.is_empty() {
                Ok(())
            } else {
                Err(Broken(Reason::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"))
            };
        }
        if payload.len() % 6 != 0 {
            return Err(Broken(Reason::FRAME_SIZE_ERROR, "SETTINGS not in 6-byte units"));
        }
        self.settings_seen = true;
        let mut state = self.shared.lock();
        for setting in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(Broken(Reason::PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    state
                        .set_initial_window(value)
                        .map_err(|r| Broken(r, "INITIAL_WINDOW_SIZE too large"))?;
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..1 << 24).contains(&value) {
                        return Err(Broken(Reason::PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range"));
                    }
                    state.peer_max_frame = value as usize;
                }
                // Our encoder keeps no table, so its size does not matter;
                // we never push; we open no streams; header lists we send
                // are small.
                _ => {}
            }
        }
        frame::put_settings_ack(&mut state.out);
        Ok(())
    }

    fn on_ping(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        let data: [u8; 8] = payload
            .try_into()
            .map_err(|_| Broken(Reason::FRAME_SIZE_ERROR, "PING not 8 bytes"))?;
        if head.stream != 0 {
            return Err(Broken(Reason::PROTOCOL_ERROR, "PING on a stream"));
        }
        let mut state = self.shared.lock();
        if !head.has(frame::ACK) {
            frame::put_ping(&mut state.out, data, true);
        } else if state.ping.sent == Some(data) {
            state.ping.sent = None;
            state.ping.answered = true;
            if let Some(w) = state.ping.waker.take() {
                w.wake();
            }
        }
        Ok(())
    }

    fn on_goaway(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        if head.stream != 0 {
            return Err(Broken(Reason::PROTOCOL_ERROR, "GOAWAY on a stream"));
        }
        let Some(code) = payload.get(4..8) else {
            return Err(Broken(Reason::FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes"));
        };
        let reason = Reason(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
        tracing::debug!(%reason, "HTTP/2 peer sent GOAWAY");
        // The client opens no more streams; those open go on, and the
        // connection ends after the last.
        let mut state = self.shared.lock();
        state.going_away = true;
        if reason != Reason::NO_ERROR {
            state.fail(Error::GoAway {
                reason,
                remote: true,
                detail: "",
            });
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), Broken> {
        let bytes: [u8; 4] = payload
            .try_into()
            .map_err(|_| Broken(Reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes"))?;
        let increment = u32::from_be_bytes(bytes) & frame::MAX_WINDOW;
        let mut state = self.shared.lock();
        if increment == 0 {
            if head.stream == 0 {
                return Err(Broken(Reason::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            state.reset(head.stream, Reason::PROTOCOL_ERROR, false);
            return Ok(());
        }
        state
            .grant(head.stream, increment)
            .map_err(|r| Broken(r, "the connection's window beyond 2^31 - 1"))
    }
}

/// A header block's fields as a request needs them.
#[derive(Default)]
struct Fields {
    method: Option<String>,
    path: Option<String>,
    headers: HeaderMap,
    /// A pseudo-header came (not allowed in trailers).
    pseudo: bool,
    /// Something RFC 9113 section 8.2 calls malformed.
    malformed: bool,
}

impl Fields {
    fn add(&mut self, name: &[u8], value: &[u8]) {
        if let Some(pseudo) = name.strip_prefix(b":") {
            self.pseudo = true;
            if !self.headers.is_empty() {
                // Pseudo-headers come first.
                self.malformed = true;
                return;
            }
            let value = String::from_utf8_lossy(value).into_owned();
            let slot = match pseudo {
                b"method" => &mut self.method,
                b"path" => &mut self.path,
                b"scheme" | b"authority" | b"protocol" => return,
                _ => {
                    self.malformed = true;
                    return;
                }
            };
            if slot.replace(value).is_some() {
                self.malformed = true;
            }
            return;
        }
        // Names are lower case in HTTP/2; connection-specific ones are not
        // allowed, nor `te` other than "trailers".
        if name.iter().any(u8::is_ascii_uppercase)
            || matches!(
                name,
                b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
            )
            || (name == b"te" && value != b"trailers")
        {
            self.malformed = true;
            return;
        }
        match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.malformed = true,
        }
    }
}
