//! The control target, `airlock`: `ssh -p 2222 airlock@gateway 'VERB …'` answers an agent
//! about its own world and never runs anything on a host. Every enrolled agent may use it.
//!
//! - `whoami` — agent, key fingerprint, node;
//! - `targets` — the targets this agent may use, with labels;
//! - `explain --target T -- CMD` — what the gateway would do with CMD on T for this agent,
//!   through the very gate a real exec goes through (access, classifier, whitelist, policy);
//!   nothing is stored as a request; audited as `command.explained`;
//! - `status ID` — one of this agent's requests (another agent's is "no such request");
//! - `request-access TARGET DURATION REASON…` — ask reviewers for a time-boxed grant (see
//!   [`super::access`]; it waits for them like a command does).
//!
//! `--json` anywhere before `--` gives one JSON object on stdout; otherwise plain text. Exit
//! status 0 on success, 1 for an unknown request, 2 for bad usage (the usage on stderr).

use airlock_approvals::ledger::Event;
use airlock_approvals::ledger::event::Verdict as LedgerVerdict;
use airlock_approvals::{RequestStatus, VoteDecision, model::settled_by_votes};
use airlock_classifier::Tier;
use russh::ChannelReadHalf;
use serde_json::{Value, json};

use super::{SessionCtx, Tx, end_with, line};
use crate::gate::{Judged, Verdict};
use crate::targets::Mode;

/// The reserved target name.
pub const CONTROL_TARGET: &str = "airlock";

const USAGE: &str = "usage: ssh airlock@GATEWAY 'whoami | targets | explain --target T -- COMMAND | status REQUEST-ID | request-access TARGET DURATION REASON' (add --json for JSON)";

/// What a verb answers: its JSON, its text, and an exit status.
struct Answer {
    json: Value,
    text: String,
    status: u32,
}

impl Answer {
    fn ok(json: Value, text: String) -> Self {
        Self {
            json,
            text,
            status: 0,
        }
    }
}

/// Answer one control command on `tx` and end the channel (`rx` tells a `request-access`
/// that waits for reviewers when the agent withdraws or leaves).
pub async fn run(ctx: SessionCtx, rx: ChannelReadHalf, tx: Tx, pty: bool, raw: Vec<u8>) {
    let Ok(command) = String::from_utf8(raw) else {
        return usage(&tx, pty, "the command is not valid UTF-8").await;
    };
    // Its reason is free text (it may hold ` -- ` or `--json`): parsed on its own.
    if let Some(args) = command.trim_start().strip_prefix(super::access::VERB)
        && (args.is_empty() || args.starts_with(char::is_whitespace))
    {
        return super::access::run(ctx, rx, tx, pty, args).await;
    }
    // Flags and the verb come before ` -- `; what follows it is a command, verbatim.
    let (head, rest) = match command.split_once(" -- ") {
        Some((h, r)) => (h, Some(r)),
        None => (command.as_str(), None),
    };
    let mut words: Vec<&str> = head.split_whitespace().collect();
    let json = words.contains(&"--json");
    words.retain(|w| *w != "--json");
    let answer = match words.as_slice() {
        ["whoami"] => whoami(&ctx),
        ["targets"] => targets(&ctx),
        ["explain", "--target", target] => match rest {
            Some(cmd) if !cmd.trim().is_empty() => explain(&ctx, target, cmd).await,
            _ => return usage(&tx, pty, "explain needs `-- COMMAND`").await,
        },
        ["status", id] => status(&ctx, id).await,
        [] => return usage(&tx, pty, "no verb").await,
        [verb, ..] => return usage(&tx, pty, &format!("unknown or malformed verb {verb:?}")).await,
    };
    let out = if json {
        format!("{}\n", answer.json)
    } else {
        String::from_utf8(line(pty, &answer.text)).unwrap_or_default()
    };
    let _ = tx.data(out.into_bytes().as_slice()).await;
    let _ = tx.exit_status(answer.status).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

async fn usage(tx: &Tx, pty: bool, why: &str) {
    end_with(tx, pty, &format!("airlock: {why}\n{USAGE}"), 2).await;
}

fn whoami(ctx: &SessionCtx) -> Answer {
    let node = &ctx.shared.limits.node;
    Answer::ok(
        json!({ "agent": ctx.agent.name, "key": ctx.key, "node": node }),
        format!("agent {} (key {}) on node {node}", ctx.agent.name, ctx.key),
    )
}

fn targets(ctx: &SessionCtx) -> Answer {
    let list: Vec<Value> = ctx
        .shared
        .gate
        .targets_for(&ctx.agent)
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "kind": match t.kind {
                    crate::config::TargetKind::Local(_) => "local",
                    crate::config::TargetKind::Ssh(_) => "ssh",
                },
                "labels": t.labels,
                "grant_required": t.requires_grant,
            })
        })
        .collect();
    let text = list
        .iter()
        .map(|t| {
            let labels = t["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            format!(
                "{}\t{}\t{labels}{}",
                t["name"].as_str().unwrap_or_default(),
                t["kind"].as_str().unwrap_or_default(),
                if t["grant_required"] == true {
                    "\tneeds an access grant (request-access)"
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Answer::ok(json!({ "agent": ctx.agent.name, "targets": list }), text)
}

async fn explain(ctx: &SessionCtx, target: &str, command: &str) -> Answer {
    let shared = &ctx.shared;
    let reader = crate::scripts::TargetReader {
        targets: &shared.targets,
        cwd: None,
    };
    let judged = shared
        .gate
        .judge(&ctx.agent, target, command, &reader)
        .await;
    let (tier, decision, why, text, reasons, score, mode) = match &judged {
        Judged::Refused(deny) => (
            None,
            json!({ "kind": "deny", "why": deny.to_string() }),
            Some(deny.to_string()),
            format!("deny: {deny}"),
            json!([]),
            None,
            None,
        ),
        Judged::Classified {
            assessment,
            verdict,
            ..
        } => {
            let reasons = json!(assessment.reasons);
            let (decision, why, text, mode) = match verdict {
                Verdict::Allow {
                    why,
                    entry: Some((entry, expires_at)),
                } => (
                    json!({ "kind": "whitelisted", "why": why, "entry": entry, "expires_at_ms": expires_at }),
                    Some(why.clone()),
                    format!("runs at once: {why}"),
                    mode_for(assessment.tier),
                ),
                Verdict::Allow { why, entry: None } => (
                    json!({ "kind": "run", "why": why }),
                    Some(why.clone()),
                    format!("runs at once ({why})"),
                    mode_for(assessment.tier),
                ),
                Verdict::Ask { needs, timeout } => {
                    let timeout = timeout.as_secs();
                    let present = shared.broker.presence().eligible(&ctx.agent.name);
                    let quorum = needs.total();
                    let rule = needs
                        .rule
                        .as_deref()
                        .map(|r| format!(", approval_rule {r}"))
                        .unwrap_or_default();
                    (
                        json!({
                            "kind": "ask", "quorum": quorum, "needs": needs.describe(),
                            "rule": needs.rule, "require": needs.needs,
                            "timeout_s": timeout, "reviewers_connected": present,
                        }),
                        None,
                        format!(
                            "waits for approval from {}{rule} ({present} connected now; denied after {timeout}s without a decision)",
                            needs.describe()
                        ),
                        Mode::ReadWrite,
                    )
                }
                Verdict::Deny(deny) => (
                    json!({ "kind": "deny", "why": deny.to_string() }),
                    Some(deny.to_string()),
                    format!("deny: {deny}"),
                    Mode::ReadWrite,
                ),
            };
            (
                Some(assessment.tier),
                decision,
                why,
                format!(
                    "{} (score {}): {text}{}",
                    assessment.tier,
                    assessment.score,
                    assessment
                        .reasons
                        .iter()
                        .map(|r| format!("\n  [{}] {} ({})", r.tier, r.text, r.rule))
                        .collect::<String>()
                ),
                reasons,
                Some(assessment.score),
                Some(mode),
            )
        }
    };
    let verdict = match decision["kind"].as_str() {
        Some("ask") => LedgerVerdict::Ask,
        Some("deny") => LedgerVerdict::Deny,
        _ => LedgerVerdict::Allow,
    };
    let audited = shared
        .records
        .audit(Event::CommandExplained {
            agent: ctx.agent.name.clone(),
            target: target.to_owned(),
            command: crate::record::as_recorded(command, &judged).into_owned(),
            tier,
            decision: verdict,
            why,
        })
        .await;
    if let Err(e) = audited {
        tracing::warn!(error = %e, "explain not in the audit ledger");
    }
    // Where the classifier knows one: a read-only or dry-run form to try first.
    let safer = match &judged {
        Judged::Classified { assessment, .. } if assessment.tier != Tier::Low => {
            airlock_classifier::alternatives::safer(assessment)
        }
        _ => None,
    };
    let text = match safer {
        Some(s) => format!(
            "{text}
  safer first: {s}"
        ),
        None => text,
    };
    Answer::ok(
        json!({
            "target": target,
            "command": command,
            "tier": tier,
            "score": score,
            "reasons": reasons,
            "decision": decision,
            "mode": mode.map(Mode::as_str),
            "safer": safer,
        }),
        text,
    )
}

/// The sandbox mode a command allowed without a human runs in.
fn mode_for(tier: Tier) -> Mode {
    match tier {
        Tier::Low => Mode::ReadOnly,
        Tier::Medium | Tier::High => Mode::ReadWrite,
    }
}

async fn status(ctx: &SessionCtx, id: &str) -> Answer {
    let not_found = || Answer {
        json: json!({ "id": id, "error": "no such request" }),
        text: format!("no such request {id}"),
        status: 1,
    };
    let r = match ctx.shared.broker.request(id).await {
        Ok(Some(r)) if r.agent == ctx.agent.name => r,
        Ok(_) => return not_found(),
        Err(e) => {
            return Answer {
                json: json!({ "id": id, "error": format!("store error: {e}") }),
                text: format!("cannot read request {id}: {e}"),
                status: 1,
            };
        }
    };
    let approvals = r.approvals();
    let why = match r.status {
        RequestStatus::Pending => None,
        RequestStatus::Settled(o) => settled_by_votes(o, &r.votes),
    };
    let denied_by: Vec<String> = r
        .votes
        .iter()
        .filter(|v| v.decision == VoteDecision::Deny)
        .map(|v| v.reviewer.clone())
        .collect();
    let text = format!(
        "request {id}: {} ({} on {}: {}) — approvals {}/{}{}",
        r.status,
        r.tier,
        r.target,
        airlock_classifier::visible::Shown::of(&r.command).one_line(),
        approvals.len(),
        r.quorum,
        why.as_deref()
            .map(|w| format!(" — {w}"))
            .unwrap_or_default()
    );
    Answer::ok(
        json!({
            "id": r.id,
            "status": r.status.as_str(),
            "tier": r.tier,
            "target": r.target,
            "command": r.command,
            "approvals": approvals,
            "approvals_needed": r.quorum,
            "denied_by": denied_by,
            "why": why,
            "expires_at_ms": r.expires_at,
        }),
        text,
    )
}
