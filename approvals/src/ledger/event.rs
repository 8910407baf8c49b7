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
        /// The files the command runs that the gateway read whole: resolved path and SHA-256
        /// of the bytes judged (what an approval is bound to).
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        scripts: Vec<crate::scripts::ScriptPin>,
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
    /// An entry copied as a proposal (`whitelist promote` / `copy`): it allows nothing until
    /// accepted; `source` says where it came from.
    #[serde(rename = "whitelist.proposed")]
    WhitelistProposed {
        id: String,
        agent: Option<String>,
        target: Option<String>,
        command: String,
        glob: bool,
        tier: Tier,
        expires_at: Option<i64>,
        by: String,
        source: String,
    },
    /// One person accepted a proposal: `accepted` of the `needed` so far (when they meet,
    /// a `whitelist.add` follows).
    #[serde(rename = "whitelist.proposal_accepted")]
    WhitelistProposalAccepted {
        id: String,
        by: String,
        accepted: u32,
        needed: u32,
    },
    #[serde(rename = "whitelist.proposal_rejected")]
    WhitelistProposalRejected { id: String, by: String },
    #[serde(rename = "upstream.host_key_mismatch")]
    UpstreamHostKeyMismatch { target: String, presented: String },
    /// SIGTERM: what the drain found.
    #[serde(rename = "gateway.stop")]
    GatewayStop {
        /// Sessions still open when the signal came.
        sessions: u64,
        grace_ms: u64,
    },
    /// An agent asked reviewers for access to a target (`request-access` on the control
    /// target): request `request` is open; its votes and outcome are the request events, and
    /// an approval is followed by `grant.added` with the same `request`.
    #[serde(rename = "grant.requested")]
    GrantRequested {
        request: String,
        session: String,
        agent: String,
        target: String,
        duration_s: u64,
        reason: String,
    },
    /// An access grant was made (operator CLI, or a reviewer approving an access request).
    #[serde(rename = "grant.added")]
    GrantAdded {
        id: String,
        agent: String,
        target: String,
        expires_at: i64,
        by: String,
        reason: String,
        /// The access request it answers (`None` from the CLI).
        request: Option<String>,
    },
    /// A grant was revoked before it expired; what ran under it is ended.
    #[serde(rename = "grant.revoked")]
    GrantRevoked {
        id: String,
        agent: String,
        target: String,
        by: String,
    },
    /// A gateway noticed that a grant expired (written once, by the first node to notice).
    #[serde(rename = "grant.expired")]
    GrantExpired {
        id: String,
        agent: String,
        target: String,
        expires_at: i64,
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
            Event::WhitelistProposed { .. } => "whitelist.proposed",
            Event::WhitelistProposalAccepted { .. } => "whitelist.proposal_accepted",
            Event::WhitelistProposalRejected { .. } => "whitelist.proposal_rejected",
            Event::UpstreamHostKeyMismatch { .. } => "upstream.host_key_mismatch",
            Event::GatewayStop { .. } => "gateway.stop",
            Event::GrantRequested { .. } => "grant.requested",
            Event::GrantAdded { .. } => "grant.added",
            Event::GrantRevoked { .. } => "grant.revoked",
            Event::GrantExpired { .. } => "grant.expired",
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
            | Event::WhitelistAdd { .. }
            | Event::WhitelistProposed { .. }
            | Event::WhitelistProposalAccepted { .. } => true,
            // A grant is in force once its row is written, so whoever adds one appends this
            // right after and revokes the grant at once if the append fails.
            Event::GrantAdded { .. } => true,
            // Reviewers are asked only once the ask is in the ledger (else it is withdrawn).
            Event::GrantRequested { .. } => true,
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
            | Event::WhitelistProposalRejected { .. }
            | Event::UpstreamHostKeyMismatch { .. }
            | Event::GatewayStop { .. }
            | Event::GrantRevoked { .. }
            | Event::GrantExpired { .. } => false,
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
#[path = "event_docs.rs"]
mod docs;
