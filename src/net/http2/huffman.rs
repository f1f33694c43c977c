//! HPACK's Huffman code (RFC 7541, Appendix B), decoding only: peers may
//! send header strings Huffman-coded, we send ours plain. The code is
//! canonical (codes of one length are consecutive, in symbol order, and
//! each length's first code follows from the one before), so it is fully
//! given by each symbol's code length; decoding walks it a bit at a time,
//! which is plenty for the few header blocks a call carries.

/// The code length of every symbol, 0-255 then EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' '
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p'
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240
    30, // EOS
];

const EOS: u16 = 256;
const LONGEST: usize = 30;

/// Per code length: the first code of that length, how many there are,
/// and where their symbols start in `symbols`.
struct Canonical {
    first: [u32; LONGEST + 1],
    count: [u16; LONGEST + 1],
    start: [u16; LONGEST + 1],
    /// Symbols ordered by (length, symbol): the code order.
    symbols: [u16; 257],
}

const CODE: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut count = [0u16; LONGEST + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; LONGEST + 1];
    let mut start = [0u16; LONGEST + 1];
    let mut code = 0u32;
    let mut at = 0u16;
    let mut len = 1;
    while len <= LONGEST {
        first[len] = code;
        start[len] = at;
        code = (code + count[len] as u32) << 1;
        at += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = start;
    let mut symbol = 0;
    while symbol < 257 {
        let len = LENGTHS[symbol] as usize;
        symbols[next[len] as usize] = symbol as u16;
        next[len] += 1;
        symbol += 1;
    }
    Canonical {
        first,
        count,
        start,
        symbols,
    }
}

/// Why a Huffman-coded string is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Decodes `coded` onto `out`. Fails on the EOS symbol, on padding longer
/// than 7 bits or not all ones, and on a code that is no symbol's.
pub fn decode(coded: &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
    out.reserve(coded.len() * 8 / 5);
    let mut code = 0u32;
    let mut len = 0usize;
    for byte in coded {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            if len > LONGEST {
                return Err(Invalid);
            }
            let offset = code.wrapping_sub(CODE.first[len]);
            if offset < u32::from(CODE.count[len]) {
                let symbol = CODE.symbols[usize::from(CODE.start[len]) + offset as usize];
                if symbol == EOS {
                    return Err(Invalid);
                }
                // Every symbol but EOS is a byte.
                out.push(symbol as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // What is left is padding: the most significant bits of EOS (all
    // ones), shorter than a byte.
    if len > 7 || code != (1 << len) - 1 {
        return Err(Invalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn decoded(s: &str) -> Result<Vec<u8>, Invalid> {
        let mut out = Vec::new();
        decode(&hex(s), &mut out).map(|()| out)
    }

    #[test]
    fn the_rfc_examples_decode() {
        // RFC 7541, C.4 and C.6.
        let cases: [(&str, &str); 7] = [
            ("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com"),
            ("a8eb10649cbf", "no-cache"),
            ("25a849e95ba97d7f", "custom-key"),
            ("25a849e95bb8e8b4bf", "custom-value"),
            ("6402", "302"),
            ("aec3771a4b", "private"),
            (
                "d07abe941054d444a8200595040b8166e082a62d1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
        ];
        for (coded, plain) in cases {
            assert_eq!(decoded(coded), Ok(plain.as_bytes().to_vec()), "{plain}");
        }
    }

    #[test]
    fn the_code_is_complete_and_prefix_free() {
        // Kraft's sum of a complete prefix code is exactly one.
        let sum: u64 = LENGTHS
            .iter()
            .map(|&l| 1u64 << (LONGEST - l as usize))
            .sum();
        assert_eq!(sum, 1u64 << LONGEST);
        // EOS is the all-ones code of 30 bits.
        assert_eq!(
            CODE.first[30] + u32::from(CODE.count[30]) - 1,
            (1 << 30) - 1
        );
        assert_eq!(CODE.symbols[256], EOS);
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        // '0' is 00000: the rest of the byte must be ones.
        assert_eq!(decoded("07"), Ok(b"0".to_vec()));
        assert_eq!(decoded("06"), Err(Invalid), "padding with a zero");
        // A whole byte of ones is padding longer than seven bits.
        assert_eq!(decoded("07ff"), Err(Invalid));
        // EOS itself, padded.
        assert_eq!(decoded("ffffffff"), Err(Invalid));
        assert_eq!(decoded(""), Ok(Vec::new()));
    }
}
