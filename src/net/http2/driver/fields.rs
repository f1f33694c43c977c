//! A header block's fields as a request, a response or trailers need them, with
//! the checks RFC 9113 section 8.2 makes of them.

use http::{HeaderMap, HeaderName, HeaderValue};

/// A header block's fields: a request's, a response's or trailers.
#[derive(Default)]
pub(super) struct Fields {
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<String>,
    pub headers: HeaderMap,
    /// A pseudo-header came (not allowed in trailers).
    pub pseudo: bool,
    /// Something RFC 9113 section 8.2 calls malformed.
    pub malformed: bool,
}

impl Fields {
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
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
                b"status" => &mut self.status,
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
                b"connection"
                    | b"keep-alive"
                    | b"proxy-connection"
                    | b"transfer-encoding"
                    | b"upgrade"
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
