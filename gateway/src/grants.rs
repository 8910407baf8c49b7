//! Access grants at run time: what runs under a grant ends when the grant does.
//!
//! The gate checks for a live grant before every command (`Gate::grant_ok`); this module ends
//! what is already running. A session on a `requires_grant` target holds a [`GrantWatch`] while
//! a command runs or a gated shell is open. One gateway-wide task ([`Grants::run`]) reads the
//! live grants from the database every [`POLL`] and tells each watch whose agent and target
//! no longer have one; the session then kills its command, records why and ends. The database
//! is the truth, so a grant revoked through another cluster node (or the CLI) is noticed the
//! same way, and one query per tick serves every session.
//!
//! The same task writes `grant.expired` once per grant (the store's conditional update picks one
//! node). If the store cannot be read for [`STORE_FAILURE_LIMIT`], every watched session ends:
//! nothing keeps running on a grant nobody can check (fail closed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_approvals::{Store, now_ms};
use tokio::sync::watch;

use crate::audit::Audit;
use crate::deny::Deny;

/// How often the live grants are read. With the kill that follows, what runs under a grant
/// ends well within a second of its expiry or revocation.
pub const POLL: Duration = Duration::from_millis(250);

/// How long the store may fail to answer before watched sessions are ended.
pub const STORE_FAILURE_LIMIT: Duration = Duration::from_secs(1);

/// The sessions that run under a grant, shared by them and the watching task.
#[derive(Clone, Default)]
pub struct Grants {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    /// A std mutex: held only to insert, remove or scan, never across an await.
    watched: Mutex<BTreeMap<u64, Watched>>,
}

struct Watched {
    agent: String,
    target: String,
    tx: watch::Sender<Option<Deny>>,
}

/// A session's hold on "my grant is still live": [`GrantWatch::ended`] resolves with the
/// reason once it is not. Dropping it stops the watching.
pub struct GrantWatch {
    id: u64,
    rx: Option<watch::Receiver<Option<Deny>>>,
    inner: Arc<Inner>,
}

impl GrantWatch {
    /// Resolves when the grant has ended (never, for a target that needs none). Cancel-safe.
    pub async fn ended(&mut self) -> Deny {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        let why = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone());
        match why {
            Some(why) => why,
            // The task is gone (shutdown): grants can no longer be watched.
            None => std::future::pending().await,
        }
    }
}

impl Drop for GrantWatch {
    fn drop(&mut self) {
        if self.rx.is_some()
            && let Ok(mut w) = self.inner.watched.lock()
        {
            w.remove(&self.id);
        }
    }
}

impl Grants {
    /// Watch `agent`'s grant on `target` (a no-op watch when the target needs none).
    pub fn watch(&self, agent: &str, target: &str, requires_grant: bool) -> GrantWatch {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let rx = if requires_grant {
            let (tx, rx) = watch::channel(None);
            if let Ok(mut w) = self.inner.watched.lock() {
                w.insert(
                    id,
                    Watched {
                        agent: agent.to_owned(),
                        target: target.to_owned(),
                        tx,
                    },
                );
            }
            Some(rx)
        } else {
            None
        };
        GrantWatch {
            id,
            rx,
            inner: self.inner.clone(),
        }
    }

    /// The pairs watched now.
    fn pairs(&self) -> BTreeSet<(String, String)> {
        match self.inner.watched.lock() {
            Ok(w) => w
                .values()
                .map(|x| (x.agent.clone(), x.target.clone()))
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Tell every watch on `pair` (or every watch, with `None`) why it ended, and forget them.
    fn end(&self, pair: Option<&(String, String)>, why: &Deny) {
        let Ok(mut w) = self.inner.watched.lock() else {
            return;
        };
        w.retain(|_, x| {
            let hit = pair.is_none_or(|(a, t)| x.agent == *a && x.target == *t);
            if hit {
                x.tx.send_replace(Some(why.clone()));
            }
            !hit
        });
    }

    /// The watching task: runs until the gateway stops.
    pub async fn run(self, store: Store, audit: Audit) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            match self.check(&store, &audit).await {
                Ok(()) => failing_since = None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read access grants");
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= STORE_FAILURE_LIMIT {
                        self.end(None, &Deny::GrantsUnavailable(e.to_string()));
                    }
                }
            }
        }
    }

    async fn check(
        &self,
        store: &Store,
        audit: &Audit,
    ) -> Result<(), airlock_approvals::StoreError> {
        let now = now_ms();
        for g in store.claim_expired_grants(now).await? {
            tracing::info!(grant = %g.id, agent = %g.agent, target = %g.target, "access grant expired");
            // After the fact: a failed append is logged by `write`.
            let _ = audit.write(g.expired_event()).await;
        }
        let watched = self.pairs();
        if watched.is_empty() {
            return Ok(());
        }
        let live: BTreeSet<(String, String)> = store
            .list_grants(false, now)
            .await?
            .into_iter()
            .map(|g| (g.agent, g.target))
            .collect();
        for pair in watched.difference(&live) {
            let how = match store.last_grant(&pair.0, &pair.1).await? {
                Some(g) => match (g.revoked_at, g.revoked_by) {
                    (Some(_), Some(by)) => format!("was revoked by {by}"),
                    (Some(_), None) => "was revoked".to_owned(),
                    _ => "expired".to_owned(),
                },
                None => "is gone".to_owned(),
            };
            let why = Deny::GrantEnded {
                target: pair.1.clone(),
                how,
            };
            tracing::info!(agent = %pair.0, target = %pair.1, reason = %why, "access grant ended; ending what runs under it");
            self.end(Some(pair), &why);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_hears_its_pair_only_and_unregisters_on_drop() {
        let g = Grants::default();
        let mut a = g.watch("bot", "prod", true);
        let mut other = g.watch("bot", "stage", true);
        let mut free = g.watch("bot", "local", false);
        assert_eq!(g.pairs().len(), 2);
        let why = Deny::GrantEnded {
            target: "prod".into(),
            how: "expired".into(),
        };
        g.end(Some(&("bot".into(), "prod".into())), &why);
        assert_eq!(a.ended().await, why);
        let quiet = tokio::time::timeout(Duration::from_millis(50), other.ended()).await;
        assert!(quiet.is_err(), "another target's watch is not ended");
        let quiet = tokio::time::timeout(Duration::from_millis(50), free.ended()).await;
        assert!(quiet.is_err(), "a target without grants is never ended");
        drop(other);
        assert!(g.pairs().is_empty());
    }
}
