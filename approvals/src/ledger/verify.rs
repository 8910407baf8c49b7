//! Offline verification of an exported ledger: no database, no config, nothing trusted but
//! the file, an optional public key and an optional head hash. Every problem is reported with
//! the line it was found on, so an investigator learns exactly what was changed.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::format::{Checkpoint, Entry, GENESIS, Line, entry_hash, verify_checkpoint};

#[derive(Debug, Default)]
pub struct VerifyOptions<'a> {
    /// Trust only checkpoints signed by this key.
    pub pubkey: Option<VerifyingKey>,
    /// The hash the last entry must have (an anchor kept elsewhere).
    pub head: Option<String>,
    /// Re-hash every recording named by a `recording.closed` entry in this directory.
    pub recordings: Option<&'a Path>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Everything wrong; empty means the ledger verifies.
    pub problems: Vec<String>,
    /// Things the reader should know that are not failures.
    pub notes: Vec<String>,
    pub entries: usize,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub head: Option<String>,
    pub checkpoints: usize,
    pub last_checkpoint: Option<i64>,
    pub recordings_checked: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn verify(input: impl BufRead, opts: &VerifyOptions) -> Report {
    let mut r = Report::default();
    let mut entries: Vec<(usize, Entry)> = Vec::new();
    let mut checkpoints: Vec<(usize, Checkpoint)> = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                r.problems.push(format!("line {n}: unreadable: {e}"));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Entry(e)) => entries.push((n, e)),
            Ok(Line::Checkpoint(c)) => checkpoints.push((n, c)),
            Err(e) => r.problems.push(format!("line {n}: not a ledger line: {e}")),
        }
    }
    r.entries = entries.len();
    r.checkpoints = checkpoints.len();
    if entries.is_empty() {
        r.problems.push("the file holds no ledger entries".into());
        return r;
    }

    // The chain: consecutive sequence numbers, each entry's own hash, each `prev` link.
    let mut by_seq: BTreeMap<i64, &Entry> = BTreeMap::new();
    let mut prev: Option<&Entry> = None;
    for (n, e) in &entries {
        let recomputed = entry_hash(&e.prev, e.seq, e.ts, &e.kind, &e.payload);
        if recomputed != e.hash {
            r.problems.push(format!(
                "line {n}: entry {} ({}) was modified: its hash does not match its contents",
                e.seq, e.kind
            ));
        }
        match prev {
            None => {
                if e.seq == 1 && e.prev != GENESIS {
                    r.problems.push(format!(
                        "line {n}: entry 1 does not start from the genesis hash"
                    ));
                }
                if e.seq != 1 {
                    r.notes.push(format!(
                        "the export starts at entry {}; its link to earlier entries is taken on trust",
                        e.seq
                    ));
                }
            }
            Some(p) => {
                if e.seq <= p.seq {
                    r.problems.push(format!(
                        "line {n}: entries out of order: entry {} comes after entry {}",
                        e.seq, p.seq
                    ));
                } else if e.seq != p.seq + 1 {
                    let missing = if e.seq == p.seq + 2 {
                        format!("entry {} is missing", p.seq + 1)
                    } else {
                        format!("entries {}..{} are missing", p.seq + 1, e.seq - 1)
                    };
                    r.problems.push(format!("line {n}: {missing} (deleted?)"));
                } else if e.prev != p.hash {
                    r.problems.push(format!(
                        "line {n}: entry {} does not follow entry {}: its prev is not that entry's hash (replaced or reordered)",
                        e.seq, p.seq
                    ));
                }
            }
        }
        by_seq.insert(e.seq, e);
        prev = Some(e);
    }
    let last = prev.map(|p| (p.seq, p.hash.clone()));
    r.first_seq = entries.first().map(|(_, e)| e.seq);
    r.last_seq = last.as_ref().map(|l| l.0);
    r.head = last.as_ref().map(|l| l.1.clone());

    // Signed checkpoints: valid signature, by the trusted key, over a hash the chain has.
    if checkpoints.is_empty() {
        r.notes.push("no signed checkpoints in the export".into());
    }
    if opts.pubkey.is_none() && !checkpoints.is_empty() {
        r.notes.push("signatures were checked against the key named in the file; pass --pubkey to require a known key".into());
    }
    for (n, c) in &checkpoints {
        if let Err(e) = verify_checkpoint(c, opts.pubkey.as_ref()) {
            r.problems.push(format!("line {n}: {e}"));
            continue;
        }
        match by_seq.get(&c.seq) {
            Some(e) if e.hash == c.hash => r.last_checkpoint = r.last_checkpoint.max(Some(c.seq)),
            Some(_) => r.problems.push(format!(
                "line {n}: checkpoint at entry {} signed a different hash than the entry has (rewritten history)",
                c.seq
            )),
            None => match &last {
                Some((l, _)) if c.seq > *l => r.problems.push(format!(
                    "line {n}: truncated: a checkpoint signed entry {} but the ledger ends at entry {l}",
                    c.seq
                )),
                _ => r.notes.push(format!("checkpoint at entry {} is before the exported range", c.seq)),
            },
        }
    }
    if let (Some(want), Some((seq, got))) = (&opts.head, &last)
        && want != got
    {
        r.problems.push(format!(
            "head mismatch: the ledger ends at entry {seq} with hash {got}, the anchor is {want} (truncated, extended or rewritten)"
        ));
    }
    if let Some(dir) = opts.recordings {
        check_recordings(&entries, dir, &mut r);
    }
    r
}

/// Every `recording.closed` entry names a file, its size and SHA-256: re-hash the files.
fn check_recordings(entries: &[(usize, Entry)], dir: &Path, r: &mut Report) {
    for (n, e) in entries.iter().filter(|(_, e)| e.kind == "recording.closed") {
        let p = &e.payload;
        let (Some(name), Some(size), Some(sha)) =
            (p["file"].as_str(), p["size"].as_u64(), p["sha256"].as_str())
        else {
            r.problems.push(format!(
                "line {n}: recording entry {} lacks file, size or sha256",
                e.seq
            ));
            continue;
        };
        let Some(base) = Path::new(name).file_name() else {
            r.problems
                .push(format!("line {n}: recording entry {} names no file", e.seq));
            continue;
        };
        let path = dir.join(base);
        match std::fs::read(&path) {
            Err(err) => r.problems.push(format!(
                "recording {}: missing or unreadable ({err})",
                path.display()
            )),
            Ok(bytes) => {
                r.recordings_checked += 1;
                let got = hex::encode(Sha256::digest(&bytes));
                if bytes.len() as u64 != size || got != sha {
                    r.problems.push(format!(
                        "recording {} was altered: ledger entry {} says {size} bytes sha256 {sha}, the file is {} bytes sha256 {got}",
                        path.display(),
                        e.seq,
                        bytes.len()
                    ));
                }
            }
        }
    }
}
