//! The persistent shell behind a gated interactive session (`local` target).
//!
//! bash runs on a PTY so programs get a real terminal (ctrl-c, resizes, `tput cols`), but it
//! never reads commands from that terminal. Approved lines arrive NUL-terminated on a pipe of
//! their own (fd 3); after each one bash writes `STATUS CWD` NUL-terminated to another pipe
//! (fd 4). So nothing the agent types while a command runs can ever be executed by the shell,
//! the terminal never echoes the command, no canonical-mode line limit applies, and the end of
//! a command cannot be forged by its output. Commands run with fds 3 and 4 closed.
//!
//! The pipes are FIFOs in a private directory that is removed as soon as both ends are open.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::local::{SpawnError, spawn_pipes_args, spawn_pty_args};
use super::{Process, PtyParams};

/// The loop bash runs. `trap : INT` keeps the shell alive when ctrl-c interrupts a command
/// (a handler, unlike an ignored signal, is not inherited by the commands it runs);
/// `__airlock_set` gives each line the previous line's `$?`. After each command,
/// `__airlock_unread` takes back what the agent typed while it ran and it did not read (still
/// in the terminal's input queue), so the gateway can judge it as the next lines — what bash
/// itself would read next. It costs nothing when no whole line waits (`read -t 0`); a partial
/// line alone (typed without Enter) stays in the queue for the next command. The record is
/// `STATUS CWD\0UNREAD\0`.
const LOOP: &str = r#"exec 3<"$1" 4>"$2" || exit 111
trap : INT
__airlock_status=0
__airlock_set() { return "$1"; }
__airlock_unread() {
  [ -t 0 ] && read -t 0 || return 0
  IFS= read -r -d '' -t 0.05 __airlock_rest
  return 0
}
printf '0 %s\0\0' "$PWD" >&4
while IFS= read -r -d '' __airlock_line <&3; do
  __airlock_set "$__airlock_status"
  eval "$__airlock_line" 3<&- 4>&-
  __airlock_status=$?
  __airlock_rest=
  __airlock_unread 3<&- 4>&-
  printf '%s %s\0%s\0' "$__airlock_status" "$PWD" "$__airlock_rest" >&4
done
"#;

/// How long bash may take to start and report ready.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A finished command: its exit status, the shell's working directory afterwards, and the
/// keys typed while it ran that it never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub status: i32,
    pub cwd: String,
    pub unread: Vec<u8>,
}

pub struct Shell {
    /// The PTY: command output, keystrokes, resizes, signals, and bash's own exit.
    pub process: Process,
    commands: Commands,
    done: mpsc::Receiver<Done>,
}

/// Where approved lines are written: a local FIFO, or the stdin of `cat > FIFO` running on an
/// upstream host over its own SSH channel.
enum Commands {
    Fifo(pipe::Sender),
    Channel(mpsc::Sender<super::Control>),
}

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("shell pipes: {0}")]
    Io(#[from] std::io::Error),
    #[error("the shell did not start: {0}")]
    Start(String),
    #[error("a command may not contain a NUL byte")]
    Nul,
}

/// Removes the FIFO directory however `spawn` returns.
struct FifoDir(PathBuf);

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Shell {
    /// Start `bash` (with no startup files) in `cwd` — on a PTY, or with pipes when `pty` is
    /// `None` (a script on stdin) — and wait until it is ready. Returns the shell and its
    /// starting directory.
    pub async fn spawn(
        bash: &Path,
        cwd: Option<&Path>,
        pty: Option<&PtyParams>,
        unique: &str,
    ) -> Result<(Self, String), ShellError> {
        let dir = FifoDir(std::env::temp_dir().join(format!("airlock-shell-{unique}")));
        std::fs::DirBuilder::new().mode(0o700).create(&dir.0)?;
        let (cmd_path, done_path) = (dir.0.join("commands"), dir.0.join("done"));
        for p in [&cmd_path, &done_path] {
            nix::unistd::mkfifo(p, Mode::S_IRUSR | Mode::S_IWUSR).map_err(std::io::Error::from)?;
        }
        // Open our ends without blocking: the reader of `done` opens at once; `commands` is
        // opened read-write (Linux allows it on a FIFO), so it never waits for bash.
        let mut done_rx = pipe::OpenOptions::new().open_receiver(&done_path)?;
        let commands = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&cmd_path)?;
        let cmd_s = cmd_path.to_string_lossy().into_owned();
        let done_s = done_path.to_string_lossy().into_owned();
        let args = [
            "--noprofile",
            "--norc",
            "-c",
            LOOP,
            "airlock-shell",
            &cmd_s,
            &done_s,
        ];
        let process = match pty {
            Some(p) => spawn_pty_args(bash, &args, cwd, p)?,
            None => {
                let p = spawn_pipes_args(bash, &args, cwd)?;
                // Commands of a script read an empty stdin, never the script itself.
                let _ = p.control.send(super::Control::CloseStdin).await;
                p
            }
        };
        // The first record says bash is ready; by then it has both FIFOs open.
        let mut pending = Vec::new();
        let first = tokio::time::timeout(START_TIMEOUT, read_record(&mut done_rx, &mut pending))
            .await
            .map_err(|_| ShellError::Start("no ready signal".into()))?
            .ok_or_else(|| ShellError::Start("bash exited".into()))?;
        drop(dir); // both ends are open; the names are no longer needed
        let (tx, done) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(d) = read_record(&mut done_rx, &mut pending).await {
                if tx.send(d).await.is_err() {
                    break;
                }
            }
        });
        Ok((
            Self {
                process,
                commands: Commands::Fifo(commands),
                done,
            },
            first.cwd,
        ))
    }

    /// The same shell on an upstream SSH target: the FIFOs are made on the upstream in a
    /// private directory, bash runs there on a PTY channel, and two more channels on the same
    /// connection carry the lines in (`cat > FIFO`) and the end records out (`cat FIFO`).
    pub async fn spawn_upstream(
        up: &super::upstream::Upstream,
        name: &str,
        t: &super::upstream::UpstreamTarget,
        pty: Option<&PtyParams>,
        unique: &str,
    ) -> Result<(Self, String), ShellError> {
        let start = |e: super::upstream::UpstreamError| ShellError::Start(e.to_string());
        let dir = format!("/tmp/airlock-shell-{unique}");
        let (cmd_path, done_path) = (format!("{dir}/commands"), format!("{dir}/done"));
        let mut setup = up
            .spawn(
                name,
                t,
                &format!("umask 077 && mkdir {dir} && mkfifo {cmd_path} {done_path}"),
                None,
            )
            .await
            .map_err(start)?;
        match tokio::time::timeout(START_TIMEOUT, &mut setup.exit).await {
            Ok(Ok(super::Exit::Code(0))) => {}
            _ => {
                return Err(ShellError::Start(
                    "cannot prepare the upstream shell".into(),
                ));
            }
        }
        let bash = format!(
            "exec bash --noprofile --norc -c {} airlock-shell {cmd_path} {done_path}",
            quote(LOOP)
        );
        let process = up.spawn(name, t, &bash, pty).await.map_err(start)?;
        if pty.is_none() {
            let _ = process.control.send(super::Control::CloseStdin).await;
        }
        let writer = up
            .spawn(name, t, &format!("exec cat > {cmd_path}"), None)
            .await
            .map_err(start)?;
        let reader = up
            .spawn(name, t, &format!("exec cat {done_path}"), None)
            .await
            .map_err(start)?;
        let (tx, mut done) = mpsc::channel(8);
        tokio::spawn(async move {
            // Own the whole process: dropping its control sender would close the channel.
            let mut reader = reader;
            let mut pending: Vec<u8> = Vec::new();
            while let Some(super::Output::Stdout(b) | super::Output::Stderr(b)) =
                reader.output.recv().await
            {
                pending.extend_from_slice(&b);
                while let Some(d) = take_record(&mut pending) {
                    if tx.send(d).await.is_err() {
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(START_TIMEOUT, done.recv())
            .await
            .map_err(|_| ShellError::Start("no ready signal from the upstream shell".into()))?
            .ok_or_else(|| ShellError::Start("the upstream shell exited".into()))?;
        // Both ends are open: the names can go.
        if let Ok(mut rm) = up.spawn(name, t, &format!("rm -rf {dir}"), None).await {
            let _ = tokio::time::timeout(START_TIMEOUT, &mut rm.exit).await;
        }
        Ok((
            Self {
                process,
                commands: Commands::Channel(writer.control),
                done,
            },
            first.cwd,
        ))
    }

    /// Hand an approved line to the shell.
    pub async fn run(&mut self, line: &str) -> Result<(), ShellError> {
        if line.contains('\0') {
            return Err(ShellError::Nul);
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(0);
        match &mut self.commands {
            Commands::Fifo(f) => f.write_all(&buf).await?,
            Commands::Channel(c) => c.send(super::Control::Stdin(buf)).await.map_err(|_| {
                ShellError::Start("the upstream shell's input channel closed".into())
            })?,
        }
        Ok(())
    }

    /// The next finished command; `None` once the shell has exited.
    pub async fn done(&mut self) -> Option<Done> {
        self.done.recv().await
    }

    /// The PTY output, the end records and the exit, borrowed apart so one `select!` can wait
    /// on all three.
    pub fn parts(
        &mut self,
    ) -> (
        &mut mpsc::Receiver<super::Output>,
        &mut mpsc::Receiver<Done>,
        &mut tokio::sync::oneshot::Receiver<super::Exit>,
    ) {
        (
            &mut self.process.output,
            &mut self.done,
            &mut self.process.exit,
        )
    }
}

/// Quote text as one shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Take one whole `STATUS CWD\0UNREAD\0` record off the front of `pending`, if there is one.
fn take_record(pending: &mut Vec<u8>) -> Option<Done> {
    let first = pending.iter().position(|&c| c == 0)?;
    let second = first + 1 + pending[first + 1..].iter().position(|&c| c == 0)?;
    let rec: Vec<u8> = pending.drain(..=second).collect();
    let text = String::from_utf8_lossy(&rec[..first]).into_owned();
    let (status, cwd) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    Some(Done {
        status: status.trim().parse().unwrap_or(255),
        cwd: cwd.to_owned(),
        unread: rec[first + 1..second].to_vec(),
    })
}

/// Read one record.
async fn read_record(rx: &mut pipe::Receiver, pending: &mut Vec<u8>) -> Option<Done> {
    loop {
        if let Some(d) = take_record(pending) {
            return Some(d);
        }
        let mut buf = [0u8; 4096];
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Output;

    fn pty() -> PtyParams {
        PtyParams {
            term: "xterm".into(),
            cols: 80,
            rows: 24,
        }
    }

    async fn output_until(p: &mut Process, needle: &str) -> String {
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) {
            match tokio::time::timeout_at(deadline, p.output.recv()).await {
                Ok(Some(Output::Stdout(b) | Output::Stderr(b))) => {
                    seen.push_str(&String::from_utf8_lossy(&b))
                }
                _ => break,
            }
        }
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_persists_and_status_comes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sh, cwd) =
            Shell::spawn(Path::new("/bin/bash"), Some(dir.path()), Some(&pty()), "t1")
                .await
                .expect("spawn");
        assert_eq!(Path::new(&cwd), dir.path());
        sh.run("cd /tmp && X=42").await.expect("run");
        assert_eq!(
            sh.done().await,
            Some(Done {
                status: 0,
                cwd: "/tmp".into(),
                unread: Vec::new(),
            })
        );
        sh.run("echo value=$X; (exit 3)").await.expect("run");
        // (checked below: the next line sees that 3 as its `$?`)
        let out = output_until(&mut sh.process, "value=42").await;
        assert!(out.contains("value=42"), "{out:?}");
        assert!(
            !out.contains("echo value"),
            "the command is never echoed: {out:?}"
        );
        assert_eq!(sh.done().await.map(|d| d.status), Some(3));
        sh.run("echo previous=$?").await.expect("run");
        let out = output_until(&mut sh.process, "previous=3").await;
        assert!(out.contains("previous=3"), "{out:?}");
        assert_eq!(sh.done().await.map(|d| d.status), Some(0));
        // Printing something that looks like our record does nothing.
        sh.run("printf '0 /fake\\0'; false").await.expect("run");
        assert_eq!(sh.done().await.map(|d| d.status), Some(1));
        assert!(!dir.path().join("..").join("airlock-shell-t1").exists());
    }
}
