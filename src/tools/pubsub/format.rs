//! How `sub` prints a message: the payload (with `-v`, topic first), or a
//! `-F` format with mosquitto_sub's codes (`%t` topic, `%p` payload, `%j`
//! JSON, `@H` time fields, `\n` escapes, ...).

use std::fmt::Write as _;

use chrono::{DateTime, Local};

use crate::client::Message;

/// The codes a `%` sequence may end in.
const CODES: &str = "%tplqrmxXIUjJACDEFPRS";
/// Codes a width applies to; of those, the ones `0` pads with zeros and the
/// ones a `.maximum` cuts (as mosquitto_sub's manual lists them).
const WIDTH_CODES: &str = "ACEFIlmpRStxX";
const ZERO_CODES: &str = "AEFlmSxX";
const MAXIMUM_CODES: &str = "CIRt";

/// A `-F` format, checked and split up once when the flags are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    /// `%[-][0][width][.maximum]code`.
    Field {
        code: char,
        left: bool,
        zero: bool,
        width: usize,
        maximum: Option<usize>,
    },
    /// `@code`: a strftime field of the time the message is printed.
    Time(char),
}

impl Format {
    /// Reads a format, refusing what mosquitto_sub refuses: a `%` sequence
    /// cut short or ending in an unknown code.
    pub fn parse(format: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let mut left = false;
                    let mut zero = false;
                    while let Some(flag @ ('-' | '0')) = chars.peek().copied() {
                        left |= flag == '-';
                        zero |= flag == '0';
                        chars.next();
                    }
                    let width = digits(&mut chars, format)?.unwrap_or(0);
                    let maximum = if chars.next_if_eq(&'.').is_some() {
                        Some(digits(&mut chars, format)?.unwrap_or(0))
                    } else {
                        None
                    };
                    let Some(code) = chars.next() else {
                        return Err(format!("-F '{format}': incomplete % sequence at the end"));
                    };
                    if !CODES.contains(code) {
                        return Err(format!("-F '{format}': unknown code %{code}"));
                    }
                    if code == '%' {
                        text.push(b'%');
                        continue;
                    }
                    flush(&mut pieces, &mut text);
                    pieces.push(Piece::Field {
                        code,
                        left,
                        // mosquitto: `-` wins over `0`.
                        zero: zero && !left,
                        width,
                        maximum,
                    });
                }
                '@' => match chars.next() {
                    Some('@') => text.push(b'@'),
                    Some(code) => {
                        flush(&mut pieces, &mut text);
                        pieces.push(Piece::Time(code));
                    }
                    None => text.push(b'@'),
                },
                '\\' => match chars.next() {
                    Some('\\') => text.push(b'\\'),
                    Some('0') => text.push(0),
                    Some('a') => text.push(0x07),
                    Some('e') => text.push(0x1b),
                    Some('n') => text.push(b'\n'),
                    Some('r') => text.push(b'\r'),
                    Some('t') => text.push(b'\t'),
                    Some('v') => text.push(0x0b),
                    Some(other) => {
                        text.push(b'\\');
                        push_char(&mut text, other);
                    }
                    None => text.push(b'\\'),
                },
                other => push_char(&mut text, other),
            }
        }
        flush(&mut pieces, &mut text);
        Ok(Self(pieces))
    }

    /// The bytes to print for `message` (no end of line); `pretty` indents
    /// `%j` and `%J`.
    pub fn render(&self, message: &Message, now: DateTime<Local>, pretty: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text),
                Piece::Time('N') => {
                    out.extend_from_slice(format!("{:09}", now.timestamp_subsec_nanos()).as_bytes())
                }
                Piece::Time(code) => {
                    // chrono's strftime; a code it does not know prints nothing.
                    let mut text = String::new();
                    let _ = write!(text, "{}", now.format(&format!("%{code}")));
                    out.extend_from_slice(text.as_bytes());
                }
                &Piece::Field {
                    code,
                    left,
                    zero,
                    width,
                    maximum,
                } => {
                    let mut value = field(code, message, now, pretty);
                    if let Some(maximum) = maximum.filter(|_| MAXIMUM_CODES.contains(code)) {
                        value.truncate(char_boundary(&value, maximum));
                    }
                    let pad = if WIDTH_CODES.contains(code) {
                        width.saturating_sub(value.len())
                    } else {
                        0
                    };
                    let fill = if zero && ZERO_CODES.contains(code) {
                        b'0'
                    } else {
                        b' '
                    };
                    if !left {
                        out.resize(out.len() + pad, fill);
                    }
                    out.extend_from_slice(&value);
                    if left {
                        out.resize(out.len() + pad, b' ');
                    }
                }
            }
        }
        out
    }
}

/// A width or maximum: digits, if there are any.
fn digits(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    format: &str,
) -> Result<Option<usize>, String> {
    let mut number: Option<usize> = None;
    while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        number = number
            .unwrap_or(0)
            .checked_mul(10)
            .and_then(|n| n.checked_add(digit as usize))
            .filter(|n| *n <= 65_536)
            .map(Some)
            .ok_or_else(|| format!("-F '{format}': a width of at most 65536"))?;
    }
    Ok(number)
}

fn flush(pieces: &mut Vec<Piece>, text: &mut Vec<u8>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// The longest prefix of `value` of at most `maximum` bytes that does not
/// split a UTF-8 character (fields cut by a maximum are text).
fn char_boundary(value: &[u8], maximum: usize) -> usize {
    let mut at = maximum.min(value.len());
    while at > 0 && at < value.len() && (value[at] & 0xc0) == 0x80 {
        at -= 1;
    }
    at
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// A field's value, before width and maximum.
fn field(code: char, m: &Message, now: DateTime<Local>, pretty: bool) -> Vec<u8> {
    let p = &m.properties;
    let text = |s: &str| s.as_bytes().to_vec();
    let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default().into_bytes();
    match code {
        't' => text(&m.topic),
        'p' => m.payload.to_vec(),
        'l' => text(&m.payload.len().to_string()),
        'q' => text(&m.qos.to_string()),
        'r' => text(if m.retain { "1" } else { "0" }),
        'm' => text(&m.packet_id.to_string()),
        'x' => m
            .payload
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect(),
        'X' => m
            .payload
            .iter()
            .flat_map(|b| format!("{b:02X}").into_bytes())
            .collect(),
        'I' => text(&now.format("%Y-%m-%dT%H:%M:%S%z").to_string()),
        'U' => text(&format!(
            "{}.{:09}",
            now.timestamp(),
            now.timestamp_subsec_nanos()
        )),
        'j' => text(&json(m, now, false, pretty)),
        'J' => text(&json(m, now, true, pretty)),
        'A' => number(p.topic_alias.map(u32::from)),
        'C' => text(p.content_type.as_deref().unwrap_or("")),
        'D' => p.correlation_data.as_deref().unwrap_or(&[]).to_vec(),
        'E' => number(p.message_expiry_interval),
        'F' => number(p.payload_format_utf8.map(u32::from)),
        'P' => {
            let pairs: Vec<String> = p
                .user_properties
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            text(&pairs.join(" "))
        }
        'R' => text(p.response_topic.as_deref().unwrap_or("")),
        'S' => {
            let ids: Vec<String> = p
                .subscription_identifiers
                .iter()
                .map(u32::to_string)
                .collect();
            text(&ids.join(","))
        }
        // Format::parse lets no other code through.
        _ => Vec::new(),
    }
}

/// `%j` (payload as a JSON string) and `%J` (payload inserted as JSON).
fn json(m: &Message, now: DateTime<Local>, raw_payload: bool, pretty: bool) -> String {
    let mut object = serde_json::Map::new();
    object.insert(
        "tst".into(),
        now.format("%Y-%m-%dT%H:%M:%S%.6f%z").to_string().into(),
    );
    object.insert("topic".into(), m.topic.clone().into());
    object.insert("qos".into(), m.qos.into());
    object.insert("retain".into(), u8::from(m.retain).into());
    object.insert("payloadlen".into(), m.payload.len().into());
    if m.qos > 0 {
        object.insert("mid".into(), m.packet_id.into());
    }
    let payload = String::from_utf8_lossy(&m.payload).into_owned();
    if raw_payload {
        match serde_json::from_str::<serde_json::Value>(&payload) {
            Ok(value) => object.insert("payload".into(), value),
            Err(_) => object.insert("payload".into(), payload.into()),
        };
    } else {
        object.insert("payload".into(), payload.into());
    }
    let value = serde_json::Value::Object(object);
    if pretty {
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::TimeZone;

    use super::*;
    use crate::client::PublishProperties;

    fn message() -> Message {
        Message {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"{\"t\":21}"),
            qos: 1,
            retain: true,
            duplicate: false,
            packet_id: 7,
            properties: PublishProperties {
                content_type: Some("application/json".into()),
                user_properties: vec![("k".into(), "v".into())],
                subscription_identifiers: vec![3],
                ..PublishProperties::default()
            },
        }
    }

    #[test]
    fn mosquitto_codes_print_as_mosquitto_sub_prints_them() {
        let now = Local.timestamp_opt(1_700_000_000, 5).unwrap();
        let rendered = |f: &str| {
            String::from_utf8(Format::parse(f).unwrap().render(&message(), now, false)).unwrap()
        };
        assert_eq!(rendered("%t %p"), "a/b {\"t\":21}");
        assert_eq!(rendered("%l|%q|%r|%m|%%"), "8|1|1|7|%");
        assert_eq!(rendered("%x"), "7b2274223a32317d");
        assert_eq!(rendered("%C;%P;%S"), "application/json;k:v;3");
        assert_eq!(rendered("%U"), "1700000000.000000005");
        assert_eq!(rendered("a\\tb\\n"), "a\tb\n");
        assert_eq!(rendered("@Y@@"), format!("{}@", now.format("%Y")));
        let json: serde_json::Value = serde_json::from_str(&rendered("%J")).unwrap();
        assert_eq!(json["payload"]["t"], 21);
        assert_eq!(json["topic"], "a/b");
        let json: serde_json::Value = serde_json::from_str(&rendered("%j")).unwrap();
        assert_eq!(json["payload"], "{\"t\":21}");
    }

    #[test]
    fn widths_flags_and_maximums_pad_and_cut_as_mosquitto_sub_does() {
        let now = Local.timestamp_opt(1_700_000_000, 5).unwrap();
        let rendered = |f: &str| {
            String::from_utf8(Format::parse(f).unwrap().render(&message(), now, false)).unwrap()
        };
        assert_eq!(rendered("|%6t|%-6t|"), "|   a/b|a/b   |");
        assert_eq!(rendered("|%05l|%-05l|%5l|"), "|00008|8    |    8|");
        // `0` pads numbers and hex only; a maximum cuts text fields only.
        assert_eq!(rendered("|%06t|%.2t|%4.2t|%.1l|"), "|   a/b|a/|  a/|8|");
        assert_eq!(rendered("%020x"), "00007b2274223a32317d");
        assert_eq!(rendered("%3q|%3r"), "1|1");
        assert_eq!(rendered("%5S|%-3E|"), "    3|   |");
        let pretty = Format::parse("%J").unwrap().render(&message(), now, true);
        let pretty = String::from_utf8(pretty).unwrap();
        assert!(pretty.contains("\n  \"topic\": \"a/b\""), "{pretty}");
    }

    #[test]
    fn broken_formats_are_refused_when_the_flags_are_read() {
        for (format, says) in [
            ("%", "incomplete"),
            ("%10", "incomplete"),
            ("%-5.", "incomplete"),
            ("%k", "unknown code %k"),
            ("%99999999t", "at most 65536"),
        ] {
            let err = Format::parse(format).unwrap_err();
            assert!(err.contains(says), "{format}: {err}");
        }
    }
}
