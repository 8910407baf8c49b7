//! Start-up's part of containment: what every command must never reach, where sessions'
//! private dirs go, whether this kernel can sandbox, and what a crashed run left running.
//!
//! A local target whose sandbox cannot be applied does not stop the gateway (upstream targets
//! still work): it refuses every command, and start-up says so loudly. `unconfined = true` is
//! the operator's explicit choice to run without Landlock, logged as an error at every start.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StartError;
use crate::config::{Config, TargetKind};
use crate::sandbox::{self, Anchor, Sandbox, canonical, orphans};
use crate::targets::Local;

/// One line per local target for the banner and the log: enforced, refused or unconfined.
pub fn status_lines(config: &Config, local: &Local) -> Vec<String> {
    config
        .targets
        .iter()
        .map(|t| match &t.kind {
            TargetKind::Local(l) => match (&local.kernel, l.unconfined) {
                (_, true) => format!(
                    "{}: UNCONFINED (unconfined = true): commands can read the gateway's files",
                    t.name
                ),
                (Ok(abi), false) => format!(
                    "{}: sandboxed (Landlock ABI {abi}{})",
                    t.name,
                    l.user
                        .as_deref()
                        .map(|u| format!(", as user {u}"))
                        .unwrap_or_default()
                ),
                (Err(why), false) => format!("{}: REFUSES COMMANDS: {why}", t.name),
            },
            TargetKind::Ssh(up) => match &up.runner {
                Some(r) => format!("{}: upstream, sandboxed by its runner {r}", t.name),
                None => format!(
                    "{}: upstream without a runner: low commands are classified but not enforced",
                    t.name
                ),
            },
        })
        .collect()
}

/// Everything commands may never open: the data dir, the config file, keys, database files
/// and rule packs, wherever they are. (The config's other secret files are placed for each
/// command: [`sandbox::secret_covers`].)
fn hidden(config: &Config) -> Vec<PathBuf> {
    let mut hide = vec![
        config.data_dir.clone(),
        config.host_key.clone(),
        config.ledger_key.clone(),
        config.authorized_keys.clone(),
    ];
    hide.extend(config.path.clone());
    hide.extend(config.rule_packs.iter().map(|(p, _)| p.clone()));
    for t in &config.targets {
        if let TargetKind::Ssh(up) = &t.kind {
            hide.push(up.key_path.clone());
        }
    }
    if let Some(db) = config.database_url.strip_prefix("sqlite://") {
        let db = db.split('?').next().unwrap_or(db);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            hide.push(PathBuf::from(format!("{db}{suffix}")));
        }
    }
    let mut hide: Vec<PathBuf> = hide.iter().map(|p| canonical(p)).collect();
    hide.sort();
    hide.dedup();
    hide
}

/// The data dir and the keys (the very same files) and the config file (by path), where
/// they really are now: those that exist.
fn anchors(config: &Config) -> Vec<Anchor> {
    let same_files = [&config.data_dir, &config.host_key, &config.ledger_key]
        .into_iter()
        .map(|p| (p, true));
    same_files
        .chain(config.path.iter().map(|p| (p, false)))
        .filter_map(|(p, same_file)| Anchor::now(canonical(p), same_file))
        .collect()
}

/// This uid's run dir in the temp dir: made 0711 (others may pass, not list), and refused if
/// someone else made it first (another user could otherwise read sessions' scratch dirs).
fn run_dir() -> Result<(PathBuf, PathBuf), StartError> {
    let tmp = canonical(&std::env::temp_dir());
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let prefix = tmp.join("airlock-run-");
    let dir = tmp.join(format!("airlock-run-{uid}"));
    let bad = |msg: String| StartError::DataDir {
        path: dir.display().to_string(),
        msg,
    };
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(bad(format!(
            "exists but is not a directory owned by uid {uid}; remove it"
        )));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok((prefix, dir))
}

/// `/proc/<gateway>/fd/<n>` for a file the gateway holds open.
fn held_path(f: &std::fs::File) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        std::os::fd::AsRawFd::as_raw_fd(f)
    ))
}

/// The sandbox helper every local command starts through, opened once (every helper the
/// gateway starts is that file, whatever is at the path later) and how to start it: the small
/// `airlock-sandbox` next to `exe` when it answers `--build-id` with this build's identity,
/// else `exe` itself (`airlock sandbox-exec`, the same code in a larger binary that takes a
/// few milliseconds longer to start).
fn helper(exe: &Path) -> Result<(std::fs::File, PathBuf), StartError> {
    let small = exe.with_file_name(sandbox::HELPER_BIN);
    match std::fs::File::open(&small) {
        Ok(f) if !trusted_like(&f, exe) => tracing::warn!(
            helper = %small.display(),
            "the sandbox helper next to airlock is not owned like airlock or is writable by others; it is not run, commands start through `airlock sandbox-exec` instead (slower)"
        ),
        Ok(f) => {
            let launch = held_path(&f);
            match build_id(&launch) {
                Ok(id) if id == sandbox::HELPER_BUILD => {
                    tracing::info!(helper = %small.display(), "commands start through the sandbox helper");
                    return Ok((f, launch));
                }
                Ok(id) => tracing::warn!(
                    helper = %small.display(),
                    found = %id,
                    expected = sandbox::HELPER_BUILD,
                    "the sandbox helper next to airlock comes from another build; commands start through `airlock sandbox-exec` instead (slower): rebuild or reinstall both binaries"
                ),
                Err(e) => tracing::warn!(
                    helper = %small.display(),
                    error = %e,
                    "the sandbox helper next to airlock does not answer; commands start through `airlock sandbox-exec` instead (slower)"
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tracing::info!(
            "no {} next to {}: commands start through `airlock sandbox-exec` (a few ms slower each; `cargo build --release` or `cargo install` builds both)",
            sandbox::HELPER_BIN,
            exe.display()
        ),
        Err(e) => tracing::warn!(
            helper = %small.display(),
            error = %e,
            "cannot open the sandbox helper; commands start through `airlock sandbox-exec` instead (slower)"
        ),
    }
    let f = std::fs::File::open(exe).map_err(|e| {
        StartError::Sandbox(format!(
            "cannot open the airlock binary {}: {e}",
            exe.display()
        ))
    })?;
    let launch = held_path(&f);
    Ok((f, launch))
}

/// Whether the open file `f` is a regular file owned by the same user as `exe` (the `airlock`
/// binary) and writable by nobody else: a file someone else could place or change next to the
/// binary (a sticky, world-writable directory) is never run, not even for `--build-id`.
fn trusted_like(f: &std::fs::File, exe: &Path) -> bool {
    let (Ok(helper), Ok(own)) = (f.metadata(), std::fs::metadata(exe)) else {
        return false;
    };
    helper.is_file() && helper.uid() == own.uid() && helper.permissions().mode() & 0o022 == 0
}

/// What `HELPER --build-id` prints, within a few seconds.
fn build_id(helper: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let mut child = std::process::Command::new(helper)
        .arg("--build-id")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no answer within 5 s".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut out = String::new();
    if let Some(o) = child.stdout.take() {
        o.take(256)
            .read_to_string(&mut out)
            .map_err(|e| e.to_string())?;
    }
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    Ok(out.trim().to_owned())
}

/// Build the local targets' sandbox context; check each target's `user`; sweep orphans.
pub fn open(config: &Config) -> Result<Local, StartError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| StartError::Sandbox(format!("cannot find the airlock binary: {e}")))?;
    let (exe_file, launch) = helper(&exe)?;
    let (run_prefix, run_dir) = run_dir()?;
    let kernel = sandbox::probe();
    for t in &config.targets {
        let TargetKind::Local(l) = &t.kind else {
            continue;
        };
        if let Some(u) = &l.user {
            sandbox::privs::lookup(u)
                .map_err(|e| StartError::Sandbox(format!("target {:?}: {e}", t.name)))?;
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err(StartError::Sandbox(format!(
                    "target {:?}: user = {u:?} needs the gateway to run as root (it drops to that user for each command)",
                    t.name
                )));
            }
        }
        match (&kernel, l.unconfined) {
            (_, true) => tracing::error!(
                target = %t.name,
                "target runs UNCONFINED (unconfined = true): its commands can read and change the gateway's own files, keys and database"
            ),
            (Err(why), false) => tracing::error!(
                target = %t.name,
                "target cannot be sandboxed and refuses every command: {why}; fix the kernel (Landlock ABI {} or later) or set unconfined = true on the target",
                sandbox::MIN_ABI
            ),
            (Ok(_), false) => {}
        }
    }
    let pids = orphans::dir(&config.data_dir);
    let killed = orphans::sweep(&pids);
    if killed > 0 {
        tracing::warn!(
            processes = killed,
            "killed processes a previous run's commands left behind"
        );
    }
    Ok(Local {
        sandbox: Sandbox {
            exe,
            launch,
            exe_file: std::sync::Arc::new(exe_file),
            hide: hidden(config),
            secrets: config.secret_files.clone(),
            anchors: anchors(config),
            run_prefix,
            run_dir,
        },
        kernel,
        pids,
    })
}
