//! The hash-chained audit ledger: every event that matters, in order, each entry bound to the
//! one before it by SHA-256, with the head signed (Ed25519) every N entries or T seconds.
//! Anyone can check an export offline with [`verify`]; the format is in docs/ledger.md.
//!
//! Appends are serialised in-process by a mutex and across processes by the primary key on
//! `seq`: a writer that loses the race re-reads the head and appends on top, so the chain
//! never forks. An append that fails returns the error; on the decision path the caller denies.
//!
//! **Group commit.** Under load every session appends several events per command, and one
//! transaction per event made the ledger the gateway's bottleneck (docs/performance.md). An
//! append queues its event, then takes the mutex; whoever holds it writes *every* queued event
//! in one transaction (in queue order) and answers each waiting caller, so a caller returns
//! only once its own entry is committed, exactly as before, and a quiet gateway still writes
//! one event per transaction. The write runs in its own task holding the mutex, so a caller
//! that goes away mid-write cannot leave the others without an answer. The head written last
//! is remembered; a stale one (another process appended) fails on the primary key and is
//! re-read.

pub mod event;
pub mod format;
pub mod verify;

pub use event::{AuthOutcome, Event};

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::sync::{Mutex, oneshot};

use crate::{Store, StoreError, now_ms};
use format::{Checkpoint, Entry, GENESIS, Line, entry_hash, sign_checkpoint};

/// Attempts before an append gives up under contention from other processes.
const MAX_ATTEMPTS: usize = 200;

/// An event waiting for the writer, and where its entry (or the error) goes.
struct Queued {
    kind: String,
    payload: Value,
    done: oneshot::Sender<Result<Entry, StoreError>>,
}

#[derive(Clone)]
pub struct Ledger {
    store: Store,
    /// Signs checkpoints; CLI processes append without one and leave signing to the gateway.
    key: Option<Arc<SigningKey>>,
    /// Sign the head whenever an entry's seq is a multiple of this.
    every: i64,
    lock: Arc<Mutex<()>>,
    /// Events waiting to be written (the mutex holder takes them all).
    queue: Arc<std::sync::Mutex<Vec<Queued>>>,
    /// (seq, hash) of the last entry this ledger wrote; `None` makes the next write read it.
    head: Arc<std::sync::Mutex<Option<(i64, String)>>>,
    /// Added to every payload as `node`, so a cluster's shared chain says who wrote what.
    node: Option<String>,
    /// Appends made and failed by this ledger and its clones (the gateway's metrics read it).
    counts: Arc<Counts>,
}

/// How many events a [`Ledger`] (with its clones) appended, and how many appends failed.
#[derive(Debug, Default)]
pub struct Counts {
    pub appended: AtomicU64,
    pub failed: AtomicU64,
}

impl Ledger {
    pub fn new(store: Store, key: Option<SigningKey>, every: u64) -> Self {
        Self {
            store,
            key: key.map(Arc::new),
            every: i64::try_from(every.max(1)).unwrap_or(i64::MAX),
            lock: Arc::new(Mutex::new(())),
            queue: Arc::default(),
            head: Arc::default(),
            node: None,
            counts: Arc::default(),
        }
    }

    /// Stamp every entry this ledger writes with the gateway node's name.
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_owned());
        self
    }

    pub fn pubkey(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| format::key_string(&k.verifying_key()))
    }

    /// Append one event. `Err` means it is not in the ledger; for an event that
    /// [gates an action](Event::gates_action) the caller must then refuse the action.
    pub async fn append(&self, event: &Event) -> Result<Entry, StoreError> {
        let res = self.append_raw(event.kind(), event.payload()).await;
        let counter = match res {
            Ok(_) => &self.counts.appended,
            Err(_) => &self.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        res
    }

    /// The append counters shared by this ledger and its clones.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    /// Append under any kind: only for the chain's own tests, never for real events.
    pub(crate) async fn append_raw(
        &self,
        kind: &str,
        mut payload: Value,
    ) -> Result<Entry, StoreError> {
        if let (Some(node), Value::Object(map)) = (&self.node, &mut payload) {
            map.entry("node")
                .or_insert_with(|| Value::String(node.clone()));
        }
        let (done, mut answer) = oneshot::channel();
        lock_queue(&self.queue).push(Queued {
            kind: kind.to_owned(),
            payload,
            done,
        });
        let serial = self.lock.clone().lock_owned().await;
        // Whoever held the mutex before may have written this event already.
        match answer.try_recv() {
            Ok(res) => return res,
            Err(oneshot::error::TryRecvError::Closed) => return Err(interrupted()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Everything queued, this caller's event included (at most one per waiting caller).
        let batch: Vec<Queued> = std::mem::take(&mut *lock_queue(&self.queue));
        let this = self.clone();
        tokio::spawn(async move {
            this.write(batch).await;
            drop(serial);
        });
        answer.await.unwrap_or_else(|_| Err(interrupted()))
    }

    /// Write `batch` in one transaction on top of the head, and answer every caller in it.
    async fn write(&self, batch: Vec<Queued>) {
        // A caller that went away before its turn does not get its event written.
        let batch: Vec<Queued> = batch.into_iter().filter(|q| !q.done.is_closed()).collect();
        if batch.is_empty() {
            return;
        }
        for _ in 0..MAX_ATTEMPTS {
            let cached = lock_head(&self.head).take();
            let head = match cached {
                Some(h) => h,
                None => match self.store.ledger_head().await {
                    Ok(Some(h)) => h,
                    Ok(None) => (0, GENESIS.to_owned()),
                    Err(e) => return answer_all(batch, &e),
                },
            };
            let entries = chain(head, &batch);
            match self.store.ledger_insert(&entries).await {
                Ok(true) => {
                    if let Some(last) = entries.last() {
                        *lock_head(&self.head) = Some((last.seq, last.hash.clone()));
                    }
                    for e in entries.iter().filter(|e| e.seq % self.every == 0) {
                        // The entry is in; a failed signature only delays the checkpoint.
                        if let Err(err) = self.sign(e.seq, &e.hash).await {
                            tracing::error!(error = %err, "could not write a ledger checkpoint");
                        }
                    }
                    for (q, e) in batch.into_iter().zip(entries) {
                        let _ = q.done.send(Ok(e));
                    }
                    return;
                }
                // Another process appended: read the head again.
                Ok(false) => tokio::task::yield_now().await,
                Err(e) => return answer_all(batch, &e),
            }
        }
        answer_all(batch, &StoreError::Contention)
    }

    async fn sign(&self, seq: i64, hash: &str) -> Result<Option<Checkpoint>, StoreError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let c = sign_checkpoint(key, seq, hash, now_ms());
        self.store.ledger_checkpoint_insert(&c).await?;
        Ok(Some(c))
    }

    /// Sign the current head if no checkpoint covers it yet (the periodic tick).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let _serial = self.lock.lock().await;
        let Some((seq, hash)) = self.store.ledger_head().await? else {
            return Ok(None);
        };
        if self.store.ledger_last_checkpoint().await? >= Some(seq) {
            return Ok(None);
        }
        self.sign(seq, &hash).await
    }

    /// Write entries from `since` and the checkpoints over them as JSON lines, each checkpoint
    /// right after the entry it signs. Returns the number of entries.
    pub async fn export(&self, since: i64, out: &mut impl Write) -> Result<usize, ExportError> {
        let mut checkpoints = self
            .store
            .ledger_checkpoints(since)
            .await?
            .into_iter()
            .peekable();
        let mut next = since.max(1);
        let mut n = 0;
        loop {
            let batch = self.store.ledger_entries(next, 1000).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                break;
            };
            for e in batch {
                let seq = e.seq;
                serde_json::to_writer(&mut *out, &Line::Entry(e))?;
                out.write_all(b"\n")?;
                n += 1;
                while let Some(c) = checkpoints.next_if(|c| c.seq <= seq) {
                    serde_json::to_writer(&mut *out, &Line::Checkpoint(c))?;
                    out.write_all(b"\n")?;
                }
            }
            next = last + 1;
        }
        out.flush()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding the export: {0}")]
    Json(#[from] serde_json::Error),
}

/// The gateway's ledger key: a 32-byte Ed25519 seed in hex, created on first start (0600).
/// Returns the key and whether it was created now.
/// `batch` as consecutive entries on top of `head` (seq, hash), stamped now.
fn chain(head: (i64, String), batch: &[Queued]) -> Vec<Entry> {
    let (mut seq, mut prev) = head;
    let ts = now_ms();
    batch
        .iter()
        .map(|q| {
            seq += 1;
            let hash = entry_hash(&prev, seq, ts, &q.kind, &q.payload);
            Entry {
                seq,
                ts,
                kind: q.kind.clone(),
                payload: q.payload.clone(),
                prev: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// Every caller in `batch` gets the error (none of their events was written).
fn answer_all(batch: Vec<Queued>, err: &StoreError) {
    tracing::error!(error = %err, events = batch.len(), "ledger append failed");
    for q in batch {
        let _ = q.done.send(Err(StoreError::LedgerBatch(err.to_string())));
    }
}

fn interrupted() -> StoreError {
    StoreError::LedgerBatch("the ledger writer stopped before answering".into())
}

/// The queue's lock; a panic elsewhere while holding it leaves plain data, still usable.
fn lock_queue(q: &std::sync::Mutex<Vec<Queued>>) -> std::sync::MutexGuard<'_, Vec<Queued>> {
    q.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock_head(
    h: &std::sync::Mutex<Option<(i64, String)>>,
) -> std::sync::MutexGuard<'_, Option<(i64, String)>> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn load_or_create_key(path: &Path) -> std::io::Result<(SigningKey, bool)> {
    use std::io::{Error, ErrorKind};
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|e| {
                Error::new(ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?;
            let seed: [u8; 32] = bytes.try_into().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidData,
                    format!("{}: expected 32 bytes of hex", path.display()),
                )
            })?;
            Ok((SigningKey::from_bytes(&seed), false))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| Error::other(e.to_string()))?;
            // Never create directories: a missing one is a typo in `[ledger] key`.
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
                && !dir.is_dir()
            {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "directory {} does not exist (a typo in [ledger] key?); create it, or fix the path",
                        dir.display()
                    ),
                ));
            }
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut file = f.open(path)?;
            file.write_all(hex::encode(seed).as_bytes())?;
            file.sync_all()?;
            Ok((SigningKey::from_bytes(&seed), true))
        }
        Err(e) => Err(e),
    }
}
