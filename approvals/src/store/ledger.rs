//! Ledger rows: the chain and its signed checkpoints. The append itself (hashing, retries,
//! checkpoint cadence) is in [`crate::ledger`].

use sqlx::Row;

use super::{Store, StoreError};
use crate::ledger::format::{Checkpoint, Entry};

impl Store {
    /// The last entry's (seq, hash), or `None` for an empty ledger.
    pub async fn ledger_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("seq")?, r.try_get("hash")?)),
            None => None,
        })
    }

    /// Insert consecutive entries in one transaction: all of them, or none. `Ok(false)` when
    /// a seq is taken (another writer got there first; nothing was written).
    pub async fn ledger_insert(&self, entries: &[Entry]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in entries {
            let r = sqlx::query(
                "INSERT INTO ledger (seq, ts, kind, payload, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.seq)
            .bind(e.ts)
            .bind(&e.kind)
            .bind(crate::ledger::format::canonical(&e.payload))
            .bind(&e.prev)
            .bind(&e.hash)
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(sqlx::Error::Database(d))
                    if d.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The payloads of entries of `kind` written at or after `since_ts` (ms), oldest first,
    /// at most `limit` (for summaries such as `airlock agents show`; verification reads
    /// [`Store::ledger_entries`]).
    pub async fn ledger_payloads(
        &self,
        kind: &str,
        since_ts: i64,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT payload FROM ledger WHERE kind = $1 AND ts >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(kind)
        .bind(since_ts)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null))
            })
            .collect()
    }

    /// Entries with seq ≥ `since`, in order, at most `limit`.
    pub async fn ledger_entries(&self, since: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, ts, kind, payload, prev, hash FROM ledger WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(Entry {
                    seq: r.try_get("seq")?,
                    ts: r.try_get("ts")?,
                    kind: r.try_get("kind")?,
                    // Stored canonical; a row that is not JSON is kept as a string so the
                    // verifier reports the broken hash instead of the export failing.
                    payload: serde_json::from_str(&payload)
                        .unwrap_or(serde_json::Value::String(payload)),
                    prev: r.try_get("prev")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    pub async fn ledger_checkpoint_insert(&self, c: &Checkpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (seq, hash, ts, pubkey, sig) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.ts)
        .bind(&c.key)
        .bind(&c.sig)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn ledger_checkpoints(&self, since: i64) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, ts, pubkey, sig FROM ledger_checkpoints WHERE seq >= $1 ORDER BY seq",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    ts: r.try_get("ts")?,
                    key: r.try_get("pubkey")?,
                    sig: r.try_get("sig")?,
                })
            })
            .collect()
    }

    pub async fn ledger_last_checkpoint(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT seq FROM ledger_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("seq")?),
            None => None,
        })
    }
}
