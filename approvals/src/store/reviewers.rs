//! Reviewer tokens: created once and shown once; only their SHA-256 is kept.

use sqlx::Row;

use super::{Store, StoreError};
use crate::ids;

impl Store {
    /// Create a reviewer and return its token (shown once; only the hash is kept).
    pub async fn add_reviewer(&self, name: &str, now: i64) -> Result<String, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(StoreError::ReviewerName(name.to_owned()));
        }
        let token = ids::new_token()?;
        let res = sqlx::query("INSERT INTO reviewers (name, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(ids::token_hash(&token))
            .bind(now)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::ReviewerExists(name.to_owned()));
        }
        Ok(token)
    }

    pub async fn list_reviewers(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at FROM reviewers ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("created_at")?)))
            .collect()
    }

    pub async fn remove_reviewer(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM reviewers WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoReviewer(name.to_owned()));
        }
        Ok(())
    }

    /// The reviewer a token belongs to, if any (and not removed).
    pub async fn reviewer_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT name FROM reviewers WHERE token_hash = $1")
            .bind(ids::token_hash(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }
}
