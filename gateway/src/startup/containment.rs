//! Start-up's part of containment: what every command must never reach, where sessions'
//! private dirs go, whether this kernel can sandbox, and what a crashed run left running.
//!
//! A local target whose sandbox cannot be applied does not stop the gateway (upstream targets
//! still work): it refuses every command, and start-up says so loudly. `unconfined = true` is
//! the operator's explicit choice to run without Landlock, logged as an error at every start.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::StartError;
use crate::config::{Config, TargetKind};
use crate::sandbox::{self, Sandbox, canonical, orphans};
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
/// and rule packs, wherever they are.
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

/// Build the local targets' sandbox context; check each target's `user`; sweep orphans.
pub fn open(config: &Config) -> Result<Local, StartError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| StartError::Sandbox(format!("cannot find the airlock binary: {e}")))?;
    // Opened once: every helper the gateway starts is this file, whatever is at the path later.
    let exe_file = std::fs::File::open(&exe).map_err(|e| {
        StartError::Sandbox(format!(
            "cannot open the airlock binary {}: {e}",
            exe.display()
        ))
    })?;
    let launch = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        std::os::fd::AsRawFd::as_raw_fd(&exe_file)
    ));
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
            run_prefix,
            run_dir,
        },
        kernel,
        pids,
    })
}
