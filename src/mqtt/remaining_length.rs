//! MQTT's Remaining Length (a variable byte integer: seven bits a byte, at
//! most four bytes), read in one place for every path that handles fixed
//! headers by hand: the PUBLISH fast path, the first-packet reader and the
//! passthrough relay. It is written by [`super::SliceWriter::varint`]
//! (protobuf's varints are the same encoding), after [`encoded_len`] has
//! counted it and the caller has checked it against
//! [`super::MAX_REMAINING_LENGTH`].

/// How many bytes `value` takes as a Remaining Length (1 to 4).
pub fn encoded_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// What one more byte made of a Remaining Length being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More bytes follow.
    More,
    /// The value is complete.
    Done(u32),
    /// A fifth byte would be needed: not MQTT.
    Malformed,
}

/// Reads a Remaining Length a byte at a time, for readers that must not
/// take a byte past the fixed header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoder {
    value: u32,
    bytes: u8,
}

impl Decoder {
    /// Takes the next byte of the Remaining Length.
    pub fn push(&mut self, byte: u8) -> Step {
        self.value |= u32::from(byte & 0x7f) << (7 * self.bytes);
        self.bytes += 1;
        if byte & 0x80 == 0 {
            Step::Done(self.value)
        } else if self.bytes == 4 {
            Step::Malformed
        } else {
            Step::More
        }
    }
}

/// The Remaining Length at the start of `bytes` and how many bytes it took;
/// `None` when `bytes` ends first or it is malformed.
pub fn parse(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut decoder = Decoder::default();
    for (i, byte) in bytes.iter().enumerate() {
        match decoder.push(*byte) {
            Step::More => {}
            Step::Done(value) => return Some((value, i + 1)),
            Step::Malformed => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{MAX_REMAINING_LENGTH, SliceWriter};

    #[test]
    fn round_trips_at_every_width_boundary() {
        for value in [
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut out = vec![0; encoded_len(value)];
            let mut w = SliceWriter::new(&mut out);
            w.varint(value as u64);
            assert!(w.is_full(), "{value}");
            assert_eq!(parse(&out), Some((value as u32, out.len())), "{value}");
        }
    }

    #[test]
    fn spec_examples_and_bad_input() {
        // MQTT 3.1.1 table 2.4: 321 is 0xC1 0x02.
        let mut out = [0; 2];
        SliceWriter::new(&mut out).varint(321);
        assert_eq!(out, [0xc1, 0x02]);
        assert_eq!(parse(&[0xff, 0xff, 0xff, 0xff, 0x01]), None, "five bytes");
        assert_eq!(parse(&[0x80]), None, "cut short");
        let mut decoder = Decoder::default();
        assert_eq!(decoder.push(0x80), Step::More);
        assert_eq!(decoder.push(0x01), Step::Done(128));
    }
}
