//! Readiness probes for `/readyz` (docs/metrics.md): the database answers, and the ledger
//! table takes a write. Each is a real round trip, never a cached flag; the caller bounds them
//! in time.

use super::{Store, StoreError};

impl Store {
    /// The database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The ledger table takes a write: one row is inserted inside a transaction that is then
    /// rolled back, so the chain is never touched. Fails on a read-only or locked-out database.
    /// The probe's `seq` (−1) is one no real entry has.
    pub async fn ledger_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO ledger (seq, ts, kind, payload, prev, hash) \
             VALUES (-1, 0, 'readyz.probe', '{}', '', '')",
        )
        .execute(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(())
    }
}
