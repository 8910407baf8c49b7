//! The page's Agents tab over HTTP (issue 21, docs/reviewer-protocol.md, "Agents"): `GET
//! /api/agents` lists the agents, `GET /api/agents/{name}` is one agent's blast radius — its
//! targets with labels and grants, its whitelist by target, what it ran in the last 7 days
//! and a one-line summary of what it can do unattended.
//!
//! The report is built by the gateway (the same code as `airlock agents show`), behind
//! [`AgentDirectory`], so this crate never depends on the gateway. This module only
//! authenticates, hands the reviewer's scope to the report (targets outside it are left out
//! before the summary is made, so the summary never describes them) and maps outcomes to
//! statuses. Read only.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::server::AppState;
use crate::web::{fail, ok_json, reviewer};

/// What [`AgentDirectory::report`] returns: `Ok(None)` for an unknown agent, `Err` with a
/// message for a failure to read (the store).
pub type ReportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<serde_json::Value>, String>> + Send + 'a>>;

/// Which targets a reader may see, by name.
pub type TargetFilter<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// Where agents and their reports come from (the gateway implements it from its config, store
/// and ledger).
pub trait AgentDirectory: Send + Sync {
    /// Every agent's name, sorted.
    fn names(&self) -> Vec<String>;
    /// The report on agent `name` with only the targets `visible` admits: its `targets`
    /// array, weekly counts and summary never mention another target, and
    /// `targets_withheld` is true when one was left out.
    fn report<'a>(&'a self, name: &'a str, visible: TargetFilter<'a>) -> ReportFuture<'a>;
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(list))
        .route("/api/agents/{name}", get(show))
}

fn unavailable() -> Response {
    fail(
        StatusCode::NOT_FOUND,
        "agent reports are not available on this listener",
    )
}

async fn list(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = reviewer(&st, &headers).await {
        return r;
    }
    let Some(dir) = &st.agents else {
        return unavailable();
    };
    ok_json(json!({ "agents": dir.names() }))
}

async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let me = match reviewer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let Some(dir) = &st.agents else {
        return unavailable();
    };
    let authority = st.broker.authority();
    let visible = |target: &str| authority.may_see_target(&me.reviewer, target);
    match dir.report(&name, &visible).await {
        Ok(Some(report)) => ok_json(report),
        Ok(None) => fail(StatusCode::NOT_FOUND, format!("unknown agent {name:?}")),
        Err(e) => {
            tracing::error!(error = %e, agent = %name, "agent report failed");
            fail(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
