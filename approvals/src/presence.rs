//! Which reviewers are connected right now, so an agent is told whether anyone can answer.
//!
//! The reviewer listener holds a [`Seat`] per open socket; the gateway asks [`Presence::eligible`]
//! how many distinct reviewers other than the requesting agent are connected. In a cluster each
//! node tells its peers who sits on it (on every change and with every heartbeat); a peer's
//! list counts until it is older than the heartbeat's staleness limit, so a dead node's
//! reviewers stop counting on their own.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::now_ms;

#[derive(Default)]
struct Inner {
    /// Reviewer name → open sockets on this node, and the groups the last one signed in
    /// with (a signed-in user's groups come from their identity provider, not the config).
    local: HashMap<String, (usize, BTreeSet<String>)>,
    /// Peer node → (its reviewers, when it said so).
    peers: HashMap<String, (Vec<String>, i64)>,
}

/// What a request does when no reviewer who could decide it is connected
/// (`[approval] when_nobody_online`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NobodyOnline {
    /// Wait as usual: someone may connect before the deadline.
    #[default]
    Wait,
    /// Deny at once, telling the agent why.
    Deny,
}

impl NobodyOnline {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wait" => Some(NobodyOnline::Wait),
            "deny" => Some(NobodyOnline::Deny),
            _ => None,
        }
    }
}

/// The shared view of who is connected (cheap to clone).
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Mutex<Inner>>,
    /// A peer's list counts for this long after it was sent (milliseconds).
    peer_ttl_ms: i64,
    /// Bumped on every local change, so the cluster task can tell peers at once.
    changed: watch::Sender<u64>,
}

/// One open reviewer socket; dropping it is leaving.
pub struct Seat {
    presence: Presence,
    name: String,
}

impl Default for Presence {
    fn default() -> Self {
        Self::new(std::time::Duration::from_secs(30))
    }
}

impl Presence {
    pub fn new(peer_ttl: std::time::Duration) -> Self {
        Self {
            inner: Arc::default(),
            peer_ttl_ms: i64::try_from(peer_ttl.as_millis()).unwrap_or(i64::MAX),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic mid-update of plain counters.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reviewer `name` opened a socket on this node.
    pub fn join(&self, name: &str) -> Seat {
        self.join_with(name, BTreeSet::new())
    }

    /// Reviewer `name`, in `groups`, opened a socket on this node.
    pub fn join_with(&self, name: &str, groups: BTreeSet<String>) -> Seat {
        {
            let mut g = self.lock();
            let e = g.local.entry(name.to_owned()).or_default();
            e.0 += 1;
            e.1 = groups;
        }
        self.changed.send_modify(|n| *n += 1);
        Seat {
            presence: self.clone(),
            name: name.to_owned(),
        }
    }

    /// Reviewers connected to this node (sorted).
    pub fn local(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().local.keys().cloned().collect();
        names.sort();
        names
    }

    /// What peer `node` says sits on it, as of `at` (milliseconds).
    pub fn peer(&self, node: &str, reviewers: Vec<String>, at: i64) {
        self.lock().peers.insert(node.to_owned(), (reviewers, at));
    }

    /// Distinct reviewers connected anywhere who could decide a request of `agent` (a reviewer
    /// never decides their own).
    pub fn eligible(&self, agent: &str) -> usize {
        self.eligible_where(agent, |_, _| true)
    }

    /// Like [`Presence::eligible`], counting only reviewers `counts(name, groups)` accepts;
    /// `groups` is what a reviewer on this node signed in with, `None` for a peer's reviewer
    /// (whose groups the caller resolves from the config).
    pub fn eligible_where(
        &self,
        agent: &str,
        counts: impl Fn(&str, Option<&BTreeSet<String>>) -> bool,
    ) -> usize {
        let fresh_after = now_ms() - self.peer_ttl_ms;
        let g = self.lock();
        let mut names: BTreeSet<&str> = g
            .local
            .iter()
            .filter(|(n, (_, groups))| counts(n, Some(groups)))
            .map(|(n, _)| n.as_str())
            .collect();
        for (list, at) in g.peers.values() {
            if *at >= fresh_after {
                names.extend(
                    list.iter()
                        .filter(|n| !names.contains(n.as_str()) && counts(n, None))
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                );
            }
        }
        names.remove(agent);
        names.len()
    }

    /// Wakes when this node's reviewers change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut g = self.presence.lock();
        if let Some((n, _)) = g.local.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                g.local.remove(&self.name);
            }
        }
        drop(g);
        self.presence.changed.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_reviewers_but_not_the_agent() {
        let p = Presence::default();
        assert_eq!(p.eligible("bot"), 0);
        let a1 = p.join("alice");
        let a2 = p.join("alice");
        let b = p.join("bot");
        assert_eq!(p.eligible("bot"), 1);
        assert_eq!(p.eligible("carol"), 2);
        drop(a1);
        assert_eq!(p.eligible("bot"), 1, "alice still has a socket");
        drop(a2);
        drop(b);
        assert_eq!(p.eligible("carol"), 0);
        assert!(p.local().is_empty());
    }

    #[test]
    fn peers_count_until_their_word_is_stale() {
        let p = Presence::new(std::time::Duration::from_secs(10));
        p.peer("n2", vec!["dave".into()], now_ms());
        p.peer("n3", vec!["erin".into()], now_ms() - 60_000);
        assert_eq!(p.eligible("bot"), 1);
        let _d = p.join("dave");
        assert_eq!(
            p.eligible("bot"),
            1,
            "the same reviewer on two nodes is one"
        );
    }
}
