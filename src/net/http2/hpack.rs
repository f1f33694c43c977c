//! HPACK (RFC 7541), the header compression of HTTP/2. The decoder is
//! complete (static and dynamic table, size updates, Huffman strings) with
//! every length checked against what arrived, since peers use all of it;
//! the encoder sends each field as a literal that is never indexed, with
//! the static table's name where it has one, so our side keeps no table
//! and a block can be made at any time without ordering concerns (the few
//! header blocks of a gRPC call are not worth compressing harder).

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};

use super::huffman;

/// The static table (RFC 7541, Appendix A): index 1 is the first entry.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// What each dynamic table entry costs beyond its name and value.
const ENTRY_OVERHEAD: usize = 32;

/// A header block that cannot be decoded: a connection error
/// (COMPRESSION_ERROR), since the peer's table and ours now differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad header block: {}", self.0)
    }
}

/// A dynamic table entry: a name and a value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// One connection's decoding state: the dynamic table the peer fills.
pub struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    /// The size the peer last chose, at most `limit`.
    max_size: usize,
    /// The size we allowed (SETTINGS_HEADER_TABLE_SIZE, 4,096 by default).
    limit: usize,
}

impl Decoder {
    /// A decoder whose table may hold `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes a whole header block, handing each field to `field`.
    /// Returns whether the fields stayed within `max_list` bytes (each
    /// field's name and value and 32); a block over it is still decoded
    /// to the end, keeping the table in step, but its fields past the
    /// limit are not handed on.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<bool, Malformed> {
        let mut at = 0;
        let mut listed = 0usize;
        let mut fits = true;
        let mut name = Vec::new();
        let mut value = Vec::new();
        let mut first = true;
        while at < block.len() {
            let byte = block[at];
            if byte & 0x80 != 0 {
                let index = integer(block, &mut at, 7)?;
                let (n, v) = self.entry(index)?;
                listed += n.len() + v.len() + ENTRY_OVERHEAD;
                fits &= listed <= max_list;
                if fits {
                    field(n, v);
                }
            } else if byte & 0xe0 == 0x20 {
                // Table size updates only come first in a block.
                if !first {
                    return Err(Malformed("table size update after a field"));
                }
                let size = integer(block, &mut at, 5)?;
                if size > self.limit {
                    return Err(Malformed("table size beyond the allowed"));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                let (prefix, indexed) = if byte & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    // Without indexing (0000) or never indexed (0001).
                    (4, false)
                };
                let index = integer(block, &mut at, prefix)?;
                name.clear();
                if index == 0 {
                    string(block, &mut at, &mut name)?;
                } else {
                    name.extend_from_slice(self.entry(index)?.0);
                }
                value.clear();
                string(block, &mut at, &mut value)?;
                listed += name.len() + value.len() + ENTRY_OVERHEAD;
                fits &= listed <= max_list;
                if fits {
                    field(&name, &value);
                }
                if indexed {
                    self.insert(&name, &value);
                }
            }
            first = false;
        }
        Ok(fits)
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), Malformed> {
        if index == 0 {
            return Err(Malformed("index 0"));
        }
        if let Some((name, value)) = STATIC.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        self.table
            .get(index - 1 - STATIC.len())
            .map(|(n, v)| (&n[..], &v[..]))
            .ok_or(Malformed("index beyond the tables"))
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        self.evict(size);
        // An entry larger than the table empties it and is not kept.
        if size <= self.max_size {
            self.table.push_front((name.into(), value.into()));
            self.size += size;
        }
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((n, v)) = self.table.pop_back() else {
                break;
            };
            self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Reads an integer with an `prefix`-bit prefix at `at`.
fn integer(block: &[u8], at: &mut usize, prefix: u8) -> Result<usize, Malformed> {
    let mask = (1usize << prefix) - 1;
    let first = *block.get(*at).ok_or(Malformed("truncated"))?;
    *at += 1;
    let mut value = usize::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*at).ok_or(Malformed("truncated integer"))?;
        *at += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        // No length or index we accept needs more than 28 bits.
        if shift > 21 {
            return Err(Malformed("integer too large"));
        }
    }
}

/// Reads a string (plain or Huffman-coded) at `at` onto `out`.
fn string(block: &[u8], at: &mut usize, out: &mut Vec<u8>) -> Result<(), Malformed> {
    let huffman = block.get(*at).ok_or(Malformed("truncated"))? & 0x80 != 0;
    let len = integer(block, at, 7)?;
    let end = at
        .checked_add(len)
        .filter(|&end| end <= block.len())
        .ok_or(Malformed("string beyond the block"))?;
    let bytes = &block[*at..end];
    *at = end;
    if huffman {
        huffman::decode(bytes, out).map_err(|_| Malformed("bad Huffman string"))
    } else {
        out.extend_from_slice(bytes);
        Ok(())
    }
}

/// Writes `value` with an `prefix`-bit prefix, `flags` in the first
/// byte's other bits.
fn put_integer(out: &mut BytesMut, flags: u8, prefix: u8, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        // Below the mask: fits the prefix.
        out.put_u8(flags | value as u8);
        return;
    }
    out.put_u8(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.put_u8((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

fn put_string(out: &mut BytesMut, bytes: &[u8]) {
    put_integer(out, 0, 7, bytes.len());
    out.put_slice(bytes);
}

/// A field from the static table, name and value both (`:status: 200`,
/// `:method: POST`).
pub fn put_indexed(out: &mut BytesMut, index: usize) {
    put_integer(out, 0x80, 7, index);
}

/// A field as a literal that is never indexed, with the static table's
/// name where it has one.
pub fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
        Some(i) => put_integer(out, 0x10, 4, i + 1),
        None => {
            out.put_u8(0x10);
            put_string(out, name);
        }
    }
    put_string(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn fields(decoder: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut got = Vec::new();
        let fits = decoder
            .decode(&hex(block), 16 * 1024, |n, v| {
                got.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ));
            })
            .expect("decodes");
        assert!(fits);
        got
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_rfc_request_examples_with_huffman_decode_in_sequence() {
        // RFC 7541, C.4: three requests on one connection, the table
        // carrying entries from one block to the next.
        let mut decoder = Decoder::new(4096);
        assert_eq!(
            fields(&mut decoder, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(
            fields(&mut decoder, "8286 84be 5886 a8eb 1064 9cbf"),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        assert_eq!(
            fields(
                &mut decoder,
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"
            ),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(decoder.size, 164, "the table's size after C.4.3");
    }

    #[test]
    fn a_small_table_evicts_the_oldest_entries() {
        // RFC 7541, C.5.1-C.5.2 with a 256-byte table, plain strings.
        let mut decoder = Decoder::new(256);
        fields(
            &mut decoder,
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
        );
        assert_eq!(decoder.size, 222);
        let second = fields(&mut decoder, "4803 3330 37c1 c0bf");
        assert_eq!(second[0], (":status".into(), "307".into()));
        assert_eq!(second[3].0, "location");
        assert_eq!(decoder.size, 222, "':status: 302' was evicted");
    }

    #[test]
    fn what_we_encode_decodes_to_the_same_fields() {
        let mut out = BytesMut::new();
        put_indexed(&mut out, 8);
        put_field(&mut out, b"content-type", b"application/grpc");
        put_field(&mut out, b"grpc-message", &[b'x'; 300]);
        let mut decoder = Decoder::new(4096);
        let mut got = Vec::new();
        decoder
            .decode(&out, 16 * 1024, |n, v| got.push((n.to_vec(), v.to_vec())))
            .expect("decodes");
        assert_eq!(
            got,
            vec![
                (b":status".to_vec(), b"200".to_vec()),
                (b"content-type".to_vec(), b"application/grpc".to_vec()),
                (b"grpc-message".to_vec(), vec![b'x'; 300]),
            ]
        );
        assert_eq!(decoder.size, 0, "nothing was indexed");
    }

    #[test]
    fn malformed_blocks_are_errors_and_large_lists_are_reported() {
        let mut decoder = Decoder::new(4096);
        let bad = |d: &mut Decoder, block: &str| d.decode(&hex(block), 1024, |_, _| ()).is_err();
        assert!(bad(&mut decoder, "80"), "index 0");
        assert!(bad(&mut decoder, "ff00"), "index beyond the tables");
        assert!(bad(&mut decoder, "4005 6162"), "a string beyond the block");
        assert!(bad(&mut decoder, "3fe2 1f"), "a size beyond the allowed");
        assert!(bad(&mut decoder, "82 20"), "a size update after a field");
        assert!(bad(&mut decoder, "ff ff ff ff ff 7f"), "an endless integer");
        assert!(
            bad(&mut decoder, "4081 ff81 ff"),
            "a Huffman string of padding only"
        );
        let mut big = BytesMut::new();
        for _ in 0..20 {
            put_field(&mut big, b"x-padding", &[b'p'; 100]);
        }
        let mut handed = 0;
        let fits = decoder.decode(&big, 1024, |_, _| handed += 1);
        assert_eq!(fits, Ok(false));
        assert!(handed < 20, "fields past the limit are not handed on");
    }
}
