//! A session's tracing span, made when a log line needs it instead of kept
//! for the session's life. A span kept open cost an idle gRPC-line session
//! about 0.45 KiB in the r-proxy and 0.5 KiB in the s-proxy (the
//! subscriber's slot, the formatted fields and their map: 12 % of what an
//! idle connection costs each), and an enter and an exit on every poll,
//! while a session logs only when it opens, when a step goes wrong or is
//! resumed, and when it closes. Each span made has the same name and
//! fields, so the log lines read as before.

use std::sync::Arc;

use tracing::Span;
use tracing::level_filters::LevelFilter;

/// Makes the span of one session, as often as its log lines need it. Cheap
/// to clone: the fields are kept once, by the closure that makes the span.
#[derive(Clone)]
pub struct SessionSpan(Arc<dyn Fn() -> Span + Send + Sync>);

impl SessionSpan {
    /// A session whose span `make` builds from the fields it captures.
    pub fn new(make: impl Fn() -> Span + Send + Sync + 'static) -> Self {
        Self(Arc::new(make))
    }

    /// The session's span, for a step that logs: the opening, the end, a
    /// resume.
    pub fn span(&self) -> Span {
        (self.0)()
    }

    /// The span to relay in, which lasts as long as the session: the
    /// session's while debug lines are on (the relaying steps log at debug
    /// level only), none otherwise.
    pub fn relaying(&self) -> Span {
        if LevelFilter::current() >= LevelFilter::DEBUG {
            self.span()
        } else {
            Span::none()
        }
    }
}
