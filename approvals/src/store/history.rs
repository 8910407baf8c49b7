//! What reviewers look back on: resolved requests with every vote, newest first.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::model::RequestView;

/// A request that is no longer pending, with how and when it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    #[serde(flatten)]
    pub request: RequestView,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
}

impl Store {
    /// The `limit` most recent requests that are no longer pending.
    pub async fn resolved_requests(&self, limit: i64) -> Result<Vec<Resolved>, StoreError> {
        let sql = concat!(
            "SELECT ",
            request_cols!(),
            ", resolved_at, resolved_by, note FROM requests WHERE status <> 'pending' \
             ORDER BY created_at DESC, id LIMIT $1"
        );
        let rows = sqlx::query(sql).bind(limit).fetch_all(&self.pool).await?;
        let mut requests = rows
            .iter()
            .map(Self::request_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Every vote of those requests in one query.
        let votes = sqlx::query(
            "SELECT request_id, reviewer, decision, comment, at, groups FROM votes WHERE request_id IN \
             (SELECT id FROM requests WHERE status <> 'pending' ORDER BY created_at DESC, id LIMIT $1) \
             ORDER BY at, reviewer",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Self::attach_votes(&mut requests, &votes)?;
        let mut out = Vec::with_capacity(rows.len());
        for (request, r) in requests.into_iter().zip(&rows) {
            out.push(Resolved {
                request,
                resolved_at: r.try_get("resolved_at")?,
                resolved_by: r.try_get("resolved_by")?,
                note: r.try_get("note")?,
            });
        }
        Ok(out)
    }
}
