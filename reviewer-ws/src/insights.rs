//! The page's Insights tab over HTTP (docs/metrics.md, "Insights"): `GET
//! /api/insights?days=N` (1–90, default 30) answers, per UTC day, how many commands were
//! judged and how each was decided, by tier; the median and p90 time reviewers took; how many
//! ran without a human; and the whitelist's size.
//!
//! Authenticated like every other read (a reviewer token or the sign-on cookie), and scoped:
//! commands, requests and whitelist entries on targets outside the reviewer's groups' scope
//! are left out before anything is counted (`withheld` says some were). The counting is
//! [`airlock_approvals::store::insights`]'s; this module only authenticates and maps errors.

use std::collections::HashMap;

use airlock_approvals::now_ms;
use airlock_approvals::store::insights::{DAY_MS, MAX_DAYS, summarize};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::server::AppState;
use crate::web::{fail, ok_json, reviewer};

/// The period when the page does not say.
const DEFAULT_DAYS: i64 = 30;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/insights", get(insights))
}

async fn insights(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let me = match reviewer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let days = match q.get("days").map(|d| d.parse::<i64>()) {
        None => DEFAULT_DAYS,
        Some(Ok(d)) if (1..=MAX_DAYS).contains(&d) => d,
        Some(_) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("days must be a whole number from 1 to {MAX_DAYS}"),
            );
        }
    };
    let now = now_ms();
    let since = (now.div_euclid(DAY_MS) - days + 1) * DAY_MS;
    let data = match st.store.insights_data(since).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "insights query failed");
            return fail(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
        }
    };
    let authority = st.broker.authority();
    let visible = |target: &str| authority.may_see_target(&me.reviewer, target);
    let summary = summarize(&data, now, days, &visible);
    match serde_json::to_value(&summary) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("period_days".into(), json!(days));
                o.insert("generated_at".into(), json!(now));
            }
            ok_json(v)
        }
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
