//! The r-proxy's end of a resumable session: when the stream breaks, the
//! client's connection stays open and the r-proxy opens a new stream to the
//! same s-proxy, with backoff, until the s-proxy takes it, refuses it, or
//! the resume window is over. Nothing waits for the break: the break
//! itself starts the attempts (see [`Link::restore_with`]).

use std::time::{Duration, Instant};

use tonic::Status;
use tracing::{Instrument, debug, info, warn};

use super::link::{Attached, Inbound, Link, Outlet, Restore};
use crate::ops::session_span::SessionSpan;
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

/// Makes `link` restore itself after each break by calling
/// `resume(token, received)` until it works, is refused or `window` has
/// passed since the break. Nothing runs until a break: the break starts a
/// task for the attempts, which ends once the link is whole again (or
/// closed), so a session waiting for a break costs no task.
pub fn keep_edge<F, A>(
    link: &Link,
    mode: &'static str,
    window: Duration,
    token: String,
    log: SessionSpan,
    resume: F,
) where
    F: FnMut(String, u64) -> A + Send + 'static,
    A: Future<Output = Result<Resumed, ResumeError>> + Send + 'static,
{
    link.restore_with(Box::new(EdgeRestorer {
        mode,
        window,
        token,
        resume,
        log,
    }));
}

/// The r-proxy's resume attempts for one session, kept in its link
/// between breaks.
struct EdgeRestorer<F> {
    mode: &'static str,
    window: Duration,
    /// The token for the next resume.
    token: String,
    resume: F,
    /// The session's span, for the attempts' log lines.
    log: SessionSpan,
}

impl<F, A> Restore for EdgeRestorer<F>
where
    F: FnMut(String, u64) -> A + Send + 'static,
    A: Future<Output = Result<Resumed, ResumeError>> + Send + 'static,
{
    fn start(self: Box<Self>, link: Link, since: Instant) {
        let span = self.log.span();
        tokio::spawn(self.restore(link, since).instrument(span));
    }
}

impl<F, A> EdgeRestorer<F>
where
    F: FnMut(String, u64) -> A + Send + 'static,
    A: Future<Output = Result<Resumed, ResumeError>> + Send + 'static,
{
    /// Resumes the session broken at `since`; hands itself back to the
    /// link once it is whole again.
    async fn restore(mut self: Box<Self>, link: Link, since: Instant) {
        let deadline = tokio::time::Instant::from_std(since + self.window);
        let mut delay = FIRST_DELAY;
        let mut attempts = 0u32;
        info!(window = ?self.window, "stream to the s-proxy broke; resuming");
        loop {
            attempts += 1;
            let attempt = tokio::time::timeout_at(
                deadline,
                (self.resume)(self.token.clone(), link.received()),
            );
            match attempt.await {
                Ok(Ok(resumed)) => {
                    self.token = resumed.token;
                    let (attached, gap) = link
                        .attach(resumed.outlet, resumed.inbound, resumed.peer_received)
                        .await;
                    match attached {
                        Attached::Replayed(replayed) => {
                            METRICS.resumed(self.mode, "resumed", Some(gap));
                            info!(
                                gap_ms = gap.as_millis() as u64,
                                replayed, attempts, "session resumed"
                            );
                            link.restore_with(self);
                            return;
                        }
                        Attached::BrokeAgain => debug!("the new stream broke while replaying"),
                        Attached::Closed => return,
                    }
                }
                Ok(Err(ResumeError::Refused(status))) => {
                    METRICS.resumed(self.mode, "refused", None);
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
                    expire(&link, self.mode);
                    return;
                }
                Err(_) => {
                    expire(&link, self.mode);
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
