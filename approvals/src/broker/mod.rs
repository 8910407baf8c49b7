//! The approval broker: the one place where requests wait, votes land and outcomes are told.
//!
//! A gateway session submits a request and awaits its [`Ticket`]; reviewers' votes come in
//! through [`Broker::decide`]; every change is broadcast as a [`BrokerEvent`] to the reviewer
//! listener. Persistence decides races (see [`crate::store`]); the broker only routes. Any
//! failure while waiting — store error, broker gone, deadline — ends in a deny, never an approve.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use crate::authority::{Authority, Refusal, Reviewer};
use crate::ledger::Event;
use crate::ledger::Ledger;
use crate::model::{Outcome, RequestStatus, RequestView, VoteDecision, settled_by_votes};
use crate::now_ms;
use crate::presence::Presence;
use crate::store::{NewRequest, Store, StoreError, VoteResult};

mod messages;
pub use messages::{BrokerEvent, DecideAck, DecideError, Verdict};

/// A submitted request; await [`Ticket::wait`] for the verdict.
pub struct Ticket {
    pub request: RequestView,
    rx: oneshot::Receiver<Verdict>,
    broker: Broker,
}

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// This gateway's node name; events from peers carry theirs.
    node: String,
    /// On PostgreSQL, events are also NOTIFYed to peer nodes.
    cluster: bool,
    /// Every request, vote and outcome is appended here before anyone acts on it.
    ledger: Ledger,
    /// Fan-out to every connected reviewer; lagging receivers re-read the snapshot.
    events: broadcast::Sender<BrokerEvent>,
    /// Sessions waiting on a request, by request id. Only the session that holds the waiting
    /// agent is in here; entries are removed when the request settles or the ticket drops.
    waiters: Mutex<HashMap<String, oneshot::Sender<Verdict>>>,
    /// Who is connected to decide.
    presence: Presence,
    /// Reviewer groups, scopes, rules and owners: who may vote on what.
    authority: Arc<Authority>,
    /// Refused votes already in the ledger (reviewer, request, code), so repeats are not.
    refusals_audited: Mutex<std::collections::HashSet<(String, String, &'static str)>>,
}

impl Broker {
    /// A broker whose ledger signs nothing (tests, tools); the gateway uses [`Broker::with_ledger`].
    pub fn new(store: Store) -> Self {
        let ledger = Ledger::new(store.clone(), None, 100);
        Self::with_ledger(store, ledger)
    }

    pub fn with_ledger(store: Store, ledger: Ledger) -> Self {
        Self::for_node(store, ledger, String::new(), Arc::default())
    }

    /// A broker for gateway node `node` (cluster mode tells peers what happened here), whose
    /// votes are checked against `authority`.
    pub fn for_node(store: Store, ledger: Ledger, node: String, authority: Arc<Authority>) -> Self {
        let (events, _) = broadcast::channel(1024);
        let cluster = store.is_postgres();
        Self {
            inner: Arc::new(Inner {
                store,
                ledger,
                node,
                cluster,
                events,
                waiters: Mutex::new(HashMap::new()),
                presence: Presence::default(),
                authority,
                refusals_audited: Mutex::default(),
            }),
        }
    }

    /// The ledger every request, vote and outcome goes to; the reviewer listener writes
    /// sign-in events to it (the gateway holds its own handle).
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// Who may see and vote on what (the reviewer listener filters by it too).
    pub fn authority(&self) -> &Arc<Authority> {
        &self.inner.authority
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The reviewers connected now (this node's, and what peers said of theirs).
    pub fn presence(&self) -> &Presence {
        &self.inner.presence
    }

    /// Publish to this node's reviewers only (events that came from a peer).
    pub(crate) fn publish_local(&self, e: BrokerEvent) {
        let _ = self.inner.events.send(e);
    }

    /// Tell peer nodes (PostgreSQL only). Best effort: the safety poll covers a lost message.
    pub(crate) async fn tell_peers(&self, ev: crate::cluster::Remote) {
        if !self.inner.cluster {
            return;
        }
        let Ok(payload) = serde_json::to_string(&ev) else {
            return;
        };
        if let Err(e) = self
            .inner
            .store
            .notify(crate::cluster::CHANNEL, &payload)
            .await
        {
            tracing::warn!(error = %e, "cluster: NOTIFY failed");
        }
    }

    /// Hand a verdict to this node's waiter for `id`, if it holds one.
    pub(crate) fn deliver(&self, id: &str, verdict: Verdict) {
        if let Some(w) = self.waiters().remove(id) {
            let _ = w.send(verdict);
        }
    }

    /// Expire a request (a dead peer's); returns the verdict that stands.
    pub async fn expire(&self, id: &str, why: &str) -> Verdict {
        self.settle(id, Outcome::Expired, why).await
    }

    /// The safety net under NOTIFY: any request this node waits on that the database already
    /// settled is delivered now.
    pub async fn poll_waiters(&self) {
        let ids: Vec<String> = self.waiters().keys().cloned().collect();
        for id in ids {
            match self.stored_verdict(&id).await {
                Ok(Some(v)) => self.deliver(&id, v),
                Ok(None) => {}
                Err(e) => tracing::warn!(request = %id, error = %e, "poll: cannot read request"),
            }
        }
    }

    /// The verdict the database holds for `id`, if it is settled, told the way a vote would
    /// have told it.
    async fn stored_verdict(&self, id: &str) -> Result<Option<Verdict>, StoreError> {
        let Some((RequestStatus::Settled(outcome), by, note)) =
            self.inner.store.request_outcome(id).await?
        else {
            return Ok(None);
        };
        let votes = self
            .inner
            .store
            .get_request(id)
            .await?
            .map(|r| r.votes)
            .unwrap_or_default();
        let by = by.unwrap_or_default();
        let why = settled_by_votes(outcome, &votes)
            .or(note.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| format!("{outcome} by {by}"));
        Ok(Some(Verdict { outcome, by, why }))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// One request as stored, with its votes (`None` if unknown).
    pub async fn request(&self, id: &str) -> Result<Option<RequestView>, StoreError> {
        self.inner.store.get_request(id).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BrokerEvent> {
        self.inner.events.subscribe()
    }

    fn publish(&self, e: BrokerEvent) {
        // No receivers is fine: nobody is watching yet, the snapshot will show it.
        let _ = self.inner.events.send(e);
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Verdict>>> {
        // A poisoned map only means another thread panicked mid-insert; the data is still a map.
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store a pending request and tell every reviewer about it.
    pub async fn submit(&self, req: NewRequest) -> Result<Ticket, StoreError> {
        let view = self.inner.store.insert_request(&req, now_ms()).await?;
        let logged = self
            .inner
            .ledger
            .append(&Event::RequestOpened {
                request: view.id.clone(),
                session: req.session_id.clone(),
                agent: req.agent.clone(),
                target: req.target.clone(),
                command: req.command.clone(),
                quorum: req.needs.total(),
                expires_at: req.expires_at,
                reason: req.reason.clone(),
                rule: req.needs.rule.clone(),
                needs: req.needs.describe(),
            })
            .await;
        if let Err(e) = logged {
            // Not in the audit trail, so it must never be approved: settle it now.
            let _ = self
                .inner
                .store
                .settle(
                    &view.id,
                    Outcome::Withdrawn,
                    "airlock",
                    "audit ledger unavailable",
                    now_ms(),
                )
                .await;
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        self.waiters().insert(view.id.clone(), tx);
        self.publish(BrokerEvent::Requested(Box::new(view.clone())));
        self.tell_peers(crate::cluster::Remote::Requested {
            node: self.inner.node.clone(),
            id: view.id.clone(),
        })
        .await;
        Ok(Ticket {
            request: view,
            rx,
            broker: self.clone(),
        })
    }

    /// Pending requests for a reviewer's snapshot.
    pub async fn pending(&self) -> Result<Vec<RequestView>, StoreError> {
        self.inner.store.pending_requests(now_ms()).await
    }

    /// A reviewer's vote. Scope, ownership and group membership are checked against the
    /// request as stored (its quorum was fixed when it opened); a refusal is audited and
    /// nothing is counted.
    pub async fn decide(
        &self,
        reviewer: &Reviewer,
        id: &str,
        decision: VoteDecision,
        comment: Option<&str>,
    ) -> Result<DecideAck, DecideError> {
        let comment = comment.filter(|c| !c.trim().is_empty());
        if let Some(c) = comment {
            crate::model::check_comment(c).map_err(DecideError::BadComment)?;
        }
        let Some(request) = self.inner.store.get_request(id).await? else {
            return Err(DecideError::UnknownRequest(id.to_owned()));
        };
        let groups = match self
            .inner
            .authority
            .standing(reviewer, &request, &request.needs)
        {
            Ok(g) => g,
            Err(refusal) => return Err(self.refuse(reviewer, id, decision, refusal).await),
        };
        let name = reviewer.name.as_str();
        let res = self
            .inner
            .store
            .vote(id, name, decision, comment, &groups, now_ms())
            .await?;
        if matches!(res, VoteResult::Excluded) {
            let refusal = Refusal::Owner {
                agent: request.agent.clone(),
            };
            return Err(self.refuse(reviewer, id, decision, refusal).await);
        }
        let reviewer = name;
        if matches!(
            res,
            VoteResult::Counted { .. } | VoteResult::Resolved { .. }
        ) {
            let logged = self
                .inner
                .ledger
                .append(&Event::RequestVote {
                    request: id.to_owned(),
                    reviewer: reviewer.to_owned(),
                    decision,
                    comment: comment.unwrap_or("").to_owned(),
                    groups: groups.clone(),
                })
                .await;
            if let Err(e) = logged {
                // The vote is stored; without its audit entry the command still cannot start
                // (execution is logged first, and fails closed).
                tracing::error!(request = id, error = %e, "vote not in the audit ledger");
            }
        }
        match res {
            VoteResult::NotFound => Err(DecideError::UnknownRequest(id.to_owned())),
            VoteResult::NotPending(status) => Err(DecideError::AlreadyResolved {
                id: id.to_owned(),
                status,
            }),
            VoteResult::AlreadyVoted => Err(DecideError::AlreadyVoted(id.to_owned())),
            VoteResult::OwnRequest => {
                let e = DecideError::OwnRequest(id.to_owned());
                self.audit_refusal(reviewer, id, decision, e.code(), e.to_string())
                    .await;
                Err(e)
            }
            VoteResult::Excluded => Err(DecideError::Refused(Refusal::Owner {
                agent: request.agent,
            })),
            VoteResult::Counted {
                approvals,
                quorum,
                progress,
            } => {
                self.publish(BrokerEvent::Voted {
                    id: id.to_owned(),
                    reviewer: reviewer.to_owned(),
                    decision,
                    approvals: approvals.clone(),
                    progress: progress.clone(),
                });
                self.tell_peers(crate::cluster::Remote::Voted {
                    node: self.inner.node.clone(),
                    id: id.to_owned(),
                    reviewer: reviewer.to_owned(),
                    decision,
                    approvals: approvals.clone(),
                    progress: progress.clone(),
                })
                .await;
                Ok(DecideAck::Counted {
                    approvals,
                    needed: quorum,
                    progress,
                })
            }
            VoteResult::Resolved {
                outcome,
                votes,
                quorum,
                progress,
            } => {
                let why = settled_by_votes(outcome, &votes)
                    .unwrap_or_else(|| format!("{outcome} by {reviewer}"));
                let approvers: Vec<String> = votes
                    .iter()
                    .filter(|v| v.decision == VoteDecision::Approve)
                    .map(|v| v.reviewer.clone())
                    .collect();
                let verdict = Verdict {
                    outcome,
                    by: reviewer.to_owned(),
                    why,
                };
                let done = self
                    .resolved(
                        id,
                        verdict,
                        approvers.clone(),
                        comment.map(str::to_owned),
                        Some(&request),
                    )
                    .await;
                if let Err(e) = done
                    && outcome == Outcome::Approved
                {
                    return Err(e);
                }
                Ok(DecideAck::Resolved {
                    outcome,
                    approvals: approvers,
                    needed: quorum,
                    progress,
                })
            }
        }
    }

    /// Tell everyone how `id` ended; `Err` when its outcome could not be audited, or the
    /// grant an approved access `request` asks for could not be made (an approval is then
    /// turned into a deny: nothing approved runs unaudited).
    async fn resolved(
        &self,
        id: &str,
        mut verdict: Verdict,
        approvers: Vec<String>,
        comment: Option<String>,
        request: Option<&RequestView>,
    ) -> Result<(), DecideError> {
        // Logged before the waiting session hears it, so the ledger shows the outcome before
        // anything the outcome allows.
        let logged = self
            .inner
            .ledger
            .append(&Event::RequestOutcome {
                request: id.to_owned(),
                outcome: verdict.outcome,
                by: verdict.by.clone(),
                why: verdict.why.clone(),
            })
            .await;
        let mut done = Ok(());
        if let Err(e) = logged {
            done = Err(DecideError::Unaudited(id.to_owned()));
            tracing::error!(request = id, error = %e, "outcome not in the audit ledger");
            if verdict.outcome == Outcome::Approved {
                verdict = Verdict {
                    outcome: Outcome::Denied,
                    by: "airlock".into(),
                    why: "the approval could not be written to the audit ledger".into(),
                };
                if let Err(e) = self
                    .inner
                    .store
                    .overrule(id, Outcome::Denied, "airlock", &verdict.why, now_ms())
                    .await
                {
                    tracing::error!(request = id, error = %e, "cannot mark the unaudited approval denied");
                }
            }
        }
        // An approved access request is a grant before the agent hears it (fail closed).
        if done.is_ok()
            && verdict.outcome == Outcome::Approved
            && let Some(r) = request
            && let Err(why) = self.grant_access(r, &approvers).await
        {
            verdict = self.overruled(id, &why).await;
            done = Err(DecideError::NotGranted {
                id: id.to_owned(),
                why,
            });
        }
        if let Some(w) = self.waiters().remove(id) {
            let _ = w.send(verdict.clone());
        }
        self.publish(BrokerEvent::Resolved {
            id: id.to_owned(),
            outcome: verdict.outcome,
            by: verdict.by.clone(),
            approvers: approvers.clone(),
            comment: comment.clone(),
            why: verdict.why.clone(),
        });
        self.tell_peers(crate::cluster::Remote::Resolved {
            node: self.inner.node.clone(),
            id: id.to_owned(),
            outcome: verdict.outcome,
            by: verdict.by.clone(),
            why: verdict.why.clone(),
            approvers,
            comment,
        })
        .await;
        done
    }

    /// Settle without a vote (timeout, withdrawal). Returns the verdict that stands: if a vote
    /// got there first, that one.
    async fn settle(&self, id: &str, outcome: Outcome, why: &str) -> Verdict {
        match self
            .inner
            .store
            .settle(id, outcome, "airlock", why, now_ms())
            .await
        {
            Ok(Some(status)) if status == RequestStatus::Settled(outcome) => {
                let v = Verdict {
                    outcome,
                    by: "airlock".into(),
                    why: why.to_owned(),
                };
                let _ = self.resolved(id, v.clone(), Vec::new(), None, None).await;
                v
            }
            Ok(_) => {
                // A vote settled it between our deadline and our update (the store only
                // counts votes cast before the deadline): that verdict stands. Anything but a
                // settled row here (it vanished, or cannot be read) is a deny.
                match self.stored_verdict(id).await {
                    Ok(Some(v)) => v,
                    Ok(None) => Verdict {
                        outcome: Outcome::Denied,
                        by: "airlock".into(),
                        why: "the request vanished from the store".into(),
                    },
                    Err(e) => Verdict {
                        outcome: Outcome::Denied,
                        by: "airlock".into(),
                        why: format!("store error: {e}"),
                    },
                }
            }
            Err(e) => {
                tracing::error!(request = id, error = %e, "could not settle request; denying");
                Verdict {
                    outcome: Outcome::Denied,
                    by: "airlock".into(),
                    why: format!("store error: {e}"),
                }
            }
        }
    }
}

impl Ticket {
    /// Wait for the verdict until `timeout`; no answer in time is an expiry (a deny).
    /// Borrowing, so a caller can race it against the agent going away and then
    /// [`Ticket::withdraw`].
    pub async fn wait(&mut self, timeout: Duration) -> Verdict {
        let id = self.request.id.clone();
        let verdict = tokio::select! {
            v = &mut self.rx => match v {
                Ok(v) => v,
                Err(_) => Verdict { outcome: Outcome::Denied, by: "airlock".into(), why: "approval broker went away".into() },
            },
            () = tokio::time::sleep(timeout) => {
                self.broker.settle(&id, Outcome::Expired, "no decision before the deadline").await
            }
        };
        self.broker.waiters().remove(&id);
        verdict
    }

    /// The agent went away while waiting: the request can no longer be approved.
    pub async fn withdraw(self, why: &str) -> Verdict {
        let id = self.request.id.clone();
        let v = self.broker.settle(&id, Outcome::Withdrawn, why).await;
        self.broker.waiters().remove(&id);
        v
    }
}

mod access;
mod scope;
#[cfg(test)]
mod tests;
