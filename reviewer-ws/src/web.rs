//! The reviewer web page and the read-only API behind it.
//!
//! The page is compiled into the binary — plain HTML, CSS and JavaScript, no build step; the
//! one third-party file (asciinema-player) is vendored, pinned, with its licence. The API takes
//! the same proof as the socket — a reviewer token in an `Authorization: Bearer` header (never
//! in a URL) or the sign-on session cookie — and only reads: history, sessions, recordings, and
//! the last screen of a session, each limited to the reviewer's scope (an out-of-scope
//! recording or screen is refused with 403 and audited).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::identity::{AuthFailure, Identity};
use crate::server::AppState;

/// Larger recordings are for `airlock replay`, not a browser tab.
const MAX_BROWSER_RECORDING: u64 = 64 * 1024 * 1024;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const SHOWN_JS: &str = include_str!("../web/shown.js");
const QUORUM_JS: &str = include_str!("../web/quorum.js");
const SSO_JS: &str = include_str!("../web/sso.js");
const PROPOSED_JS: &str = include_str!("../web/proposed.js");
const ACCESS_JS: &str = include_str!("../web/access.js");
const SCRIPTS_JS: &str = include_str!("../web/scripts.js");
const AGENTS_JS: &str = include_str!("../web/agents.js");
const INSIGHTS_JS: &str = include_str!("../web/insights.js");
const INSIGHTS_CSS: &str = include_str!("../web/insights.css");
const APP_CSS: &str = include_str!("../web/app.css");
const PLAYER_JS: &str =
    include_str!("../web/vendor/asciinema-player-3.17.0/asciinema-player.min.js");
const PLAYER_CSS: &str = include_str!("../web/vendor/asciinema-player-3.17.0/asciinema-player.css");

/// Scripts only from here (the player compiles WebAssembly), sockets only to here, and the
/// page may not be framed (clickjacking an Approve button).
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; font-src 'self' data:; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The page's files: path, body, content type.
const ASSETS: [(&str, &str, &str); 14] = [
    ("/", INDEX, "text/html; charset=utf-8"),
    ("/app.js", APP_JS, "text/javascript; charset=utf-8"),
    ("/shown.js", SHOWN_JS, "text/javascript; charset=utf-8"),
    ("/sso.js", SSO_JS, "text/javascript; charset=utf-8"),
    ("/quorum.js", QUORUM_JS, "text/javascript; charset=utf-8"),
    ("/access.js", ACCESS_JS, "text/javascript; charset=utf-8"),
    ("/scripts.js", SCRIPTS_JS, "text/javascript; charset=utf-8"),
    ("/agents.js", AGENTS_JS, "text/javascript; charset=utf-8"),
    (
        "/insights.js",
        INSIGHTS_JS,
        "text/javascript; charset=utf-8",
    ),
    ("/insights.css", INSIGHTS_CSS, "text/css; charset=utf-8"),
    (
        "/proposed.js",
        PROPOSED_JS,
        "text/javascript; charset=utf-8",
    ),
    ("/app.css", APP_CSS, "text/css; charset=utf-8"),
    (
        "/vendor/asciinema-player.min.js",
        PLAYER_JS,
        "text/javascript; charset=utf-8",
    ),
    (
        "/vendor/asciinema-player.css",
        PLAYER_CSS,
        "text/css; charset=utf-8",
    ),
];

pub(crate) fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for (path, body, kind) in ASSETS {
        r = r.route(path, get(move || async move { page(body, kind) }));
    }
    r.route("/api/history", get(history))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/recording", get(recording))
        .route("/api/sessions/{id}/screen", get(screen))
}

fn page(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub(crate) fn fail(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = (code, axum::Json(json!({ "error": msg.into() }))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn ok_json(v: serde_json::Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The reviewer behind the request's proof, or the response refusing it.
pub(crate) async fn reviewer(st: &AppState, headers: &HeaderMap) -> Result<Identity, Response> {
    match st.identify(headers).await {
        Ok(id) => Ok(id),
        Err(AuthFailure::Missing) => Err(fail(StatusCode::UNAUTHORIZED, "missing bearer token")),
        Err(AuthFailure::Bad(why)) => Err(fail(StatusCode::UNAUTHORIZED, why)),
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "token check failed");
            Err(fail(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"))
        }
    }
}

fn limit(q: &HashMap<String, String>) -> i64 {
    q.get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(50)
        .clamp(1, 500)
}

async fn history(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let me = match reviewer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    match st.store.resolved_requests(limit(&q)).await {
        Ok(v) => ok_json(json!({ "requests": v
            .iter()
            .filter(|r| st.broker.may_see(&me.reviewer, &r.request))
            .map(history_row)
            .collect::<Vec<_>>() })),
        Err(e) => fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A decided request as History shows it: the stored row, plus its command's display form,
/// every approver, and the outcome said the way the agent was told it.
fn history_row(r: &airlock_approvals::store::Resolved) -> serde_json::Value {
    let mut row = serde_json::to_value(r).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    let view = &r.request;
    let told = view
        .status
        .outcome()
        .and_then(|o| airlock_approvals::model::settled_by_votes(o, &view.votes))
        .or_else(|| r.note.clone());
    if let Some(obj) = row.as_object_mut() {
        obj.insert(
            "shown".into(),
            json!(crate::protocol::ShownRequest::of(
                &view.command,
                view.reason.as_deref()
            )),
        );
        obj.insert("approvers".into(), json!(view.approvals()));
        obj.insert("outcome_text".into(), json!(told));
    }
    row
}

async fn sessions(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let me = match reviewer(&st, &headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let authority = st.broker.authority();
    match st.store.list_sessions(limit(&q)).await {
        Ok(rows) => ok_json(json!({
            "sessions": rows.iter()
                .filter(|s| authority.may_see_target(&me.reviewer, &s.target))
                .map(|s| json!({
                "id": s.id, "agent": s.agent, "target": s.target, "kind": s.kind,
                "command": s.command,
                "shown": s.command.as_deref().map(airlock_classifier::visible::Shown::of),
                "started_at": s.started_at, "ended_at": s.ended_at,
                "outcome": s.outcome, "exit_status": s.exit_status,
            })).collect::<Vec<_>>()
        })),
        Err(e) => fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// The recording file of session `id`: only session ids (hex) name files, and only inside the
/// recordings directory.
fn recording_path(dir: &Path, id: &str) -> Option<PathBuf> {
    let plain = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    plain.then(|| dir.join(format!("{id}.cast")))
}

/// The recording of session `id` for an authenticated reviewer whose scope covers the
/// session's target, or the refusal (audited when it is the scope that refuses).
async fn session_file(st: &AppState, headers: &HeaderMap, id: &str) -> Result<PathBuf, Response> {
    let me = reviewer(st, headers).await?;
    let path = recording_path(&st.recordings, id)
        .ok_or_else(|| fail(StatusCode::BAD_REQUEST, "not a session id"))?;
    let authority = st.broker.authority();
    if !authority.is_configured() {
        return Ok(path);
    }
    let rows = st.store.session(id).await.map_err(|e| {
        tracing::error!(error = %e, "session lookup failed");
        fail(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    })?;
    let Some(session) = rows.into_iter().find(|r| r.id == id) else {
        return Err(fail(StatusCode::NOT_FOUND, "no such session"));
    };
    if !authority.may_see_target(&me.reviewer, &session.target) {
        st.broker
            .audit_read_refused(&me.reviewer.name, &format!("session {id}"), "out_of_scope")
            .await;
        return Err(fail(
            StatusCode::FORBIDDEN,
            format!("out_of_scope: session {id} is outside the scope of your reviewer groups"),
        ));
    }
    Ok(path)
}

async fn recording(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let path = match session_file(&st, &headers, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.len() > MAX_BROWSER_RECORDING => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "recording is {} MiB; use `airlock replay {id}`",
                    m.len() >> 20
                ),
            );
        }
        Ok(_) => {}
        Err(_) => {
            return fail(
                StatusCode::NOT_FOUND,
                "no recording of that session on this gateway node",
            );
        }
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-asciicast"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The screen the agent sees now, rendered from the session's recording so far.
async fn screen(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let path = match session_file(&st, &headers, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rendered = tokio::task::spawn_blocking(move || crate::screen::last_screen(&path)).await;
    match rendered {
        Ok(Ok(s)) => ok_json(json!({ "cols": s.cols, "rows": s.rows, "text": s.text })),
        Ok(Err(e)) => fail(StatusCode::NOT_FOUND, e),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
