//! The s-proxy's end of a resumable session: when the stream breaks, the
//! broker connection stays open for the resume window, the broker is
//! pinged on the client's behalf so it does not time the client out, and a
//! resume from the r-proxy (found by its token) continues the session.

use std::time::Duration;

use tonic::Status;
use tracing::{debug, info, warn};

use super::link::{Attached, Link};
use super::sessions::{ResumeRequest, Resumes};
use crate::ops::telemetry::METRICS;

/// Keeps `link` for resumes arriving on `resumes`; after a break, for
/// `window` at most, pinging the broker at half the client's keep-alive
/// (see [`Link::set_session`]). Returns when the link is closed (or
/// failed here).
pub async fn keep_cloud(link: Link, mode: &'static str, mut resumes: Resumes, window: Duration) {
    loop {
        let since = tokio::select! {
            request = resumes.recv() => {
                // A resume before the break was noticed here.
                let Some(request) = request else { return };
                // Boxed: a held session's task is small while it waits.
                if !Box::pin(take(&link, mode, request)).await {
                    return;
                }
                continue;
            }
            since = link.broken() => match since {
                Some(since) => since,
                None => return,
            },
        };
        debug!(
            ?window,
            "stream from the r-proxy broke; holding the session"
        );
        let deadline = tokio::time::Instant::from_std(since + window);
        let mut pings = link.ping_every().map(|every| tokio::time::interval(every));
        loop {
            let ping = async {
                match &mut pings {
                    Some(pings) => pings.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                request = resumes.recv() => {
                    let Some(request) = request else { return };
                    // Boxed: a held session's task is small while it waits.
                if !Box::pin(take(&link, mode, request)).await {
                        return;
                    }
                    break;
                }
                _ = ping => link.ping_broker(),
                () = tokio::time::sleep_until(deadline) => {
                    METRICS.resumed(mode, "expired", None);
                    warn!("no resume within the resume window; closing the session");
                    link.fail(Status::unavailable("no resume within the resume window"));
                    return;
                }
            }
        }
    }
}

/// Continues the session on a resume's stream; false once the link is
/// closed.
async fn take(link: &Link, mode: &'static str, request: Box<ResumeRequest>) -> bool {
    let received = link.detach_for_resume();
    if request.reply.send(received).is_err() {
        // The resume's stream is gone already; wait for the next.
        return true;
    }
    match link
        .attach(request.outlet, request.inbound, request.peer_received)
        .await
    {
        (Attached::Replayed(replayed), gap) => {
            METRICS.resumed(mode, "resumed", Some(gap));
            info!(gap_ms = gap.as_millis() as u64, replayed, "session resumed");
            true
        }
        (Attached::BrokeAgain, _) => true,
        (Attached::Closed, _) => false,
    }
}
