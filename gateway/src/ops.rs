//! What operators' machines ask the gateway: its metrics and whether it is ready
//! (docs/metrics.md). Implements the reviewer listener's [`Probes`] from the gateway's own
//! handles, so the listener crate never sees the gateway.
//!
//! Readiness is checked for real at each request, every check bounded by [`CHECK_TIMEOUT`]
//! and run together: the database answers; the ledger table takes a write (rolled back) and
//! the database is still the one the gateway opened; a file can be created, written, synced
//! and removed in the recordings directory. Nothing here is cached, so a probe sees a full
//! disk or a dead database within one request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::Store;
use airlock_reviewer_ws::ops::{Check, ProbeFuture, Probes};

use crate::config::{Config, TargetKind};
use crate::continuity::Continuity;
use crate::metrics::{Metrics, Now};
use crate::state::Shared;

/// Longest one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The gateway's side of `/metrics` and `/readyz`.
pub struct Ops {
    pub config: Arc<Config>,
    pub store: Store,
    pub continuity: Arc<Continuity>,
    /// The broker (pending requests, reviewers present) and the targets (upstream state).
    pub shared: Arc<Shared>,
    pub metrics: Metrics,
    pub recordings: PathBuf,
    /// One readiness run at a time: `/readyz` is unauthenticated on the reviewer listener, so a
    /// flood of probes must not become a flood of write transactions on the ledger table.
    pub probing: tokio::sync::Mutex<()>,
}

/// Run `check`, bounded by [`CHECK_TIMEOUT`].
async fn bounded<F>(name: &'static str, check: F) -> Check
where
    F: Future<Output = Result<(), String>>,
{
    let error = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no answer within {}s", CHECK_TIMEOUT.as_secs_f32())),
    };
    Check { name, error }
}

/// Create, write, sync and remove a probe file in `dir`.
async fn writable(dir: PathBuf) -> Result<(), String> {
    let shown = dir.display().to_string();
    let name = airlock_approvals::ids::new_id().map_err(|e| e.to_string())?;
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        let path = dir.join(format!(".readyz-{name}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let written = f
            .write_all(b"airlock readiness probe\n")
            .and_then(|()| f.sync_all());
        drop(f);
        let removed = std::fs::remove_file(&path);
        written.and(removed)
    })
    .await;
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{shown}: {e}")),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

impl Ops {
    async fn now(&self) -> Result<Now, String> {
        let broker = &self.shared.broker;
        let pending = broker.pending().await.map_err(|e| e.to_string())?;
        let upstream = self
            .config
            .targets
            .iter()
            .filter(|t| matches!(t.kind, TargetKind::Ssh(_)))
            .map(|t| {
                let up = self.shared.targets.upstream_connected(&t.name);
                (t.name.clone(), up)
            })
            .collect();
        Ok(Now {
            pending: pending.len() as i64,
            reviewers: broker.presence().local().len() as i64,
            upstream,
        })
    }
}

impl Probes for Ops {
    fn metrics(&self, openmetrics: bool) -> ProbeFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let now = self.now().await?;
            self.metrics
                .encode(&now, openmetrics)
                .map_err(|e| format!("encoding failed: {e}"))
        })
    }

    fn ready(&self) -> ProbeFuture<'_, Vec<Check>> {
        Box::pin(async move {
            let _one_at_a_time = self.probing.lock().await;
            let database = bounded("database", async {
                self.store.ping().await.map_err(|e| e.to_string())
            });
            let ledger = bounded("ledger", async {
                if let Some(why) = self.continuity.broken() {
                    return Err(why);
                }
                self.store
                    .ledger_writable()
                    .await
                    .map_err(|e| e.to_string())
            });
            let recordings = bounded("recordings", writable(self.recordings.clone()));
            let (a, b, c) = tokio::join!(database, ledger, recordings);
            vec![a, b, c]
        })
    }
}
