//! A call's outcome as a gRPC status: read from the `grpc-status` and
//! `grpc-message` headers, inferred from the HTTP status when those are
//! missing, or made from an HTTP/2 error (gRPC's PROTOCOL-HTTP2 mapping).
//! Nothing here trusts the peer: a malformed header is an error status,
//! never a panic.

use http::HeaderMap;
use tonic::{Code, Status};

/// The status the headers (or trailers) carry, if they carry one.
pub fn from_headers(headers: &HeaderMap) -> Option<Status> {
    let code = Code::from_bytes(headers.get("grpc-status")?.as_bytes());
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Status::new(code, message))
}

/// What a response without a `grpc-status` means, by its HTTP status.
pub fn from_http(status: http::StatusCode) -> Status {
    use http::StatusCode;
    let code = match status {
        StatusCode::BAD_REQUEST => Code::Internal,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("HTTP status {status} without a gRPC status"))
}

/// An HTTP/2 error as a status: a reset stream by its reason, a broken
/// connection as `Unavailable` (the line treats it as a break).
pub fn from_http2(error: &crate::net::http2::Error) -> Status {
    use crate::net::http2::Reason;
    let code = match error.reason() {
        _ if error.is_io() || error.is_remote_go_away() => Code::Unavailable,
        Some(Reason::REFUSED_STREAM) => Code::Unavailable,
        Some(Reason::CANCEL) => Code::Cancelled,
        Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        Some(_) => Code::Internal,
        None => Code::Unavailable,
    };
    Status::new(code, format!("HTTP/2: {error}"))
}

/// `grpc-message` is percent-encoded UTF-8; anything undecodable is kept
/// as it came.
fn percent_decode(bytes: &[u8]) -> String {
    percent_encoding::percent_decode(bytes)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static [u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                http::HeaderValue::from_bytes(value).expect("valid header value"),
            );
        }
        map
    }

    #[test]
    fn status_and_message_are_read_from_headers() {
        let status = from_headers(&headers(&[
            ("grpc-status", b"5"),
            ("grpc-message", b"no%20such%20session%3A%20%E2%9C%93"),
        ]))
        .expect("a status");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "no such session: \u{2713}");
        assert!(from_headers(&headers(&[("content-type", b"application/grpc")])).is_none());
    }

    #[test]
    fn malformed_values_do_not_panic() {
        let status = from_headers(&headers(&[
            ("grpc-status", b"not a number"),
            ("grpc-message", b"%zz%4"),
            ("grpc-status-details-bin", b"!!! not base64"),
        ]))
        .expect("a status");
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "%zz%4");
    }

    #[test]
    fn http_statuses_map_as_grpc_says() {
        assert_eq!(
            from_http(http::StatusCode::NOT_FOUND).code(),
            Code::Unimplemented
        );
        assert_eq!(
            from_http(http::StatusCode::SERVICE_UNAVAILABLE).code(),
            Code::Unavailable
        );
        assert_eq!(
            from_http(http::StatusCode::IM_A_TEAPOT).code(),
            Code::Unknown
        );
    }
}
