//! Offline verification of an exported ledger: no database, no config, nothing trusted but
//! the file, an optional public key and an optional head hash. Every problem is reported with
//! the line it was found on, so an investigator learns exactly what was changed.

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

pub fn verify(mut input: impl BufRead, opts: &VerifyOptions) -> Report {
    let mut r = Report::default();
    // One streaming pass: each entry is checked as it is read and dropped; what later checks
    // need is kept small (every entry's hash by sequence number for the checkpoints, the
    // recording entries for `--recordings`), so a million-entry export is not held in memory.
    let mut checkpoints: Vec<(usize, Checkpoint)> = Vec::new();
    let mut recordings: Vec<(usize, Entry)> = Vec::new();
    let mut hashes: Vec<(i64, [u8; 32])> = Vec::new();
    let mut prev: Option<(i64, String)> = None;
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        n += 1;
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                r.problems.push(format!("line {n}: unreadable: {e}"));
                break;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Entry(e)) => {
                check_entry(n, &e, prev.as_ref(), &mut r);
                r.entries += 1;
                r.first_seq.get_or_insert(e.seq);
                // A hash that is not 64 hex digits was reported above; it matches no checkpoint.
                hashes.push((e.seq, decode_hash(&e.hash).unwrap_or_default()));
                if e.kind == "recording.closed" {
                    prev = Some((e.seq, e.hash.clone()));
                    recordings.push((n, e));
                } else {
                    prev = Some((e.seq, e.hash));
                }
            }
            Ok(Line::Checkpoint(c)) => checkpoints.push((n, c)),
            Err(e) => r.problems.push(format!("line {n}: not a ledger line: {e}")),
        }
    }
    r.checkpoints = checkpoints.len();
    if r.entries == 0 {
        r.problems.push("the file holds no ledger entries".into());
        return r;
    }
    // Sequence numbers ascend in a good export; sort anyway so a bad one is still looked up.
    if !hashes.is_sorted_by_key(|(seq, _)| *seq) {
        hashes.sort_by_key(|(seq, _)| *seq);
    }
    let hash_of = |seq: i64| {
        hashes
            .binary_search_by_key(&seq, |(s, _)| *s)
            .ok()
            .map(|i| hashes[i].1)
    };
    let last = prev;
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
        match hash_of(c.seq) {
            Some(h) if decode_hash(&c.hash) == Some(h) => r.last_checkpoint = r.last_checkpoint.max(Some(c.seq)),
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
        check_recordings(&recordings, dir, &mut r);
    }
    r
}

/// A SHA-256 in hex, as bytes (`None` if it is not 64 hex digits).
fn decode_hash(hex_hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).ok()?;
    Some(out)
}

/// One entry against its own hash and the entry before it (`prev`: its seq and hash).
fn check_entry(n: usize, e: &Entry, prev: Option<&(i64, String)>, r: &mut Report) {
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
        Some((pseq, phash)) => {
            if e.seq <= *pseq {
                r.problems.push(format!(
                    "line {n}: entries out of order: entry {} comes after entry {pseq}",
                    e.seq
                ));
            } else if e.seq != pseq + 1 {
                let missing = if e.seq == pseq + 2 {
                    format!("entry {} is missing", pseq + 1)
                } else {
                    format!("entries {}..{} are missing", pseq + 1, e.seq - 1)
                };
                r.problems.push(format!("line {n}: {missing} (deleted?)"));
            } else if &e.prev != phash {
                r.problems.push(format!(
                    "line {n}: entry {} does not follow entry {pseq}: its prev is not that entry's hash (replaced or reordered)",
                    e.seq
                ));
            }
        }
    }
}

/// Every `recording.closed` entry names a file, its size and SHA-256: re-hash the files.
fn check_recordings(entries: &[(usize, Entry)], dir: &Path, r: &mut Report) {
    for (n, e) in entries {
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
