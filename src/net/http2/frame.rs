//! HTTP/2 frames (RFC 9113, section 4 and 6): the 9-byte frame header, the
//! frame types, flags, settings and error codes this implementation uses,
//! and writers that append whole frames to a connection's output buffer.
//! Reading a frame's payload is the connection's ([`super::connection`]),
//! which checks every length against what arrived.

use bytes::{BufMut, BytesMut};

/// What a client sends before its first frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header's length.
pub const HEAD: usize = 9;
/// The frame size every peer accepts (SETTINGS_MAX_FRAME_SIZE's default).
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// A window's size before SETTINGS say otherwise, and the largest any
/// window may reach.
pub const DEFAULT_WINDOW: u32 = 65_535;
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// An HTTP/2 error code (RFC 9113, section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    pub const NO_ERROR: Reason = Reason(0x0);
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    pub const CANCEL: Reason = Reason(0x8);
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
    pub const INADEQUATE_SECURITY: Reason = Reason(0xc);

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "error code {:#x}", self.0),
        }
    }
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(bytes: &[u8; HEAD]) -> Self {
        Self {
            len: usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            // The reserved bit is ignored on receipt.
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & MAX_WINDOW,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A frame's payload without its padding (DATA, HEADERS with PADDED):
/// `None` if the padding does not fit the payload.
pub fn unpadded(head: &Head, payload: &[u8]) -> Option<std::ops::Range<usize>> {
    if !head.has(PADDED) {
        return Some(0..payload.len());
    }
    let pad = usize::from(*payload.first()?);
    let end = payload.len().checked_sub(pad)?;
    (end >= 1).then_some(1..end)
}

/// Appends a frame header.
pub fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24);
    out.put_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.put_u32(stream);
}

/// Sets the length of the frame whose header begins `frame`.
pub fn set_len(frame: &mut [u8], len: usize) {
    debug_assert!(len < 1 << 24);
    frame[..3].copy_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
}

/// A DATA frame (`payload` within the peer's largest frame).
pub fn put_data(out: &mut BytesMut, stream: u32, payload: &[u8], end: bool) {
    put_head(
        out,
        payload.len(),
        DATA,
        if end { END_STREAM } else { 0 },
        stream,
    );
    out.put_slice(payload);
}

/// A header block as HEADERS and as many CONTINUATIONs as `max_frame`
/// needs.
pub fn put_headers(out: &mut BytesMut, stream: u32, block: &[u8], end: bool, max_frame: usize) {
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let mut kind = HEADERS;
    let mut flags = if end { END_STREAM } else { 0 };
    // An empty block is still one HEADERS frame.
    let empty: &[u8] = &[];
    let first = chunks.next().unwrap_or(empty);
    let mut chunk = first;
    loop {
        let last = chunks.peek().is_none();
        if last {
            flags |= END_HEADERS;
        }
        put_head(out, chunk.len(), kind, flags, stream);
        out.put_slice(chunk);
        match chunks.next() {
            Some(next) => chunk = next,
            None => return,
        }
        kind = CONTINUATION;
        flags = 0;
    }
}

/// SETTINGS with `values`.
pub fn put_settings(out: &mut BytesMut, values: &[(u16, u32)]) {
    put_head(out, values.len() * 6, SETTINGS, 0, 0);
    for &(id, value) in values {
        out.put_u16(id);
        out.put_u32(value);
    }
}

pub fn put_settings_ack(out: &mut BytesMut) {
    put_head(out, 0, SETTINGS, ACK, 0);
}

pub fn put_ping(out: &mut BytesMut, payload: [u8; 8], ack: bool) {
    put_head(out, 8, PING, if ack { ACK } else { 0 }, 0);
    out.put_slice(&payload);
}

pub fn put_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.put_u32(increment);
}

pub fn put_reset(out: &mut BytesMut, stream: u32, reason: Reason) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.put_u32(reason.0);
}

pub fn put_goaway(out: &mut BytesMut, last_stream: u32, reason: Reason) {
    put_head(out, 8, GOAWAY, 0, 0);
    out.put_u32(last_stream);
    out.put_u32(reason.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_and_ignores_the_reserved_bit() {
        let mut out = BytesMut::new();
        put_head(&mut out, 0x01_02_03, HEADERS, END_HEADERS, 7);
        out[5] |= 0x80;
        let head = Head::parse(out[..HEAD].try_into().expect("nine bytes"));
        assert_eq!(
            head,
            Head {
                len: 0x01_02_03,
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 7
            }
        );
    }

    #[test]
    fn a_large_block_goes_out_as_headers_and_continuations() {
        let mut out = BytesMut::new();
        put_headers(&mut out, 3, &[9u8; 25], true, 10);
        let mut frames = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let head = Head::parse(out[at..at + HEAD].try_into().expect("nine bytes"));
            frames.push((head.kind, head.flags, head.len));
            at += HEAD + head.len;
        }
        assert_eq!(
            frames,
            vec![
                (HEADERS, END_STREAM, 10),
                (CONTINUATION, 0, 10),
                (CONTINUATION, END_HEADERS, 5)
            ]
        );
        let mut out = BytesMut::new();
        put_headers(&mut out, 3, &[], false, 10);
        assert_eq!(&out[..5], &[0, 0, 0, HEADERS, END_HEADERS]);
    }

    #[test]
    fn padding_is_taken_off_or_refused() {
        let padded = Head {
            len: 0,
            kind: DATA,
            flags: PADDED,
            stream: 1,
        };
        assert_eq!(unpadded(&padded, &[2, b'a', b'b', 0, 0]), Some(1..3));
        assert_eq!(
            unpadded(&padded, &[5, b'a']),
            None,
            "more padding than payload"
        );
        assert_eq!(unpadded(&padded, &[]), None, "no pad length");
        let plain = Head { flags: 0, ..padded };
        assert_eq!(unpadded(&plain, b"ab"), Some(0..2));
    }
}
