//! The gate: command text in, [`Decision`] out — classifier, whitelist, policy.
//!
//! Every failure here is a deny with a reason the agent can read; the session only acts on
//! the value returned.

use airlock_approvals::{Decision, NewRequest, now_ms};
use airlock_classifier::{Assessment, Classifier, Context};
use serde_json::json;

use crate::config::{Agent, Config, Target};
use crate::server::Gateway;

/// A judged command: what the classifier saw and what policy made of it.
pub struct Judged {
    pub assessment: Assessment,
    pub decision: Decision,
    /// The target the command will run on, resolved once here.
    pub target: Target,
}

/// The part of judging that needs only the config: access, limits and classification. Pure, so
/// `airlock policy check` gives exactly the gateway's answer. `Err` is a deny reason.
pub fn assess(
    config: &Config,
    classifier: &Classifier,
    agent: &Agent,
    target: &str,
    command: &str,
) -> Result<(Assessment, Target), String> {
    let Some(t) = config.target(target) else {
        return Err(format!("unknown target {target:?}"));
    };
    if !agent.may_use(target) {
        return Err(format!("agent {} may not use target {target}", agent.name));
    }
    if command.len() > config.max_command_bytes {
        return Err(format!(
            "command is {} bytes, the limit is {} bytes",
            command.len(),
            config.max_command_bytes
        ));
    }
    if command.trim().is_empty() {
        return Err("empty command".into());
    }
    let ctx = Context {
        agent: agent.name.clone(),
        target: target.to_owned(),
        labels: t.labels.clone(),
    };
    Ok((classifier.classify(command, &ctx), t.clone()))
}

/// Judge `command` for `agent` on `target` in `session`, and put the command, its
/// classification and the decision in the audit ledger. `Err` is a deny reason; a command that
/// cannot be logged is denied.
pub async fn judge(
    gw: &Gateway,
    session: &str,
    agent: &Agent,
    target: &str,
    command: &str,
) -> Result<Judged, String> {
    let ledger = gw.broker.ledger();
    let (assessment, t) = match assess(&gw.config, &gw.classifier, agent, target, command) {
        Ok(v) => v,
        Err(why) => {
            let entry = json!({
                "session": session, "agent": agent.name, "target": target, "command": command,
                "decision": "deny", "why": why,
            });
            if let Err(e) = ledger.append("command.submitted", entry).await {
                tracing::error!(error = %e, "refused command not in the audit ledger");
            }
            return Err(why);
        }
    };
    let whitelisted = if gw.policy.consults_whitelist(&assessment, agent.max_tier) {
        let argv = airlock_classifier::plain_argv(command);
        gw.broker
            .store()
            .whitelist_match(
                &agent.name,
                target,
                command,
                argv.as_deref(),
                assessment.tier,
                now_ms(),
            )
            .await
            .map_err(|e| format!("whitelist unavailable ({e})"))?
    } else {
        None
    };
    let decision = gw
        .policy
        .decide(&assessment, whitelisted.as_ref(), agent.max_tier);
    let (kind, detail) = match &decision {
        Decision::Allow { why } => ("allow", json!({ "why": why })),
        Decision::Ask { quorum, .. } => ("ask", json!({ "quorum": quorum })),
        Decision::Deny { reason } => ("deny", json!({ "why": reason })),
    };
    let rules: Vec<&str> = assessment.reasons.iter().map(|r| r.rule.as_str()).collect();
    let entry = json!({
        "session": session, "agent": agent.name, "target": target, "command": command,
        "tier": assessment.tier.as_str(), "score": assessment.score, "rules": rules,
        "decision": kind, "detail": detail,
    });
    if let Err(e) = ledger.append("command.submitted", entry).await {
        tracing::error!(error = %e, "cannot append to the audit ledger; denying");
        return Err("audit ledger unavailable".into());
    }
    Ok(Judged {
        assessment,
        decision,
        target: t,
    })
}

/// Longest stated reason kept; the rest is cut.
const MAX_REASON_CHARS: usize = 500;

/// An agent's `AIRLOCK_REASON` as reviewers will see it: one line of printable text, bounded.
pub fn stated_reason(raw: &str) -> Option<String> {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

/// The approval request for a judged command that needs reviewers.
#[allow(clippy::too_many_arguments)]
pub fn new_request(
    node: &str,
    session_id: &str,
    agent: &str,
    target: &Target,
    reason: Option<&str>,
    command: &str,
    a: &Assessment,
    quorum: u32,
    timeout: std::time::Duration,
) -> NewRequest {
    NewRequest {
        node: node.to_owned(),
        session_id: session_id.to_owned(),
        agent: agent.to_owned(),
        target: target.name.clone(),
        reason: reason.map(str::to_owned),
        labels: target.labels.clone(),
        command: command.to_owned(),
        tier: a.tier,
        score: a.score,
        reasons: a.reasons.clone(),
        quorum,
        expires_at: now_ms() + timeout.as_millis() as i64,
    }
}

/// "5m", "1h 30m": the countdown shown to a waiting agent.
pub fn human_duration(d: std::time::Duration) -> String {
    humantime::format_duration(std::time::Duration::from_secs(d.as_secs().max(1))).to_string()
}
