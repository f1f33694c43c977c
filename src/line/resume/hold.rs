//! The s-proxy's end of a resumable session: when the stream breaks, the
//! broker connection stays open for the resume window, the broker is
//! pinged on the client's behalf so it does not time the client out, and a
//! resume from the r-proxy (found by its token) continues the session.
//!
//! Nothing waits for a break: the break itself starts the hold (see
//! [`Link::restore_with`]), and a resume attaches its stream from the
//! request that brought it.

use std::time::{Duration, Instant};

use tonic::Status;
use tracing::{Instrument, debug, info, warn};

use super::link::{Attached, Inbound, Link, Outlet, Restore};
use crate::ops::session_span::SessionSpan;
use crate::ops::telemetry::METRICS;

/// Makes `link` hold itself after each break: for `window` at most,
/// pinging the broker at half the client's keep-alive (see
/// [`Link::set_session`]), until a resume makes it whole again. The hold
/// logs in the session's span.
pub fn keep_cloud(link: &Link, mode: &'static str, window: Duration, log: SessionSpan) {
    link.restore_with(Box::new(CloudHold { mode, window, log }));
}

/// What holds one s-proxy session through a gap, kept in its link between
/// breaks.
struct CloudHold {
    mode: &'static str,
    window: Duration,
    /// The session's span, for the hold's log lines.
    log: SessionSpan,
}

impl Restore for CloudHold {
    fn start(self: Box<Self>, link: Link, since: Instant) {
        let span = self.log.span();
        tokio::spawn(self.hold(link, since).instrument(span));
    }
}

impl CloudHold {
    /// Holds the session broken at `since` until a resume makes it whole
    /// (then hands itself back to the link) or the window is over.
    async fn hold(self: Box<Self>, link: Link, since: Instant) {
        debug!(window = ?self.window, "stream from the r-proxy broke; holding the session");
        let deadline = tokio::time::Instant::from_std(since + self.window);
        let mut pings = link.ping_every().map(tokio::time::interval);
        loop {
            let ping = async {
                match &mut pings {
                    Some(pings) => pings.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                whole = link.whole_again() => {
                    if whole {
                        link.restore_with(self);
                    }
                    return;
                }
                _ = ping => link.ping_broker(),
                () = tokio::time::sleep_until(deadline) => {
                    METRICS.resumed(self.mode, "expired", None);
                    warn!("no resume within the resume window; closing the session");
                    link.fail(Status::unavailable("no resume within the resume window"));
                    return;
                }
            }
        }
    }
}

/// Continues the session of `link` on a resume's stream (its current
/// attachment ended by [`Link::detach_for_resume`], whose answer the peer
/// was sent): replays on the new one, in a task of its own (in the
/// session's span).
pub fn take_resume(
    link: Link,
    mode: &'static str,
    log: &SessionSpan,
    outlet: Outlet,
    inbound: Inbound,
    peer_received: u64,
) {
    let replay = async move {
        match link.attach(outlet, inbound, peer_received).await {
            (Attached::Replayed(replayed), gap) => {
                METRICS.resumed(mode, "resumed", Some(gap));
                info!(gap_ms = gap.as_millis() as u64, replayed, "session resumed");
            }
            (Attached::BrokeAgain, _) => debug!("the resumed stream broke while replaying"),
            (Attached::Closed, _) => {}
        }
    };
    tokio::spawn(replay.instrument(log.span()));
}
