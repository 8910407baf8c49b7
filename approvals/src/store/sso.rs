//! Reviewer single sign-on in the database: logins in progress and browser sessions.
//!
//! Both live here, not in a node's memory, so that in a cluster a login started on one node
//! can finish on another and a session opened on one is honoured (and ended) on all. Only
//! SHA-256 hashes of the secrets a browser holds (the login `state`, the session id) are
//! stored, so a database dump opens no session. Each row has an expiry that every read
//! checks; expired rows are swept as they are met.

use sqlx::Row;

use super::{Store, StoreError, corrupt};
use crate::ids;

/// What a finished login needs back: the PKCE verifier and the nonce sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    pub pkce_verifier: String,
    pub nonce: String,
}

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub name: String,
    /// The identity provider's groups claim as it was at sign-in.
    pub claimed_groups: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The key a secret held by a browser is stored under.
pub fn secret_hash(secret: &str) -> String {
    ids::token_hash(secret)
}

impl Store {
    /// Keep a login in progress until `expires_at`. At most `max_live` are kept: beyond it the
    /// oldest give way (returned: how many), so a flood of login starts can neither grow the
    /// table without bound nor lock everyone out of signing in — it can only push out logins
    /// older than the flood's last `max_live` starts, and the user retries. The count and the
    /// insert are not one transaction; the bound is approximate by the concurrent starts.
    pub async fn begin_reviewer_login(
        &self,
        state: &str,
        start: &LoginStart,
        now: i64,
        expires_at: i64,
        max_live: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query("DELETE FROM reviewer_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let live: i64 = sqlx::query("SELECT COUNT(*) AS n FROM reviewer_logins")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let evicted = (live - max_live + 1).max(0);
        if evicted > 0 {
            sqlx::query(
                "DELETE FROM reviewer_logins WHERE state_sha256 IN \
                 (SELECT state_sha256 FROM reviewer_logins ORDER BY created_at, state_sha256 LIMIT $1)",
            )
            .bind(evicted)
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(
            "INSERT INTO reviewer_logins (state_sha256, pkce_verifier, nonce, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_hash(state))
        .bind(&start.pkce_verifier)
        .bind(&start.nonce)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(evicted)
    }

    /// Take the login `state` belongs to: at most once, and only before it expires.
    pub async fn finish_reviewer_login(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<LoginStart>, StoreError> {
        let key = secret_hash(state);
        let row = sqlx::query(
            "SELECT pkce_verifier, nonce, expires_at FROM reviewer_logins WHERE state_sha256 = $1",
        )
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        // Whoever deletes the row owns the login; a replayed callback finds nothing.
        let taken = sqlx::query("DELETE FROM reviewer_logins WHERE state_sha256 = $1")
            .bind(&key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let expires_at: i64 = row.try_get("expires_at")?;
        if taken != 1 || expires_at <= now {
            return Ok(None);
        }
        Ok(Some(LoginStart {
            pkce_verifier: row.try_get("pkce_verifier")?,
            nonce: row.try_get("nonce")?,
        }))
    }

    /// Open a browser session for `name` until `expires_at`; returns the session id for the
    /// cookie (256 random bits, hex). Only its hash is stored.
    pub async fn open_reviewer_session(
        &self,
        name: &str,
        claimed_groups: &[String],
        now: i64,
        expires_at: i64,
    ) -> Result<String, StoreError> {
        let id = ids::new_token()?;
        let groups =
            serde_json::to_string(claimed_groups).map_err(|e| corrupt("reviewer_sessions", e))?;
        sqlx::query(
            "INSERT INTO reviewer_sessions (id_sha256, reviewer, claimed_groups, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_hash(&id))
        .bind(name)
        .bind(groups)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The live session stored under `id_hash` ([`secret_hash`] of the cookie), if it has not
    /// expired or been ended.
    pub async fn reviewer_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<SignedIn>, StoreError> {
        let row = sqlx::query(
            "SELECT reviewer, claimed_groups, created_at, expires_at FROM reviewer_sessions \
             WHERE id_sha256 = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            self.end_reviewer_session(id_hash).await?;
            return Ok(None);
        }
        let groups: String = row.try_get("claimed_groups")?;
        Ok(Some(SignedIn {
            name: row.try_get("reviewer")?,
            claimed_groups: serde_json::from_str(&groups)
                .map_err(|e| corrupt("reviewer_sessions", e))?,
            created_at: row.try_get("created_at")?,
            expires_at,
        }))
    }

    /// End a session (logout). Whether there was one.
    pub async fn end_reviewer_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM reviewer_sessions WHERE id_sha256 = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// End every session of reviewer `name` (an operator's `airlock reviewer remove`); how
    /// many there were. Open sockets notice at their next proof check.
    pub async fn end_sessions_of(&self, name: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM reviewer_sessions WHERE reviewer = $1")
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Delete every expired session and login; how many sessions went.
    pub async fn sweep_reviewer_sessions(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM reviewer_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query("DELETE FROM reviewer_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.expect("sqlite");
        (dir, store)
    }

    #[tokio::test]
    async fn a_session_is_found_by_hash_until_it_expires_or_ends() {
        let (_d, s) = store().await;
        let id = s
            .open_reviewer_session("carol", &["db-admins".into()], 1_000, 2_000)
            .await
            .expect("open");
        assert!(
            s.reviewer_session(&id, 1_500)
                .await
                .expect("read")
                .is_none(),
            "raw id is no key"
        );
        let h = secret_hash(&id);
        let got = s
            .reviewer_session(&h, 1_500)
            .await
            .expect("read")
            .expect("live");
        assert_eq!(got.name, "carol");
        assert_eq!(got.claimed_groups, vec!["db-admins".to_owned()]);
        assert!(
            s.reviewer_session(&h, 2_000).await.expect("read").is_none(),
            "expired"
        );
        assert!(
            !s.end_reviewer_session(&h).await.expect("end"),
            "the expired row was swept"
        );

        let id = s
            .open_reviewer_session("carol", &[], 1_000, 9_000)
            .await
            .expect("open");
        let h = secret_hash(&id);
        assert!(s.end_reviewer_session(&h).await.expect("end"));
        assert!(
            s.reviewer_session(&h, 1_500).await.expect("read").is_none(),
            "logged out"
        );
    }

    #[tokio::test]
    async fn a_login_is_taken_once_before_it_expires_and_a_flood_evicts_the_oldest() {
        let (_d, s) = store().await;
        let start = LoginStart {
            pkce_verifier: "v".into(),
            nonce: "n".into(),
        };
        let begin = |st: &'static str, now: i64, exp: i64| {
            let s = s.clone();
            let start = start.clone();
            async move {
                s.begin_reviewer_login(st, &start, now, exp, 2)
                    .await
                    .expect("begin")
            }
        };
        assert_eq!(begin("st0", 0, 100).await, 0);
        assert_eq!(begin("st1", 1, 100).await, 0);
        assert_eq!(begin("st2", 2, 100).await, 1, "the oldest gave way");
        assert_eq!(
            s.finish_reviewer_login("st0", 50).await.expect("finish"),
            None,
            "evicted"
        );
        assert_eq!(
            s.finish_reviewer_login("st1", 50).await.expect("finish"),
            Some(start.clone())
        );
        assert_eq!(
            s.finish_reviewer_login("st1", 50).await.expect("finish"),
            None,
            "single use"
        );
        assert_eq!(
            s.finish_reviewer_login("st2", 100).await.expect("finish"),
            None,
            "expired"
        );
        assert_eq!(begin("st4", 200, 300).await, 0, "expired rows swept");
    }
}
