//! The columns and table that hold the files a command runs (migration 0011): each request's
//! `scripts` (what reviewers saw), and the approved texts by SHA-256 (`script_texts`), from
//! which a changed file is shown as a diff against the version a whitelist entry approved.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt};
use crate::scripts::{MAX_SCRIPT_BYTES, ScriptFile, ScriptPin};

/// The `scripts` column for a request (NULL when it runs no file).
pub(super) fn column(scripts: &[ScriptFile]) -> Result<Option<String>, StoreError> {
    if scripts.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(scripts)
        .map(Some)
        .map_err(|e| corrupt("requests", e))
}

/// A request row's files.
pub(super) fn from_row(r: &AnyRow) -> Result<Vec<ScriptFile>, StoreError> {
    let raw: Option<String> = r.try_get("scripts")?;
    match raw {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(&s).map_err(|e| corrupt("requests", e)),
    }
}

/// A whitelist entry's `scripts` column: its pins, sorted (NULL when it has none).
pub(super) fn pins_column(pins: &[ScriptPin]) -> Result<Option<String>, StoreError> {
    if pins.is_empty() {
        return Ok(None);
    }
    let mut pins = pins.to_vec();
    pins.sort();
    pins.dedup();
    serde_json::to_string(&pins)
        .map(Some)
        .map_err(|e| corrupt("whitelist", e))
}

/// A whitelist row's pins.
pub(super) fn pins_of(r: &AnyRow) -> Result<Vec<ScriptPin>, StoreError> {
    let raw: Option<String> = r.try_get("scripts")?;
    match raw {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(&s).map_err(|e| corrupt("whitelist", e)),
    }
}

impl Store {
    /// Keep the texts of `scripts` by hash (first writer wins: a hash names one text).
    pub(super) async fn keep_script_texts(
        &self,
        scripts: &[ScriptFile],
        now: i64,
    ) -> Result<(), StoreError> {
        for f in scripts {
            let (Some(sha), Some(text)) = (&f.sha256, &f.content) else {
                continue;
            };
            if text.len() > MAX_SCRIPT_BYTES {
                continue;
            }
            sqlx::query(
                "INSERT INTO script_texts (sha256, content, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha)
            .bind(text)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The text whose SHA-256 is `sha256`, if a request ever carried it.
    pub async fn script_text(&self, sha256: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT content FROM script_texts WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("content")?),
            None => None,
        })
    }
}
