//! The two `requests` columns that tell an access request from a command (migration 0010):
//! `kind` (`command` | `access`) and `access_duration_s`. An unknown kind, or an access row
//! without a positive duration, is a corrupt row — never read as a command.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt};
use crate::grants::Grant;
use crate::model::RequestKind;

/// The `access_duration_s` value for `kind` (NULL for a command).
pub(super) fn duration_column(kind: RequestKind) -> Result<Option<i64>, StoreError> {
    match kind {
        RequestKind::Command => Ok(None),
        RequestKind::Access { duration_s } => i64::try_from(duration_s)
            .map(Some)
            .map_err(|e| corrupt("requests", e)),
    }
}

/// A request row's kind.
pub(super) fn kind_of(r: &AnyRow) -> Result<RequestKind, StoreError> {
    let kind: String = r.try_get("kind")?;
    let duration: Option<i64> = r.try_get("access_duration_s")?;
    match (kind.as_str(), duration) {
        ("command", _) => Ok(RequestKind::Command),
        // A zero duration is read as it is (older gateways let sub-second asks through):
        // one odd row must not make every pending-requests read fail.
        ("access", Some(d)) if d >= 0 => Ok(RequestKind::Access {
            duration_s: d.unsigned_abs(),
        }),
        (other, d) => Err(corrupt(
            "requests",
            format!("request kind {other:?} with access duration {d:?}"),
        )),
    }
}

impl Store {
    /// The grant made for access request `request_id` (any state), if one was.
    pub async fn grant_for_request(&self, request_id: &str) -> Result<Option<Grant>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM grants WHERE request_id = $1 ORDER BY created_at, id")
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => self.grant(&r.try_get::<String, _>("id")?).await,
            None => Ok(None),
        }
    }
}
