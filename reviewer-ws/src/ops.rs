//! Endpoints for operators and their machines, not for reviewers: `/healthz` (the process
//! answers), `/readyz` (database, ledger and recordings checked now) and `/metrics`
//! (Prometheus text), see docs/metrics.md.
//!
//! What is measured and checked is the gateway's business, behind [`Probes`], so this crate
//! never depends on the gateway. This module only maps results to HTTP: a failed check is a
//! 503 whose JSON body names it.
//!
//! `/metrics` is served only on its own listener (`[metrics] listen`, [`serve`]), never on
//! the reviewer listener: the counts describe activity (how many commands, how often reviewers
//! decide), so operators firewall that port instead of handing scrapers a reviewer token.
//! `/healthz` and `/readyz` are on both, unauthenticated: they say what is broken, not what
//! anyone did.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use crate::limits::Limits;

/// A boxed future the gateway's probes return.
pub type ProbeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `Content-Type` of the Prometheus text format 0.0.4 (what scrapers take by default).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics text 1.0.0, for scrapers that ask for it.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One readiness check: its name and, when it failed, why.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub error: Option<String>,
}

/// What the gateway measures and checks (it implements this from its store, ledger,
/// recordings directory and metrics registry).
pub trait Probes: Send + Sync {
    /// Every metric, encoded now: OpenMetrics text when `openmetrics`, else the Prometheus
    /// text format 0.0.4. `Err` with a message when they cannot be gathered.
    fn metrics(&self, openmetrics: bool) -> ProbeFuture<'_, Result<String, String>>;
    /// Run every readiness check now (each bounded in time) and say how each went.
    fn ready(&self) -> ProbeFuture<'_, Vec<Check>>;
}

/// `/readyz` for a router whose state can hand out the probes (the reviewer listener's).
pub(crate) async fn readyz(probes: Option<&Arc<dyn Probes>>) -> Response {
    match probes {
        Some(p) => ready_response(p.ready().await),
        None => plain(
            StatusCode::NOT_FOUND,
            "no readiness checks on this listener\n",
        ),
    }
}

fn plain(code: StatusCode, body: &'static str) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 200 `{"ready":true,…}` when every check passed, else 503 naming each failed one.
fn ready_response(checks: Vec<Check>) -> Response {
    let ready = checks.iter().all(|c| c.error.is_none());
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| c.name)
        .collect();
    let body = json!({
        "ready": ready,
        "failed": failed,
        "checks": checks.iter().map(|c| json!({
            "name": c.name,
            "ok": c.error.is_none(),
            "error": c.error,
        })).collect::<Vec<_>>(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        tracing::warn!(failed = %failed.join(", "), "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut r = (code, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether the scraper asked for OpenMetrics (`Accept: application/openmetrics-text`).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

async fn metrics(State(p): State<Arc<dyn Probes>>, headers: HeaderMap) -> Response {
    let open = wants_openmetrics(&headers);
    match p.metrics(open).await {
        Ok(text) => {
            let mut r = text.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if open {
                    OPENMETRICS_TEXT
                } else {
                    PROMETHEUS_TEXT
                }),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be gathered");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics could not be gathered (see the gateway's log)\n",
            )
        }
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `listener` (`[metrics] listen`) until
/// `shutdown` resolves, with the same connection caps and timeouts as the reviewer listener.
pub async fn serve(
    listener: TcpListener,
    probes: Arc<dyn Probes>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(p): State<Arc<dyn Probes>>| async move { readyz(Some(&p)).await }),
        )
        .with_state(probes);
    crate::accept::serve(listener, app, limits, None, shutdown).await
}
