//! Access requests in the broker: an approved one becomes a grant — stored and in the ledger
//! (`grant.added`, with the request's id) — before the waiting agent hears the approval. If
//! either write fails, the approval is overruled into a deny (fail closed): nothing tells
//! the agent it has access that the store and the ledger cannot show.

use crate::grants::{Grant, NewGrant};
use crate::ledger::Event;
use crate::model::{Outcome, RequestKind, RequestView, names};
use crate::now_ms;
use crate::store::StoreError;

use super::{Broker, Verdict};

/// Who a grant made by reviewers is recorded as: its approvers (`alice and bob`).
fn granted_by(approvers: &[String]) -> String {
    let who: Vec<&str> = approvers.iter().map(String::as_str).collect();
    match names(&who) {
        n if n.is_empty() => "reviewers".to_owned(),
        n => n,
    }
}

impl Broker {
    /// The grant an approved access request made (what the waiting agent is told).
    pub async fn grant_for_request(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.store().grant_for_request(id).await
    }

    /// Make the grant an approved access request asks for (a no-op for a command). `Err`
    /// says why it could not be made; no grant is then in force.
    pub(super) async fn grant_access(
        &self,
        request: &RequestView,
        approvers: &[String],
    ) -> Result<(), String> {
        let RequestKind::Access { duration_s } = request.kind else {
            return Ok(());
        };
        let now = now_ms();
        let expires_at = i64::try_from(duration_s)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .and_then(|ms| now.checked_add(ms))
            .ok_or_else(|| format!("the duration {duration_s}s cannot be granted"))?;
        let grant = self
            .store()
            .add_grant(
                &NewGrant {
                    agent: request.agent.clone(),
                    target: request.target.clone(),
                    reason: request.reason.clone().unwrap_or_default(),
                    created_by: granted_by(approvers),
                    expires_at,
                    request_id: Some(request.id.clone()),
                },
                now,
            )
            .await
            .map_err(|e| {
                tracing::error!(request = %request.id, error = %e, "cannot store the grant");
                "the grant could not be stored".to_owned()
            })?;
        if let Err(e) = self.ledger().append(&grant.added_event()).await {
            tracing::error!(request = %request.id, error = %e, "grant not in the audit ledger; revoking it");
            if let Err(e) = self
                .store()
                .revoke_grant(&grant.id, "ledger-unavailable", now_ms())
                .await
            {
                tracing::error!(grant = %grant.id, error = %e, "cannot revoke the unaudited grant");
            }
            return Err("the grant could not be written to the audit ledger".to_owned());
        }
        tracing::info!(request = %request.id, grant = %grant.id, "access granted");
        Ok(())
    }

    /// An approval that could not be carried out (`why`) is a deny: the store and the ledger
    /// say so, and the returned verdict is what the agent and the reviewers are told.
    pub(super) async fn overruled(&self, id: &str, why: &str) -> Verdict {
        let verdict = Verdict {
            outcome: Outcome::Denied,
            by: "airlock".into(),
            why: format!("approved, but {why}"),
        };
        if let Err(e) = self
            .store()
            .overrule(id, Outcome::Denied, "airlock", &verdict.why, now_ms())
            .await
        {
            tracing::error!(request = id, error = %e, "cannot mark the ungranted approval denied");
        }
        let logged = self
            .ledger()
            .append(&Event::RequestOutcome {
                request: id.to_owned(),
                outcome: verdict.outcome,
                by: verdict.by.clone(),
                why: verdict.why.clone(),
            })
            .await;
        if let Err(e) = logged {
            tracing::error!(request = id, error = %e, "overruled outcome not in the audit ledger");
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::authority::{Quorum, Reviewer};
    use crate::model::{RequestStatus, VoteDecision};
    use crate::store::{NewRequest, Store};
    use crate::{DecideError, RequestKind};

    async fn broker() -> (Broker, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        (Broker::new(Store::connect(&url).await.unwrap()), url, dir)
    }

    fn access(duration_s: u64) -> NewRequest {
        NewRequest {
            scripts: Vec::new(),
            node: String::new(),
            session_id: "s".into(),
            agent: "bot".into(),
            target: "prod".into(),
            command: "request-access prod 1h".into(),
            tier: airlock_classifier::Tier::Medium,
            score: 0,
            reasons: vec![],
            needs: Quorum::anyone(1),
            expires_at: now_ms() + 60_000,
            reason: Some("hotfix".into()),
            labels: Default::default(),
            kind: RequestKind::Access { duration_s },
        }
    }

    fn alice() -> Reviewer {
        Reviewer {
            name: "alice".into(),
            groups: Default::default(),
        }
    }

    #[tokio::test]
    async fn an_approved_access_request_is_a_grant_before_the_agent_hears_it() {
        let (b, _, _d) = broker().await;
        let mut t = b.submit(access(3600)).await.unwrap();
        let id = t.request.id.clone();
        assert_eq!(
            b.request(&id).await.unwrap().unwrap().kind,
            RequestKind::Access { duration_s: 3600 }
        );
        b.decide(&alice(), &id, VoteDecision::Approve, None)
            .await
            .unwrap();
        let v = t.wait(Duration::from_secs(5)).await;
        assert_eq!(v.outcome, Outcome::Approved);
        let g = b.grant_for_request(&id).await.unwrap().expect("a grant");
        assert_eq!((g.agent.as_str(), g.target.as_str()), ("bot", "prod"));
        assert_eq!(
            (g.reason.as_str(), g.created_by.as_str()),
            ("hotfix", "alice")
        );
        assert_eq!(g.expires_at - g.created_at, 3_600_000);
        assert!(g.is_active(now_ms()));
    }

    #[tokio::test]
    async fn an_approval_whose_grant_cannot_be_stored_is_a_deny() {
        let (b, url, _d) = broker().await;
        let mut t = b.submit(access(600)).await.unwrap();
        let id = t.request.id.clone();
        // The grant's table is gone: the approval cannot be carried out.
        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("DROP TABLE grants")
            .execute(&raw)
            .await
            .unwrap();
        let res = b.decide(&alice(), &id, VoteDecision::Approve, None).await;
        assert!(
            matches!(res, Err(DecideError::NotGranted { .. })),
            "{res:?}"
        );
        let v = t.wait(Duration::from_secs(5)).await;
        assert_eq!(v.outcome, Outcome::Denied);
        assert!(v.why.contains("could not be stored"), "{}", v.why);
        let stored = b.request(&id).await.unwrap().unwrap();
        assert_eq!(stored.status, RequestStatus::Settled(Outcome::Denied));
    }
}
