//! The r-proxy's end of a resumable session: when the stream breaks, the
//! client's connection stays open and the r-proxy opens a new stream to the
//! same s-proxy, with backoff, until the s-proxy takes it, refuses it, or
//! the resume window is over.

use std::time::Duration;

use tonic::Status;
use tracing::{debug, info, warn};

use super::link::{Attached, Inbound, Link, Outlet};
use crate::ops::telemetry::METRICS;

/// The first pause after a failed attempt; each one doubles it...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ...up to this: once the network is back, the session resumes within
/// this long (an attempt costs the peer one TCP handshake).
const MAX_DELAY: Duration = Duration::from_millis(500);

/// A stream the s-proxy accepted as the session's continuation.
pub struct Resumed {
    /// Where the session's envelopes go from now on.
    pub outlet: Outlet,
    /// The s-proxy's envelopes from now on.
    pub inbound: Inbound,
    /// The last sequence the s-proxy received: the replay follows it.
    pub peer_received: u64,
    /// The token for the next resume.
    pub token: String,
}

/// Why an attempt did not resume.
#[derive(Debug)]
pub enum ResumeError {
    /// The s-proxy answered no: the session is gone for good.
    Refused(Status),
    /// The s-proxy could not be reached: try again.
    Unreachable(Status),
}

/// Restores `link` after each break by calling `resume(token, received)`
/// until it works, is refused or `window` has passed since the break.
/// Returns when the link is closed (or failed here).
pub async fn keep_edge<F, A>(
    link: Link,
    mode: &'static str,
    window: Duration,
    token: String,
    mut resume: F,
) where
    F: FnMut(String, u64) -> A,
    A: Future<Output = Result<Resumed, ResumeError>>,
{
    let mut token = token;
    while let Some(since) = link.broken().await {
        let deadline = tokio::time::Instant::from_std(since + window);
        let mut delay = FIRST_DELAY;
        let mut attempts = 0u32;
        info!(?window, "stream to the s-proxy broke; resuming");
        loop {
            attempts += 1;
            // Boxed, so that a task waiting for a break (most of a
            // session's life) holds only a pointer's worth of it.
            let attempt =
                tokio::time::timeout_at(deadline, Box::pin(resume(token.clone(), link.received())));
            match attempt.await {
                Ok(Ok(resumed)) => {
                    token = resumed.token;
                    let (attached, gap) = Box::pin(link.attach(
                        resumed.outlet,
                        resumed.inbound,
                        resumed.peer_received,
                    ))
                    .await;
                    match attached {
                        Attached::Replayed(replayed) => {
                            METRICS.resumed(mode, "resumed", Some(gap));
                            info!(
                                gap_ms = gap.as_millis() as u64,
                                replayed, attempts, "session resumed"
                            );
                            break;
                        }
                        Attached::BrokeAgain => debug!("the new stream broke while replaying"),
                        Attached::Closed => return,
                    }
                }
                Ok(Err(ResumeError::Refused(status))) => {
                    METRICS.resumed(mode, "refused", None);
                    warn!(%status, "the s-proxy refused to resume the session");
                    link.refuse(status);
                    return;
                }
                Ok(Err(ResumeError::Unreachable(status))) => {
                    debug!(%status, ?delay, "s-proxy not reachable yet");
                    if tokio::time::timeout_at(deadline, tokio::time::sleep(delay))
                        .await
                        .is_ok()
                    {
                        delay = (delay * 2).min(MAX_DELAY);
                        continue;
                    }
                    expire(&link, mode);
                    return;
                }
                Err(_) => {
                    expire(&link, mode);
                    return;
                }
            }
        }
    }
}

fn expire(link: &Link, mode: &'static str) {
    METRICS.resumed(mode, "expired", None);
    warn!("no resume within the resume window; closing the session");
    link.fail(Status::unavailable(
        "the s-proxy was unreachable for the whole resume window",
    ));
}
