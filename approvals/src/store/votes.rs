//! Votes: one reviewer's decision, counted once under a lock, settling the request when it
//! decides it.

use sqlx::Row;

use super::{Store, StoreError, VoteResult, corrupt, status_of};
use crate::authority::Quorum;
use crate::model::{Outcome, RequestStatus, VoteDecision};

impl Store {
    /// Record one reviewer's vote and settle the request if the vote decides it.
    ///
    /// The first statement is a no-op update of the request row *only if pending*: it takes
    /// the row's write lock (PostgreSQL) or the database write lock (SQLite) before anything is
    /// read, so concurrent votes on one request are serialised and quorum is counted once.
    ///
    /// `groups` are the reviewer groups the vote counts for (those of the reviewer's groups
    /// whose scope covers the request; checked by the caller against the config). The
    /// request's stored [`Quorum`] decides whether the approvals meet it.
    pub async fn vote(
        &self,
        id: &str,
        reviewer: &str,
        decision: VoteDecision,
        comment: Option<&str>,
        groups: &[String],
        now: i64,
    ) -> Result<VoteResult, StoreError> {
        let mut tx = self.pool.begin().await?;
        let locked =
            sqlx::query("UPDATE requests SET status = status WHERE id = $1 AND status = 'pending'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        let row = sqlx::query(
            "SELECT agent, quorum, needs, status, expires_at FROM requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(VoteResult::NotFound);
        };
        let status = status_of(&row)?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if locked.rows_affected() == 0 || status != RequestStatus::Pending {
            return Ok(VoteResult::NotPending(status));
        }
        if now >= expires_at {
            // Its waiter will expire it; a late approval must not count.
            return Ok(VoteResult::NotPending(RequestStatus::Settled(
                Outcome::Expired,
            )));
        }
        let agent: String = row.try_get("agent")?;
        // Case-blind: `Claude` is not a second person next to the agent `claude`.
        if agent.eq_ignore_ascii_case(reviewer) {
            return Ok(VoteResult::OwnRequest);
        }
        let quorum: i64 = row.try_get("quorum")?;
        let quorum = u32::try_from(quorum).map_err(|e| corrupt("requests", e))?;
        let needs: Option<String> = row.try_get("needs")?;
        let needs = match needs {
            Some(n) => serde_json::from_str::<Quorum>(&n).map_err(|e| corrupt("requests", e))?,
            None => Quorum::anyone(quorum),
        };
        if needs
            .excluded
            .iter()
            .any(|x| x.eq_ignore_ascii_case(reviewer))
        {
            return Ok(VoteResult::Excluded);
        }
        let groups_json = serde_json::to_string(groups).map_err(|e| corrupt("votes", e))?;
        let inserted = sqlx::query(
            "INSERT INTO votes (request_id, reviewer, decision, comment, at, groups) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(reviewer)
        .bind(decision.as_str())
        .bind(comment)
        .bind(now)
        .bind(groups_json)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(VoteResult::AlreadyVoted);
        }
        let rows = sqlx::query(
            "SELECT reviewer, decision, comment, at, groups FROM votes WHERE request_id = $1 ORDER BY at, reviewer",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let votes = rows
            .iter()
            .map(Self::vote_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let approvals: Vec<String> = votes
            .iter()
            .filter(|v| v.decision == VoteDecision::Approve)
            .map(|v| v.reviewer.clone())
            .collect();
        let denied = votes.iter().any(|v| v.decision == VoteDecision::Deny);
        // Each need filled by distinct people, one place per person (see Quorum::progress).
        let progress = needs.progress(&votes);
        let outcome = if denied {
            Some(Outcome::Denied)
        } else if progress.met {
            Some(Outcome::Approved)
        } else {
            None
        };
        if let Some(o) = outcome {
            sqlx::query("UPDATE requests SET status = $2, resolved_at = $3, resolved_by = $4, note = $5 WHERE id = $1 AND status = 'pending'")
                .bind(id)
                .bind(o.as_str())
                .bind(now)
                .bind(reviewer)
                .bind(comment)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(match outcome {
            Some(outcome) => VoteResult::Resolved {
                outcome,
                votes,
                quorum,
                progress,
            },
            None => VoteResult::Counted {
                approvals,
                quorum,
                progress,
            },
        })
    }
}
