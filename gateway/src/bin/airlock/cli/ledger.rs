//! `airlock ledger pubkey|export|verify`. `verify` needs no database and no config: it trusts
//! only the file, and the key and head hash it is given.

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use airlock_approvals::Store;
use airlock_approvals::ledger::format::{key_string, parse_key};
use airlock_approvals::ledger::verify::{VerifyOptions, verify as run_verify};
use airlock_approvals::ledger::{Ledger, load_or_create_key};
use airlock_gateway::config::Config;
use anyhow::{Context as _, Result, bail};

/// Operator changes (reviewers, whitelist) go into the ledger like everything else; the CLI
/// has no signing key, so the gateway's next checkpoint covers them.
pub fn operator_ledger(store: &Store) -> Ledger {
    Ledger::new(store.clone(), None, u64::MAX)
}

pub fn pubkey(config: &Config) -> Result<()> {
    if !config.ledger_key.exists() {
        bail!(
            "no ledger key at {} yet: it is created when the gateway first starts",
            config.ledger_key.display()
        );
    }
    let (key, _) = load_or_create_key(&config.ledger_key)
        .with_context(|| format!("reading {}", config.ledger_key.display()))?;
    println!("{}", key_string(&key.verifying_key()));
    Ok(())
}

pub async fn export(store: &Store, since: i64) -> Result<()> {
    let ledger = operator_ledger(store);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = ledger.export(since, &mut out).await?;
    out.flush()?;
    eprintln!("exported {n} entries");
    Ok(())
}

pub fn verify(
    file: &Path,
    pubkey: Option<&str>,
    head: Option<&str>,
    recordings: Option<&Path>,
) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("airlock: error: {msg}");
        ExitCode::from(2)
    };
    let pubkey = match pubkey.map(parse_key).transpose() {
        Ok(k) => k,
        Err(e) => return fail(format!("--pubkey: {e}")),
    };
    let input = match std::fs::File::open(file) {
        Ok(f) => BufReader::new(f),
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let opts = VerifyOptions {
        pubkey,
        head: head.map(str::to_owned),
        recordings,
    };
    let r = run_verify(input, &opts);
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    if r.ok() {
        println!(
            "ok: {} entries ({}..{}), head {}, {} checkpoints (last signed entry {}){}",
            r.entries,
            r.first_seq.unwrap_or_default(),
            r.last_seq.unwrap_or_default(),
            r.head.as_deref().unwrap_or("-"),
            r.checkpoints,
            r.last_checkpoint
                .map_or("none".to_owned(), |s| s.to_string()),
            if recordings.is_some() {
                format!(", {} recordings match", r.recordings_checked)
            } else {
                String::new()
            }
        );
        ExitCode::SUCCESS
    } else {
        for p in &r.problems {
            println!("FAIL: {p}");
        }
        println!(
            "{} problem{} found",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        );
        ExitCode::from(1)
    }
}
