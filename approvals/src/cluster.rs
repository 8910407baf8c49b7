//! Cluster mode: several gateway nodes on one PostgreSQL database.
//!
//! Decisions are already made once, in the database (row-locked votes, settle-once). What a
//! node must learn from its peers is *that* something happened: a request raised elsewhere
//! (for its reviewers), a vote, an outcome (for the agent it holds). Those travel as Postgres
//! `NOTIFY airlock_events` messages; a slow safety poll of the node's own waiters catches
//! anything a dropped listener connection missed. Every node beats a heartbeat; a node whose
//! heartbeat is stale has its pending requests expired by its peers, so nothing it held can be
//! approved later.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::broker::{Broker, BrokerEvent};
use crate::model::{Outcome, VoteDecision};
use crate::now_ms;

pub const CHANNEL: &str = "airlock_events";

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Remote {
    Requested {
        node: String,
        id: String,
    },
    Voted {
        node: String,
        id: String,
        reviewer: String,
        decision: VoteDecision,
        approvals: Vec<String>,
        #[serde(default)]
        progress: crate::authority::Progress,
    },
    Resolved {
        node: String,
        id: String,
        outcome: Outcome,
        by: String,
        why: String,
        #[serde(default)]
        approvers: Vec<String>,
        #[serde(default)]
        comment: Option<String>,
    },
    /// The reviewers connected to `node` now (sent on every change and heartbeat).
    Presence {
        node: String,
        reviewers: Vec<String>,
    },
}

impl Remote {
    fn node(&self) -> &str {
        match self {
            Remote::Requested { node, .. }
            | Remote::Voted { node, .. }
            | Remote::Resolved { node, .. }
            | Remote::Presence { node, .. } => node,
        }
    }
}

/// Listen for peers' events until the task is dropped; reconnects on failure.
pub async fn listen(broker: Broker, url: String) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut l) => {
                if let Err(e) = l.listen(CHANNEL).await {
                    tracing::error!(error = %e, "cluster: cannot LISTEN");
                } else {
                    tracing::info!("cluster: listening for peer events");
                    loop {
                        match l.recv().await {
                            Ok(n) => match serde_json::from_str::<Remote>(n.payload()) {
                                Ok(ev) if ev.node() != broker.node() => broker.remote(ev).await,
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "cluster: unreadable peer event")
                                }
                            },
                            Err(e) => {
                                tracing::warn!(error = %e, "cluster: listener connection lost");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cluster: cannot connect the listener"),
        }
        // The safety poll covers the gap.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Beat this node's heartbeat, expire what dead peers held, and poll this node's waiters.
pub async fn heartbeat(broker: Broker, every: Duration, stale_after: Duration) {
    let started = now_ms();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reviewers = broker.presence().changes();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Who sits here changed: tell peers now, not at the next beat.
            Ok(()) = reviewers.changed() => {
                broker.tell_presence().await;
                continue;
            }
        }
        broker.tell_presence().await;
        let store = broker.store();
        if let Err(e) = store.heartbeat(broker.node(), started, now_ms()).await {
            tracing::error!(error = %e, "cluster: heartbeat failed");
        }
        let stale_before = now_ms() - stale_after.as_millis() as i64;
        match store
            .requests_of_stale_nodes(broker.node(), stale_before)
            .await
        {
            Ok(stale) => {
                for (id, node) in stale {
                    let why = format!("node {node} stopped while the request was pending");
                    let v = broker.expire(&id, &why).await;
                    tracing::warn!(request = %id, node = %node, outcome = v.outcome.as_str(), "cluster: expired a dead node's request");
                }
            }
            Err(e) => tracing::error!(error = %e, "cluster: cannot look for stale nodes"),
        }
        broker.poll_waiters().await;
    }
}

impl Broker {
    /// Tell peers which reviewers are connected here.
    async fn tell_presence(&self) {
        self.tell_peers(Remote::Presence {
            node: self.node().to_owned(),
            reviewers: self.presence().local(),
        })
        .await;
    }

    /// Apply a peer's event: tell this node's reviewers, release this node's waiter.
    pub async fn remote(&self, ev: Remote) {
        match ev {
            Remote::Requested { id, .. } => match self.store().get_request(&id).await {
                Ok(Some(view)) => self.publish_local(BrokerEvent::Requested(Box::new(view))),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cluster: cannot load a peer's request"),
            },
            Remote::Voted {
                id,
                reviewer,
                decision,
                approvals,
                progress,
                ..
            } => self.publish_local(BrokerEvent::Voted {
                id,
                reviewer,
                decision,
                approvals,
                progress,
            }),
            Remote::Resolved {
                id,
                outcome,
                by,
                why,
                approvers,
                comment,
                ..
            } => {
                self.deliver(
                    &id,
                    crate::broker::Verdict {
                        outcome,
                        by: by.clone(),
                        why: why.clone(),
                    },
                );
                self.publish_local(BrokerEvent::Resolved {
                    id,
                    outcome,
                    by,
                    approvers,
                    comment,
                    why,
                });
            }
            Remote::Presence { node, reviewers } => {
                self.presence().peer(&node, reviewers, now_ms());
            }
        }
    }
}
