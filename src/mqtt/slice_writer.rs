//! Bytes written into a slice that was counted for them beforehand: each
//! byte is a store and a bounds check, not a call through `BufMut` (which
//! for a slice or a `BytesMut` costs a call and a capacity check per
//! integer). For the hot paths that write a whole packet or envelope at
//! once: MQTT's PUBLISH, and the gRPC line's envelope of one.

/// Writes into `out` from its start.
pub struct SliceWriter<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer at the start of `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        Self { out, at: 0 }
    }

    // A write past the end is a miscount of the caller's, never anything
    // a peer sent: the slice's bounds check stops it.
    #[inline]
    pub fn byte(&mut self, byte: u8) {
        self.out[self.at] = byte;
        self.at += 1;
    }

    /// A big-endian `u16`, as MQTT writes lengths and packet identifiers.
    #[inline]
    pub fn u16(&mut self, value: u16) {
        self.bytes(&value.to_be_bytes());
    }

    /// Seven bits a byte, lowest first, the high bit set on all but the
    /// last: MQTT's Variable Byte Integer and protobuf's varint alike.
    #[inline]
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    /// Whether the slice is filled: what the caller counted was written.
    pub fn is_full(&self) -> bool {
        self.at == self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_integers_as_mqtt_and_protobuf_do() {
        let mut out = [0u8; 11];
        let mut w = SliceWriter::new(&mut out);
        w.byte(0x30);
        w.varint(321);
        w.u16(0x0102);
        w.bytes(b"ab");
        w.varint(0);
        w.varint(16_384);
        assert!(w.is_full());
        // 321 = 0b10_1000001: 0xc1 0x02; 16,384: 0x80 0x80 0x01.
        assert_eq!(
            out,
            [
                0x30, 0xc1, 0x02, 0x01, 0x02, b'a', b'b', 0x00, 0x80, 0x80, 0x01
            ]
        );
    }
}
