//! `airlock backup FILE` and `airlock restore FILE`: the database, copied consistently while
//! the gateway runs, and put back so that `serve` starts and `ledger verify` passes.
//!
//! Backup is SQLite's `VACUUM INTO` on a connection of its own: one read transaction, so the
//! copy is one moment of the database even while commands are being written (WAL readers never
//! block the gateway's writers). The copy is checked (`PRAGMA integrity_check`) and its ledger
//! head printed: that line, kept with the backup, is how a restore is verified later.
//!
//! Restore refuses while a gateway holds the data dir's serve lock, and refuses to replace an
//! existing database without `--force`; with it, the old database (with its WAL/SHM) and the
//! ledger head file are moved aside, never deleted. The restored database is migrated and its
//! head written to `<data_dir>/ledger.head` by the same code the gateway uses, so the next
//! `serve` accepts it as the database it remembers. PostgreSQL databases are refused with
//! `pg_dump`/`pg_restore` guidance: their consistent copy is the database server's job.

use std::path::{Path, PathBuf};

use airlock_approvals::Store;
use airlock_approvals::store::{redact, sqlite_file};
use airlock_gateway::config::{Config, TargetKind};
use airlock_gateway::continuity::{Continuity, HEAD_FILE};
use airlock_gateway::startup::files;
use anyhow::{Context as _, Result, bail};
use sqlx::{Connection as _, Row as _};

/// The ledger's head in a database file: (first hash, last seq, last hash).
struct Head {
    first: String,
    seq: i64,
    hash: String,
}

fn sqlite_db(config: &Config, verb: &str) -> Result<PathBuf> {
    if let Some(p) = sqlite_file(&config.database_url) {
        return Ok(p);
    }
    let url = redact(&config.database_url);
    if verb == "backup" {
        bail!(
            "airlock backup copies SQLite databases; {url} is PostgreSQL: use its own tools while the gateway runs, e.g.\n  pg_dump --format=custom --file airlock.dump '{url}'\n  airlock ledger export | tail -n 1   # the ledger head at that moment (seq, hash), to verify a restore"
        )
    }
    bail!(
        "airlock restore writes SQLite databases; {url} is PostgreSQL: stop every node, then\n  pg_restore --clean --if-exists --dbname '{url}' airlock.dump\nand move each node's {HEAD_FILE} aside (it remembers the newer chain); the next start writes a new one"
    )
}

/// Open a SQLite file that must exist, without creating or migrating anything.
async fn open_existing(path: &Path, read_only: bool) -> Result<sqlx::SqliteConnection> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(std::time::Duration::from_secs(10));
    sqlx::SqliteConnection::connect_with(&opts)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Check a database file whole and read its ledger head.
async fn inspect(path: &Path) -> Result<Head> {
    let mut c = open_existing(path, true).await?;
    let ok: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut c)
        .await
        .and_then(|r| r.try_get(0))
        .with_context(|| format!("checking {}", path.display()))?;
    if ok != "ok" {
        bail!("{}: integrity check failed: {ok}", path.display());
    }
    let row = |seq_sql: &'static str| sqlx::query(seq_sql);
    let last = row("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut c)
        .await
        .with_context(|| {
            format!(
                "{}: no audit ledger (not an Airlock database?)",
                path.display()
            )
        })?;
    let first = row("SELECT seq, hash FROM ledger ORDER BY seq ASC LIMIT 1")
        .fetch_optional(&mut c)
        .await?;
    c.close().await.ok();
    match (first, last) {
        (Some(f), Some(l)) => Ok(Head {
            first: f.try_get("hash")?,
            seq: l.try_get("seq")?,
            hash: l.try_get("hash")?,
        }),
        _ => bail!("{}: its audit ledger is empty", path.display()),
    }
}

fn print_head(what: &str, h: &Head) {
    println!("{what}: entry {} hash {}", h.seq, h.hash);
    println!("  chain (entry 1) {}", h.first);
}

/// `airlock backup FILE`.
pub async fn backup(config: &Config, out: &Path) -> Result<()> {
    let db = sqlite_db(config, "backup")?;
    if !db.exists() {
        bail!("{}: no database to back up", db.display());
    }
    // The copy holds every command ever run: it is created 0600 before SQLite writes to it
    // (VACUUM INTO keeps an existing empty file's mode), and never over an existing file.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    }
    let result = async {
        let mut c = open_existing(&db, false).await?;
        let target = out
            .to_str()
            .context("the backup path is not UTF-8")?
            .to_owned();
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut c)
            .await
            .with_context(|| format!("copying {} into {}", db.display(), out.display()))?;
        c.close().await.ok();
        let f = std::fs::File::open(out)?;
        f.sync_all()?;
        inspect(out).await
    }
    .await;
    let head = match result {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
    };
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup: {} ({size} bytes) from {}, consistent at one moment",
        out.display(),
        db.display()
    );
    print_head("ledger head at backup", &head);
    println!(
        "keep these lines with the backup; also keep the keys ({}, {}) and the recordings ({}), which are files, not rows",
        config.host_key.display(),
        config.ledger_key.display(),
        config.recordings_dir().display()
    );
    if let Some(target) = readable_by_commands(config, out) {
        eprintln!(
            "warning: {} is outside the data dir ({}), so commands on the local target {target:?} — which run as this user — can read it (every command, script and reviewer name); keep backups in the data dir, which commands cannot open, or move this one off the host",
            out.display(),
            config.data_dir.display()
        );
    }
    Ok(())
}

/// A local target whose commands run as the gateway's own user (no `user`), when the backup
/// at `out` is outside the data dir (which the sandbox hides from every command).
fn readable_by_commands<'a>(config: &'a Config, out: &Path) -> Option<&'a str> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(out).starts_with(canon(&config.data_dir)) {
        return None;
    }
    config.targets.iter().find_map(|t| match &t.kind {
        TargetKind::Local(l) if l.user.is_none() => Some(t.name.as_str()),
        _ => None,
    })
}

/// `airlock restore FILE [--force]`.
pub async fn restore(config: &Config, from: &Path, force: bool) -> Result<()> {
    let db = sqlite_db(config, "restore")?;
    let head = inspect(from)
        .await
        .with_context(|| format!("{} is not a usable backup", from.display()))?;
    files::private_data_dir(&config.data_dir)?;
    // Exclusive: no gateway (they hold it shared while they run) and no second restore.
    let lock_path = config.data_dir.join(files::SERVE_LOCK);
    let lock =
        files::lock_file(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        bail!(
            "a gateway is running on {} (it holds {}): stop it first (systemctl stop airlock), then restore",
            config.data_dir.display(),
            lock_path.display()
        );
    }
    let head_file = config.data_dir.join(HEAD_FILE);
    let stamp = airlock_approvals::now_ms();
    let mut moved = Vec::new();
    if db.exists() {
        if !force {
            bail!(
                "{} exists: `airlock restore --force {}` moves it (with its -wal/-shm) and {} aside, then restores",
                db.display(),
                from.display(),
                head_file.display()
            );
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let p = PathBuf::from(format!("{}{suffix}", db.display()));
            if p.exists() {
                let to = PathBuf::from(format!("{}.before-restore-{stamp}{suffix}", db.display()));
                std::fs::rename(&p, &to)
                    .with_context(|| format!("moving {} aside", p.display()))?;
                moved.push(to);
            }
        }
    }
    // The head file remembers the chain it replaces: kept, not trusted for the restored one.
    if head_file.exists() {
        let to = config
            .data_dir
            .join(format!("{HEAD_FILE}.before-restore-{stamp}"));
        std::fs::rename(&head_file, &to)
            .with_context(|| format!("moving {} aside", head_file.display()))?;
        moved.push(to);
    }
    copy_private(from, &db)?;
    files::private_database(&config.database_url)?;
    // Migrate as `serve` would, then record the restored head exactly as the gateway does.
    let store = Store::connect_within(&config.database_url, config.database_connect_timeout)
        .await
        .with_context(|| format!("opening the restored {}", db.display()))?;
    let continuity = Continuity::open(&store, &config.data_dir, &config.database_url).await?;
    continuity.record_head(&store).await?;
    drop(lock);
    println!("restored {} into {}", from.display(), db.display());
    for m in &moved {
        println!("  moved aside  {}", m.display());
    }
    print_head("ledger head restored", &head);
    println!(
        "verify before starting: airlock ledger export > ledger.jsonl && airlock ledger verify ledger.jsonl --pubkey \"$(airlock ledger pubkey)\" --head {}",
        head.hash
    );
    Ok(())
}

/// Copy `from` to `to` through a temporary file in the same directory (mode 0600, synced),
/// renamed into place, so a crash never leaves half a database at the configured path.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = to.with_extension("restore-tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut src = std::fs::File::open(from).with_context(|| format!("{}", from.display()))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    std::io::copy(&mut src, &mut dst).with_context(|| format!("writing {}", tmp.display()))?;
    dst.sync_all()?;
    std::fs::rename(&tmp, to).with_context(|| format!("renaming into {}", to.display()))?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
