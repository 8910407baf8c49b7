//! `airlock grant add|list|revoke`: time-boxed access to targets marked `requires_grant = true`
//! (docs/grants.md). Every grant added or revoked is in the audit ledger with who did it.

use std::time::Duration;

use airlock_approvals::grants::{Grant, GrantState, NewGrant, check_duration, humanize};
use airlock_approvals::{Store, StoreError, now_ms, rfc3339};
use airlock_gateway::config::Config;
use anyhow::{Result, bail};
use clap::Subcommand;

use super::operator::{audit, operator, store};

#[derive(Subcommand)]
pub(crate) enum GrantCmd {
    /// Let an agent use a `requires_grant` target for a while.
    Add {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        target: String,
        /// How long, e.g. 30m or 2h (at most [grants] max_duration, default 8h).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown in `grant list` and the ledger).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Active grants, then expired and revoked ones.
    List {
        /// One JSON object per line (with a `state` field).
        #[arg(long)]
        json: bool,
    },
    /// End a grant now: new commands are refused, running ones are ended within a second.
    Revoke { id: String },
}

pub async fn run(config: Config, cmd: GrantCmd) -> Result<()> {
    match cmd {
        GrantCmd::Add {
            agent,
            target,
            duration,
            reason,
        } => {
            let d = checked(&config, &agent, &target, &duration)?;
            // The reason is shown to reviewers and agents and written to the ledger: one
            // bounded line of visible text, like an agent's.
            let reason = reason.unwrap_or_default();
            let shown = airlock_classifier::visible::Shown::of(&reason);
            if reason.chars().count() > 500 || reason.contains('\n') || !shown.is_plain() {
                bail!(
                    "--reason must be one line of at most 500 visible characters (it reads {:?})",
                    shown.one_line()
                );
            }
            let s = store(&config).await?;
            add(&s, agent, target, d, reason).await
        }
        GrantCmd::List { json } => list(&store(&config).await?, json).await,
        GrantCmd::Revoke { id } => revoke(&store(&config).await?, &id).await,
    }
}

/// The agent and target exist, and the duration is within `[grants] max_duration`.
fn checked(config: &Config, agent: &str, target: &str, duration: &str) -> Result<Duration> {
    let src = &config.source;
    let d = humantime::parse_duration(duration)
        .map_err(|e| anyhow::anyhow!("--for {duration:?}: {e} (e.g. 30m, 2h)"))?;
    if let Err(e) = check_duration(d, config.grant_max_duration) {
        bail!("--for {duration}: {e} in {src}");
    }
    if config.agent_named(agent).is_none() {
        bail!(
            "unknown agent {agent:?} (not an [[agent]] in {src} nor in {})",
            config.authorized_keys.display()
        );
    }
    let Some(t) = config.target(target) else {
        bail!("unknown target {target:?} (no [[target]] named so in {src})");
    };
    if !t.requires_grant {
        eprintln!(
            "airlock: warning: target {target:?} does not set requires_grant = true in {src}; this grant changes nothing there until it does"
        );
    }
    if let Some(a) = config.agent(agent)
        && !a.may_use(target)
    {
        eprintln!(
            "airlock: warning: agent {agent:?} may not use target {target:?} ([[agent]] targets in {src}); the grant does not change that"
        );
    }
    Ok(d)
}

async fn add(s: &Store, agent: String, target: String, d: Duration, reason: String) -> Result<()> {
    let now = now_ms();
    let by = operator();
    let g = s
        .add_grant(
            &NewGrant {
                agent,
                target,
                reason,
                created_by: by.clone(),
                expires_at: now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                request_id: None,
            },
            now,
        )
        .await?;
    // `grant.added` gates the grant: if it is not in the ledger, the grant is withdrawn.
    if let Err(e) = audit(s, g.added_event()).await {
        let _ = s.revoke_grant(&g.id, "ledger-unavailable", now_ms()).await;
        return Err(e.context("the grant was revoked at once"));
    }
    println!("{}", g.id);
    eprintln!(
        "granted {} access to {} for {} (until {})",
        g.agent,
        g.target,
        humanize(d),
        rfc3339(g.expires_at)
    );
    Ok(())
}

fn state_text(g: &Grant, now: i64) -> String {
    match g.state(now) {
        GrantState::Active => format!("active until {}", rfc3339(g.expires_at)),
        GrantState::Expired => format!("expired {}", rfc3339(g.expires_at)),
        GrantState::Revoked => format!(
            "revoked {} by {}",
            rfc3339(g.revoked_at.unwrap_or_default()),
            g.revoked_by.as_deref().unwrap_or("?")
        ),
    }
}

async fn list(s: &Store, json: bool) -> Result<()> {
    let now = now_ms();
    let mut all = s.list_grants(true, now).await?;
    // Active ones first; newest first within each group (the store's order).
    all.sort_by_key(|g| !g.is_active(now));
    for g in all {
        if json {
            let mut v = serde_json::to_value(&g)?;
            v["state"] = g.state(now).as_str().into();
            println!("{v}");
            continue;
        }
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            g.id,
            g.agent,
            g.target,
            state_text(&g, now),
            g.created_by,
            // Rows from anywhere (the ledger's grants, agents' requests): shown, never raw.
            airlock_classifier::visible::Shown::of(&g.reason).one_line()
        );
    }
    Ok(())
}

async fn revoke(s: &Store, id: &str) -> Result<()> {
    let g = match s.revoke_grant(id, &operator(), now_ms()).await {
        Ok(g) => g,
        Err(StoreError::NoGrant(_)) => bail!("no grant {id} (see `airlock grant list`)"),
        Err(e @ StoreError::GrantEnded { .. }) => bail!("{e}"),
        Err(e) => return Err(e.into()),
    };
    audit(s, g.revoked_event(&operator())).await?;
    eprintln!(
        "revoked grant {} ({} on {}); what runs under it ends within a second",
        g.id, g.agent, g.target
    );
    Ok(())
}
