//! The s-proxy's resumable sessions by token: a resume finds its session
//! here and hands it the new stream. Entries live exactly as long as their
//! sessions; there are at most as many as sessions (`max_sessions`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::grant::{Owner, new_token};
use super::link::{Inbound, Outlet};

/// A resume handed to its session: the new stream and where the r-proxy's
/// replay should start.
pub struct ResumeRequest {
    /// Where the session's envelopes go from now on.
    pub outlet: Outlet,
    /// The r-proxy's envelopes from now on.
    pub inbound: Inbound,
    /// The last sequence the r-proxy received: the replay follows it.
    pub peer_received: u64,
    /// The session answers with the last sequence it received.
    pub reply: oneshot::Sender<u64>,
}

/// Where a session's resumes arrive. Boxed: a channel allocates room for
/// 32 values when it is made, and 32 requests (a gRPC stream each) would
/// cost every session 8 KiB while it waits for a resume that rarely comes.
pub type Resumes = mpsc::Receiver<Box<ResumeRequest>>;

struct Entry {
    token: String,
    owner: Option<Owner>,
    resumes: mpsc::Sender<Box<ResumeRequest>>,
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

    /// Enters a new session opened by `owner`: its first token, its place
    /// and where its resumes arrive.
    pub fn register(&self, owner: Option<Owner>) -> (String, Registration, Resumes) {
        let token = new_token();
        let (resumes, arrivals) = mpsc::channel(1);
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.by_token.insert(token.clone(), id);
        inner.sessions.insert(
            id,
            Entry {
                token: token.clone(),
                owner,
                resumes,
            },
        );
        let registration = Registration {
            table: self.clone(),
            id,
        };
        (token, registration, arrivals)
    }

    /// Finds the session of `token` for a resume by `owner`: its next
    /// token (this one is spent) and where to hand the resume. Refused for
    /// an unknown token (never issued, spent, or its session is over) and
    /// for anyone but the session's owner.
    pub fn claim(
        &self,
        token: &str,
        owner: Option<Owner>,
    ) -> Result<(String, mpsc::Sender<Box<ResumeRequest>>), Status> {
        let mut inner = self.lock();
        let unknown = || Status::not_found("session cannot be resumed: unknown or expired");
        let id = *inner.by_token.get(token).ok_or_else(unknown)?;
        let entry = inner.sessions.get(&id).ok_or_else(unknown)?;
        if entry.owner != owner {
            return Err(Status::permission_denied(
                "session cannot be resumed: it belongs to another peer",
            ));
        }
        let resumes = entry.resumes.clone();
        let next = new_token();
        inner.by_token.remove(token);
        inner.by_token.insert(next.clone(), id);
        if let Some(entry) = inner.sessions.get_mut(&id) {
            entry.token = next.clone();
        }
        Ok((next, resumes))
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

    fn owner(name: &str) -> Option<Owner> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {name}").parse().unwrap());
        Owner::of(None, &metadata)
    }

    #[test]
    fn a_token_works_once_for_its_owner_only() {
        let table = ResumableSessions::default();
        let (token, registration, _arrivals) = table.register(owner("a"));
        assert_eq!(
            table.claim(&token, owner("b")).err().map(|s| s.code()),
            Some(tonic::Code::PermissionDenied)
        );
        let (next, _) = table.claim(&token, owner("a")).expect("owner resumes");
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
