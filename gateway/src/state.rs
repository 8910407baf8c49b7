//! The ground floor: what every session shares, as narrow handles built once at start-up.
//!
//! Nothing here reaches upward: it holds the gate, the broker, the session records, the
//! targets and the limits sessions obey, plus the shutdown signal. Front-ends take this; the
//! SSH edge takes it to hand on. The accept loop, the banner and the CLI never need it whole.

use std::time::Duration;

use airlock_approvals::Broker;
use tokio::sync::{mpsc, watch};

use crate::gate::Gate;
use crate::record::Records;
use crate::targets::Targets;

/// The limits a session obeys (from config).
#[derive(Debug, Clone)]
pub struct Limits {
    pub node: String,
    pub approval_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_session: Duration,
    /// After SIGTERM, how long running commands may go on.
    pub shutdown_grace: Duration,
    /// What a request does when no reviewer who could decide it is connected.
    pub when_nobody_online: airlock_approvals::NobodyOnline,
}

impl Limits {
    /// Why a command still running when the grace period ran out was killed (recorded in
    /// `exec.exit` and told to the agent).
    pub fn shutdown_kill_reason(&self) -> String {
        if self.shutdown_grace.is_zero() {
            "the gateway shut down (no grace period)".to_owned()
        } else {
            format!(
                "the gateway shut down ({} grace over)",
                crate::deny::human_duration(self.shutdown_grace)
            )
        }
    }
}

/// The gateway stopping, as sessions see it.
#[derive(Clone)]
pub struct Shutdown {
    stop: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new(stop: watch::Receiver<bool>) -> Self {
        Self { stop }
    }

    /// Resolves once the gateway has been told to stop (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Sessions in flight. The drain owns the strong sender and waits for every [`Alive`] to be
/// dropped (the mini-redis pattern); this side holds only a weak one, so it never keeps the
/// drain waiting itself.
#[derive(Clone)]
pub struct Sessions {
    tx: mpsc::WeakSender<()>,
}

/// Held by one session task for as long as it runs.
pub struct Alive(#[allow(dead_code)] mpsc::Sender<()>);

impl Sessions {
    pub fn new(tx: &mpsc::Sender<()>) -> Self {
        Self { tx: tx.downgrade() }
    }

    /// Register a new session; `None` once the drain has begun (the session is refused).
    pub fn enter(&self) -> Option<Alive> {
        self.tx.upgrade().map(Alive)
    }
}

pub struct Shared {
    pub gate: Gate,
    pub broker: Broker,
    pub records: Records,
    pub targets: Targets,
    pub limits: Limits,
    pub shutdown: Shutdown,
    pub sessions: Sessions,
    /// What runs under an access grant, ended when the grant ends.
    pub grants: crate::grants::Grants,
}
