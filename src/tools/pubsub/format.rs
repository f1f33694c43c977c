//! How `sub` prints a message: the payload (with `-v`, topic first), or a
//! `-F` format with mosquitto_sub's codes (`%t` topic, `%p` payload, `%j`
//! JSON, `@H` time fields, `\n` escapes, ...).

use std::fmt::Write as _;

use chrono::{DateTime, Local};

use crate::client::Message;

/// The bytes to print for `message` under `format` (no end of line).
pub fn render(format: &str, message: &Message, now: DateTime<Local>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some(code) => field(&mut out, code, message, now),
                None => out.push(b'%'),
            },
            '@' => match chars.next() {
                Some('@') => out.push(b'@'),
                Some(code) => {
                    // chrono's strftime; an unknown code prints nothing.
                    let mut text = String::new();
                    let _ = write!(text, "{}", now.format(&format!("%{code}")));
                    out.extend_from_slice(text.as_bytes());
                }
                None => out.push(b'@'),
            },
            '\\' => match chars.next() {
                Some('\\') => out.push(b'\\'),
                Some('0') => out.push(0),
                Some('a') => out.push(0x07),
                Some('e') => out.push(0x1b),
                Some('n') => out.push(b'\n'),
                Some('r') => out.push(b'\r'),
                Some('t') => out.push(b'\t'),
                Some('v') => out.push(0x0b),
                Some(other) => {
                    out.push(b'\\');
                    push_char(&mut out, other);
                }
                None => out.push(b'\\'),
            },
            other => push_char(&mut out, other),
        }
    }
    out
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn field(out: &mut Vec<u8>, code: char, m: &Message, now: DateTime<Local>) {
    let p = &m.properties;
    let text = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
    match code {
        '%' => out.push(b'%'),
        't' => text(out, &m.topic),
        'p' => out.extend_from_slice(&m.payload),
        'l' => text(out, &m.payload.len().to_string()),
        'q' => text(out, &m.qos.to_string()),
        'r' => text(out, if m.retain { "1" } else { "0" }),
        'm' => text(out, &m.packet_id.to_string()),
        'x' => m
            .payload
            .iter()
            .for_each(|b| text(out, &format!("{b:02x}"))),
        'X' => m
            .payload
            .iter()
            .for_each(|b| text(out, &format!("{b:02X}"))),
        'I' => text(out, &now.format("%Y-%m-%dT%H:%M:%S%z").to_string()),
        'U' => text(
            out,
            &format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos()),
        ),
        'j' => text(out, &json(m, now, false)),
        'J' => text(out, &json(m, now, true)),
        'A' => text(
            out,
            &p.topic_alias.map(|a| a.to_string()).unwrap_or_default(),
        ),
        'C' => text(out, p.content_type.as_deref().unwrap_or("")),
        'D' => out.extend_from_slice(p.correlation_data.as_deref().unwrap_or(&[])),
        'E' => text(
            out,
            &p.message_expiry_interval
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ),
        'F' => text(
            out,
            &p.payload_format_utf8
                .map(|utf8| u8::from(utf8).to_string())
                .unwrap_or_default(),
        ),
        'P' => {
            let pairs: Vec<String> = p
                .user_properties
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            text(out, &pairs.join(" "));
        }
        'R' => text(out, p.response_topic.as_deref().unwrap_or("")),
        'S' => {
            let ids: Vec<String> = p
                .subscription_identifiers
                .iter()
                .map(u32::to_string)
                .collect();
            text(out, &ids.join(","));
        }
        other => {
            out.push(b'%');
            push_char(out, other);
        }
    }
}

/// `%j` (payload as a JSON string) and `%J` (payload inserted as JSON).
fn json(m: &Message, now: DateTime<Local>, raw_payload: bool) -> String {
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
    serde_json::Value::Object(object).to_string()
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
        let rendered = |f: &str| String::from_utf8(render(f, &message(), now)).unwrap();
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
}
