//! `airlock agents show NAME [--json]`: one agent's blast radius at a glance — where it may
//! run (targets, labels, which need a grant and which grants are live), what runs without a
//! human (its live whitelist by target, with tiers and expiries), what it ran in the last 7
//! days by tier (from the audit ledger), and one line saying the largest thing it can do
//! unattended right now.

use std::collections::BTreeMap;

use airlock_approvals::{Store, WhitelistEntry, now_ms, rfc3339};
use airlock_classifier::Tier;
use airlock_gateway::config::{Agent, Config};
use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::operator::store;

/// How far back "what it ran" looks.
const RECENT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most ledger entries read for the summary (a busy gateway's week; the count says when cut).
const MAX_RECENT: i64 = 200_000;

pub async fn show(config: Config, name: &str, json_out: bool) -> Result<()> {
    let Some(agent) = config.agent_named(name) else {
        bail!(
            "unknown agent {name:?} (not in [[agent]] of {} nor in {})",
            config.source,
            config.authorized_keys.display()
        );
    };
    let s = store(&config).await?;
    let now = now_ms();
    let report = gather(&config, &agent, &s, now).await?;
    if json_out {
        println!("{report}");
    } else {
        print_human(&report);
    }
    Ok(())
}

async fn gather(config: &Config, agent: &Agent, s: &Store, now: i64) -> Result<Value> {
    let grants: Vec<_> = s
        .list_grants(false, now)
        .await?
        .into_iter()
        .filter(|g| g.agent == agent.name)
        .collect();
    let whitelist: Vec<WhitelistEntry> = s
        .list_whitelist()
        .await?
        .into_iter()
        .filter(|w| w.agent.as_deref().is_none_or(|a| a == agent.name))
        .filter(|w| w.expires_at.is_none_or(|e| e > now))
        .collect();
    let mut targets = Vec::new();
    let mut unattended: Vec<(usize, Tier, String, Option<i64>)> = Vec::new();
    for t in config.targets.iter().filter(|t| agent.may_use(&t.name)) {
        let grant = grants.iter().find(|g| g.target == t.name);
        let usable = !t.requires_grant || grant.is_some();
        let entries: Vec<&WhitelistEntry> = whitelist
            .iter()
            .filter(|w| w.target.as_deref().is_none_or(|x| x == t.name))
            .collect();
        // Unattended until the last whitelist entry expires (never, if one never does), and
        // no longer than a grant the target needs.
        let whitelisted_until = if entries.iter().all(|w| w.expires_at.is_some()) {
            entries.iter().filter_map(|w| w.expires_at).max()
        } else {
            None
        };
        let until = match (grant, whitelisted_until) {
            (Some(g), Some(w)) => Some(g.expires_at.min(w)),
            (Some(g), None) => Some(g.expires_at),
            (None, w) => w,
        };
        if usable && !entries.is_empty() {
            let top = entries.iter().map(|w| w.tier).max().unwrap_or(Tier::Low);
            unattended.push((entries.len(), top, t.name.clone(), until));
        }
        targets.push(json!({
            "name": t.name,
            "labels": t.labels,
            "requires_grant": t.requires_grant,
            "grant": grant.map(|g| json!({
                "id": g.id, "expires_at": rfc3339(g.expires_at), "by": g.created_by,
                "reason": g.reason,
            })),
            "usable_now": usable,
            "whitelist": entries.iter().map(|w| json!({
                "id": w.id, "command": w.command, "glob": w.glob, "tier": w.tier,
                "any_target": w.target.is_none(), "any_agent": w.agent.is_none(),
                "expires_at": w.expires_at.map(rfc3339), "by": w.created_by,
            })).collect::<Vec<_>>(),
        }));
    }
    let recent = s
        .ledger_payloads("command.submitted", now - RECENT_MS, MAX_RECENT)
        .await?;
    let cut = recent.len() as i64 >= MAX_RECENT;
    let mut ran: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for p in recent.iter().filter(|p| p["agent"] == agent.name.as_str()) {
        let tier = p["tier"].as_str().unwrap_or("unclassified").to_owned();
        let decision = p["decision"].as_str().unwrap_or("?").to_owned();
        *ran.entry(tier).or_default().entry(decision).or_default() += 1;
    }
    Ok(json!({
        "agent": agent.name,
        "max_tier": agent.max_tier,
        "owner": config.authority.owner_of(&agent.name),
        "targets": targets,
        "last_7_days": ran,
        "last_7_days_cut": cut,
        "summary": summary(&unattended),
    }))
}

/// The largest thing the agent can do without a human now, in one line.
fn summary(unattended: &[(usize, Tier, String, Option<i64>)]) -> String {
    let Some((n, tier, target, until)) =
        unattended.iter().max_by_key(|(n, tier, _, _)| (*tier, *n))
    else {
        return "can run only low-risk commands (read-only) unattended; everything else waits for a reviewer".into();
    };
    let until = until
        .map(|u| format!("until {}", rfc3339(u)))
        .unwrap_or_else(|| "with no expiry".into());
    let more = unattended.len() - 1;
    format!(
        "can run {n} whitelisted command{} (up to {tier}) on {target} unattended {until}{}",
        if *n == 1 { "" } else { "s" },
        if more > 0 {
            format!(", and whitelisted commands on {more} other target(s)")
        } else {
            String::new()
        }
    )
}

fn print_human(r: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    println!("agent {}  (max tier {})", s(&r["agent"]), s(&r["max_tier"]));
    if let Some(o) = r["owner"].as_str() {
        println!("owner {o} (never counts toward its requests)");
    }
    println!("{}", s(&r["summary"]));
    println!();
    for t in r["targets"].as_array().into_iter().flatten() {
        let labels: Vec<String> = t["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        let access = match (t["requires_grant"].as_bool(), t["grant"].is_null()) {
            (Some(true), true) => "needs a grant: none live".to_owned(),
            (Some(true), false) => format!(
                "grant {} until {} (by {})",
                s(&t["grant"]["id"]),
                s(&t["grant"]["expires_at"]),
                s(&t["grant"]["by"])
            ),
            _ => "standing access".to_owned(),
        };
        println!("target {} [{}] — {access}", s(&t["name"]), labels.join(" "));
        for w in t["whitelist"].as_array().into_iter().flatten() {
            println!(
                "  {} {:<6} {}{}  (expires {}, by {})",
                s(&w["id"]),
                s(&w["tier"]),
                s(&w["command"]),
                if w["glob"].as_bool() == Some(true) {
                    "  [glob]"
                } else {
                    ""
                },
                w["expires_at"].as_str().unwrap_or("never"),
                s(&w["by"])
            );
        }
    }
    println!();
    println!("last 7 days (command.submitted by tier and decision):");
    for (tier, decisions) in r["last_7_days"].as_object().into_iter().flatten() {
        let d: Vec<String> = decisions
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {}", v.as_u64().unwrap_or(0)))
            .collect();
        println!("  {tier:<12} {}", d.join(", "));
    }
    if r["last_7_days_cut"].as_bool() == Some(true) {
        println!("  (only the first {MAX_RECENT} entries of the week were read)");
    }
}
