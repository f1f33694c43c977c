//! HTTP/2 keep-alive, the same at both ends: a PING every interval, and the
//! connection given up when one goes unanswered.

use crate::line::Keepalive;

/// Pings every `keepalive.interval` while `wanted()` says so; returns why
/// the connection should end once a ping is not answered within
/// `keepalive.timeout`.
pub(super) async fn unanswered(
    pings: Option<h2::PingPong>,
    keepalive: Keepalive,
    wanted: impl Fn() -> bool,
) -> String {
    let Some(mut pings) = pings else {
        // Taken already: cannot happen for a new connection.
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(keepalive.interval).await;
        if !wanted() {
            continue;
        }
        match tokio::time::timeout(keepalive.timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return super::status::from_h2(&e).message().to_string(),
            Err(_) => return format!("no answer to a ping within {:?}", keepalive.timeout),
        }
    }
}
