//! `airlock whitelist promote|copy|review`: staging first.
//!
//! `promote` copies a target's entries to another target, and `copy` one agent's entries to
//! another agent, as *proposals*: stored, audited, and allowing nothing until people accept
//! them. Each copy is judged again by the classifier for where it would apply (a command that
//! is medium on staging may be high on prod, and high is never whitelisted), and an entry
//! already there (live or proposed) is not proposed twice.
//!
//! `review` lists proposals with what each would allow and accepts or rejects them as the
//! operator: `cli:$USER`, unscoped, counted as the person `$USER` (so `cli:alice` and the
//! reviewer `alice` are one person, and a medium entry still needs a second one). It asks only
//! on a terminal; in CI (`CI` set, or no terminal) it does what the flags say and nothing
//! else. The rules themselves are `airlock_approvals::proposals`.

use std::io::{BufRead, IsTerminal, Write};

use airlock_approvals::proposals::{self, Actor, Proposal, proposed_event};
use airlock_approvals::{NewWhitelist, Store, WhitelistEntry, now_ms};
use airlock_gateway::config::Config;
use anyhow::{Result, bail};
use serde_json::json;

use super::ledger::operator_ledger;
use super::operator::{audit, operator};
use super::whitelist::{Wanted, check, describe};

/// Where proposals come from.
pub enum From {
    /// `promote`: entries of target `from` (only agent `agent`'s, if given) onto `to`.
    Target {
        from: String,
        to: String,
        agent: Option<String>,
    },
    /// `copy`: agent `from`'s entries for agent `to`.
    Agent { from: String, to: String },
}

impl From {
    fn source(&self) -> String {
        match self {
            From::Target { from, .. } => format!("promoted from target {from}"),
            From::Agent { from, .. } => format!("copied from agent {from}"),
        }
    }

    /// The copy of `e` this source proposes, or `None` when `e` is not one of its entries.
    fn wanted(&self, e: &WhitelistEntry) -> Option<Wanted> {
        let (agent, target) = match self {
            From::Target { from, to, agent } => {
                if e.target.as_deref() != Some(from.as_str())
                    || agent.as_ref().is_some_and(|a| e.agent.as_ref() != Some(a))
                {
                    return None;
                }
                (e.agent.clone(), Some(to.clone()))
            }
            From::Agent { from, to } => {
                if e.agent.as_deref() != Some(from.as_str()) {
                    return None;
                }
                (Some(to.clone()), e.target.clone())
            }
        };
        Some(Wanted {
            agent,
            target,
            pattern: e.command.clone(),
            glob: e.glob,
            expires_at: e.expires_at,
        })
    }
}

fn same(w: &Wanted, e: &WhitelistEntry) -> bool {
    e.command == w.pattern && e.glob == w.glob && e.agent == w.agent && e.target == w.target
}

/// `whitelist promote` / `whitelist copy`.
pub async fn propose(config: &Config, s: &Store, from: From, json: bool) -> Result<()> {
    match &from {
        From::Target { from, to, .. } => {
            if from == to {
                bail!("--from-target and --to-target are both {from:?}");
            }
            if config.target(from).is_none() {
                bail!("unknown target {from:?}");
            }
        }
        From::Agent { from, to } => {
            if from == to {
                bail!("--from-agent and --to-agent are both {from:?}");
            }
            if config.agent(from).is_none() {
                bail!("unknown agent {from:?}");
            }
        }
    }
    let now = now_ms();
    let live = s.list_whitelist().await?;
    let pending: Vec<WhitelistEntry> = s
        .list_proposals()
        .await?
        .into_iter()
        .map(|p| p.entry)
        .collect();
    let source = from.source();
    let by = operator();
    let (mut made, mut present, mut refused) = (0, 0, Vec::new());
    for e in live.iter().filter(|e| e.expires_at.is_none_or(|t| t > now)) {
        let Some(wanted) = from.wanted(e) else {
            continue;
        };
        if live.iter().chain(&pending).any(|x| same(&wanted, x)) {
            present += 1;
            continue;
        }
        // An entry for an agent on a target that agent may not use would be a proposal of
        // nothing (and misleading on review): not made.
        if let (Some(agent), Some(target)) = (&wanted.agent, &wanted.target)
            && config
                .agent_named(agent)
                .is_some_and(|a| !a.may_use(target))
        {
            refused.push(format!(
                "{:?}: agent {agent} may not use target {target}",
                e.command
            ));
            continue;
        }
        let checked = match check(config, wanted) {
            Ok(c) => c,
            Err(err) => {
                refused.push(format!("{:?}: {err}", e.command));
                continue;
            }
        };
        let w = &checked.wanted;
        let p = s
            .propose_whitelist(
                &NewWhitelist {
                    scripts: &[],
                    agent: w.agent.as_deref(),
                    target: w.target.as_deref(),
                    pattern: &w.pattern,
                    words: checked.words.as_deref(),
                    tier: checked.tier,
                    created_by: &by,
                    created_at: now,
                    expires_at: w.expires_at,
                },
                &by,
                &source,
            )
            .await?;
        if let Err(err) = audit(s, proposed_event(&p, &by, &source)).await {
            // A proposal nobody can account for is not kept.
            let _ = s.revoke_whitelist(&p.id).await;
            return Err(err);
        }
        made += 1;
        if json {
            println!(
                "{}",
                json!({ "id": p.id, "command": p.command, "glob": p.glob, "agent": p.agent,
                        "target": p.target, "tier": p.tier, "expires_at": p.expires_at,
                        "needed": proposals::needed(p.tier), "source": source })
            );
        } else {
            println!("{}", p.id);
            eprintln!("proposed {}", describe(&p));
        }
    }
    for r in &refused {
        eprintln!("not proposed: {r}");
    }
    eprintln!(
        "{made} proposed ({source}), {present} already there, {} refused; they allow nothing \
         until accepted: `airlock whitelist review` or the web page's Proposed list",
        refused.len()
    );
    Ok(())
}

/// What `review` was asked to do.
pub struct Asked {
    pub accept: Vec<String>,
    pub reject: Vec<String>,
    pub accept_all: bool,
    pub json: bool,
}

/// What a proposal would allow, in words.
fn allows(p: &Proposal) -> String {
    let e = &p.entry;
    let what = if e.glob {
        format!("any command matching {:?}", e.command)
    } else {
        format!("exactly {:?}", e.command)
    };
    format!(
        "would let {} run {what} on {} without a reviewer (up to {})",
        e.agent
            .as_deref()
            .map_or("every agent".to_owned(), |a| format!("agent {a}")),
        e.target
            .as_deref()
            .map_or("every target".to_owned(), |t| format!("target {t}")),
        e.tier
    )
}

fn show(p: &Proposal, json: bool) -> Result<()> {
    let needed = p.needed();
    if json {
        let mut v = serde_json::to_value(p)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("needed".into(), json!(needed));
            o.insert("allows".into(), json!(allows(p)));
        }
        println!("{v}");
        return Ok(());
    }
    println!(
        "{}\t{}\t{}/{} accepted{}\t{}",
        p.entry.id,
        p.entry.tier,
        p.accepted_by.len(),
        needed.map_or("-".to_owned(), |n| n.to_string()),
        if p.accepted_by.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.accepted_by.join(", "))
        },
        p.entry.command
    );
    println!(
        "\t{}; {} by {}",
        allows(p),
        p.source.as_deref().unwrap_or("proposed"),
        p.proposed_by.as_deref().unwrap_or("?")
    );
    Ok(())
}

enum Act {
    Accept,
    Reject,
}

/// One accept or reject; reports the result and says whether it failed.
async fn act(config: &Config, s: &Store, act: Act, id: &str, json: bool) -> bool {
    let me = operator();
    let actor = Actor::Operator(&me);
    let ledger = operator_ledger(s);
    let authority = &config.authority;
    let (verb, result) = match act {
        Act::Accept => (
            "accept",
            proposals::accept(s, &ledger, authority, &actor, id, now_ms())
                .await
                .map(Some),
        ),
        Act::Reject => (
            "reject",
            proposals::reject(s, &ledger, authority, &actor, id)
                .await
                .map(|()| None),
        ),
    };
    match (&result, json) {
        (Ok(o), true) => println!(
            "{}",
            json!({ "id": id, "action": verb, "ok": true, "by": me,
                    "live": o.as_ref().is_some_and(|o| o.live),
                    "accepted_by": o.as_ref().map(|o| &o.accepted_by),
                    "needed": o.as_ref().map(|o| o.needed) })
        ),
        (Ok(Some(o)), false) if o.live => {
            eprintln!(
                "accepted {id}: live now (accepted by {})",
                o.accepted_by.join(" and ")
            )
        }
        (Ok(Some(o)), false) => eprintln!(
            "accepted {id}: {} of {} people so far; it allows nothing until another accepts",
            o.accepted_by.len(),
            o.needed
        ),
        (Ok(None), false) => eprintln!("rejected {id}"),
        (Err(e), true) => println!(
            "{}",
            json!({ "id": id, "action": verb, "ok": false, "code": e.code(),
                    "error": e.to_string() })
        ),
        (Err(e), false) => eprintln!("could not {verb} {id}: {e}"),
    }
    result.is_err()
}

/// Asking is for a person at a terminal; never in CI or with no terminal on either side.
fn interactive() -> bool {
    std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false")
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// `whitelist review`.
pub async fn review(config: &Config, s: &Store, asked: Asked) -> Result<()> {
    let mut failed = 0usize;
    for id in &asked.reject {
        failed += usize::from(act(config, s, Act::Reject, id, asked.json).await);
    }
    for id in &asked.accept {
        failed += usize::from(act(config, s, Act::Accept, id, asked.json).await);
    }
    let flagged = asked.accept_all || !asked.accept.is_empty() || !asked.reject.is_empty();
    if asked.accept_all {
        for p in s.list_proposals().await? {
            failed += usize::from(act(config, s, Act::Accept, &p.entry.id, asked.json).await);
        }
    }
    if !flagged {
        let list = s.list_proposals().await?;
        if list.is_empty() && !asked.json {
            eprintln!("no proposed whitelist entries");
        }
        let ask = !asked.json && interactive();
        for p in &list {
            show(p, asked.json)?;
            if ask {
                match prompt(&format!(
                    "{}: [a]ccept, [r]eject, [s]kip, [q]uit? ",
                    p.entry.id
                ))? {
                    Some('a') => {
                        failed += usize::from(act(config, s, Act::Accept, &p.entry.id, false).await)
                    }
                    Some('r') => {
                        failed += usize::from(act(config, s, Act::Reject, &p.entry.id, false).await)
                    }
                    Some('q') | None => break,
                    _ => {}
                }
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} action{} failed",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// One answer's first letter; `None` at end of input.
fn prompt(q: &str) -> Result<Option<char>> {
    eprint!("{q}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(
        line.trim()
            .chars()
            .next()
            .map_or('s', |c| c.to_ascii_lowercase()),
    ))
}
