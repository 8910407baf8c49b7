//! `airlock whitelist diff FILE`: the live whitelist against an exported one.
//!
//! An export (`whitelist export`) has no ids, so entries are matched by what they allow —
//! command, glob or not, agent, target — and an entry on both sides whose expiry differs is
//! "changed". Proposals are not live and never count. With `--exit-code` a difference is exit
//! status 1, so CI can check that what runs is what was reviewed in git.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_approvals::{Store, now_ms, rfc3339};
use anyhow::{Result, bail};
use serde_json::json;

use super::whitelist::{File, FileEntry};

/// What an entry allows: the key both sides are matched on.
type Key = (String, bool, Option<String>, Option<String>);

fn key(e: &FileEntry) -> Key {
    (e.command.clone(), e.glob, e.agent.clone(), e.target.clone())
}

fn line(k: &Key) -> String {
    format!(
        "{} {:?} agent={} target={}",
        if k.1 { "glob" } else { "command" },
        k.0,
        k.2.as_deref().unwrap_or("*"),
        k.3.as_deref().unwrap_or("*")
    )
}

/// Expiries compare as instants: an export rounds to seconds.
fn instant(t: Option<&str>) -> Option<i64> {
    let t = t?;
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

pub async fn diff(s: &Store, path: &Path, exit_code: bool, json: bool) -> Result<()> {
    let text = super::whitelist::read_export(path)?;
    let file: File =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let now = now_ms();
    let live: BTreeMap<Key, Option<String>> = s
        .list_whitelist()
        .await?
        .into_iter()
        .filter(|e| e.expires_at.is_none_or(|t| t > now))
        .map(|e| {
            (
                (e.command, e.glob, e.agent, e.target),
                e.expires_at.map(rfc3339),
            )
        })
        .collect();
    let exported: BTreeMap<Key, Option<String>> = file
        .entry
        .iter()
        .map(|e| (key(e), e.expires_at.clone()))
        .collect();
    let only_live: Vec<&Key> = live.keys().filter(|k| !exported.contains_key(*k)).collect();
    let only_file: Vec<&Key> = exported.keys().filter(|k| !live.contains_key(*k)).collect();
    let changed: Vec<(&Key, &Option<String>, &Option<String>)> = live
        .iter()
        .filter_map(|(k, at)| {
            let theirs = exported.get(k)?;
            (instant(at.as_deref()) != instant(theirs.as_deref())).then_some((k, at, theirs))
        })
        .collect();
    let differs = !(only_live.is_empty() && only_file.is_empty() && changed.is_empty());
    if json {
        let entry = |k: &Key| json!({ "command": k.0, "glob": k.1, "agent": k.2, "target": k.3 });
        println!(
            "{}",
            json!({
                "same": !differs,
                "only_live": only_live.iter().map(|k| entry(k)).collect::<Vec<_>>(),
                "only_file": only_file.iter().map(|k| entry(k)).collect::<Vec<_>>(),
                "changed": changed.iter().map(|(k, live, file)| {
                    let mut v = entry(k);
                    v["live_expires_at"] = json!(live);
                    v["file_expires_at"] = json!(file);
                    v
                }).collect::<Vec<_>>(),
            })
        );
    } else {
        for k in &only_live {
            println!("+ {} (live, not in {})", line(k), path.display());
        }
        for k in &only_file {
            println!("- {} (in {}, not live)", line(k), path.display());
        }
        for (k, live, file) in &changed {
            println!(
                "~ {} expires {} live, {} in the file",
                line(k),
                live.as_deref().unwrap_or("never"),
                file.as_deref().unwrap_or("never")
            );
        }
        if !differs {
            eprintln!("the live whitelist matches {}", path.display());
        }
    }
    if differs && exit_code {
        bail!("the live whitelist differs from {}", path.display());
    }
    Ok(())
}
