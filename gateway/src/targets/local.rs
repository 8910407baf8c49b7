//! Starting programs on the gateway host — with pipes (stdout and stderr kept apart) or, when
//! the client asked for one, a PTY. What runs is decided by the caller ([`super::Targets`]):
//! normally `airlock sandbox-exec … -- bash --noprofile --norc -c COMMAND`, so the first
//! process here is the sandbox's guard ([`crate::sandbox::guard`]).
//!
//! The child gets exactly the environment it is given (the gateway's own may hold secrets
//! such as a database URL) and its own process group, so signals reach every process the
//! command started. Ending a process asks the guard first (SIGTERM: it kills every descendant,
//! even those that left the group) and kills the whole group if it has not gone in
//! [`KILL_GRACE`]. While a guard runs, its pid is kept in the pid dir for the orphan sweep.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::signals;
use super::{Control, Exit, Output, Process, PtyParams};
use crate::sandbox::orphans;

/// How long the guard has to end a command's processes before the whole group is killed.
const KILL_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program}: {msg}")]
    Spawn { program: String, msg: String },
}

/// One program to start: its argv (`argv[0]` is looked up on `PATH` unless absolute), where,
/// with what environment.
pub struct Start<'a> {
    pub argv: Vec<OsString>,
    pub cwd: Option<&'a Path>,
    pub env: Vec<(String, String)>,
    /// Keep the process's pid here while it runs (it is a guard whose group may need the
    /// orphan sweep after a crash).
    pub pids: Option<PathBuf>,
}

impl Start<'_> {
    fn program(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The configured `cwd`, else the user's home if it exists, else `/` (as sshd does for a
    /// user whose home is `/nonexistent`).
    fn dir(&self) -> PathBuf {
        if let Some(c) = self.cwd {
            return c.to_owned();
        }
        self.env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| PathBuf::from(v))
            .filter(|h| h.is_dir())
            .unwrap_or_else(|| PathBuf::from("/"))
    }
}

/// Removes the pid file when the process has been reaped.
struct PidFile(Option<(PathBuf, u32)>);

impl PidFile {
    fn new(dir: Option<PathBuf>, pid: Option<u32>) -> Self {
        match (dir, pid) {
            (Some(d), Some(p)) => {
                if let Err(e) = orphans::record(&d, p) {
                    tracing::warn!(error = %e, dir = %d.display(), "cannot record a guard's pid for the orphan sweep");
                }
                Self(Some((d, p)))
            }
            _ => Self(None),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some((d, p)) = &self.0 {
            orphans::forget(d, *p);
        }
    }
}

fn signal_group(pgid: Option<i32>, sig: Signal) {
    if let Some(pid) = pgid {
        // ESRCH (already gone) is the normal race at exit; nothing to do about it.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// A signal from the client (`Some`), or the end of the session (`None`: hang up, and ask
/// the guard to end everything). Returns when to kill the whole group if it is still there.
fn deliver(pgid: Option<i32>, signal: Option<i32>) -> Option<Instant> {
    match signal {
        Some(n) => {
            if let Ok(s) = Signal::try_from(n) {
                signal_group(pgid, s);
            }
            None
        }
        None => {
            signal_group(pgid, Signal::SIGHUP);
            if let Some(pid) = pgid {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            Some(Instant::now() + KILL_GRACE)
        }
    }
}

/// A deadline far enough away to mean "never".
fn never() -> Instant {
    Instant::now() + Duration::from_secs(3600 * 24 * 365)
}

/// Start a program with pipes, in its own process group.
pub fn spawn_pipes(start: Start<'_>) -> Result<Process, SpawnError> {
    let program = start.program();
    let Some((argv0, args)) = start.argv.split_first() else {
        return Err(SpawnError::Spawn {
            program,
            msg: "empty command line".into(),
        });
    };
    let mut cmd = tokio::process::Command::new(argv0);
    cmd.args(args)
        .env_clear()
        .envs(start.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd.current_dir(start.dir());
    let mut child = cmd.spawn().map_err(|e| SpawnError::Spawn {
        program: program.clone(),
        msg: e.to_string(),
    })?;
    let pidfile = PidFile::new(start.pids.clone(), child.id());
    let pgid = child.id().map(|p| p as i32);
    let (out_tx, output) = mpsc::channel(64);
    let (control, mut ctl_rx) = mpsc::channel::<Control>(64);
    let (exit_tx, exit) = oneshot::channel();

    let mut stdin = child.stdin.take();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, out_tx.clone(), Output::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, out_tx.clone(), Output::Stderr));
    }
    drop(out_tx);

    tokio::spawn(async move {
        let _pidfile = pidfile;
        let kill_at = tokio::time::sleep_until(never());
        tokio::pin!(kill_at);
        let mut killing = false;
        let status = loop {
            tokio::select! {
                st = child.wait() => break st,
                () = &mut kill_at, if killing => {
                    signal_group(pgid, Signal::SIGKILL);
                    killing = false;
                }
                ctl = ctl_rx.recv(), if !killing => match ctl {
                    Some(Control::Stdin(data)) => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(&data).await.is_err()
                        {
                            stdin = None; // reader gone (EPIPE): drop further input
                        }
                    }
                    Some(Control::CloseStdin) => stdin = None,
                    Some(Control::Resize { .. }) => {}
                    Some(Control::Signal(n)) => { deliver(pgid, Some(n)); }
                    Some(Control::Kill) | None => {
                        if let Some(at) = deliver(pgid, None) {
                            kill_at.as_mut().reset(at);
                            killing = true;
                        }
                    }
                },
            }
        };
        let exit = match status {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                match (st.code(), st.signal()) {
                    (Some(c), _) => Exit::Code(c as u32),
                    (None, Some(s)) => Exit::Signal {
                        name: signals::ssh_name(s),
                        core_dumped: st.core_dumped(),
                    },
                    (None, None) => Exit::Code(1),
                }
            }
            Err(_) => Exit::Code(255),
        };
        let _ = exit_tx.send(exit);
    });
    Ok(Process {
        output,
        control,
        exit,
    })
}

/// Forward one pipe to the session until EOF (or until the session stops listening).
async fn pump<R: AsyncRead + Unpin>(
    mut r: R,
    tx: mpsc::Sender<Output>,
    wrap: fn(Vec<u8>) -> Output,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
}

/// Start a program on a new PTY, as its own session.
pub fn spawn_pty(start: Start<'_>, pty: &PtyParams) -> Result<Process, SpawnError> {
    let program = start.program();
    let err = |e: String| SpawnError::Spawn {
        program: program.clone(),
        msg: e,
    };
    let Some((argv0, args)) = start.argv.split_first() else {
        return Err(err("empty command line".into()));
    };
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: pty.rows.max(1),
            cols: pty.cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| err(e.to_string()))?;
    let mut cmd = CommandBuilder::new(argv0);
    for a in args {
        cmd.arg(a);
    }
    cmd.env_clear();
    for (k, v) in &start.env {
        cmd.env(k, v);
    }
    cmd.cwd(start.dir());
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| err(e.to_string()))?;
    // Our copy of the slave must go, or the master never sees EOF when the command exits.
    drop(pair.slave);
    let pgid = child.process_id().map(|p| p as i32);
    let pidfile = PidFile::new(start.pids.clone(), child.process_id());
    let mut reader = pair
        .master
        .try_clone_reader()
        .map_err(|e| err(e.to_string()))?;
    let mut writer = pair.master.take_writer().map_err(|e| err(e.to_string()))?;
    let master = pair.master;

    let (out_tx, output) = mpsc::channel(64);
    let (control, mut ctl_rx) = mpsc::channel::<Control>(64);
    let (exit_tx, exit) = oneshot::channel();

    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf) {
                // EIO is how Linux reports that every slave end is closed.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out_tx
                        .blocking_send(Output::Stdout(buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });

    let (wait_tx, wait_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = wait_tx.send(child.wait());
    });

    tokio::spawn(async move {
        let _pidfile = pidfile;
        let mut wait_rx = wait_rx;
        let kill_at = tokio::time::sleep_until(never());
        tokio::pin!(kill_at);
        let mut killing = false;
        let status = loop {
            tokio::select! {
                st = &mut wait_rx => break st,
                () = &mut kill_at, if killing => {
                    signal_group(pgid, Signal::SIGKILL);
                    killing = false;
                }
                ctl = ctl_rx.recv(), if !killing => match ctl {
                    Some(Control::Stdin(data)) => {
                        // Terminal input is small; a blocking write to the PTY is brief.
                        let _ = tokio::task::block_in_place(|| writer.write_all(&data).and_then(|()| writer.flush()));
                    }
                    Some(Control::CloseStdin) => {
                        // On a terminal, EOF is ^D; the client sends it as data itself.
                    }
                    Some(Control::Resize { cols, rows }) => {
                        let _ = master.resize(PtySize { rows: rows.max(1), cols: cols.max(1), pixel_width: 0, pixel_height: 0 });
                    }
                    Some(Control::Signal(n)) => { deliver(pgid, Some(n)); }
                    Some(Control::Kill) | None => {
                        if let Some(at) = deliver(pgid, None) {
                            kill_at.as_mut().reset(at);
                            killing = true;
                        }
                    }
                },
            }
        };
        let exit = match status {
            Ok(Ok(st)) => match st.signal() {
                Some(desc) => Exit::Signal {
                    name: signals::from_description(desc),
                    core_dumped: false,
                },
                None => Exit::Code(st.exit_code()),
            },
            _ => Exit::Code(255),
        };
        drop(master);
        let _ = exit_tx.send(exit);
    });
    Ok(Process {
        output,
        control,
        exit,
    })
}
