//! Proposed whitelist entries over HTTP: the web page's "Proposed" list and its accept/reject
//! buttons (docs/reviewer-protocol.md, "Proposed whitelist entries").
//!
//! `GET /api/proposals` lists the proposals the reviewer's scope covers; `POST
//! /api/proposals/{id}/accept`, `…/reject` and `POST /api/proposals/accept-all` change them.
//! Who may, and how many must, is `airlock_approvals::proposals`; this module only
//! authenticates and maps errors to statuses.
//!
//! The POSTs change state, so they are guarded against cross-site requests on top of the
//! session cookie's SameSite=Strict: the body must be `application/json` (a cross-site form
//! cannot send that without a CORS preflight, which is never granted), an `Origin` that is
//! sent must be this host (as for the WebSocket), and a request proved by the cookie must send
//! one (every browser does on a POST).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use airlock_approvals::now_ms;
use airlock_approvals::proposals::{self, Actor, Proposal, ProposalError};

use crate::identity::{AuthFailure, Identity, Proof};
use crate::server::AppState;

/// The most proposals one list or one accept-all handles (a promotion is a whitelist's
/// worth; the rest waits for the next page load).
const MAX_LISTED: usize = 500;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/proposals", get(list))
        .route("/api/proposals/accept-all", post(accept_all))
        .route("/api/proposals/{id}/accept", post(accept))
        .route("/api/proposals/{id}/reject", post(reject))
}

fn reply(code: StatusCode, v: Value) -> Response {
    let mut r = (code, axum::Json(v)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn fail(code: StatusCode, error: &str, msg: impl Into<String>) -> Response {
    reply(code, json!({ "code": error, "error": msg.into() }))
}

async fn identify(st: &AppState, headers: &HeaderMap) -> Result<Identity, Response> {
    match st.identify(headers).await {
        Ok(id) => Ok(id),
        Err(AuthFailure::Missing) => Err(fail(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing bearer token",
        )),
        Err(AuthFailure::Bad(why)) => Err(fail(StatusCode::UNAUTHORIZED, "unauthenticated", why)),
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "token check failed");
            Err(fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                "store unavailable",
            ))
        }
    }
}

/// The identity behind a state-changing request, once it passed the cross-site checks.
async fn changer(st: &AppState, headers: &HeaderMap) -> Result<Identity, Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
            "send Content-Type: application/json",
        ));
    }
    if !st.origin_allowed(headers) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "cross-origin request refused",
        ));
    }
    let id = identify(st, headers).await?;
    if matches!(id.proof, Proof::Session { .. }) && headers.get(header::ORIGIN).is_none() {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a signed-in browser request must send Origin",
        ));
    }
    Ok(id)
}

fn status_of(e: &ProposalError) -> StatusCode {
    match e {
        ProposalError::NotFound(_) => StatusCode::NOT_FOUND,
        ProposalError::NotProposed { .. }
        | ProposalError::Again { .. }
        | ProposalError::HighTier(_) => StatusCode::CONFLICT,
        ProposalError::OwnAgent(_) | ProposalError::OutOfScope(_) => StatusCode::FORBIDDEN,
        ProposalError::Unaudited(_) | ProposalError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn refused(e: &ProposalError) -> Response {
    if matches!(e, ProposalError::Store(_) | ProposalError::Unaudited(_)) {
        tracing::error!(error = %e, "proposal change failed");
    }
    fail(status_of(e), e.code(), e.to_string())
}

/// A proposal as the page shows it: the entry, who accepted, how many are needed, and
/// whether this reviewer may accept or reject it (and why not).
fn row(st: &AppState, me: &Actor<'_>, p: &Proposal) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    let why_not = proposals::may_decide(st.broker.authority(), me, &p.entry)
        .err()
        .map(|e| e.to_string())
        .or_else(|| {
            p.accepted_by
                .iter()
                .any(|a| a == me.person())
                .then(|| "you accepted it; it needs another person".to_owned())
        });
    if let Some(o) = v.as_object_mut() {
        // The command in the display form every other view uses: what it allows, as it runs.
        o.insert(
            "shown".into(),
            json!(airlock_classifier::visible::Shown::of(&p.entry.command)),
        );
        o.insert("needed".into(), json!(p.needed()));
        o.insert("may_decide".into(), json!(why_not.is_none()));
        o.insert("why_not".into(), json!(why_not));
    }
    v
}

async fn list(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let me = match identify(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let actor = Actor::Reviewer(&me.reviewer);
    match st.store.list_proposals().await {
        Ok(all) => reply(
            StatusCode::OK,
            json!({ "proposals": all
                .iter()
                .filter(|p| proposals::may_see(st.broker.authority(), &actor, &p.entry))
                .take(MAX_LISTED)
                .map(|p| row(&st, &actor, p))
                .collect::<Vec<_>>() }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "listing proposals failed");
            fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                "store unavailable",
            )
        }
    }
}

async fn accept(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let me = match changer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let actor = Actor::Reviewer(&me.reviewer);
    let b = &st.broker;
    match proposals::accept(&st.store, b.ledger(), b.authority(), &actor, &id, now_ms()).await {
        Ok(o) => reply(StatusCode::OK, json!(o)),
        Err(e) => refused(&e),
    }
}

async fn reject(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let me = match changer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let actor = Actor::Reviewer(&me.reviewer);
    let b = &st.broker;
    match proposals::reject(&st.store, b.ledger(), b.authority(), &actor, &id).await {
        Ok(()) => reply(StatusCode::OK, json!({ "id": id, "rejected": true })),
        Err(e) => refused(&e),
    }
}

/// Accept every proposal this reviewer may accept and has not: one result per proposal, in
/// order; one refusal does not stop the rest.
async fn accept_all(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let me = match changer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let actor = Actor::Reviewer(&me.reviewer);
    let all = match st.store.list_proposals().await {
        Ok(all) => all,
        Err(e) => return refused(&ProposalError::Store(e)),
    };
    let b = &st.broker;
    let mut results = Vec::new();
    for p in all
        .iter()
        .filter(|p| proposals::may_decide(b.authority(), &actor, &p.entry).is_ok())
        .filter(|p| !p.accepted_by.iter().any(|a| a == actor.person()))
        .take(MAX_LISTED)
    {
        let id = &p.entry.id;
        results.push(
            match proposals::accept(&st.store, b.ledger(), b.authority(), &actor, id, now_ms())
                .await
            {
                Ok(o) => json!({ "id": id, "ok": true, "live": o.live,
                                 "accepted_by": o.accepted_by, "needed": o.needed }),
                Err(e) => {
                    json!({ "id": id, "ok": false, "code": e.code(), "error": e.to_string() })
                }
            },
        );
    }
    reply(StatusCode::OK, json!({ "results": results }))
}
