//! Grant rows (see `crate::grants` and docs/grants.md). The database is the truth: every
//! check reads it, so a grant added or revoked on one cluster node holds on every node at once.
//! Revocation and the expiry note are conditional updates, so two nodes (or the CLI and a
//! gateway) can never both win.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::grants::{Grant, NewGrant};
use crate::ids;

const COLUMNS: &str = "id, agent, target, reason, created_by, created_at, expires_at, \
     revoked_at, revoked_by, request_id";

/// A grant in force at $N: not revoked and not yet expired.
const LIVE: &str = "revoked_at IS NULL AND expires_at >";

fn grant_from_row(r: &AnyRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: r.try_get("id")?,
        agent: r.try_get("agent")?,
        target: r.try_get("target")?,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
        request_id: r.try_get("request_id")?,
    })
}

impl Store {
    /// Create a grant (created at `now`). Durations are checked by the caller
    /// (`crate::grants::check_duration`); an `expires_at` not after `now` is stored as given
    /// and is simply never live.
    pub async fn add_grant(&self, g: &NewGrant, now: i64) -> Result<Grant, StoreError> {
        let id = ids::new_id()?;
        sqlx::query(
            "INSERT INTO grants (id, agent, target, reason, created_by, created_at, expires_at, \
             request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&g.agent)
        .bind(&g.target)
        .bind(&g.reason)
        .bind(&g.created_by)
        .bind(now)
        .bind(g.expires_at)
        .bind(&g.request_id)
        .execute(&self.pool)
        .await?;
        Ok(Grant {
            id,
            agent: g.agent.clone(),
            target: g.target.clone(),
            reason: g.reason.clone(),
            created_by: g.created_by.clone(),
            created_at: now,
            expires_at: g.expires_at,
            revoked_at: None,
            revoked_by: None,
            request_id: g.request_id.clone(),
        })
    }

    /// The live grant for `agent` on `target` at `now` that lasts longest, if any.
    pub async fn active_grant(
        &self,
        agent: &str,
        target: &str,
        now: i64,
    ) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM grants WHERE agent = $1 AND target = $2 AND {LIVE} $3 \
             ORDER BY expires_at DESC, id LIMIT 1"
        )))
        .bind(agent)
        .bind(target)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Grants live at `now`, or every grant with `include_inactive` (expired and revoked
    /// ones too), newest first.
    pub async fn list_grants(
        &self,
        include_inactive: bool,
        now: i64,
    ) -> Result<Vec<Grant>, StoreError> {
        let rows = if include_inactive {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM grants ORDER BY created_at DESC, id"
            )))
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM grants WHERE {LIVE} $1 ORDER BY created_at DESC, id"
            )))
            .bind(now)
            .fetch_all(&self.pool)
            .await?
        };
        rows.iter().map(grant_from_row).collect()
    }

    /// One grant by id, whatever its state.
    pub async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM grants WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The grant for `agent` on `target` that ended last (revoked or expired), to say why
    /// access ended; `None` if there never was one.
    pub async fn last_grant(&self, agent: &str, target: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM grants WHERE agent = $1 AND target = $2 \
             ORDER BY COALESCE(revoked_at, expires_at) DESC, id LIMIT 1"
        )))
        .bind(agent)
        .bind(target)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Revoke a live grant. [`StoreError::NoGrant`] for an unknown id,
    /// [`StoreError::GrantEnded`] for one already revoked or expired (nothing changes).
    pub async fn revoke_grant(&self, id: &str, by: &str, now: i64) -> Result<Grant, StoreError> {
        // The race between two revocations (or a revocation and the expiry) is decided here:
        // only a row still live at `now` is updated.
        let res = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE grants SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND {LIVE} $2"
        )))
        .bind(id)
        .bind(now)
        .bind(by)
        .execute(&self.pool)
        .await?;
        let Some(g) = self.grant(id).await? else {
            return Err(StoreError::NoGrant(id.to_owned()));
        };
        if res.rows_affected() == 0 {
            let how = match (&g.revoked_by, g.revoked_at) {
                (Some(who), Some(_)) => format!("revoked by {who}"),
                _ => "expired".to_owned(),
            };
            return Err(StoreError::GrantEnded {
                id: id.to_owned(),
                how,
            });
        }
        Ok(g)
    }

    /// Grants that expired (not revoked) by `now` and that no gateway has noted yet, each
    /// claimed for this caller: it, and no other node, writes their `grant.expired`.
    pub async fn claim_expired_grants(&self, now: i64) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM grants WHERE revoked_at IS NULL AND expires_at <= $1 \
             AND expiry_noted IS NULL ORDER BY expires_at, id"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let g = grant_from_row(r)?;
            let res = sqlx::query(
                "UPDATE grants SET expiry_noted = $2 WHERE id = $1 AND expiry_noted IS NULL",
            )
            .bind(&g.id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if res.rows_affected() == 1 {
                out.push(g);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::grants::{GrantState, NewGrant};
    use crate::store::StoreError;
    use crate::store::tests::backends;

    fn new(agent: &str, target: &str, expires_at: i64) -> NewGrant {
        NewGrant {
            agent: agent.into(),
            target: target.into(),
            reason: "incident 7".into(),
            created_by: "cli:op".into(),
            expires_at,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn a_grant_is_live_until_it_expires_or_is_revoked() {
        for db in backends().await {
            let s = &db.store;
            let g = s
                .add_grant(&new("bot", "prod", 1_000), 100)
                .await
                .expect("add");
            assert_eq!(g.created_at, 100);
            let live = s.active_grant("bot", "prod", 999).await.expect("q");
            assert_eq!(
                live.as_ref().map(|g| g.id.as_str()),
                Some(g.id.as_str()),
                "{}",
                db.name
            );
            assert!(
                s.active_grant("bot", "prod", 1_000)
                    .await
                    .expect("q")
                    .is_none()
            );
            assert!(
                s.active_grant("bot", "staging", 500)
                    .await
                    .expect("q")
                    .is_none()
            );
            assert!(
                s.active_grant("other", "prod", 500)
                    .await
                    .expect("q")
                    .is_none()
            );

            let g2 = s
                .add_grant(&new("bot", "prod", 5_000), 200)
                .await
                .expect("add");
            assert_eq!(s.list_grants(false, 500).await.expect("list").len(), 2);
            let r = s.revoke_grant(&g2.id, "cli:op", 600).await.expect("revoke");
            assert_eq!(r.state(600), GrantState::Revoked);
            assert_eq!(r.revoked_by.as_deref(), Some("cli:op"));
            match s.revoke_grant(&g2.id, "cli:op", 700).await {
                Err(StoreError::GrantEnded { how, .. }) => assert_eq!(how, "revoked by cli:op"),
                other => panic!("{}: {other:?}", db.name),
            }
            match s.revoke_grant(&g.id, "cli:op", 2_000).await {
                Err(StoreError::GrantEnded { how, .. }) => assert_eq!(how, "expired"),
                other => panic!("{}: {other:?}", db.name),
            }
            assert!(matches!(
                s.revoke_grant("nope", "cli:op", 1).await,
                Err(StoreError::NoGrant(_))
            ));
            assert!(
                s.active_grant("bot", "prod", 900)
                    .await
                    .expect("q")
                    .is_some()
            );
            assert!(s.list_grants(false, 2_000).await.expect("list").is_empty());
            assert_eq!(s.list_grants(true, 2_000).await.expect("list").len(), 2);

            // The expiry is claimed once, and never for a revoked grant.
            let claimed = s.claim_expired_grants(2_000).await.expect("claim");
            assert_eq!(claimed.len(), 1, "{}", db.name);
            assert_eq!(claimed[0].id, g.id);
            assert!(
                s.claim_expired_grants(3_000)
                    .await
                    .expect("claim")
                    .is_empty()
            );
            db.drop_db().await;
        }
    }
}
