//! The s-proxy's resumable sessions by token: a resume finds its session's
//! link here and attaches the new stream to it. Entries live exactly as long as their
//! sessions; there are at most as many as sessions (`max_sessions`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tonic::Status;

use super::grant::{Owner, new_token};
use super::link::Link;
use crate::ops::session_span::SessionSpan;

struct Entry {
    token: String,
    owner: Option<Owner>,
    link: Link,
    /// The session's span, for what a resume logs.
    log: SessionSpan,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, u64>,
    sessions: HashMap<u64, Entry>,
    next_id: u64,
}

/// Every resumable session of an s-proxy.
#[derive(Default, Clone)]
pub struct ResumableSessions(Arc<Mutex<Inner>>);

/// A session's place in the table; dropping it removes the session.
pub struct Registration {
    table: ResumableSessions,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(entry) = inner.sessions.remove(&self.id) {
            inner.by_token.remove(&entry.token);
        }
    }
}

impl ResumableSessions {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent; a panic elsewhere does
        // not make them unusable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters a new session opened by `owner`, on `link`, under its first
    /// `token` (from [`new_token`], already sent to the peer): its place.
    pub fn register(
        &self,
        token: String,
        owner: Option<Owner>,
        link: Link,
        log: SessionSpan,
    ) -> Registration {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.by_token.insert(token.clone(), id);
        inner.sessions.insert(
            id,
            Entry {
                token,
                owner,
                link,
                log,
            },
        );
        Registration {
            table: self.clone(),
            id,
        }
    }

    /// Finds the session of `token` for a resume by `owner`: its next
    /// token (this one is spent), its link and its span. Refused for
    /// an unknown token (never issued, spent, or its session is over) and
    /// for anyone but the session's owner.
    pub fn claim(
        &self,
        token: &str,
        owner: Option<Owner>,
    ) -> Result<(String, Link, SessionSpan), Status> {
        let mut inner = self.lock();
        let unknown = || Status::not_found("session cannot be resumed: unknown or expired");
        let id = *inner.by_token.get(token).ok_or_else(unknown)?;
        let entry = inner.sessions.get(&id).ok_or_else(unknown)?;
        if entry.owner != owner {
            return Err(Status::permission_denied(
                "session cannot be resumed: it belongs to another peer",
            ));
        }
        let (link, log) = (entry.link.clone(), entry.log.clone());
        let next = new_token();
        inner.by_token.remove(token);
        inner.by_token.insert(next.clone(), id);
        if let Some(entry) = inner.sessions.get_mut(&id) {
            entry.token = next.clone();
        }
        Ok((next, link, log))
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::outlet::Outlet;
    use crate::line::resume::End;

    async fn link() -> Link {
        let (requests, body, _response) = crate::line::grpc::testing::call().await;
        Link::new(
            End::Cloud,
            crate::mqtt::Version::V5,
            "s-proxy",
            1024,
            None,
            Outlet::requests(requests, 1024),
            crate::line::grpc::testing::served(body),
        )
    }

    fn owner(name: &str) -> Option<Owner> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {name}").parse().unwrap());
        Owner::of(None, &metadata)
    }

    #[tokio::test]
    async fn a_token_works_once_for_its_owner_only() {
        let table = ResumableSessions::default();
        let token = new_token();
        let registration = table.register(
            token.clone(),
            owner("a"),
            link().await,
            SessionSpan::new(tracing::Span::none),
        );
        assert_eq!(
            table.claim(&token, owner("b")).err().map(|s| s.code()),
            Some(tonic::Code::PermissionDenied)
        );
        let (next, _, _) = table.claim(&token, owner("a")).expect("owner resumes");
        assert_ne!(next, token);
        assert_eq!(
            table.claim(&token, owner("a")).err().map(|s| s.code()),
            Some(tonic::Code::NotFound),
            "a spent token is refused"
        );
        assert!(table.claim("forged", owner("a")).is_err());
        drop(registration);
        assert!(table.is_empty());
        assert!(
            table.claim(&next, owner("a")).is_err(),
            "the session is over"
        );
    }
}
