//! The `local` target: commands run on the gateway host, as the gateway's user, through the
//! configured shell — with pipes (stdout and stderr kept apart) or, when the client asked for
//! one, a PTY.
//!
//! The child gets a clean environment (the gateway's own may hold secrets such as a database
//! URL) and its own process group, so signals and the final kill reach every process the
//! command started.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::signals;
use super::{Control, Exit, Output, Process, PtyParams};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {shell}: {msg}")]
    Spawn { shell: String, msg: String },
}

/// Variables the command sees; everything else from the gateway's environment is dropped.
fn base_env(term: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        (
            "LANG".to_owned(),
            std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
        ),
    ];
    for k in ["HOME", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_owned(), v));
        }
    }
    if let Some(t) = term {
        env.push(("TERM".to_owned(), t.to_owned()));
        // Pagers (less, and the ones man, git and systemctl start) offer `!cmd` shell escapes
        // on a terminal; these turn them off, so reading a man page cannot open a shell.
        env.push(("LESSSECURE".to_owned(), "1".to_owned()));
        env.push(("SYSTEMD_PAGERSECURE".to_owned(), "1".to_owned()));
    }
    env
}

fn signal_group(pgid: Option<i32>, sig: Signal) {
    if let Some(pid) = pgid {
        // ESRCH (already gone) is the normal race at exit; nothing to do about it.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// A signal from the client (`Some`), or the end of the session (`None`: hang up, then kill).
fn deliver(pgid: Option<i32>, signal: Option<i32>) {
    match signal {
        Some(n) => {
            if let Ok(s) = Signal::try_from(n) {
                signal_group(pgid, s);
            }
        }
        None => {
            signal_group(pgid, Signal::SIGHUP);
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Run `SHELL -c command` with pipes.
pub fn spawn_pipes(shell: &Path, cwd: Option<&Path>, command: &str) -> Result<Process, SpawnError> {
    spawn_pipes_args(shell, &["-c", command], cwd)
}

/// Run `program args…` with pipes and the clean environment, in its own process group.
pub fn spawn_pipes_args(
    program: &Path,
    args: &[&str],
    cwd: Option<&Path>,
) -> Result<Process, SpawnError> {
    let shell = program;
    let mut cmd = tokio::process::Command::new(shell);
    cmd.args(args)
        .env_clear()
        .envs(base_env(None))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    match cwd {
        Some(d) => {
            cmd.current_dir(d);
        }
        None => {
            if let Ok(h) = std::env::var("HOME") {
                cmd.current_dir(h);
            }
        }
    }
    let mut child = cmd.spawn().map_err(|e| SpawnError::Spawn {
        shell: shell.display().to_string(),
        msg: e.to_string(),
    })?;
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
        let status = loop {
            tokio::select! {
                st = child.wait() => break st,
                ctl = ctl_rx.recv() => match ctl {
                    Some(Control::Stdin(data)) => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(&data).await.is_err()
                        {
                            stdin = None; // reader gone (EPIPE): drop further input
                        }
                    }
                    Some(Control::CloseStdin) => stdin = None,
                    Some(Control::Resize { .. }) => {}
                    Some(Control::Signal(n)) => deliver(pgid, Some(n)),
                    Some(Control::Kill) | None => deliver(pgid, None),
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

/// Run `command` (or, with `None`, a login shell) on a new PTY.
pub fn spawn_pty(
    shell: &Path,
    cwd: Option<&Path>,
    command: Option<&str>,
    pty: &PtyParams,
) -> Result<Process, SpawnError> {
    let args: Vec<&str> = command.map(|c| vec!["-c", c]).unwrap_or_default();
    spawn_pty_args(shell, &args, cwd, pty)
}

/// Run `program args…` on a new PTY with the clean environment, as its own session.
pub fn spawn_pty_args(
    program: &Path,
    args: &[&str],
    cwd: Option<&Path>,
    pty: &PtyParams,
) -> Result<Process, SpawnError> {
    let shell = program;
    let err = |e: String| SpawnError::Spawn {
        shell: shell.display().to_string(),
        msg: e,
    };
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: pty.rows.max(1),
            cols: pty.cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| err(e.to_string()))?;
    let mut cmd = CommandBuilder::new(shell);
    for a in args {
        cmd.arg(a);
    }
    cmd.env_clear();
    for (k, v) in base_env(Some(&pty.term)) {
        cmd.env(k, v);
    }
    match cwd {
        Some(d) => cmd.cwd(d),
        None => {
            if let Ok(h) = std::env::var("HOME") {
                cmd.cwd(h);
            }
        }
    }
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| err(e.to_string()))?;
    // Our copy of the slave must go, or the master never sees EOF when the command exits.
    drop(pair.slave);
    let pgid = child.process_id().map(|p| p as i32);
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
        let mut wait_rx = wait_rx;
        let status = loop {
            tokio::select! {
                st = &mut wait_rx => break st,
                ctl = ctl_rx.recv() => match ctl {
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
                    Some(Control::Signal(n)) => deliver(pgid, Some(n)),
                    Some(Control::Kill) | None => deliver(pgid, None),
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
