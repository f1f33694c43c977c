//! HTTP/2 keep-alive, the same at both ends: a PING every interval, and the
//! connection given up when one goes unanswered.

use crate::line::Keepalive;

/// A connection's pings: the r-proxy's (h2) and the s-proxy's (our own
/// HTTP/2) alike.
pub(super) trait Pings {
    /// Sends a PING; completes when it is answered, or why not.
    fn ping(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

impl Pings for h2::PingPong {
    async fn ping(&mut self) -> Result<(), String> {
        h2::PingPong::ping(self, h2::Ping::opaque())
            .await
            .map(drop)
            .map_err(|e| super::status::from_h2(&e).message().to_string())
    }
}

impl Pings for crate::net::http2::Pinger {
    async fn ping(&mut self) -> Result<(), String> {
        crate::net::http2::Pinger::ping(self)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Pings every `keepalive.interval` while `wanted()` says so; returns why
/// the connection should end once a ping is not answered within
/// `keepalive.timeout`.
pub(super) async fn unanswered(
    pings: Option<impl Pings>,
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
        match tokio::time::timeout(keepalive.timeout, pings.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return why,
            Err(_) => return format!("no answer to a ping within {:?}", keepalive.timeout),
        }
    }
}
