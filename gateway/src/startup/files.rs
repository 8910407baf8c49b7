//! File modes the gateway insists on, like sshd's `StrictModes`: secrets nobody else may read,
//! an agent list nobody else may write, and a data directory and database only the gateway's
//! user can open.
//!
//! Secrets (host key, ledger key) that group or others can read refuse start-up with the file
//! named: a key someone else could copy is a key that is already lost, and tightening it
//! silently would hide that. `authorized_keys` (and its directory) writable by group or others
//! refuses start-up too: whoever can write it can enrol an agent. Upstream keys are checked
//! where the config is read (`config/targets.rs`), so every CLI command refuses them as well.
//! What the gateway made itself (data dir, database, WAL/SHM) it tightens to 0700/0600.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::StartError;
use crate::config::Config;

/// The lock `serve` holds (shared) for as long as it runs, in the data dir; `airlock restore`
/// takes it exclusively, so a database is never swapped under a running gateway.
pub const SERVE_LOCK: &str = "serve.lock";

/// Refuse start-up when a secret is open to others or the agent list is writable by others.
pub fn check_secrets(config: &Config) -> Result<(), StartError> {
    for (path, what) in [
        (&config.host_key, "host key ([ssh] host_key)"),
        (&config.ledger_key, "ledger key ([ledger] key)"),
    ] {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            // Created 0600 later; a missing directory is reported by the key loaders.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(StartError::Permissions(format!(
                    "{what} {}: {e}",
                    path.display()
                )));
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StartError::Permissions(format!(
                "{what} {} is accessible by group or others (mode {mode:o}): treat it as leaked if others could read it, then chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
    }
    if let Some(why) = crate::config::authorized_keys_unsafe(&config.authorized_keys) {
        return Err(StartError::Permissions(why));
    }
    Ok(())
}

/// The data dir holds the database, keys and recordings: made 0700 when new, and tightened to
/// 0700 when the gateway's user owns it and it is open to others (a CLI command of an older
/// version, or a `mkdir` with the default umask, leaves it 0755). One owned by someone else
/// that others can enter is named in the log: not ours to change.
pub fn private_data_dir(dir: &Path) -> Result<(), StartError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StartError::DataDir {
                    path: dir.display().to_string(),
                    msg: e.to_string(),
                });
        }
        Err(e) => {
            return Err(StartError::DataDir {
                path: dir.display().to_string(),
                msg: e.to_string(),
            });
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if meta.uid() == unsafe { libc::geteuid() } {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
            |e| StartError::DataDir {
                path: dir.display().to_string(),
                msg: format!("chmod 700: {e}"),
            },
        )?;
        tracing::warn!(
            dir = %dir.display(),
            was = format!("{mode:o}"),
            "the data dir was open to other users (database, keys, recordings): made it 700"
        );
    } else {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:o}"),
            "the data dir is open to other users (database, keys, recordings) and owned by another user: chmod 700 it"
        );
    }
    Ok(())
}

/// SQLite keeps every command ever run: the database file and its WAL, SHM and journal are
/// made 0600 (SQLite gives new WAL/SHM files the database file's mode, so fixing the database
/// fixes what comes later).
pub fn private_database(url: &str) -> Result<(), StartError> {
    let Some(db) = airlock_approvals::store::sqlite_file(url) else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o600))
                .map_err(|e| StartError::DataDir {
                    path: path.display().to_string(),
                    msg: format!("chmod 600: {e}"),
                })?;
            tracing::warn!(file = %path.display(), was = format!("{mode:o}"), "the database file was open to other users: made it 600");
        }
    }
    Ok(())
}

/// Take the serve lock (shared: several gateways may share a data dir's lock, a restore may
/// not). The descriptor is kept open for the life of the process on purpose: the lock must
/// outlive every handle the gateway drops, and it goes when the process goes.
pub fn hold_serve_lock(data_dir: &Path) -> Result<(), StartError> {
    let path = data_dir.join(SERVE_LOCK);
    let err = |msg: String| StartError::DataDir {
        path: path.display().to_string(),
        msg,
    };
    let file = lock_file(&path).map_err(|e| err(e.to_string()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_SH | libc::LOCK_NB,
        )
    } != 0
    {
        return Err(err(
            "held exclusively by another process (`airlock restore` running?); wait for it to finish".into(),
        ));
    }
    std::mem::forget(file);
    Ok(())
}

/// Open (creating, 0600) a lock file; close-on-exec like every file std opens.
pub fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}
