//! The persistent shell behind a gated interactive session or a script.
//!
//! bash runs on a PTY so programs get a real terminal (ctrl-c, resizes, `tput cols`), but it
//! never reads commands from that terminal. Approved lines arrive NUL-terminated on a pipe of
//! their own (fd 3), each with a mode byte; after each one bash writes `STATUS CWD` and what
//! the agent typed that the line did not read, NUL-terminated, to another pipe (fd 4). So
//! nothing the agent types while a command runs can ever be executed by the shell, the
//! terminal never echoes the command, and the end of a command cannot be forged by its output.
//! Commands run with fds 3 and 4 closed. The pipes are FIFOs in the session's private dir,
//! removed as soon as both ends are open.
//!
//! What a line can leave behind for the lines after it is limited (issue: state that changes
//! how later lines run):
//! - the pinned variables ([`super::env`]) are readonly, and `BASH_ENV`, `PS4`, `LD_PRELOAD`…
//!   readonly and empty;
//! - before every line the shell is reset: the command hash is cleared (`hash -p` cannot
//!   redirect a name), aliases never expand, history is off and empty (`fc` has nothing to
//!   replay), traps are reset, `command_not_found_handle` and every function named like a
//!   builtin or a program are removed (with a line saying so);
//! - a line that runs without a human (mode `r`) runs in a child under the read-only sandbox,
//!   given a copy of the shell's state and `$?`: nothing it does persists except its working
//!   directory, and an `exit` at its top level ends the shell as it would have.
//!   Without a sandbox helper (an upstream with no runner) it runs in the shell itself.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::Mode as FileMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::local::{SpawnError, Start, spawn_pipes, spawn_pty};
use super::{Mode, Process, PtyParams};
use crate::environment::{BASH_FLAGS, EDITORS, EMPTY_READONLY, PINNED, upstream_line};

/// The loop bash runs: `$1` the commands FIFO, `$2` the done FIFO, the rest the sandbox
/// helper's argv for read-only lines (empty: no helper). Locally that argv starts with
/// `/proc/self/fd/9`: the binary the guard opened, not a path an approved line could replace
/// (approved lines run with fd 9 closed). `trap : INT` keeps the shell alive
/// when ctrl-c interrupts a command (a handler, unlike an ignored signal, is not inherited by
/// the commands it runs); `__airlock_set` gives each line the previous line's `$?`.
/// `__airlock_unread` takes back what the agent typed while a line ran and it did not read
/// (still in the terminal's input queue), so the gateway can judge it as the next lines; a
/// ctrl-d typed then comes back as ctrl-d (it ends the session at the next prompt, as in bash).
/// The record is `STATUS CWD\0UNREAD\0`.
const LOOP: &str = r#"exec 3<"$1" 4>"$2" || exit 111
__airlock_ro_cmd=("${@:3}")
__airlock_child='IFS= builtin read -r -d "" __airlock_state <&6
eval "$__airlock_state" 2>/dev/null
builtin unset -v __airlock_state
builtin set +o history
__airlock_top=$BASHPID
__airlock_exiting=
builtin trap '"'"'builtin printf "%s\0%s\0" "$PWD" "$__airlock_exiting" >&5'"'"' EXIT
exit() { local __s=$?; [ "$BASHPID" = "$__airlock_top" ] && __airlock_exiting=exit; builtin exit "${@:-$__s}"; }
__airlock_set "$2"
eval "$1"'
__airlock_builtins="$(compgen -b | tr '\n' ' ') $(compgen -k | tr '\n' ' ')"
readonly __airlock_ro_cmd __airlock_child __airlock_builtins
trap : INT
__airlock_status=0
__airlock_set() { return "$1"; }
__airlock_unread() {
  [ -t 0 ] && read -t 0 || return 0
  IFS= read -r -d '' -t 0.05 __airlock_rest
  # 1 is end of input: a ctrl-d typed at the start of a line. Hand it back as ctrl-d.
  [ $? -eq 1 ] && __airlock_rest+=$'\x04'
  return 0
}
__airlock_reset() {
  # POSIX mode first (an assignment: no function can intercept it), where special builtins
  # cannot be shadowed: then no function named like a builtin survives to run in our place.
  POSIXLY_CORRECT=y
  [[ -o posix ]] || : "${__airlock_cannot_reset:?the shell cannot be reset}"
  IFS=$' \t\n'
  unset -f $__airlock_builtins 2>/dev/null
  unset POSIXLY_CORRECT
  hash -r
  shopt -u expand_aliases
  set +o history
  history -c
  # Every trap that is set (CHLD, WINCH… would run between lines with the line in hand).
  local __t __sigs=()
  while IFS= read -r __t; do __sigs+=("${__t##* }"); done <<< "$(trap -p)"
  [ ${#__sigs[@]} -eq 0 ] || trap - "${__sigs[@]}" 2>/dev/null
  trap : INT
  unset -f command_not_found_handle command_not_found_handler 2>/dev/null
  local __f
  for __f in $(compgen -A function); do
    case $__f in __airlock_*) continue ;; esac
    [ -n "$(type -P -- "$__f")" ] || continue
    unset -f -- "$__f"
    printf 'airlock: function %s removed: it was named like a command\n' "$__f" >&2
  done
}
__airlock_ro() {
  local __prev=$?
  if [ ${#__airlock_ro_cmd[@]} -eq 0 ]; then __airlock_set "$__prev"; eval "$1"; return; fi
  # The child gets a copy of the shell's state on fd 6 and reports its directory (and an
  # `exit`) on fd 5, into a file in our private dir that it cannot open itself. Nothing it
  # writes is ever run here.
  local __out="$TMPDIR/.airlock-out" __s __o=()
  "${__airlock_ro_cmd[@]}" "$BASH" --noprofile --norc -c "$__airlock_child" airlock-line "$1" "$__prev" \
    6< <({ declare -p; declare -f; shopt -p; set +o; } 2>/dev/null; printf '\0') 5>|"$__out"
  __s=$?
  mapfile -t -d '' -n 2 __o < "$__out"
  : >|"$__out"
  [ -n "${__o[0]}" ] && cd -- "${__o[0]}" 2>/dev/null
  [ "${__o[1]}" = exit ] && exit "$__s"
  return $__s
}
readonly -f __airlock_set __airlock_unread __airlock_reset __airlock_ro
__airlock_reset
printf '0 %s\0\0' "$PWD" >&4
while unset -n __airlock_line; unset -v __airlock_line; IFS= read -r -d '' __airlock_line <&3; do
  __airlock_set "$__airlock_status"
  case ${__airlock_line:0:1} in
    r) __airlock_ro "${__airlock_line:1}" 3<&- 4>&- ;;
    w) eval "${__airlock_line:1}" 3<&- 4>&- 9<&- ;;
    *) exit 111 ;;
  esac
  __airlock_status=$?
  __airlock_reset 3<&- 4>&-
  __airlock_rest=
  __airlock_unread 3<&- 4>&-
  printf '%s %s\0%s\0' "$__airlock_status" "$PWD" "$__airlock_rest" >&4
done
"#;

/// Lines run before the loop: the pinned variables made readonly (their values come from the
/// environment), the dangerous ones readonly and empty.
fn preamble() -> String {
    let mut p = String::new();
    for (k, _) in PINNED {
        p.push_str(&format!("readonly {k}\n"));
    }
    for k in EDITORS {
        p.push_str(&format!("readonly {k}\n"));
    }
    for k in EMPTY_READONLY {
        p.push_str(&format!("unset {k} 2>/dev/null; readonly {k}=\n"));
    }
    p
}

/// The whole script bash is given.
fn script() -> String {
    format!("{}{LOOP}", preamble())
}

/// A local shell: what to start and where its private dir is.
pub struct LocalShell<'a> {
    pub bash: &'a Path,
    pub cwd: Option<&'a Path>,
    pub env: Vec<(String, String)>,
    /// The sandbox helper's argv up to `--` for the shell itself (read-write).
    pub helper: Vec<OsString>,
    /// The helper's argv up to `--` for read-only lines.
    pub read_only: Vec<OsString>,
    /// The session's private dir: FIFOs, then scratch (`$TMPDIR`). Removed with the shell.
    pub dir: PathBuf,
    /// The uid and gid of the user the shell runs as (the dir and FIFOs are given to it).
    pub owner: Option<(u32, u32)>,
    pub pids: PathBuf,
}

/// An upstream shell: the pinned variables to set, the runner's argv for read-only lines, and
/// the session's private dir there (pipes, then `$TMPDIR`).
pub struct UpstreamShell {
    pub env: Vec<(String, String)>,
    pub read_only: Vec<String>,
    pub dir: String,
}

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
    /// The session's private dir on this host, removed when the shell is dropped.
    _dir: Option<PrivateDir>,
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

/// Removes the session's private directory however the session ends.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Shell {
    /// Start the shell in its sandbox — on a PTY, or with pipes when `pty` is `None` (a
    /// script on stdin) — and wait until it is ready. Returns the shell and its starting
    /// directory.
    pub async fn spawn(
        spec: LocalShell<'_>,
        pty: Option<&PtyParams>,
    ) -> Result<(Self, String), ShellError> {
        std::fs::DirBuilder::new().mode(0o700).create(&spec.dir)?;
        let dir = PrivateDir(spec.dir.clone());
        let (cmd_path, done_path) = (dir.0.join("commands"), dir.0.join("done"));
        for p in [&cmd_path, &done_path] {
            nix::unistd::mkfifo(p, FileMode::S_IRUSR | FileMode::S_IWUSR)
                .map_err(std::io::Error::from)?;
        }
        if let Some((uid, gid)) = spec.owner {
            for p in [&dir.0, &cmd_path, &done_path] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
        // Open our ends without blocking: the reader of `done` opens at once; `commands` is
        // opened read-write (Linux allows it on a FIFO), so it never waits for bash.
        let mut done_rx = pipe::OpenOptions::new().open_receiver(&done_path)?;
        let commands = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&cmd_path)?;
        let mut argv = spec.helper;
        argv.push(spec.bash.into());
        argv.extend(BASH_FLAGS.iter().map(OsString::from));
        argv.push("-c".into());
        argv.push(script().into());
        argv.push("airlock-shell".into());
        argv.push(cmd_path.into());
        argv.push(done_path.into());
        argv.extend(spec.read_only);
        let mut env = spec.env;
        env.push(("TMPDIR".into(), dir.0.display().to_string()));
        let start = Start {
            argv,
            cwd: spec.cwd,
            env,
            pids: Some(spec.pids),
        };
        let process = match pty {
            Some(p) => spawn_pty(start, p)?,
            None => {
                let p = spawn_pipes(start)?;
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
        // Both ends are open: the names go, so nothing else can ever open them.
        let _ = std::fs::remove_file(dir.0.join("commands"));
        let _ = std::fs::remove_file(dir.0.join("done"));
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
                _dir: Some(dir),
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
        spec: UpstreamShell,
    ) -> Result<(Self, String), ShellError> {
        let start = |e: super::upstream::UpstreamError| ShellError::Start(e.to_string());
        let dir = spec.dir.clone();
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
        let mut vars = vec![("TMPDIR".to_owned(), dir.clone())];
        vars.extend(pty.map(|p| ("TERM".to_owned(), p.term.clone())));
        vars.extend(spec.env);
        let mut args = vec![
            "airlock-shell".to_owned(),
            cmd_path.clone(),
            done_path.clone(),
        ];
        args.extend(spec.read_only);
        let bash = upstream_line(&vars, &[], &script(), &args);
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
        // Both ends are open: the names can go (the dir stays: it is the shell's `$TMPDIR`).
        if let Ok(mut rm) = up
            .spawn(name, t, &format!("rm -f {cmd_path} {done_path}"), None)
            .await
        {
            let _ = tokio::time::timeout(START_TIMEOUT, &mut rm.exit).await;
        }
        Ok((
            Self {
                process,
                commands: Commands::Channel(writer.control),
                done,
                _dir: None,
            },
            first.cwd,
        ))
    }

    /// Hand a line to the shell: read-only lines run in the sandboxed child.
    pub async fn run(&mut self, line: &str, mode: Mode) -> Result<(), ShellError> {
        if line.contains('\0') {
            return Err(ShellError::Nul);
        }
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.push(match mode {
            Mode::ReadOnly => b'r',
            Mode::ReadWrite => b'w',
        });
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
        let private = tempfile::tempdir().expect("tempdir");
        let spec = LocalShell {
            bash: Path::new("/bin/bash"),
            cwd: Some(dir.path()),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            helper: Vec::new(),
            read_only: Vec::new(),
            dir: private.path().join("s"),
            owner: None,
            pids: private.path().join("pids"),
        };
        let (mut sh, cwd) = Shell::spawn(spec, Some(&pty())).await.expect("spawn");
        assert_eq!(Path::new(&cwd), dir.path());
        sh.run("cd /tmp && X=42", Mode::ReadWrite)
            .await
            .expect("run");
        assert_eq!(
            sh.done().await,
            Some(Done {
                status: 0,
                cwd: "/tmp".into(),
                unread: Vec::new(),
            })
        );
        sh.run("echo value=$X; (exit 3)", Mode::ReadWrite)
            .await
            .expect("run");
        // (checked below: the next line sees that 3 as its `$?`)
        let out = output_until(&mut sh.process, "value=42").await;
        assert!(out.contains("value=42"), "{out:?}");
        assert!(
            !out.contains("echo value"),
            "the command is never echoed: {out:?}"
        );
        assert_eq!(sh.done().await.map(|d| d.status), Some(3));
        sh.run("echo previous=$?", Mode::ReadWrite)
            .await
            .expect("run");
        let out = output_until(&mut sh.process, "previous=3").await;
        assert!(out.contains("previous=3"), "{out:?}");
        assert_eq!(sh.done().await.map(|d| d.status), Some(0));
        // Printing something that looks like our record does nothing.
        sh.run("printf '0 /fake\\0'; false", Mode::ReadWrite)
            .await
            .expect("run");
        assert_eq!(sh.done().await.map(|d| d.status), Some(1));
        // The FIFOs' names are gone once both ends are open.
        assert!(!private.path().join("s/commands").exists());
        // Pinned names are readonly; a function named like a program is gone before the
        // next line.
        sh.run("PAGER=evil", Mode::ReadWrite).await.expect("run");
        assert_ne!(sh.done().await.map(|d| d.status), Some(0));
        sh.run("ls() { echo hijacked; }", Mode::ReadWrite)
            .await
            .expect("run");
        assert_eq!(sh.done().await.map(|d| d.status), Some(0));
        sh.run("ls -d /", Mode::ReadWrite).await.expect("run");
        let out = output_until(&mut sh.process, "function ls removed").await;
        assert!(out.contains("function ls removed"), "{out:?}");
        assert_eq!(sh.done().await.map(|d| d.status), Some(0));
        drop(sh);
        assert!(
            !private.path().join("s").exists(),
            "the private dir is removed with the shell"
        );
    }
}
