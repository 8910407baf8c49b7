//! Every kind of audit event, as one typed enum: the ledger's schema lives here and nowhere
//! else. An event serialises to `{"kind": "...", "payload": {...}}`, the two parts the ledger
//! stores (see docs/ledger.md, which a test checks against this enum).
//!
//! Adding an event: add a variant here (with its `#[serde(rename)]`), say in
//! [`Event::gates_action`] whether it must be written before the action it records, add its row
//! to docs/ledger.md and a sample to the docs test. Nothing else has to change.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use airlock_classifier::Tier;

use crate::model::{Outcome, SessionKind, SessionOutcome, VoteDecision};

/// Whether a login was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthOutcome {
    Accepted,
    Refused,
}

/// What the gate decided for a command, as the ledger says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Ask,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum Event {
    #[serde(rename = "config.loaded")]
    ConfigLoaded {
        source: String,
        config_sha256: String,
        expired_requests: u64,
        interrupted_sessions: u64,
    },
    #[serde(rename = "auth")]
    Auth {
        /// `None` when no agent owns the key (the login was refused).
        agent: Option<String>,
        target: String,
        /// SHA256 fingerprint of the offered key.
        key: String,
        peer: String,
        outcome: AuthOutcome,
    },
    #[serde(rename = "session.open")]
    SessionOpen {
        session: String,
        agent: String,
        target: String,
        kind: SessionKind,
        peer: String,
    },
    #[serde(rename = "session.close")]
    SessionClose {
        session: String,
        outcome: SessionOutcome,
        exit_status: Option<i64>,
    },
    /// Every command or shell line, with its classification (absent when it was refused before
    /// classification) and the gate's decision.
    #[serde(rename = "command.submitted")]
    CommandSubmitted {
        session: String,
        agent: String,
        target: String,
        command: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        tier: Option<Tier>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        score: Option<u8>,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        rules: Vec<String>,
        decision: Verdict,
        /// Allow or deny: why. Ask: `None`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        why: Option<String>,
        /// Ask: distinct approvals needed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        quorum: Option<u32>,
    },
    /// An agent asked the control target what the gateway would do with a command (nothing
    /// ran, no request was opened).
    #[serde(rename = "command.explained")]
    CommandExplained {
        agent: String,
        target: String,
        command: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        tier: Option<Tier>,
        decision: Verdict,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        why: Option<String>,
    },
    #[serde(rename = "request.opened")]
    RequestOpened {
        request: String,
        session: String,
        agent: String,
        target: String,
        command: String,
        quorum: u32,
        expires_at: i64,
        reason: Option<String>,
        /// The `[[approval_rule]]` that set the quorum; absent for the tier default.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rule: Option<String>,
        /// Who must approve, in words (`1 from dba and 1 from sre`). Absent in entries written
        /// before approval rules existed.
        #[serde(skip_serializing_if = "String::is_empty", default)]
        needs: String,
    },
    #[serde(rename = "request.vote")]
    RequestVote {
        request: String,
        reviewer: String,
        decision: VoteDecision,
        comment: String,
        /// The reviewer groups the vote counted for (in scope of the request).
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        groups: Vec<String>,
    },
    /// A vote refused for who cast it: out of the reviewer's scope, the agent's owner, or in
    /// none of the groups the request needs. Nothing was counted.
    #[serde(rename = "request.vote_refused")]
    VoteRefused {
        request: String,
        reviewer: String,
        decision: VoteDecision,
        /// `out_of_scope`, `agent_owner`, `not_required`, `own_request`.
        code: String,
        why: String,
    },
    /// A reviewer asked to read something outside their scope (a session's recording or
    /// screen); nothing was sent.
    #[serde(rename = "reviewer.read_refused")]
    ReadRefused {
        reviewer: String,
        /// `session <id>`.
        what: String,
        code: String,
    },
    /// A reviewer signed in to the web page through the identity provider (OpenID Connect);
    /// `groups` are the reviewer groups they map to, `claimed` the provider's groups claim.
    #[serde(rename = "reviewer.sign_in")]
    SignIn {
        reviewer: String,
        groups: Vec<String>,
        claimed: Vec<String>,
    },
    /// A sign-in the gateway refused after the provider answered (or failed to): no session.
    #[serde(rename = "reviewer.sign_in_refused")]
    SignInRefused {
        /// The name the provider vouched for, when it got that far.
        reviewer: Option<String>,
        /// `no_group`, `bad_state`, `provider_error`, `bad_token`, `no_username`.
        code: String,
        why: String,
    },
    /// A signed-in reviewer signed out (the session row is gone).
    #[serde(rename = "reviewer.sign_out")]
    SignOut { reviewer: String },
    #[serde(rename = "request.outcome")]
    RequestOutcome {
        request: String,
        outcome: Outcome,
        by: String,
        why: String,
    },
    #[serde(rename = "exec.start")]
    ExecStart {
        session: String,
        command: String,
        /// `read-only` (ran without a human: the sandbox allowed no writes) or `read-write`.
        /// Absent in entries written before the sandbox existed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        sandbox: Option<String>,
    },
    #[serde(rename = "exec.exit")]
    ExecExit {
        session: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        status: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<String>,
        /// Set when the gateway ended the command (shutdown, client gone, recording failure).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        killed: Option<String>,
    },
    #[serde(rename = "recording.closed")]
    RecordingClosed {
        session: String,
        /// File name in the recordings directory.
        file: String,
        size: u64,
        sha256: String,
    },
    #[serde(rename = "reviewer.add")]
    ReviewerAdd { reviewer: String, by: String },
    #[serde(rename = "reviewer.remove")]
    ReviewerRemove { reviewer: String, by: String },
    #[serde(rename = "whitelist.add")]
    WhitelistAdd {
        id: String,
        agent: Option<String>,
        target: Option<String>,
        command: String,
        glob: bool,
        tier: Tier,
        expires_at: Option<i64>,
        by: String,
        /// The request a reviewer remembered it from (`None` from the CLI).
        request: Option<String>,
    },
    #[serde(rename = "whitelist.revoke")]
    WhitelistRevoke { id: String, by: String },
    #[serde(rename = "upstream.host_key_mismatch")]
    UpstreamHostKeyMismatch { target: String, presented: String },
    /// SIGTERM: what the drain found.
    #[serde(rename = "gateway.stop")]
    GatewayStop {
        /// Sessions still open when the signal came.
        sessions: u64,
        grace_ms: u64,
    },
}

impl Event {
    /// The `kind` string this event is stored under.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ConfigLoaded { .. } => "config.loaded",
            Event::Auth { .. } => "auth",
            Event::SessionOpen { .. } => "session.open",
            Event::SessionClose { .. } => "session.close",
            Event::CommandSubmitted { .. } => "command.submitted",
            Event::CommandExplained { .. } => "command.explained",
            Event::RequestOpened { .. } => "request.opened",
            Event::RequestVote { .. } => "request.vote",
            Event::VoteRefused { .. } => "request.vote_refused",
            Event::ReadRefused { .. } => "reviewer.read_refused",
            Event::SignIn { .. } => "reviewer.sign_in",
            Event::SignInRefused { .. } => "reviewer.sign_in_refused",
            Event::SignOut { .. } => "reviewer.sign_out",
            Event::RequestOutcome { .. } => "request.outcome",
            Event::ExecStart { .. } => "exec.start",
            Event::ExecExit { .. } => "exec.exit",
            Event::RecordingClosed { .. } => "recording.closed",
            Event::ReviewerAdd { .. } => "reviewer.add",
            Event::ReviewerRemove { .. } => "reviewer.remove",
            Event::WhitelistAdd { .. } => "whitelist.add",
            Event::WhitelistRevoke { .. } => "whitelist.revoke",
            Event::UpstreamHostKeyMismatch { .. } => "upstream.host_key_mismatch",
            Event::GatewayStop { .. } => "gateway.stop",
        }
    }

    /// Whether the action this event records may only happen once the event is written: if the
    /// append fails, the login, session, command or request is refused (fail closed). The
    /// others are written after the fact, and a failed append is logged.
    pub fn gates_action(&self) -> bool {
        match self {
            Event::Auth { outcome, .. } => *outcome == AuthOutcome::Accepted,
            Event::SessionOpen { .. }
            | Event::CommandSubmitted { .. }
            | Event::RequestOpened { .. }
            | Event::ExecStart { .. }
            | Event::SignIn { .. }
            | Event::WhitelistAdd { .. } => true,
            Event::ConfigLoaded { .. }
            | Event::CommandExplained { .. }
            | Event::SessionClose { .. }
            | Event::RequestVote { .. }
            | Event::VoteRefused { .. }
            | Event::ReadRefused { .. }
            | Event::SignInRefused { .. }
            | Event::SignOut { .. }
            | Event::RequestOutcome { .. }
            | Event::ExecExit { .. }
            | Event::RecordingClosed { .. }
            | Event::ReviewerAdd { .. }
            | Event::ReviewerRemove { .. }
            | Event::WhitelistRevoke { .. }
            | Event::UpstreamHostKeyMismatch { .. }
            | Event::GatewayStop { .. } => false,
        }
    }

    /// The payload as stored: the event's fields.
    pub fn payload(&self) -> Value {
        // Serialising these plain structs cannot fail (no maps with non-string keys).
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("payload").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod docs {
    //! docs/ledger.md's table of events is checked against this enum: every kind, and every
    //! payload field of each, in both directions.

    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const DOC: &str = include_str!("../../../docs/ledger.md");

    /// One of every event, with every optional field set.
    fn samples() -> Vec<Event> {
        let s = || "x".to_owned();
        vec![
            Event::ConfigLoaded {
                source: s(),
                config_sha256: s(),
                expired_requests: 0,
                interrupted_sessions: 0,
            },
            Event::Auth {
                agent: Some(s()),
                target: s(),
                key: s(),
                peer: s(),
                outcome: AuthOutcome::Accepted,
            },
            Event::SessionOpen {
                session: s(),
                agent: s(),
                target: s(),
                kind: SessionKind::Exec,
                peer: s(),
            },
            Event::SessionClose {
                session: s(),
                outcome: SessionOutcome::Ran,
                exit_status: Some(0),
            },
            Event::CommandSubmitted {
                session: s(),
                agent: s(),
                target: s(),
                command: s(),
                tier: Some(Tier::Low),
                score: Some(1),
                rules: vec![s()],
                decision: Verdict::Allow,
                why: Some(s()),
                quorum: Some(1),
            },
            Event::RequestOpened {
                request: s(),
                session: s(),
                agent: s(),
                target: s(),
                command: s(),
                quorum: 1,
                expires_at: 0,
                reason: None,
                rule: Some(s()),
                needs: s(),
            },
            Event::RequestVote {
                request: s(),
                reviewer: s(),
                decision: VoteDecision::Approve,
                comment: s(),
                groups: vec![s()],
            },
            Event::VoteRefused {
                request: s(),
                reviewer: s(),
                decision: VoteDecision::Approve,
                code: s(),
                why: s(),
            },
            Event::ReadRefused {
                reviewer: s(),
                what: s(),
                code: s(),
            },
            Event::SignIn {
                reviewer: s(),
                groups: vec![s()],
                claimed: vec![s()],
            },
            Event::SignInRefused {
                reviewer: Some(s()),
                code: s(),
                why: s(),
            },
            Event::SignOut { reviewer: s() },
            Event::RequestOutcome {
                request: s(),
                outcome: Outcome::Approved,
                by: s(),
                why: s(),
            },
            Event::ExecStart {
                session: s(),
                command: s(),
                sandbox: Some(s()),
            },
            Event::ExecExit {
                session: s(),
                status: Some(0),
                signal: Some(s()),
                killed: Some(s()),
            },
            Event::RecordingClosed {
                session: s(),
                file: s(),
                size: 0,
                sha256: s(),
            },
            Event::ReviewerAdd {
                reviewer: s(),
                by: s(),
            },
            Event::ReviewerRemove {
                reviewer: s(),
                by: s(),
            },
            Event::WhitelistAdd {
                id: s(),
                agent: None,
                target: None,
                command: s(),
                glob: false,
                tier: Tier::Medium,
                expires_at: None,
                by: s(),
                request: None,
            },
            Event::WhitelistRevoke { id: s(), by: s() },
            Event::UpstreamHostKeyMismatch {
                target: s(),
                presented: s(),
            },
            Event::GatewayStop {
                sessions: 0,
                grace_ms: 0,
            },
            Event::CommandExplained {
                agent: s(),
                target: s(),
                command: s(),
                tier: Some(Tier::Low),
                decision: Verdict::Allow,
                why: Some(s()),
            },
        ]
    }

    /// A new variant fails to compile here until it has a number, and the test below fails
    /// until `samples` has one of it.
    fn variant(e: &Event) -> usize {
        match e {
            Event::ConfigLoaded { .. } => 0,
            Event::Auth { .. } => 1,
            Event::SessionOpen { .. } => 2,
            Event::SessionClose { .. } => 3,
            Event::CommandSubmitted { .. } => 4,
            Event::RequestOpened { .. } => 5,
            Event::RequestVote { .. } => 6,
            Event::RequestOutcome { .. } => 7,
            Event::ExecStart { .. } => 8,
            Event::ExecExit { .. } => 9,
            Event::RecordingClosed { .. } => 10,
            Event::ReviewerAdd { .. } => 11,
            Event::ReviewerRemove { .. } => 12,
            Event::WhitelistAdd { .. } => 13,
            Event::WhitelistRevoke { .. } => 14,
            Event::UpstreamHostKeyMismatch { .. } => 15,
            Event::GatewayStop { .. } => 16,
            Event::CommandExplained { .. } => 17,
            Event::VoteRefused { .. } => 18,
            Event::ReadRefused { .. } => 19,
            Event::SignIn { .. } => 20,
            Event::SignInRefused { .. } => 21,
            Event::SignOut { .. } => 22,
        }
    }
    const VARIANTS: usize = 23;

    fn backticked(text: &str) -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// kind → payload fields, from the table.
    fn documented() -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for row in DOC.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "docs/ledger.md row: {row}");
            let kinds = backticked(cells[0]);
            // Parenthesised notes hold example values, not fields.
            let mut payload = String::new();
            let mut depth = 0;
            for c in cells[2].chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    c if depth == 0 => payload.push(c),
                    _ => {}
                }
            }
            let parts: Vec<&str> = payload.split(" / ").collect();
            for (i, kind) in kinds.iter().enumerate() {
                let part = parts.get(i).or(parts.last()).copied().unwrap_or("");
                let fields: BTreeSet<String> = backticked(part).into_iter().collect();
                out.insert(kind.clone(), fields);
            }
        }
        out
    }

    #[test]
    fn docs_table_matches_the_enum() {
        let samples = samples();
        let covered: BTreeSet<usize> = samples.iter().map(variant).collect();
        assert_eq!(covered.len(), VARIANTS, "samples() lacks a variant");
        let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in &samples {
            let Value::Object(map) = e.payload() else {
                panic!("{} has no object payload", e.kind());
            };
            fields
                .entry(e.kind().to_owned())
                .or_default()
                .extend(map.keys().cloned());
        }
        let doc = documented();
        assert_eq!(
            doc.keys().collect::<Vec<_>>(),
            fields.keys().collect::<Vec<_>>(),
            "event kinds in docs/ledger.md differ from the Event enum"
        );
        for (kind, got) in &fields {
            assert_eq!(
                &doc[kind], got,
                "docs/ledger.md: payload fields of {kind} differ from the Event enum"
            );
        }
    }

    #[test]
    fn kind_is_the_serde_tag() {
        for e in samples() {
            let v = serde_json::to_value(&e).expect("serialises");
            assert_eq!(v["kind"], e.kind());
        }
    }
}
