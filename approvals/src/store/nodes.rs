//! Cluster bookkeeping in the database: node heartbeats (who is alive, who went silent with
//! requests pending) and PostgreSQL `NOTIFY` for telling peers what happened.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// When `node` last beat its heartbeat (milliseconds), if it ever did.
    pub async fn node_heartbeat(&self, node: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT heartbeat_at FROM nodes WHERE name = $1")
            .bind(node)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("heartbeat_at")?),
            None => None,
        })
    }

    /// Record that `node` is alive.
    pub async fn heartbeat(&self, node: &str, started_at: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (name, started_at, heartbeat_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET heartbeat_at = $3, started_at = $2",
        )
        .bind(node)
        .bind(started_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pending requests held by other nodes whose heartbeat is older than `stale_before`.
    pub async fn requests_of_stale_nodes(
        &self,
        me: &str,
        stale_before: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id AS id, r.node AS node FROM requests r JOIN nodes n ON n.name = r.node \
             WHERE r.status = 'pending' AND r.node <> $1 AND n.heartbeat_at < $2",
        )
        .bind(me)
        .bind(stale_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("node")?)))
            .collect()
    }

    /// `NOTIFY channel, payload` (PostgreSQL).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
