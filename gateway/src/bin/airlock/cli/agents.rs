//! `airlock agents show NAME [--json]`: one agent's blast radius at a glance — where it may
//! run (targets, labels, which need a grant and which grants are live), what runs without a
//! human (its live whitelist by target, with tiers and expiries), what it ran in the last 7
//! days by tier (from the audit ledger), and one line saying the largest thing it can do
//! unattended right now. The report is built by `airlock_gateway::agents_report` (the web
//! page's Agents tab uses the same); this file only prints it.

use airlock_approvals::now_ms;
use airlock_gateway::agents_report::{self, MAX_RECENT};
use airlock_gateway::config::Config;
use anyhow::{Result, bail};
use serde_json::Value;

use super::operator::store;

pub async fn show(config: Config, name: &str, json_out: bool) -> Result<()> {
    let Some(agent) = config.agent_named(name) else {
        bail!(
            "unknown agent {name:?} (not in [[agent]] of {} nor in {})",
            config.source,
            config.authorized_keys.display()
        );
    };
    let s = store(&config).await?;
    // The operator sees every target.
    let report = agents_report::report(&config, &agent, &s, now_ms(), &|_| true).await?;
    if json_out {
        println!("{report}");
    } else {
        print_human(&report);
    }
    Ok(())
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
