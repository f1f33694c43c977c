//! Each frame the peer sends, applied: DATA into its stream, header
//! blocks into new calls or trailers, resets, SETTINGS, PING, GOAWAY and
//! window grants; anything RFC 9113 calls a connection error is returned
//! as [`Broken`], for GOAWAY.

use bytes::{BufMut, Bytes, BytesMut};

use super::fields::Fields;
use super::{Accepted, Broken, Driver, Partial, Role};
use crate::net::http2::Error;
use crate::net::http2::entry::{Receiving, Response, Stream};
use crate::net::http2::frame::{self, Head, Reason};
use crate::net::http2::server::RequestHead;
use crate::net::http2::state::State;
use crate::net::http2::stream::StreamRef;

impl Driver {
    pub(super) fn apply(&mut self, head: Head, payload: Bytes) -> Result<(), Broken> {
        if !self.settings_seen && head.kind != frame::SETTINGS {
            return Err(Broken(
                Reason::PROTOCOL_ERROR,
                "the first frame was not SETTINGS",
            ));
        }
        if self.partial.is_some() && head.kind != frame::CONTINUATION {
            return Err(Broken(
                Reason::PROTOCOL_ERROR,
                "a frame inside a header block",
            ));
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

    /// Whether `id` is a stream never opened: by the client (odd ids), or
    /// by the server (even ids: push, which we neither do nor allow).
    fn idle(&self, state: &State, id: u32) -> bool {
        match self.role {
            Role::Server => id.is_multiple_of(2) || id > self.last_peer_stream,
            Role::Client => id.is_multiple_of(2) || id >= state.next_stream,
        }
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
        if !state.streams.contains_key(&head.stream) {
            if self.idle(&state, head.stream) {
                return Err(Broken(Reason::PROTOCOL_ERROR, "DATA on an idle stream"));
            }
            // A stream that is gone: its bytes are free again.
            state.release_connection(len);
            return Ok(());
        }
        let Some(stream) = state.streams.get_mut(&head.stream) else {
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
            stream.received.push(payload.slice(range));
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
        let range =
            frame::unpadded(&head, payload).ok_or(Broken(Reason::PROTOCOL_ERROR, "bad padding"))?;
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
            return Err(Broken(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        if partial.stream != head.stream {
            return Err(Broken(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION of another stream",
            ));
        }
        partial.block.put_slice(payload);
        // A block need not be larger than the list it decodes to (plus
        // some room for encodings that are longer than their fields).
        if partial.block.len() > self.config.max_header_list as usize + 1024 {
            return Err(Broken(
                Reason::ENHANCE_YOUR_CALM,
                "a header block too large",
            ));
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
            if matches!(stream.response, Response::Waiting) {
                // The response's head (a 1xx one is passed over).
                let status = fields.status.as_deref().and_then(|s| s.parse::<u16>().ok());
                match status {
                    Some(100..=199) if !end_stream => {}
                    Some(status @ 200..=599) if fits && !fields.malformed => {
                        stream.response = Response::Arrived(Box::new((status, fields.headers)));
                        if end_stream {
                            stream.receiving = Receiving::Ended(None);
                        }
                        if let Some(w) = stream.recv_waker.take() {
                            w.wake();
                        }
                    }
                    _ => state.reset(id, Reason::PROTOCOL_ERROR, false),
                }
            } else if !matches!(stream.receiving, Receiving::Open) {
                state.reset(id, Reason::STREAM_CLOSED, false);
            } else if !end_stream || !fits || fields.malformed || fields.pseudo {
                // Trailers: they end the stream and carry no pseudo-headers.
                state.reset(id, Reason::PROTOCOL_ERROR, false);
            } else {
                stream.receiving = Receiving::Ended(Some(Box::new(fields.headers)));
                if let Some(w) = stream.recv_waker.take() {
                    w.wake();
                }
            }
            return Ok(());
        }
        if self.role == Role::Client || id <= self.last_peer_stream {
            // A stream of ours that is gone (the block kept the table in
            // step), or one never opened.
            return if self.idle(&state, id) {
                Err(Broken(Reason::PROTOCOL_ERROR, "HEADERS on an idle stream"))
            } else {
                Ok(())
            };
        }
        if id.is_multiple_of(2) {
            return Err(Broken(Reason::PROTOCOL_ERROR, "HEADERS on an even stream"));
        }
        self.last_peer_stream = id;
        let full = state.streams.len() >= self.config.max_streams as usize;
        let refused = if state.going_away || state.failed.is_some() || full {
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
            Box::new(Stream::new(
                send_window,
                self.config.stream_window,
                end_stream,
            )),
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
        let mut state = self.shared.lock();
        if head.stream == 0 || self.idle(&state, head.stream) {
            return Err(Broken(
                Reason::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        let reason = Reason(u32::from_be_bytes(code));
        state.reset(head.stream, reason, true);
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
                Err(Broken(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ))
            };
        }
        if !payload.len().is_multiple_of(6) {
            return Err(Broken(
                Reason::FRAME_SIZE_ERROR,
                "SETTINGS not in 6-byte units",
            ));
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
                frame::SETTINGS_MAX_CONCURRENT_STREAMS => {
                    state.peer_max_streams = value as usize;
                    state.wake_slot_waiters();
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..1 << 24).contains(&value) {
                        return Err(Broken(
                            Reason::PROTOCOL_ERROR,
                            "MAX_FRAME_SIZE out of range",
                        ));
                    }
                    state.peer_max_frame = value as usize;
                }
                // Our encoder keeps no table, so its size does not matter;
                // we never push; header lists we send are small.
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
            return Err(Broken(
                Reason::FRAME_SIZE_ERROR,
                "GOAWAY shorter than 8 bytes",
            ));
        };
        let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
            & frame::MAX_WINDOW;
        let reason = Reason(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
        tracing::debug!(%reason, last, "HTTP/2 peer sent GOAWAY");
        // No more new streams; those open go on (on a client, those up
        // to `last`: the server will not process the others, which may be
        // tried again elsewhere), and the connection ends after the last.
        let gone = Error::GoAway {
            reason,
            remote: true,
            detail: "",
        };
        let mut state = self.shared.lock();
        state.going_away = true;
        state.wake_slot_waiters();
        if self.role == Role::Client {
            let unprocessed: Vec<u32> = state
                .streams
                .keys()
                .filter(|&&id| id > last)
                .copied()
                .collect();
            for id in unprocessed {
                state.abandon(id, gone.clone());
            }
        }
        if reason != Reason::NO_ERROR {
            state.fail(gone);
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
