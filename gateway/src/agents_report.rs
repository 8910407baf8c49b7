//! One agent's blast radius at a glance (issue 21), for `airlock agents show` and the
//! reviewer page's Agents tab: where it may run (targets, labels, which need a grant and which
//! grants are live), what runs without a human (its live whitelist by target, with tiers and
//! expiries), what it ran in the last 7 days by tier (from the audit ledger), and one line
//! saying the largest thing it can do unattended right now.
//!
//! Reads only: the config, the store and the ledger. A reader whose view is scoped passes
//! `visible`; targets it may not see are left out *before* the summary and the weekly counts
//! are made, so neither ever describes them, and the report says that some were withheld.

use std::collections::{BTreeMap, BTreeSet};

use airlock_approvals::{Store, StoreError, WhitelistEntry, rfc3339};
use airlock_classifier::Tier;
use airlock_classifier::visible::Shown;
use serde_json::{Value, json};

use crate::config::{Agent, Config, read_authorized_keys};

/// How far back "what it ran" looks.
pub const RECENT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most ledger entries read for the weekly counts (a busy gateway's week; `last_7_days_cut`
/// says when the cap was hit).
pub const MAX_RECENT: i64 = 200_000;

/// Every agent's name, from `[[agent]]` and the authorized_keys file, sorted, once each.
pub fn names(config: &Config) -> Vec<String> {
    let mut all: BTreeSet<String> = config.agents.iter().map(|a| a.name.clone()).collect();
    all.extend(
        read_authorized_keys(&config.authorized_keys)
            .into_iter()
            .map(|a| a.name),
    );
    all.into_iter().collect()
}

/// One line of what runs unattended on a target: entries, their highest tier, the target,
/// and until when (`None`: no expiry).
struct Unattended {
    entries: usize,
    /// How many of them are glob patterns (each matches many commands).
    globs: usize,
    top: Tier,
    target: String,
    until: Option<i64>,
}

/// The report on `agent` at `now`, limited to the targets `visible` admits (pass `|_| true`
/// for the operator's full view). The JSON shape is documented in docs/reviewer-protocol.md;
/// each whitelist command also comes in its display form `shown`, for the page.
pub async fn report(
    config: &Config,
    agent: &Agent,
    store: &Store,
    now: i64,
    visible: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Value, StoreError> {
    let grants: Vec<_> = store
        .list_grants(false, now)
        .await?
        .into_iter()
        .filter(|g| g.agent == agent.name)
        .collect();
    let whitelist: Vec<WhitelistEntry> = store
        .list_whitelist()
        .await?
        .into_iter()
        .filter(|w| w.agent.as_deref().is_none_or(|a| a == agent.name))
        .filter(|w| w.expires_at.is_none_or(|e| e > now))
        .collect();
    let mut targets = Vec::new();
    let mut unattended: Vec<Unattended> = Vec::new();
    let mut withheld = false;
    for t in config.targets.iter().filter(|t| agent.may_use(&t.name)) {
        if !visible(&t.name) {
            withheld = true;
            continue;
        }
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
        // A grant only bounds a target that needs one.
        let bounding = grant.filter(|_| t.requires_grant);
        let until = match (bounding, whitelisted_until) {
            (Some(g), Some(w)) => Some(g.expires_at.min(w)),
            (Some(g), None) => Some(g.expires_at),
            (None, w) => w,
        };
        if usable && !entries.is_empty() {
            unattended.push(Unattended {
                entries: entries.len(),
                globs: entries.iter().filter(|w| w.glob).count(),
                top: entries.iter().map(|w| w.tier).max().unwrap_or(Tier::Low),
                target: t.name.clone(),
                until,
            });
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
                "id": w.id, "command": w.command, "shown": Shown::of(&w.command),
                "glob": w.glob, "tier": w.tier,
                "any_target": w.target.is_none(), "any_agent": w.agent.is_none(),
                "expires_at": w.expires_at.map(rfc3339), "by": w.created_by,
            })).collect::<Vec<_>>(),
        }));
    }
    let recent = store
        .ledger_payloads("command.submitted", now - RECENT_MS, MAX_RECENT)
        .await?;
    let cut = recent.len() as i64 >= MAX_RECENT;
    let mut ran: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for p in recent
        .iter()
        .filter(|p| p["agent"] == agent.name.as_str() && p["target"].as_str().is_some_and(visible))
    {
        let tier = p["tier"].as_str().unwrap_or("unclassified").to_owned();
        let decision = p["decision"].as_str().unwrap_or("?").to_owned();
        *ran.entry(tier).or_default().entry(decision).or_default() += 1;
    }
    Ok(json!({
        "agent": agent.name,
        "max_tier": agent.max_tier,
        "owner": config.authority.owner_of(&agent.name),
        "targets": targets,
        "targets_withheld": withheld,
        "last_7_days": ran,
        "last_7_days_cut": cut,
        "summary": summary(&unattended, withheld),
    }))
}

/// The largest thing the agent can do without a human now, in one line; with `withheld`,
/// about the shown targets only, and it says so.
fn summary(unattended: &[Unattended], withheld: bool) -> String {
    let scope = if withheld {
        " (on the targets in your scope; others are not shown)"
    } else {
        ""
    };
    let Some(u) = unattended.iter().max_by_key(|u| (u.top, u.entries)) else {
        return format!(
            "can run only low-risk commands (read-only) unattended; everything else waits for a reviewer{scope}"
        );
    };
    let until = u
        .until
        .map(|t| format!("until {}", rfc3339(t)))
        .unwrap_or_else(|| "with no expiry".into());
    let more = unattended.len() - 1;
    format!(
        "can run {n} whitelisted command{s}{globs} (up to {tier}) on {target} unattended {until}{others}{scope}",
        n = u.entries,
        s = if u.entries == 1 { "" } else { "s" },
        globs = if u.globs > 0 {
            format!(" ({} of them patterns matching many commands)", u.globs)
        } else {
            String::new()
        },
        tier = u.top,
        target = u.target,
        others = if more > 0 {
            let names: Vec<&str> = unattended
                .iter()
                .filter(|o| o.target != u.target)
                .map(|o| o.target.as_str())
                .collect();
            format!(", and whitelisted commands on {}", names.join(", "))
        } else {
            String::new()
        }
    )
}

/// The reviewer page's source of agent reports: this gateway's config and store.
pub struct Directory {
    pub config: std::sync::Arc<Config>,
    pub store: Store,
}

impl airlock_reviewer_ws::AgentDirectory for Directory {
    fn names(&self) -> Vec<String> {
        names(&self.config)
    }

    fn report<'a>(
        &'a self,
        name: &'a str,
        visible: airlock_reviewer_ws::TargetFilter<'a>,
    ) -> airlock_reviewer_ws::ReportFuture<'a> {
        Box::pin(async move {
            let Some(agent) = self.config.agent_named(name) else {
                return Ok(None);
            };
            report(
                &self.config,
                &agent,
                &self.store,
                airlock_approvals::now_ms(),
                visible,
            )
            .await
            .map(Some)
            .map_err(|e| e.to_string())
        })
    }
}
