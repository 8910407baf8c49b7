//! Where approved commands run. A target turns a command into a [`Process`]: a stream of
//! output chunks, a way to feed stdin, resize and signal, and an exit status. [`Targets`] is the
//! one interface sessions use — [`Targets::spawn`] for one command, [`Targets::spawn_shell`] for
//! the persistent shell behind the gated shell and scripts — and the only place that looks at
//! a target's kind, so a new kind of target is added here and nowhere else.
//!
//! Owns: the local spawners, the upstream connection pool, signal names. Touches: the audit
//! handle (an upstream's wrong host key is an event). Knows nothing of gating or recording.

pub mod local;
pub mod shell;
pub mod signals;
pub mod upstream;

use airlock_approvals::ledger::Event;
use tokio::sync::{mpsc, oneshot};

use crate::audit::Audit;
use crate::config::{Target, TargetKind};
use crate::deny::Deny;
use shell::Shell;
use upstream::{Upstream, UpstreamError};

/// The targets' shared state: upstream connections (one per target, reused).
pub struct Targets {
    upstream: Upstream,
    audit: Audit,
}

impl Targets {
    pub fn new(audit: Audit) -> Self {
        Self {
            upstream: Upstream::default(),
            audit,
        }
    }

    /// Start `command` on `target`, on a PTY when `pty` is given.
    pub async fn spawn(
        &self,
        target: &Target,
        command: &str,
        pty: Option<&PtyParams>,
    ) -> Result<Process, Deny> {
        match &target.kind {
            TargetKind::Local { shell, cwd, .. } => match pty {
                Some(p) => local::spawn_pty(shell, cwd.as_deref(), Some(command), p),
                None => local::spawn_pipes(shell, cwd.as_deref(), command),
            }
            .map_err(|e| Deny::Target(e.to_string())),
            TargetKind::Ssh(up) => {
                match self.upstream.spawn(&target.name, up, command, pty).await {
                    Ok(p) => Ok(p),
                    Err(e) => Err(self.upstream_failed(&target.name, e).await),
                }
            }
        }
    }

    /// Start the persistent shell on `target` (a PTY for the gated shell, pipes for a
    /// script); `unique` names its private FIFO directory. Returns it and its start directory.
    pub async fn spawn_shell(
        &self,
        target: &Target,
        pty: Option<&PtyParams>,
        unique: &str,
    ) -> Result<(Shell, String), Deny> {
        let started = match &target.kind {
            TargetKind::Local { bash, cwd, .. } => {
                Shell::spawn(bash, cwd.as_deref(), pty, unique).await
            }
            TargetKind::Ssh(up) => {
                Shell::spawn_upstream(&self.upstream, &target.name, up, pty, unique).await
            }
        };
        started.map_err(|e| {
            tracing::error!(error = %e, target = %target.name, "cannot start the target shell");
            Deny::Target(format!("cannot start a shell on {}: {e}", target.name))
        })
    }

    async fn upstream_failed(&self, target: &str, e: UpstreamError) -> Deny {
        if let UpstreamError::HostKey { fingerprint, .. } = &e {
            let _ = self
                .audit
                .write(Event::UpstreamHostKeyMismatch {
                    target: target.to_owned(),
                    presented: fingerprint.clone(),
                })
                .await;
        }
        Deny::Target(e.to_string())
    }
}

/// One chunk of output, kept apart by stream when the target can (pipes), merged on a PTY.
#[derive(Debug)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(u32),
    /// Signal name as SSH spells it (`TERM`, `KILL`, …) and whether core was dumped.
    Signal {
        name: String,
        core_dumped: bool,
    },
}

impl Exit {
    /// `exit 0`, `signal KILL`: the recording's marker and the log's word for it.
    pub fn label(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit {c}"),
            Exit::Signal { name, .. } => format!("signal {name}"),
        }
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            Exit::Code(c) => Some(*c),
            Exit::Signal { .. } => None,
        }
    }

    pub fn signal(&self) -> Option<&str> {
        match self {
            Exit::Code(_) => None,
            Exit::Signal { name, .. } => Some(name),
        }
    }
}

/// Requests from the session to the running process.
#[derive(Debug)]
pub enum Control {
    Stdin(Vec<u8>),
    /// The client sent EOF: close the process's stdin.
    CloseStdin,
    Resize {
        cols: u16,
        rows: u16,
    },
    /// Deliver a signal (by number) to the process group.
    Signal(i32),
    /// The client went away: end the process group.
    Kill,
}

/// A running command.
pub struct Process {
    /// Output until every stream is closed.
    pub output: mpsc::Receiver<Output>,
    pub control: mpsc::Sender<Control>,
    pub exit: oneshot::Receiver<Exit>,
}

/// Terminal parameters from the client's `pty-req`.
#[derive(Debug, Clone)]
pub struct PtyParams {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}
