//! Where approved commands run. A target turns a command into a [`Process`]: a stream of
//! output chunks, a way to feed stdin, resize and signal, and an exit status. [`Targets`] is the
//! one interface sessions use — [`Targets::spawn`] for one command, [`Targets::spawn_shell`] for
//! the persistent shell behind the gated shell and scripts — and the only place that looks at
//! a target's kind, so a new kind of target is added here and nowhere else.
//!
//! Every command runs as `bash --noprofile --norc -c` (the dialect the classifier reads) with
//! the pinned environment ([`crate::environment`]); on local targets through the sandbox helper
//! ([`crate::sandbox`]), on upstream hosts through their `runner` when one is configured. The
//! [`Mode`] says whether it may write: the session decides it from who let the command run.
//!
//! Owns: the local spawners, the upstream connection pool, signal names, the environment.
//! Touches: the audit handle (an upstream's wrong host key is an event). Knows nothing of
//! gating or recording.

pub mod local;
pub mod shell;
pub mod signals;
pub mod upstream;

use std::ffi::OsString;
use std::path::PathBuf;

use airlock_approvals::ledger::Event;
use tokio::sync::{mpsc, oneshot};

use crate::audit::Audit;
use crate::config::{LocalTarget, Target, TargetKind, UpstreamTarget};
use crate::deny::Deny;
use crate::environment as env;
pub use crate::sandbox::Mode;
use crate::sandbox::privs::{self, User};
use crate::sandbox::{Sandbox, Scratch, Unavailable};
use shell::Shell;
use upstream::{Upstream, UpstreamError};

/// The descriptor on which a local gated shell holds the helper binary for its read-only
/// lines (see `targets::shell`).
const SHELL_EXE_FD: i32 = 9;

/// What local targets need: the sandbox helper and whether this kernel can sandbox at all.
#[derive(Debug, Clone)]
pub struct Local {
    pub sandbox: Sandbox,
    /// The Landlock ABI, or why there is none: then only `unconfined` targets run commands.
    pub kernel: Result<i32, Unavailable>,
    /// Where running guards' pid files go (the orphan sweep reads them at start-up).
    pub pids: PathBuf,
}

impl Local {
    /// May `target` run commands here?
    fn ready(&self, name: &str, t: &LocalTarget) -> Result<(), Deny> {
        if !t.unconfined
            && let Some(gone) = self.sandbox.moved()
        {
            tracing::error!(
                path = %gone.display(),
                "a file the sandbox covers is no longer the one that was there at start (moved, removed or replaced); local commands are refused until it is back or the gateway restarts"
            );
            return Err(Deny::Target(
                "the gateway's own files were moved or removed; nothing runs here until they are back or the gateway restarts".into(),
            ));
        }
        match &self.kernel {
            Err(why) if !t.unconfined => Err(Deny::Unsandboxed {
                target: name.to_owned(),
                why: why.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The editor stub: this binary's `no-editor`.
    fn editor(&self) -> String {
        format!("{} {}", self.sandbox.exe.display(), env::NO_EDITOR)
    }

    /// The user commands on `t` run as, if it names one (looked up once per spawn).
    fn user(t: &LocalTarget) -> Result<Option<User>, Deny> {
        t.user
            .as_deref()
            .map(privs::lookup)
            .transpose()
            .map_err(|e| Deny::Target(e.to_string()))
    }

    /// HOME and USER for commands run as `user` (or as the gateway's own user).
    fn identity(user: Option<&User>) -> env::Identity {
        match user {
            None => env::Identity::gateway(),
            Some(u) => env::Identity {
                home: Some(u.home.clone()),
                user: Some(u.name.clone()),
            },
        }
    }

    /// `bash --noprofile --norc -c SCRIPT` after the helper's argv.
    fn bash(t: &LocalTarget, mut argv: Vec<OsString>, script: &str) -> Vec<OsString> {
        argv.push(t.bash.clone().into());
        argv.extend(env::BASH_FLAGS.iter().map(OsString::from));
        argv.push("-c".into());
        argv.push(script.into());
        argv
    }

    /// The helper's argv (up to `--`) for a command the gateway starts on `t` in `mode`;
    /// `exe_fd`: hand the command the helper binary on that descriptor.
    fn helper(
        &self,
        t: &LocalTarget,
        mode: Mode,
        scratch: Scratch,
        exe_fd: Option<i32>,
    ) -> Vec<OsString> {
        let mut argv = vec![OsString::from(&self.sandbox.launch)];
        let mut policy = self
            .sandbox
            .policy(mode, Some(scratch), t.user.as_deref(), t.unconfined);
        policy.exe_fd = exe_fd;
        argv.extend(policy.to_args());
        argv
    }
}

/// Where sessions' private dirs live on an upstream (scratch dirs, shell pipes and state),
/// each covered from every other session.
pub const UPSTREAM_PRIVATE: &str = "/tmp/airlock-";

/// What an upstream's runner is given (its `sandbox-exec` argv up to `--`), if it has one;
/// each command gets a fresh scratch dir inside `scratch_in`.
fn runner_args(up: &UpstreamTarget, mode: Mode, scratch_in: &str) -> Vec<String> {
    let Some(r) = &up.runner else {
        return Vec::new();
    };
    let mut a = vec![r.clone(), crate::sandbox::SUBCOMMAND.to_owned()];
    if mode == Mode::ReadOnly {
        a.push("--read-only".into());
    }
    a.extend([
        "--hide-prefix".to_owned(),
        UPSTREAM_PRIVATE.to_owned(),
        "--scratch-in".to_owned(),
        scratch_in.to_owned(),
    ]);
    a.push("--".into());
    a
}

fn upstream_editor(up: &UpstreamTarget) -> String {
    match &up.runner {
        Some(r) => format!("{r} {}", env::NO_EDITOR),
        None => "false".to_owned(),
    }
}

/// The targets' shared state: upstream connections (one per target, reused), the sandbox.
pub struct Targets {
    upstream: Upstream,
    audit: Audit,
    local: Local,
}

impl Targets {
    /// Where approved copies of scripts are written for pinning (hidden from every command).
    pub fn pin_dir(&self) -> &std::path::Path {
        &self.local.sandbox.run_dir
    }

    pub fn new(audit: Audit, local: Local) -> Self {
        Self {
            upstream: Upstream::default(),
            audit,
            local,
        }
    }

    /// Whether upstream target `name`'s connection is open now (for metrics).
    pub fn upstream_connected(&self, name: &str) -> bool {
        self.upstream.connected(name)
    }

    /// Start `command` on `target`, on a PTY when `pty` is given, writing only if `mode`
    /// allows.
    pub async fn spawn(
        &self,
        target: &Target,
        command: &str,
        pty: Option<&PtyParams>,
        mode: Mode,
    ) -> Result<Process, Deny> {
        self.spawn_pinned(target, command, pty, mode, &[]).await
    }

    /// [`Targets::spawn`], with approved files pinned at their paths for the command's whole
    /// run: (the gateway's copy, the path) — on local targets, in the command's mount
    /// namespace. Upstream hosts get no pins (the files were verified just before).
    pub async fn spawn_pinned(
        &self,
        target: &Target,
        command: &str,
        pty: Option<&PtyParams>,
        mode: Mode,
        pins: &[(PathBuf, PathBuf)],
    ) -> Result<Process, Deny> {
        let term = pty.map(|p| p.term.as_str());
        match &target.kind {
            TargetKind::Local(l) => {
                self.local.ready(&target.name, l)?;
                let mut argv = self.local.helper(
                    l,
                    mode,
                    Scratch::MakeIn(self.local.sandbox.run_dir.clone()),
                    None,
                );
                if !pins.is_empty() {
                    // The helper's argv ends in `--`: the pins go before it.
                    let end = argv.pop();
                    for (copy, at) in pins {
                        argv.extend(["--pin".into(), copy.into(), at.into()]);
                    }
                    argv.extend(end);
                }
                let who = Local::identity(Local::user(l)?.as_ref());
                let start = local::Start {
                    argv: Local::bash(l, argv, command),
                    cwd: l.cwd.as_deref(),
                    env: env::local(&who, &self.local.editor(), &target.env, term),
                    pids: Some(self.local.pids.clone()),
                };
                match pty {
                    Some(p) => local::spawn_pty(start, p),
                    None => local::spawn_pipes(start),
                }
                .map_err(|e| Deny::Target(e.to_string()))
            }
            TargetKind::Ssh(up) => {
                let line = env::upstream_command(
                    command,
                    &runner_args(up, mode, "/tmp"),
                    &upstream_editor(up),
                    &target.env,
                    term,
                );
                match self.upstream.spawn(&target.name, up, &line, pty).await {
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
        let term = pty.map(|p| p.term.as_str());
        let started = match &target.kind {
            TargetKind::Local(l) => {
                self.local.ready(&target.name, l)?;
                let user = Local::user(l)?;
                let who = Local::identity(user.as_ref());
                let dir = self.local.sandbox.run_dir.join(format!("shell-{unique}"));
                let rw = self.local.helper(
                    l,
                    Mode::ReadWrite,
                    Scratch::Use(dir.clone()),
                    Some(SHELL_EXE_FD),
                );
                let mut ro = vec![OsString::from(format!("/proc/self/fd/{SHELL_EXE_FD}"))];
                // Lines that run without a human: read-only, each with a fresh scratch dir in
                // the session's (which it cannot write itself), as the shell's user.
                ro.extend(
                    self.local
                        .sandbox
                        .policy(
                            Mode::ReadOnly,
                            Some(Scratch::MakeIn(dir.clone())),
                            None,
                            l.unconfined,
                        )
                        .to_args(),
                );
                let spec = shell::LocalShell {
                    bash: &l.bash,
                    cwd: l.cwd.as_deref(),
                    env: env::local(&who, &self.local.editor(), &target.env, term),
                    helper: rw,
                    read_only: ro,
                    dir,
                    owner: user.as_ref().map(|u| (u.uid, u.gid)),
                    pids: self.local.pids.clone(),
                };
                Shell::spawn(spec, pty).await
            }
            TargetKind::Ssh(up) => {
                let dir = format!("{UPSTREAM_PRIVATE}shell-{unique}");
                let spec = shell::UpstreamShell {
                    env: env::fixed(&upstream_editor(up), &target.env),
                    read_only: runner_args(up, Mode::ReadOnly, &dir),
                    dir,
                };
                Shell::spawn_upstream(&self.upstream, &target.name, up, pty, spec).await
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
