//! The gateway notices when its database is not the one it had: deleted, replaced, restored
//! from an older backup, or swapped for another. Without this, a deleted SQLite file goes
//! unnoticed (the gateway keeps writing to the unlinked inode, the CLI writes to a new file)
//! and after a restart the audit ledger silently starts again at entry 1 — and `ledger
//! verify`, which only sees the new chain, says OK.
//!
//! Two checks:
//! - **The ledger head file** (`<data_dir>/ledger.head`, beside the keys): the first entry's
//!   hash (which names the chain) and the last entry this node saw written. At start the
//!   database must hold that chain up to at least that entry; otherwise start-up is refused
//!   with what to restore, or how to start a new chain on purpose (move the file aside).
//! - **The database file's identity** (SQLite): its device and inode, checked every few
//!   seconds; if the file is gone or another file took its place, new commands are refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use airlock_approvals::Store;
use airlock_approvals::store::sqlite_file;
use serde::{Deserialize, Serialize};

/// The head file's name inside the data directory.
pub const HEAD_FILE: &str = "ledger.head";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// Hash of entry 1: which chain this is.
    first: String,
    seq: i64,
    hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    #[error(
        "{db} does not hold the audit ledger {file} expects: {what}. Restore the database from a backup; or, to start a new chain on purpose, move {file} aside (keep the old database: its chain stays verifiable)"
    )]
    Mismatch {
        db: String,
        file: String,
        what: String,
    },
    #[error("{file}: {msg}")]
    HeadFile { file: String, msg: String },
    #[error("database: {0}")]
    Store(#[from] airlock_approvals::StoreError),
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub struct Continuity {
    head_file: PathBuf,
    /// SQLite: the file and its (device, inode) when opened.
    db_file: Option<(PathBuf, (u64, u64))>,
    /// Why new commands are refused, once the database is found gone or replaced.
    broken: RwLock<Option<String>>,
}

impl Continuity {
    /// Before connecting: a SQLite file that is missing while the head file says a ledger was
    /// written is not created afresh (connecting would create it empty).
    pub fn precheck(data_dir: &Path, db_url: &str) -> Result<(), ContinuityError> {
        let head_file = data_dir.join(HEAD_FILE);
        match sqlite_file(db_url) {
            Some(db) if head_file.exists() && !db.exists() => Err(ContinuityError::Mismatch {
                db: db.display().to_string(),
                file: head_file.display().to_string(),
                what: "the database file is missing, but a ledger was written to it".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Check the database against the head file before anything is written; `Err` refuses
    /// start-up.
    pub async fn open(
        store: &Store,
        data_dir: &Path,
        db_url: &str,
    ) -> Result<Arc<Self>, ContinuityError> {
        let head_file = data_dir.join(HEAD_FILE);
        let file_name = head_file.display().to_string();
        let db = sqlite_file(db_url)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the database".to_owned());
        let mismatch = |what: String| ContinuityError::Mismatch {
            db: db.clone(),
            file: file_name.clone(),
            what,
        };
        match std::fs::read_to_string(&head_file) {
            Ok(text) => {
                let head: Head =
                    serde_json::from_str(&text).map_err(|e| ContinuityError::HeadFile {
                        file: file_name.clone(),
                        msg: format!("unreadable ({e}); restore it or move it aside"),
                    })?;
                let entries = store.ledger_entries(1, 1).await?;
                let Some(first) = entries.first() else {
                    return Err(mismatch(format!(
                        "its ledger is empty, but entry {} was written before — the database was deleted or replaced",
                        head.seq
                    )));
                };
                if first.hash != head.first {
                    return Err(mismatch(
                        "its ledger is another chain (entry 1 differs) — another database".into(),
                    ));
                }
                let at = store.ledger_entries(head.seq, 1).await?;
                match at.first() {
                    Some(e) if e.seq == head.seq && e.hash == head.hash => {}
                    Some(e) if e.seq == head.seq => {
                        return Err(mismatch(format!(
                            "entry {} differs from the one written — the ledger was rewritten",
                            head.seq
                        )));
                    }
                    _ => {
                        let last = store.ledger_head().await?.map_or(0, |(s, _)| s);
                        return Err(mismatch(format!(
                            "its ledger ends at entry {last}, but entry {} was written — the database was rolled back (an older backup?)",
                            head.seq
                        )));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ContinuityError::HeadFile {
                    file: file_name,
                    msg: e.to_string(),
                });
            }
        }
        let db_file = sqlite_file(db_url).and_then(|p| identity(&p).map(|id| (p, id)));
        Ok(Arc::new(Self {
            head_file,
            db_file,
            broken: RwLock::new(None),
        }))
    }

    /// Remember the ledger's current head in the head file (atomically; mode 0600).
    pub async fn record_head(&self, store: &Store) -> Result<(), ContinuityError> {
        if self.broken().is_some() {
            // Never let a replaced database's chain overwrite what the real one reached.
            return Ok(());
        }
        let Some((seq, hash)) = store.ledger_head().await? else {
            return Ok(());
        };
        let first = store
            .ledger_entries(1, 1)
            .await?
            .first()
            .map(|e| e.hash.clone())
            .unwrap_or_default();
        let text = serde_json::to_string(&Head { first, seq, hash }).unwrap_or_default();
        let file = self.head_file.display().to_string();
        let io = |e: std::io::Error| ContinuityError::HeadFile {
            file: file.clone(),
            msg: e.to_string(),
        };
        let tmp = self.head_file.with_extension("head.tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.head_file).map_err(io)?;
        Ok(())
    }

    /// Is the SQLite file still the one opened? Sets and returns the reason if not.
    pub fn check_file(&self) -> Option<String> {
        let (path, id) = self.db_file.as_ref()?;
        let now = identity(path);
        if now == Some(*id) {
            return None;
        }
        let (what, agent_says) = match now {
            None => ("deleted", "the gateway's database was deleted while it ran"),
            Some(_) => (
                "replaced by another file",
                "the gateway's database was replaced while it ran",
            ),
        };
        let mut broken = self.broken.write().unwrap_or_else(|p| p.into_inner());
        if broken.is_none() {
            // The path is for the operator; agents learn only that an operator must act.
            tracing::error!(
                file = %path.display(),
                "the database file was {what} while the gateway ran; refusing new commands until it is restored and the gateway restarted"
            );
            *broken = Some(format!(
                "{agent_says}; new commands are refused until an operator restores it"
            ));
        }
        broken.clone()
    }

    /// Why new commands are refused, if they are.
    pub fn broken(&self) -> Option<String> {
        self.broken
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/airlock/airlock.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/airlock/airlock.db"))
        );
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}
