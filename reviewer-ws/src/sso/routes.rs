//! The `/auth/*` endpoints: start a login, finish it, end it, and say who is signed in.
//!
//! The callback fails closed: anything short of a valid ID token for a user who maps to a
//! reviewer group — a missing or foreign `state`, a provider error, a bad token, no name, no
//! group, a ledger that cannot record the sign-in — opens no session and shows a page that
//! says why (refusals after the provider answered are audited).

use std::collections::HashMap;

use airlock_approvals::ledger::Event;
use airlock_approvals::store::{LoginStart, secret_hash};
use airlock_approvals::{StoreError, now_ms};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::provider::ProviderError;
use super::{LOGIN_COOKIE, LOGIN_TTL, MAX_LIVE_LOGINS, SESSION_COOKIE, Sso, cookie_value};
use crate::identity::{AuthFailure, Proof};
use crate::server::AppState;

/// Refusal pages may load the page's stylesheet and nothing else.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/config", get(config))
        .route("/auth/me", get(me))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

/// Why a sign-in was refused; `code` is the ledger's.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(
        "this sign-in did not start in this browser, was already used, or took longer than \
         ten minutes; start again"
    )]
    BadState,
    #[error("the identity provider refused: {0}")]
    ProviderSaid(String),
    #[error("{0}")]
    Provider(ProviderError),
    #[error("the identity provider did not say who you are (no usable {0:?} claim)")]
    NoUsername(String),
    #[error(
        "{name}: your account is not in any Airlock reviewer group. Ask an Airlock operator \
         to add one of your groups to a reviewer group's oidc_groups"
    )]
    NoGroup { name: String },
    #[error("the sign-in could not be recorded ({0}); try again later")]
    Unavailable(String),
}

impl Refused {
    fn code(&self) -> &'static str {
        match self {
            Refused::BadState => "bad_state",
            Refused::ProviderSaid(_) => "provider_error",
            Refused::Provider(ProviderError::BadToken(_) | ProviderError::NoIdToken) => "bad_token",
            Refused::Provider(_) => "provider_error",
            Refused::NoUsername(_) => "no_username",
            Refused::NoGroup { .. } => "no_group",
            Refused::Unavailable(_) => "unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refused::BadState => StatusCode::BAD_REQUEST,
            Refused::ProviderSaid(_) | Refused::NoUsername(_) | Refused::NoGroup { .. } => {
                StatusCode::FORBIDDEN
            }
            Refused::Provider(ProviderError::BadToken(_) | ProviderError::NoIdToken) => {
                StatusCode::FORBIDDEN
            }
            Refused::Provider(_) => StatusCode::BAD_GATEWAY,
            Refused::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn name(&self) -> Option<String> {
        match self {
            Refused::NoGroup { name } => Some(name.clone()),
            _ => None,
        }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "sign-in store error");
        Refused::Unavailable("database unavailable".into())
    }
}

fn no_store(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn set_cookie(r: &mut Response, c: &str) {
    if let Ok(v) = HeaderValue::from_str(c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small page that says what happened, with a way back to the sign-in.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Airlock: {t}</title>\
         <link rel=\"stylesheet\" href=\"/app.css\"></head><body><main><h2>{t}</h2>\
         <p id=\"sso-message\" role=\"alert\">{m}</p><p><a href=\"/\">Back to the sign-in page</a></p>\
         </main></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut r = (status, body).into_response();
    no_store(&mut r);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    no_store(&mut r);
    r
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Single sign-on is off",
        "This gateway has no [reviewer.oidc] section; sign in with a reviewer token.",
    )
}

fn json_answer(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    no_store(&mut r);
    r
}

/// `GET /auth/config`: whether the page should offer "Sign in with …".
async fn config(State(st): State<AppState>) -> Response {
    let v = match &st.sso {
        Some(sso) => {
            json!({ "sso": true, "provider": sso.settings.display_name, "login": "/auth/login" })
        }
        None => json!({ "sso": false }),
    };
    json_answer(StatusCode::OK, v)
}

/// `GET /auth/me`: who the request's proof (session cookie or bearer token) names.
async fn me(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match st.identify(&headers).await {
        Ok(id) => {
            let (via, expires_at) = match &id.proof {
                Proof::Token(_) => ("token", None),
                Proof::Session { expires_at, .. } => ("session", Some(*expires_at)),
            };
            json_answer(
                StatusCode::OK,
                json!({
                    "name": id.reviewer.name,
                    "groups": id.reviewer.groups,
                    "via": via,
                    "expires_at": expires_at,
                }),
            )
        }
        Err(AuthFailure::Missing) => json_answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "not signed in" }),
        ),
        Err(AuthFailure::Bad(why)) => {
            json_answer(StatusCode::UNAUTHORIZED, json!({ "error": why }))
        }
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "identity check failed");
            json_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "store unavailable" }),
            )
        }
    }
}

/// Longest refusal text written to the ledger (a provider's `error_description` is the
/// caller's text).
const MAX_REFUSAL_CHARS: usize = 300;

/// `GET /auth/login`: send the browser to the provider, keeping the login's secrets.
async fn login(State(st): State<AppState>) -> Response {
    let Some(sso) = st.sso.clone() else {
        return not_configured();
    };
    let auth = match sso.provider.authorize().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in cannot start");
            return page(
                StatusCode::BAD_GATEWAY,
                "Sign-in unavailable",
                &e.to_string(),
            );
        }
    };
    let now = now_ms();
    let start = LoginStart {
        pkce_verifier: auth.pkce_verifier,
        nonce: auth.nonce,
    };
    let expires_at = now + LOGIN_TTL.as_millis() as i64;
    match st
        .store
        .begin_reviewer_login(&auth.state, &start, now, expires_at, MAX_LIVE_LOGINS)
        .await
    {
        Ok(evicted) => {
            if evicted > 0 {
                tracing::warn!(
                    evicted,
                    max = MAX_LIVE_LOGINS,
                    "more sign-ins started than are kept; the oldest unfinished ones gave way"
                );
            }
            let mut r = redirect(&auth.url);
            set_cookie(&mut r, &sso.login_cookie(&auth.state));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot keep a login");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "The gateway's database is unavailable; try again later.",
            )
        }
    }
}

/// `GET /auth/callback`: finish the login and open a session, or say why not.
async fn callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(sso) = st.sso.clone() else {
        return not_configured();
    };
    let mut r = match finish(&st, &sso, &headers, &q).await {
        Ok(id) => {
            let mut r = redirect("/");
            set_cookie(&mut r, &sso.session_cookie(&id));
            r
        }
        Err(refused) => {
            tracing::warn!(code = refused.code(), why = %refused, "sign-in refused");
            let budget = sso
                .refusals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(now_ms());
            if let Some(unwritten) = budget {
                let mut why = refused.to_string();
                if why.chars().count() > MAX_REFUSAL_CHARS {
                    why = why.chars().take(MAX_REFUSAL_CHARS).collect::<String>() + "…";
                }
                if unwritten > 0 {
                    why = format!(
                        "{why} (and {unwritten} earlier refused sign-ins not written one by one)"
                    );
                }
                let audited = st
                    .broker
                    .ledger()
                    .append(&Event::SignInRefused {
                        reviewer: refused.name(),
                        code: refused.code().to_owned(),
                        why,
                    })
                    .await;
                if let Err(e) = audited {
                    tracing::error!(error = %e, "refused sign-in not in the audit ledger");
                }
            }
            page(refused.status(), "Sign-in refused", &refused.to_string())
        }
    };
    set_cookie(&mut r, &sso.clear_login_cookie());
    r
}

async fn finish(
    st: &AppState,
    sso: &Sso,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<String, Refused> {
    let now = now_ms();
    // The state must come back to the browser that started the login, and only once.
    let state = q.get("state").map(String::as_str).unwrap_or("");
    let cookie = cookie_value(headers, LOGIN_COOKIE);
    if state.is_empty() || cookie != Some(state) {
        return Err(Refused::BadState);
    }
    let start = st
        .store
        .finish_reviewer_login(state, now)
        .await?
        .ok_or(Refused::BadState)?;
    if let Some(error) = q.get("error") {
        let detail = q.get("error_description").map(String::as_str).unwrap_or("");
        return Err(Refused::ProviderSaid(
            format!("{error} {detail}").trim().to_owned(),
        ));
    }
    let code = q
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Refused::ProviderSaid("no authorization code".into()))?;
    let user = sso
        .provider
        .finish(code.clone(), start.pkce_verifier, start.nonce)
        .await
        .map_err(Refused::Provider)?;
    let s = &sso.settings;
    let name = user
        .name
        .ok_or_else(|| Refused::NoUsername(s.username_claim.clone()))?;
    let reviewer = st.broker.authority().reviewer(&name, &user.groups);
    if reviewer.groups.is_empty() {
        return Err(Refused::NoGroup { name });
    }
    // Like an agent's login: a sign-in that cannot be audited does not happen.
    st.broker
        .ledger()
        .append(&Event::SignIn {
            reviewer: name.clone(),
            groups: reviewer.groups.iter().cloned().collect(),
            claimed: user.groups.clone(),
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "sign-in not in the audit ledger");
            Refused::Unavailable("audit ledger unavailable".into())
        })?;
    let expires_at = now + s.session_lifetime.as_millis() as i64;
    let id = st
        .store
        .open_reviewer_session(&name, &user.groups, now, expires_at)
        .await?;
    tracing::info!(reviewer = %name, groups = ?reviewer.groups, "reviewer signed in");
    if let Err(e) = st.store.sweep_reviewer_sessions(now).await {
        tracing::warn!(error = %e, "sweeping expired reviewer sessions failed");
    }
    Ok(id)
}

/// `POST /auth/logout`: end the session on every node and drop the cookie.
async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let Some(sso) = st.sso.clone() else {
        return not_configured();
    };
    // Logout must come from the page itself (see `origin`).
    if !st.origin_allowed(&headers) {
        return json_answer(
            StatusCode::FORBIDDEN,
            json!({ "error": "cross-origin logout refused" }),
        );
    }
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        let hash = secret_hash(id);
        let who = st.store.reviewer_session(&hash, now_ms()).await;
        match st.store.end_reviewer_session(&hash).await {
            Ok(true) => {
                if let Ok(Some(s)) = who {
                    tracing::info!(reviewer = %s.name, "reviewer signed out");
                    let audited = st
                        .broker
                        .ledger()
                        .append(&Event::SignOut { reviewer: s.name })
                        .await;
                    if let Err(e) = audited {
                        tracing::error!(error = %e, "sign-out not in the audit ledger");
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot end a reviewer session");
                return json_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "store unavailable; the session is still open" }),
                );
            }
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    no_store(&mut r);
    set_cookie(&mut r, &sso.clear_session_cookie());
    r
}
