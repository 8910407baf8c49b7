//! Why something does not run: one typed value for every refusal on the way to a decision.
//!
//! The agent sees `airlock: denied: {Deny}`; operators and tests match on [`Deny::code`], which
//! is stable. Every error on the path to running something becomes one of these (fail closed).

use std::time::Duration;

/// "5m", "1h 30m": durations as agents and reviewers read them.
pub fn human_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Deny {
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error("agent {agent} may not use target {target}")]
    TargetNotAllowed { agent: String, target: String },
    #[error("command is {len} bytes, the limit is {limit} bytes")]
    TooLong { len: usize, limit: usize },
    #[error("empty command")]
    Empty,
    #[error("command is not valid UTF-8")]
    NotUtf8,
    #[error("a command may not contain a NUL byte")]
    Nul,
    /// Policy said no (the tier is above the agent's limit).
    #[error("{0}")]
    Policy(String),
    /// A reviewer denied it (the text names who, and their comment).
    #[error("{0}")]
    Reviewer(String),
    #[error("no reviewer decided within {} (request {request} expired){}{}", human_duration(*.after), if *.nobody { "; no reviewer was connected" } else { "" }, if context.is_empty() { String::new() } else { format!(" — {context}") })]
    Expired {
        request: String,
        after: Duration,
        /// No reviewer who could decide was connected at any point of the wait.
        nobody: bool,
        /// What was asked: tier, deciding rule, who had to approve.
        context: String,
    },
    #[error("no reviewer is connected to approve this (when_nobody_online = \"deny\")")]
    NobodyOnline,
    #[error("the stated reason ({var}) is {len} characters; the limit is {limit}")]
    ReasonTooLong {
        var: &'static str,
        len: usize,
        limit: usize,
    },
    /// Settled as withdrawn by someone else (a failure while it waited).
    #[error("{0}")]
    Withdrawn(String),
    #[error("the gateway is shutting down (request {0} withdrawn)")]
    ShuttingDownWhileWaiting(String),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("audit ledger unavailable")]
    AuditUnavailable,
    /// A known agent's login could not be admitted (unauditable, no free slot).
    #[error("login refused: {0}")]
    LoginRefused(String),
    /// The database is not the one the gateway opened (deleted or replaced).
    #[error("{0}")]
    DatabaseGone(String),
    #[error("session store unavailable")]
    StoreUnavailable,
    #[error("approval store unavailable")]
    ApprovalsUnavailable,
    #[error("whitelist unavailable ({0})")]
    WhitelistUnavailable(String),
    #[error("recording unavailable; commands never run unrecorded")]
    RecordingUnavailable,
    #[error("recording failed")]
    RecordingFailed,
    #[error("no randomness available for a session id")]
    NoRandomness,
    /// A local target whose sandbox cannot be applied on this host refuses every command.
    #[error(
        "target {target} cannot run commands: the sandbox is unavailable on this host ({why}); the operator may set unconfined = true on the target"
    )]
    Unsandboxed { target: String, why: String },
    /// The target could not start it (the text never names upstream addresses or users).
    #[error("{0}")]
    Target(String),
    /// A channel request Airlock does not offer (forwarding, subsystems, …).
    #[error("{0}")]
    NotOffered(String),
    /// The target has `requires_grant = true` and the agent holds no live access grant. The
    /// hint names the gateway `gw`: SSH never tells the server the host name the agent used.
    #[error(
        "no access grant for {target} (request one: ssh airlock@gw request-access {target} 1h \"why\")"
    )]
    NoGrant { target: String },
    /// The grant a running command or shell depended on ended (`how`: expired, revoked by …).
    #[error("the access grant for {target} {how}")]
    GrantEnded { target: String, how: String },
    /// The grant could not be checked, so nothing runs (fail closed).
    #[error("access grants unavailable ({0})")]
    GrantsUnavailable(String),
    /// An access request refused before any reviewer saw it (a duration above
    /// `[grants] max_duration`, no reason, …), or approved without a grant to show.
    #[error("{0}")]
    AccessRefused(String),
    /// A file the command runs no longer holds the bytes that were judged and approved.
    #[error(
        "{path} changed after it was approved: {why}; nothing ran (run it again to have the new version reviewed)"
    )]
    ScriptChanged { path: String, why: String },
}

impl Deny {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Deny::UnknownTarget(_) => "unknown_target",
            Deny::TargetNotAllowed { .. } => "target_not_allowed",
            Deny::TooLong { .. } => "too_long",
            Deny::Empty => "empty",
            Deny::NotUtf8 => "not_utf8",
            Deny::Nul => "nul_byte",
            Deny::Policy(_) => "policy",
            Deny::Reviewer(_) => "reviewer_denied",
            Deny::Expired { .. } => "expired",
            Deny::NobodyOnline => "nobody_online",
            Deny::ReasonTooLong { .. } => "reason_too_long",
            Deny::Withdrawn(_) => "withdrawn",
            Deny::ShuttingDownWhileWaiting(_) | Deny::ShuttingDown => "shutting_down",
            Deny::AuditUnavailable => "audit_unavailable",
            Deny::LoginRefused(_) => "login_refused",
            Deny::DatabaseGone(_) => "database_replaced",
            Deny::StoreUnavailable => "store_unavailable",
            Deny::ApprovalsUnavailable => "approvals_unavailable",
            Deny::WhitelistUnavailable(_) => "whitelist_unavailable",
            Deny::RecordingUnavailable => "recording_unavailable",
            Deny::RecordingFailed => "recording_failed",
            Deny::NoRandomness => "no_randomness",
            Deny::Target(_) => "target",
            Deny::Unsandboxed { .. } => "sandbox_unavailable",
            Deny::NotOffered(_) => "not_offered",
            Deny::NoGrant { .. } => "no_grant",
            Deny::GrantEnded { .. } => "grant_ended",
            Deny::GrantsUnavailable(_) => "grants_unavailable",
            Deny::AccessRefused(_) => "access_refused",
            Deny::ScriptChanged { .. } => "script_changed",
        }
    }

    /// The one line the agent gets: `airlock: denied: …`, or, for a reviewer's deny,
    /// `airlock: denied by alice: not during the freeze`.
    pub fn line(&self) -> String {
        match self {
            Deny::Reviewer(why) => format!("airlock: {why}"),
            _ => format!("airlock: denied: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_before() {
        let d = Deny::TargetNotAllowed {
            agent: "bot".into(),
            target: "prod".into(),
        };
        assert_eq!(
            d.line(),
            "airlock: denied: agent bot may not use target prod"
        );
        assert_eq!(d.code(), "target_not_allowed");
        let e = Deny::Expired {
            request: "r1".into(),
            after: Duration::from_secs(2),
            nobody: false,
            context: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "no reviewer decided within 2s (request r1 expired)"
        );
        let e = Deny::Expired {
            request: "r1".into(),
            after: Duration::from_secs(2),
            nobody: true,
            context: "medium risk, rule fs.write, needed 1 reviewer".into(),
        };
        assert_eq!(
            e.line(),
            "airlock: denied: no reviewer decided within 2s (request r1 expired); no reviewer was connected — medium risk, rule fs.write, needed 1 reviewer"
        );
        let g = Deny::NoGrant {
            target: "prod".into(),
        };
        assert_eq!(
            g.line(),
            r#"airlock: denied: no access grant for prod (request one: ssh airlock@gw request-access prod 1h "why")"#
        );
        let r = Deny::Reviewer("denied by alice: not during the freeze, OPS-12".into());
        assert_eq!(
            r.line(),
            "airlock: denied by alice: not during the freeze, OPS-12"
        );
    }
}
