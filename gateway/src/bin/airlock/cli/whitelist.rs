//! `airlock whitelist list|add|revoke|export|import` (and the dispatch of `promote`, `copy`,
//! `review` and `diff`, which live in `proposals.rs` and `whitelist_diff.rs`).
//!
//! Export writes a stable, sorted TOML file (no ids, no expired entries) so a team can keep
//! the whitelist in git and review its diffs; import checks every entry first and adds none
//! if any is wrong. Every entry added or revoked is in the audit ledger with who did it.

use std::path::Path;

use airlock_approvals::ledger::Event;
use airlock_approvals::whitelist::added_event;
use airlock_approvals::{NewWhitelist, Store, WhitelistEntry, now_ms, rfc3339};
use airlock_classifier::{Context, Tier, glob_pattern};
use airlock_gateway::config::Config;
use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::operator::{audit, operator, store};
use crate::WhitelistCmd;

/// What `add` and `import` are asked to add.
pub struct Wanted {
    pub agent: Option<String>,
    pub target: Option<String>,
    pub pattern: String,
    pub glob: bool,
    pub expires_at: Option<i64>,
}

/// An entry checked against the config and the classifier, ready to store.
pub(super) struct Checked {
    pub(super) wanted: Wanted,
    pub(super) words: Option<Vec<String>>,
    pub(super) tier: Tier,
}

/// Scope names must exist, globs must parse, and nothing high may be whitelisted.
pub(super) fn check(config: &Config, w: Wanted) -> Result<Checked> {
    if let Some(a) = &w.agent
        && config.agent(a).is_none()
    {
        bail!("unknown agent {a:?}");
    }
    let labels = match &w.target {
        Some(t) => match config.target(t) {
            Some(t) => t.labels.clone(),
            None => bail!("unknown target {t:?}"),
        },
        None => Default::default(),
    };
    let words = if w.glob {
        Some(glob_pattern(&w.pattern).map_err(|e| anyhow::anyhow!("glob {:?}: {e}", w.pattern))?)
    } else {
        None
    };
    let a = config.classifier()?.classify(
        &w.pattern,
        &Context {
            agent: w.agent.clone().unwrap_or_default(),
            target: w.target.clone().unwrap_or_default(),
            labels,
        },
    );
    if a.tier == Tier::High {
        bail!(
            "refused: {:?} is high risk ({}); high-risk commands always need reviewers",
            w.pattern,
            a.reasons.first().map(|r| r.text.as_str()).unwrap_or("")
        );
    }
    Ok(Checked {
        wanted: w,
        words,
        tier: a.tier,
    })
}

async fn store_one(s: &Store, c: &Checked, by: &str) -> Result<WhitelistEntry> {
    let w = &c.wanted;
    let e = s
        .add_whitelist(&NewWhitelist {
            scripts: &[],
            agent: w.agent.as_deref(),
            target: w.target.as_deref(),
            pattern: &w.pattern,
            words: c.words.as_deref(),
            tier: c.tier,
            created_by: by,
            created_at: now_ms(),
            expires_at: w.expires_at,
        })
        .await?;
    audit(s, added_event(&e, by, None)).await?;
    Ok(e)
}

pub(super) fn describe(e: &WhitelistEntry) -> String {
    format!(
        "{} {:?} ({}) for agent {} on target {}, {}",
        if e.glob { "glob" } else { "command" },
        e.command,
        e.tier,
        e.agent.as_deref().unwrap_or("any"),
        e.target.as_deref().unwrap_or("any"),
        e.expires_at.map_or("never expires".to_owned(), |t| format!(
            "until {}",
            rfc3339(t)
        ))
    )
}

pub async fn add(config: &Config, s: &Store, w: Wanted) -> Result<()> {
    let checked = check(config, w)?;
    let e = store_one(s, &checked, &operator()).await?;
    println!("{}", e.id);
    eprintln!("whitelisted {}", describe(&e));
    Ok(())
}

pub async fn list(s: &Store, json: bool) -> Result<()> {
    let now = now_ms();
    for e in s.list_whitelist().await? {
        if json {
            println!("{}", serde_json::to_string(&e)?);
            continue;
        }
        let expiry = match e.expires_at {
            None => "never".to_owned(),
            Some(t) if t <= now => format!("expired {}", rfc3339(t)),
            Some(t) => rfc3339(t),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.id,
            e.agent.as_deref().unwrap_or("*"),
            e.target.as_deref().unwrap_or("*"),
            e.tier,
            if e.glob { "glob" } else { "exact" },
            expiry,
            e.created_by,
            e.command
        );
    }
    Ok(())
}

pub async fn revoke(s: &Store, id: &str) -> Result<()> {
    if !s.revoke_whitelist(id).await? {
        bail!("no whitelist entry {id}");
    }
    let by = operator();
    audit(
        s,
        Event::WhitelistRevoke {
            id: id.to_owned(),
            by,
        },
    )
    .await?;
    eprintln!("whitelist entry {id} revoked");
    Ok(())
}

/// The export file: `[[entry]]` tables, sorted, times in RFC 3339.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) entry: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEntry {
    pub(super) command: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) glob: bool,
    /// Absent: any agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) agent: Option<String>,
    /// Absent: any target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) target: Option<String>,
    /// Absent: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expires_at: Option<String>,
    /// Informational on import: the tier is judged again by this gateway's classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) created_by: Option<String>,
}

pub async fn export(s: &Store, out: Option<&Path>) -> Result<()> {
    let now = now_ms();
    let mut entries: Vec<FileEntry> = s
        .list_whitelist()
        .await?
        .into_iter()
        .filter(|e| e.expires_at.is_none_or(|t| t > now))
        .map(|e| FileEntry {
            command: e.command,
            glob: e.glob,
            agent: e.agent,
            target: e.target,
            expires_at: e.expires_at.map(rfc3339),
            tier: Some(e.tier.as_str().to_owned()),
            created_by: Some(e.created_by),
        })
        .collect();
    entries.sort();
    entries.dedup();
    let body = toml::to_string(&File { entry: entries }).context("rendering the export")?;
    let text = format!(
        "# Airlock whitelist: `airlock whitelist import FILE` adds these entries.\n\
         # Sorted and without ids, so diffs show only real changes. High-risk commands never\n\
         # appear here: they cannot be whitelisted.\n\n{body}"
    );
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Largest whitelist export read (`import`, `diff`): far above any real whitelist, and a
/// bound for `/dev/zero` or a wrong file.
const MAX_EXPORT_BYTES: u64 = 16 * 1024 * 1024;

/// A whitelist export's text, refused when larger than [`MAX_EXPORT_BYTES`] or not UTF-8.
pub(crate) fn read_export(path: &Path) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_EXPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_EXPORT_BYTES {
        anyhow::bail!(
            "{}: larger than {} MiB; not a whitelist export",
            path.display(),
            MAX_EXPORT_BYTES >> 20
        );
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}

pub async fn import(config: &Config, s: &Store, path: &Path) -> Result<()> {
    let text = read_export(path)?;
    let file: File =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let now = now_ms();
    // Check everything before adding anything.
    let mut checked = Vec::new();
    let mut errors = Vec::new();
    for (i, e) in file.entry.into_iter().enumerate() {
        let n = i + 1;
        let expires_at = match &e.expires_at {
            None => None,
            Some(t) => match humantime::parse_rfc3339_weak(t) {
                Ok(at) => Some(
                    at.duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0),
                ),
                Err(err) => {
                    errors.push(format!(
                        "entry {n} ({:?}): expires_at {t:?}: {err}",
                        e.command
                    ));
                    continue;
                }
            },
        };
        if expires_at.is_some_and(|t| t <= now) {
            errors.push(format!("entry {n} ({:?}): already expired", e.command));
            continue;
        }
        let wanted = Wanted {
            agent: e.agent,
            target: e.target,
            pattern: e.command.clone(),
            glob: e.glob,
            expires_at,
        };
        match check(config, wanted) {
            Ok(c) => checked.push(c),
            Err(err) => errors.push(format!("entry {n} ({:?}): {err}", e.command)),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} has {} bad entr{}; nothing was imported:\n  {}",
            path.display(),
            errors.len(),
            if errors.len() == 1 { "y" } else { "ies" },
            errors.join("\n  ")
        );
    }
    let existing = s.list_whitelist().await?;
    let same = |c: &Checked, e: &WhitelistEntry| {
        e.command == c.wanted.pattern
            && e.glob == c.wanted.glob
            && e.agent == c.wanted.agent
            && e.target == c.wanted.target
            && e.expires_at == c.wanted.expires_at
    };
    let by = format!("{} (import {})", operator(), path.display());
    let (mut added, mut skipped) = (0, 0);
    for c in &checked {
        if existing.iter().any(|e| same(c, e)) {
            skipped += 1;
            continue;
        }
        store_one(s, c, &by).await?;
        added += 1;
    }
    eprintln!("imported {added} entries ({skipped} already present)");
    Ok(())
}

/// `airlock whitelist …`.
pub async fn run(config: Config, cmd: WhitelistCmd) -> Result<()> {
    let s = store(&config).await?;
    match cmd {
        WhitelistCmd::Add {
            agent,
            any_agent: _,
            target,
            any_target: _,
            ttl,
            glob,
            command,
        } => {
            let expires_at = config.whitelist.expiry(ttl.as_deref(), now_ms())?;
            let wanted = Wanted {
                agent,
                target,
                pattern: command.join(" "),
                glob,
                expires_at,
            };
            add(&config, &s, wanted).await
        }
        WhitelistCmd::List { json } => list(&s, json).await,
        WhitelistCmd::Revoke { id } => revoke(&s, &id).await,
        WhitelistCmd::Export { out } => export(&s, out.as_deref()).await,
        WhitelistCmd::Import { file } => import(&config, &s, &file).await,
        WhitelistCmd::Promote {
            from_target,
            to_target,
            agent,
            json,
        } => {
            let from = super::proposals::From::Target {
                from: from_target,
                to: to_target,
                agent,
            };
            super::proposals::propose(&config, &s, from, json).await
        }
        WhitelistCmd::Copy {
            from_agent,
            to_agent,
            json,
        } => {
            let from = super::proposals::From::Agent {
                from: from_agent,
                to: to_agent,
            };
            super::proposals::propose(&config, &s, from, json).await
        }
        WhitelistCmd::Review {
            accept,
            reject,
            accept_all,
            json,
        } => {
            let asked = super::proposals::Asked {
                accept,
                reject,
                accept_all,
                json,
            };
            super::proposals::review(&config, &s, asked).await
        }
        WhitelistCmd::Diff {
            file,
            exit_code,
            json,
        } => super::whitelist_diff::diff(&s, &file, exit_code, json).await,
    }
}
