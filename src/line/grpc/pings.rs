//! HTTP/2 keep-alive, the same at both ends: a PING every interval, and the
//! connection given up when one goes unanswered.

use crate::line::Keepalive;

/// Pings every `keepalive.interval` while `wanted()` says so; returns why
/// the connection should end once a ping is not answered within
/// `keepalive.timeout`.
pub(super) async fn unanswered(
    mut pings: crate::net::http2::Pinger,
    keepalive: Keepalive,
    wanted: impl Fn() -> bool,
) -> String {
    loop {
        tokio::time::sleep(keepalive.interval).await;
        if !wanted() {
            continue;
        }
        match tokio::time::timeout(keepalive.timeout, pings.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return format!("no answer to a ping within {:?}", keepalive.timeout),
        }
    }
}
