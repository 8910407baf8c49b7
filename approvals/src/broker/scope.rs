//! The broker's side of scopes: which pending requests a reviewer is shown, and the audit
//! entries for votes and reads a reviewer's groups refuse. Whether a reviewer may act is
//! [`crate::authority`]'s answer; this only applies it and writes it down.

use super::{Broker, DecideError};
use crate::authority::{Refusal, Reviewer};
use crate::ledger::Event;
use crate::model::{RequestView, VoteDecision};
use crate::store::StoreError;

impl Broker {
    /// Pending requests `reviewer` may see (their groups' scopes).
    pub async fn pending_for(&self, reviewer: &Reviewer) -> Result<Vec<RequestView>, StoreError> {
        let mut all = self.pending().await?;
        all.retain(|r| self.may_see(reviewer, r));
        Ok(all)
    }

    /// Whether `reviewer` may see `r` (queue, pushes, history, recordings, screen).
    pub fn may_see(&self, reviewer: &Reviewer, r: &RequestView) -> bool {
        self.inner.authority.may_see(reviewer, &r.target, &r.labels)
    }

    /// Audit a read a reviewer's scope refused (`what`: `session <id>`). Best effort: the
    /// read is refused either way.
    pub async fn audit_read_refused(&self, reviewer: &str, what: &str, code: &str) {
        tracing::warn!(reviewer, what, code, "read refused");
        if let Err(e) = self
            .inner
            .ledger
            .append(&Event::ReadRefused {
                reviewer: reviewer.to_owned(),
                what: what.to_owned(),
                code: code.to_owned(),
            })
            .await
        {
            tracing::error!(error = %e, "refused read not in the audit ledger");
        }
    }

    /// Audit a refused vote and turn it into the reviewer's error.
    pub(super) async fn refuse(
        &self,
        reviewer: &Reviewer,
        id: &str,
        decision: VoteDecision,
        refusal: Refusal,
    ) -> DecideError {
        self.audit_refusal(
            &reviewer.name,
            id,
            decision,
            refusal.code(),
            refusal.to_string(),
        )
        .await;
        DecideError::Refused(refusal)
    }

    /// Write a refused vote to the ledger, once per reviewer, request and reason: a reviewer
    /// repeating a refused vote must not grow the ledger without bound (the first one is the
    /// evidence). Best effort: the vote is refused either way.
    pub(super) async fn audit_refusal(
        &self,
        reviewer: &str,
        id: &str,
        decision: VoteDecision,
        code: &'static str,
        why: String,
    ) {
        tracing::warn!(request = id, reviewer, code, "vote refused");
        {
            let mut seen = self
                .inner
                .refusals_audited
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if seen.len() >= MAX_REMEMBERED_REFUSALS {
                // Forgetting only means a repeat is written again.
                seen.clear();
            }
            if !seen.insert((reviewer.to_owned(), id.to_owned(), code)) {
                return;
            }
        }
        if let Err(e) = self
            .inner
            .ledger
            .append(&Event::VoteRefused {
                request: id.to_owned(),
                reviewer: reviewer.to_owned(),
                decision,
                code: code.to_owned(),
                why,
            })
            .await
        {
            tracing::error!(request = id, error = %e, "refused vote not in the audit ledger");
        }
    }
}

/// How many (reviewer, request, reason) refusals are remembered as already audited.
const MAX_REMEMBERED_REFUSALS: usize = 10_000;
