//! The sessions table: one row per SSH session channel, opened before anything runs and
//! closed with its outcome, exit and recording.

use sqlx::Row;

use super::{SessionFilter, SessionRow, Store, StoreError};
use crate::model::{SessionKind, SessionOutcome};

impl Store {
    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    pub async fn open_session(
        &self,
        id: &str,
        agent: &str,
        target: &str,
        kind: SessionKind,
        command: Option<&str>,
        peer: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (id, agent, target, kind, command, peer, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(agent)
            .bind(target)
            .bind(kind.as_str())
            .bind(command)
            .bind(peer)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn close_session(
        &self,
        id: &str,
        outcome: SessionOutcome,
        exit_status: Option<i64>,
        exit_signal: Option<&str>,
        recording: Option<(&str, u64, &str)>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET ended_at = $2, outcome = $3, exit_status = $4, exit_signal = $5, \
             recording = $6, recording_size = $7, recording_sha256 = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(outcome.as_str())
        .bind(exit_status)
        .bind(exit_signal)
        .bind(recording.map(|r| r.0))
        .bind(recording.map(|r| r.1 as i64))
        .bind(recording.map(|r| r.2))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_sessions(&self, limit: i64) -> Result<Vec<SessionRow>, StoreError> {
        self.find_sessions(&SessionFilter::default(), limit).await
    }

    /// Mark sessions a previous run left open as interrupted (at start-up: their tasks are
    /// gone). Returns how many there were.
    pub async fn interrupt_open_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let r =
            sqlx::query("UPDATE sessions SET ended_at = $1, outcome = $2 WHERE ended_at IS NULL")
                .bind(now)
                .bind(SessionOutcome::Interrupted.as_str())
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    /// One session by id, or by a unique prefix of its id (as printed in short form).
    pub async fn session(&self, id_or_prefix: &str) -> Result<Vec<SessionRow>, StoreError> {
        let pattern = format!("{}%", id_or_prefix.replace(['%', '_'], ""));
        let rows = sqlx::query(
            "SELECT id, agent, target, kind, command, started_at, ended_at, outcome, exit_status, recording \
             FROM sessions WHERE id LIKE $1 ORDER BY started_at DESC LIMIT 2",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Sessions newest first, narrowed by agent, target and start time.
    pub async fn find_sessions(
        &self,
        f: &SessionFilter,
        limit: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, agent, target, kind, command, started_at, ended_at, outcome, exit_status, recording \
             FROM sessions WHERE started_at >= $1 AND ($2 = '' OR agent = $2) AND ($3 = '' OR target = $3) \
             ORDER BY started_at DESC LIMIT $4",
        )
        .bind(f.since.unwrap_or(0))
        .bind(f.agent.as_deref().unwrap_or(""))
        .bind(f.target.as_deref().unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }
}

fn session_from_row(r: &sqlx::any::AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        agent: r.try_get("agent")?,
        target: r.try_get("target")?,
        kind: r.try_get("kind")?,
        command: r.try_get("command")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        outcome: r.try_get("outcome")?,
        exit_status: r.try_get("exit_status")?,
        recording: r.try_get("recording")?,
    })
}
