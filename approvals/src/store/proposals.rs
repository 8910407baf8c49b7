//! Proposed whitelist entries: rows of the `whitelist` table whose `status` is `proposed`, the
//! people who accepted each (`whitelist_accepts`), and the conditional updates that make one
//! live or rejected.
//!
//! A proposal and a live entry share one table so that accepting is a status change, not a
//! copy: the entry that goes live is the very row reviewers looked at. The gate's lookup
//! (`whitelist_match`) reads only `status = 'live'`, so nothing here can allow a command until
//! [`Store::accept_proposal`] says the last needed person accepted. Every change is one
//! transaction that first takes the row's lock with a no-op update guarded by
//! `status = 'proposed'` — the same trick as votes — so two acceptances count once each and a
//! rejection racing an acceptance decides exactly one outcome.

use sqlx::Row;

use super::whitelist::COLUMNS;
use super::{NewWhitelist, Store, StoreError, corrupt};
use crate::model::WhitelistEntry;
use crate::proposals::{Proposal, ProposalStatus};

/// What one acceptance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Counted; `accepted` people of `needed` so far, and whether this one made it live.
    Counted { accepted: Vec<String>, live: bool },
    /// This person had already accepted it: nothing changed.
    Again,
    /// It is not proposed (any more): live, rejected, or gone.
    NotProposed(Option<ProposalStatus>),
}

impl Store {
    /// Store `e` as a proposal: in the table, allowing nothing.
    pub async fn propose_whitelist(
        &self,
        e: &NewWhitelist<'_>,
        proposed_by: &str,
        source: &str,
    ) -> Result<WhitelistEntry, StoreError> {
        self.insert_whitelist(e, Some((proposed_by, source))).await
    }

    async fn accepted_by(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT reviewer FROM whitelist_accepts WHERE entry_id = $1 ORDER BY at, reviewer",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("reviewer").map_err(Into::into))
            .collect()
    }

    fn proposal_from_row(r: &sqlx::any::AnyRow) -> Result<Proposal, StoreError> {
        let (entry, _) = Self::whitelist_from_row(r)?;
        let status: String = r.try_get("status")?;
        Ok(Proposal {
            entry,
            status: status
                .parse()
                .map_err(|e: String| corrupt("whitelist", e))?,
            proposed_by: r.try_get("proposed_by")?,
            source: r.try_get("source")?,
            accepted_by: Vec::new(),
        })
    }

    /// Every entry still waiting for acceptance, oldest first, with who accepted it so far.
    pub async fn list_proposals(&self) -> Result<Vec<Proposal>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, status, proposed_by, source FROM whitelist \
             WHERE status = 'proposed' ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut p = Self::proposal_from_row(r)?;
            p.accepted_by = self.accepted_by(&p.entry.id).await?;
            out.push(p);
        }
        Ok(out)
    }

    /// One entry (in any status) as a proposal, with who accepted it.
    pub async fn proposal(&self, id: &str) -> Result<Option<Proposal>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, status, proposed_by, source FROM whitelist WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let mut p = Self::proposal_from_row(&r)?;
        p.accepted_by = self.accepted_by(id).await?;
        Ok(Some(p))
    }

    async fn status_now(&self, id: &str) -> Result<Option<ProposalStatus>, StoreError> {
        let row = sqlx::query("SELECT status FROM whitelist WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let s: String = r.try_get("status")?;
                Ok(Some(
                    s.parse().map_err(|e: String| corrupt("whitelist", e))?,
                ))
            }
        }
    }

    /// Count `person`'s acceptance of proposal `id`; when it brings the count to `needed`,
    /// the entry goes live in the same transaction.
    pub async fn accept_proposal(
        &self,
        id: &str,
        person: &str,
        needed: usize,
        now: i64,
    ) -> Result<Accepted, StoreError> {
        // One person, whatever the case of the name they act under (`Alice` in the page and
        // `cli:alice` are one person, so a medium entry still needs two).
        let person = person.to_ascii_lowercase();
        let person = person.as_str();
        let mut tx = self.pool.begin().await?;
        // Takes the row's write lock (the database's, on SQLite) only while it is proposed.
        let locked = sqlx::query(
            "UPDATE whitelist SET status = status WHERE id = $1 AND status = 'proposed'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Accepted::NotProposed(self.status_now(id).await?));
        }
        let inserted = sqlx::query(
            "INSERT INTO whitelist_accepts (entry_id, reviewer, at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(person)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Accepted::Again);
        }
        let rows = sqlx::query(
            "SELECT reviewer FROM whitelist_accepts WHERE entry_id = $1 ORDER BY at, reviewer",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let accepted = rows
            .iter()
            .map(|r| r.try_get::<String, _>("reviewer"))
            .collect::<Result<Vec<_>, _>>()?;
        let live = accepted.len() >= needed;
        if live {
            sqlx::query(
                "UPDATE whitelist SET status = 'live' WHERE id = $1 AND status = 'proposed'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Accepted::Counted { accepted, live })
    }

    /// Undo one acceptance whose audit entry could not be written: the person's row goes,
    /// and an entry it made live is proposed again (it must not stay in force unaccounted).
    pub async fn undo_acceptance(&self, id: &str, person: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE whitelist SET status = 'proposed' WHERE id = $1 AND status = 'live'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM whitelist_accepts WHERE entry_id = $1 AND reviewer = $2")
            .bind(id)
            .bind(person)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Mark proposal `id` rejected; `false` when it is not proposed (any more).
    pub async fn reject_proposal(&self, id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE whitelist SET status = 'rejected' WHERE id = $1 AND status = 'proposed'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }
}
