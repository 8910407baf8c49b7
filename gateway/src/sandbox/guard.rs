//! `airlock sandbox-exec`: the guard between the gateway and a command.
//!
//! The helper forks. The child applies the sandbox ([`super::mask`], [`super::privs`],
//! [`super::rules`]) and
//! execs the command; if anything fails it prints one `airlock: denied: …` line and exits 77
//! without running anything. The parent stays as the **guard**:
//! - it is a child subreaper, so everything the command starts (even what double-forks or
//!   calls `setsid`) stays its descendant;
//! - it ignores the terminal's and the client's signals (they reach the command through the
//!   process group) so it outlives the command to report its end;
//! - when the command exits, or on SIGTERM (the gateway ending the session), or when its
//!   parent dies (the gateway killed with `kill -9`), it kills every descendant left;
//! - it exits as the command did (same code, or the same signal).
//!
//! The helper runs before any thread or runtime exists, so `fork` here is safe.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use super::{Mode, Policy, SANDBOX_FAILED_EXIT, Scratch, mask, privs, rules, seccomp};

/// Signals the guard does not die of: the terminal's (ctrl-c, ctrl-\, ctrl-z, hang-up) and
/// the ones a client may send to the command's process group.
const IGNORED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
];

/// Rounds of "kill every child, reap, look again" before giving up on a process tree that
/// keeps forking (each round reaches one more generation).
const KILL_ROUNDS: usize = 64;
/// How long one round waits for killed children to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);

fn die(msg: &str) -> ! {
    eprintln!("airlock: denied: {msg}");
    std::process::exit(SANDBOX_FAILED_EXIT);
}

/// The helper's entry point: `args` is what follows `sandbox-exec`. Never returns.
pub fn main(args: &[OsString]) -> ! {
    let (policy, argv) = match Policy::parse(args) {
        Ok(v) => v,
        Err(e) => die(&e.to_string()),
    };
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    let parent_fd = pidfd_open(parent);
    // SAFETY: integer prctl.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        die("cannot become the command's subreaper");
    }
    let user = match &policy.user {
        Some(name) => match privs::lookup(name) {
            Ok(u) => Some(u),
            Err(e) => die(&format!("sandbox: {e}")),
        },
        None => None,
    };
    let (scratch, made) = match &policy.scratch {
        None => (None, false),
        Some(Scratch::Use(d)) => (Some(d.clone()), false),
        Some(Scratch::MakeIn(base)) => match make_scratch(base, user.as_ref()) {
            Ok(d) => (Some(d), true),
            Err(e) => die(&format!(
                "sandbox: cannot make a scratch dir in {}: {e}",
                base.display()
            )),
        },
    };
    // Before the pins exist: a path replaced from now on stops the command.
    let pins = match super::pinwatch::watch(&policy.pins) {
        Ok(w) => w,
        Err(e) => die(&format!("sandbox: {e}")),
    };
    let mask = block_signals();
    // SAFETY: single-threaded process (no runtime has started): fork is safe.
    let child = unsafe { libc::fork() };
    if child < 0 {
        die("fork failed");
    }
    if child == 0 {
        exec_child(&policy, &argv, &mask, user.as_ref(), scratch.as_deref());
    }
    let status = watch(child, parent, parent_fd, &mask, pins.as_ref());
    kill_descendants();
    if made && let Some(d) = &scratch {
        let _ = std::fs::remove_dir_all(d);
    }
    exit_like(status)
}

/// A fresh private dir inside `base` (mode 0700, the command's user's).
fn make_scratch(base: &std::path::Path, user: Option<&privs::User>) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = base.join(format!("x-{}", hex::encode(rnd)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    if let Some(u) = user {
        std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid))?;
    }
    Ok(dir)
}

/// Block SIGCHLD and SIGTERM (read through a signalfd) and ignore [`IGNORED`]. Returns the
/// blocked set, for the signalfd.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local; sigprocmask/signal on this single thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        for &s in IGNORED {
            libc::signal(s, libc::SIG_IGN);
        }
        set
    }
}

/// In the child: restore signals, apply the sandbox, exec. Never returns.
fn exec_child(
    policy: &Policy,
    argv: &[OsString],
    mask: &libc::sigset_t,
    user: Option<&privs::User>,
    scratch: Option<&std::path::Path>,
) -> ! {
    // SAFETY: undoing what block_signals did, on this (now single) thread.
    unsafe {
        libc::sigprocmask(libc::SIG_UNBLOCK, mask, std::ptr::null_mut());
        for &s in IGNORED {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    if let Err(e) = privs::no_new_privs() {
        die(&format!("sandbox: {e}"));
    }
    if let Some(n) = policy.exe_fd {
        // This process runs the binary the gateway opened at start-up: hand that file on.
        // SAFETY: open/dup2/close on descriptors we own; the new one has no close-on-exec.
        unsafe {
            let fd = libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY);
            if fd < 0 || libc::dup2(fd, n) < 0 {
                die("sandbox: cannot hand on the helper binary");
            }
            if fd != n {
                libc::close(fd);
            }
        }
    }
    if let Some(s) = scratch {
        // SAFETY: single-threaded child; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("TMPDIR", s) };
    }
    let tty = rules::own_tty();
    // Cover the gateway's files in a mount namespace of the command's own; if that cannot be
    // done here, Landlock alone hides them (with less room to write beside them).
    let masked = if policy.unconfined {
        false
    } else {
        match mask::mask(policy, scratch) {
            Ok(mask::Masked::Covered) => true,
            // Approved scripts are pinned in the namespace: without one they cannot be.
            Ok(mask::Masked::Unavailable(e)) if !policy.pins.is_empty() => die(&format!(
                "sandbox: the approved script cannot be pinned without a mount namespace ({e})"
            )),
            Ok(mask::Masked::Unavailable(_)) => false,
            Err(e) => die(&format!("the sandbox could not be applied: {e}")),
        }
    };
    if let Some(u) = user
        && let Err(e) = privs::become_user(u)
    {
        die(&format!("sandbox: {e}"));
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let dropped = match policy.mode {
            Mode::ReadOnly => privs::drop_all_capabilities(),
            Mode::ReadWrite => privs::drop_escape_capabilities(),
        };
        if let Err(e) = dropped {
            die(&format!("sandbox: {e}"));
        }
    }
    let landlock_policy = if masked {
        Policy {
            hide: Vec::new(),
            hide_prefix: Vec::new(),
            anchors: Vec::new(),
            ..policy.clone()
        }
    } else {
        policy.clone()
    };
    if !policy.unconfined
        && let Err(e) = rules::restrict(&landlock_policy, tty.as_deref(), scratch)
    {
        die(&format!("the sandbox could not be applied: {e}"));
    }
    if !policy.unconfined
        && policy.mode == Mode::ReadOnly
        && let Err(e) = seccomp::deny_sockets()
    {
        die(&format!("the sandbox could not be applied: {e}"));
    }
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: NUL-terminated strings and a NULL-terminated array that outlive the call.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    let err = std::io::Error::last_os_error();
    eprintln!("airlock: cannot run {}: {err}", argv[0].to_string_lossy());
    std::process::exit(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    });
}

fn pidfd_open(pid: libc::pid_t) -> Option<libc::c_int> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then_some(fd as libc::c_int)
}

/// How the command ended, as `waitpid` says.
type Status = libc::c_int;

/// Wait for the command to exit, reaping adopted orphans meanwhile. Returns early (with a
/// SIGKILL status) when told to stop (SIGTERM) or when the parent is gone.
fn watch(
    child: libc::pid_t,
    parent: libc::pid_t,
    parent_fd: Option<libc::c_int>,
    mask: &libc::sigset_t,
    pins: Option<&super::pinwatch::PinWatch>,
) -> Status {
    const KILLED: Status = libc::SIGKILL;
    // SAFETY: signalfd on a set we built; poll/read on descriptors we own.
    unsafe {
        let sfd = libc::signalfd(-1, mask, libc::SFD_CLOEXEC);
        if sfd < 0 {
            libc::kill(child, libc::SIGKILL);
            return KILLED;
        }
        loop {
            // Reap whatever exited; the command's own status ends the watch.
            loop {
                let mut st: Status = 0;
                let pid = libc::waitpid(-1, &mut st, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    return st;
                }
            }
            if libc::getppid() != parent {
                return KILLED; // the gateway died and we were re-parented
            }
            let mut fds = [
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: parent_fd.unwrap_or(-1),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: pins.map_or(-1, |p| p.fd),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // The parent is also checked every quarter second: a pidfd may say nothing until
            // the dead gateway is reaped (or exist at all, on an old kernel).
            libc::poll(fds.as_mut_ptr(), 3, 250);
            if fds[1].revents != 0 {
                return KILLED;
            }
            if fds[2].revents != 0
                && let Some(path) = pins.and_then(|p| p.changed())
            {
                libc::kill(-child, libc::SIGKILL);
                libc::kill(child, libc::SIGKILL);
                let msg = format!(
                    "airlock: {} was replaced while the approved command ran; the command was stopped\n",
                    path.display()
                );
                libc::write(2, msg.as_ptr().cast(), msg.len());
                return KILLED;
            }
            if fds[0].revents != 0 {
                let mut info: libc::signalfd_siginfo = std::mem::zeroed();
                let n = libc::read(
                    sfd,
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                );
                if n > 0 && info.ssi_signo == libc::SIGTERM as u32 {
                    return KILLED;
                }
            }
        }
    }
}

/// This process's children, from `/proc`.
fn children() -> Vec<libc::pid_t> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kill every descendant: kill the children, reap them (their own children are re-parented to
/// us, the subreaper), repeat until none is left.
fn kill_descendants() {
    for _ in 0..KILL_ROUNDS {
        let kids = children();
        if kids.is_empty() {
            // Zombies are not listed as children once reaped; reap any left.
            // SAFETY: non-blocking waitpid.
            while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
            return;
        }
        for &k in &kids {
            // SAFETY: kill on a pid we just read as our child.
            unsafe { libc::kill(k, libc::SIGKILL) };
        }
        let until = Instant::now() + REAP_WAIT;
        while Instant::now() < until {
            // SAFETY: non-blocking waitpid.
            let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            if pid < 0 {
                break; // no children at all
            }
            if pid == 0 {
                if children().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Exit the way the command did: its code, or its signal (re-raised on ourselves).
fn exit_like(status: Status) -> ! {
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    let sig = if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        libc::SIGKILL
    };
    // SAFETY: restoring the default action and raising the signal on ourselves; no core file
    // (the command's core, if any, was its own).
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::exit(128 + sig)
}
