//! The shared vocabulary: requests as reviewers see them, votes, outcomes, whitelist entries.

use serde::{Deserialize, Serialize};

use airlock_classifier::{Reason, Tier};

/// How a request ended. `Expired` covers both a timeout and a gateway restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approved,
    Denied,
    Expired,
    Withdrawn,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "approved" => Outcome::Approved,
            "denied" => Outcome::Denied,
            "expired" => Outcome::Expired,
            "withdrawn" => Outcome::Withdrawn,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request stands: waiting, or settled with an [`Outcome`]. Stored and sent as one
/// word (`pending`, `approved`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum RequestStatus {
    Pending,
    Settled(Outcome),
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Settled(o) => o.as_str(),
        }
    }

    /// A stored status word; anything unknown is an error, never "pending".
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(RequestStatus::Pending),
            other => Outcome::parse(other)
                .map(RequestStatus::Settled)
                .ok_or_else(|| format!("unknown request status {other:?}")),
        }
    }

    pub fn outcome(self) -> Option<Outcome> {
        match self {
            RequestStatus::Pending => None,
            RequestStatus::Settled(o) => Some(o),
        }
    }
}

impl From<RequestStatus> for String {
    fn from(s: RequestStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl TryFrom<String> for RequestStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RequestStatus::parse(&s)
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of channel a session is: one command, the interactive gated shell, or a script
/// fed to a shell request without a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Exec,
    Shell,
    Script,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Exec => "exec",
            SessionKind::Shell => "shell",
            SessionKind::Script => "script",
        }
    }
}

/// How a session ended, as the sessions table and the ledger say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionOutcome {
    /// The command (or the shell) ran and ended by itself.
    Ran,
    /// The shell or script session ended normally (ctrl-d, `exit`, end of input).
    Ended,
    /// Refused before anything ran.
    Denied,
    /// The agent left (or the gateway stopped) while a request waited; nothing ran.
    Withdrawn,
    /// The agent's connection went away while something ran.
    Disconnected,
    Idle,
    MaxLength,
    /// The gateway stopped and ended what still ran after the grace period.
    Shutdown,
    /// Recording, store or target failure.
    Error,
    /// The access grant it ran under expired or was revoked, so the gateway ended it.
    GrantEnded,
    /// Found open at start-up: the previous run died with it.
    Interrupted,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Ran => "ran",
            SessionOutcome::Ended => "ended",
            SessionOutcome::Denied => "denied",
            SessionOutcome::Withdrawn => "withdrawn",
            SessionOutcome::Disconnected => "disconnected",
            SessionOutcome::Idle => "idle",
            SessionOutcome::MaxLength => "max-length",
            SessionOutcome::Shutdown => "shutdown",
            SessionOutcome::Error => "error",
            SessionOutcome::GrantEnded => "grant-ended",
            SessionOutcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for SessionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoteDecision {
    Approve,
    Deny,
}

impl VoteDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteDecision::Approve => "approve",
            VoteDecision::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub reviewer: String,
    pub decision: VoteDecision,
    pub comment: Option<String>,
    pub at: i64,
    /// The reviewer groups this vote counted for when it was cast (in scope of the request).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What a request asks reviewers for: to run a command, or to grant the agent time-boxed
/// access to the request's target (a grant; see [`crate::grants`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    #[default]
    Command,
    /// Access to `RequestView::target` for `duration_s` seconds from the approval.
    Access { duration_s: u64 },
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Command => "command",
            RequestKind::Access { .. } => "access",
        }
    }

    /// How long the access asked for lasts (`None` for a command).
    pub fn access_duration(self) -> Option<std::time::Duration> {
        match self {
            RequestKind::Command => None,
            RequestKind::Access { duration_s } => Some(std::time::Duration::from_secs(duration_s)),
        }
    }
}

/// A request as stored and as shown to reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub session_id: String,
    pub agent: String,
    pub target: String,
    pub command: String,
    pub tier: Tier,
    pub score: u8,
    pub reasons: Vec<Reason>,
    /// Distinct approvals needed in all (`needs.total()`).
    pub quorum: u32,
    /// Who must approve: the matched `[[approval_rule]]`'s requirements, or the tier default.
    #[serde(default)]
    pub needs: crate::authority::Quorum,
    pub status: RequestStatus,
    pub created_at: i64,
    pub expires_at: i64,
    /// The gateway node that holds the waiting agent.
    pub node: String,
    /// Why the agent says it runs this (`AIRLOCK_REASON`), if it said.
    #[serde(default)]
    pub reason: Option<String>,
    /// The target's labels (`env = "prod"`, …).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// A command (the default) or an access request (`command` then reads
    /// `request-access TARGET DURATION`, for views that know only commands).
    #[serde(default)]
    pub kind: RequestKind,
    /// Files the command runs, as the gateway read them from the target (`bash x.sh`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<crate::scripts::ScriptFile>,
    pub votes: Vec<Vote>,
}

/// Longest comment a reviewer may attach to a vote.
pub const MAX_COMMENT_CHARS: usize = 500;

/// A reviewer's comment goes to the agent's terminal, History, markers and the ledger: one
/// line of visible text, bounded. `Err` says why not.
pub fn check_comment(comment: &str) -> Result<(), String> {
    let n = comment.chars().count();
    if n > MAX_COMMENT_CHARS {
        return Err(format!(
            "the comment is {n} characters; the limit is {MAX_COMMENT_CHARS}"
        ));
    }
    let shown = airlock_classifier::visible::Shown::of(comment);
    if comment.contains('\n') || !shown.is_plain() {
        return Err(format!(
            "the comment must be one line of visible text (it reads {:?})",
            shown.one_line()
        ));
    }
    Ok(())
}

/// `alice`, `alice and bob`, `alice, bob and carol`.
pub fn names(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What settled a request, said the way the agent, the recording and History say it: every
/// approver (`approved by alice and bob (alice: canary first)`), or the deny and its comment
/// (`denied by bob: not during the freeze`). `None` when no vote settled it.
pub fn settled_by_votes(outcome: Outcome, votes: &[Vote]) -> Option<String> {
    fn said(v: &Vote) -> Option<&str> {
        v.comment.as_deref().filter(|c| !c.trim().is_empty())
    }
    match outcome {
        Outcome::Approved => {
            let approvers: Vec<&Vote> = votes
                .iter()
                .filter(|v| v.decision == VoteDecision::Approve)
                .collect();
            if approvers.is_empty() {
                return None;
            }
            let who: Vec<&str> = approvers.iter().map(|v| v.reviewer.as_str()).collect();
            let notes: Vec<String> = approvers
                .iter()
                .filter_map(|v| said(v).map(|c| format!("{}: {c}", v.reviewer)))
                .collect();
            Some(if notes.is_empty() {
                format!("approved by {}", names(&who))
            } else {
                format!("approved by {} ({})", names(&who), notes.join("; "))
            })
        }
        Outcome::Denied => {
            let deny = votes.iter().find(|v| v.decision == VoteDecision::Deny)?;
            Some(match said(deny) {
                Some(c) => format!("denied by {}: {c}", deny.reviewer),
                None => format!("denied by {}", deny.reviewer),
            })
        }
        Outcome::Expired | Outcome::Withdrawn => None,
    }
}

impl RequestView {
    pub fn approvals(&self) -> Vec<String> {
        self.votes
            .iter()
            .filter(|v| v.decision == VoteDecision::Approve)
            .map(|v| v.reviewer.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistEntry {
    pub id: String,
    /// `None`: any agent.
    pub agent: Option<String>,
    /// `None`: any target.
    pub target: Option<String>,
    /// The exact command line, or the glob pattern when `glob`.
    pub command: String,
    /// `command` is a glob over the argv (`docker restart *`), not an exact line.
    #[serde(default)]
    pub glob: bool,
    /// The tier it was approved at: it covers commands up to this tier, never high.
    pub tier: Tier,
    pub created_by: String,
    pub created_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(reviewer: &str, decision: VoteDecision, comment: Option<&str>) -> Vote {
        Vote {
            reviewer: reviewer.into(),
            decision,
            comment: comment.map(str::to_owned),
            at: 0,
            groups: Vec::new(),
        }
    }

    #[test]
    fn every_approver_is_named_and_a_deny_carries_its_comment() {
        use VoteDecision::{Approve, Deny};
        let two = [
            vote("alice", Approve, Some("canary first")),
            vote("bob", Approve, None),
        ];
        assert_eq!(
            settled_by_votes(Outcome::Approved, &two).as_deref(),
            Some("approved by alice and bob (alice: canary first)")
        );
        let three = [
            vote("a", Approve, None),
            vote("b", Approve, None),
            vote("c", Approve, None),
        ];
        assert_eq!(
            settled_by_votes(Outcome::Approved, &three).as_deref(),
            Some("approved by a, b and c")
        );
        let denied = [
            vote("alice", Approve, None),
            vote("bob", Deny, Some("not during the freeze, OPS-12")),
        ];
        assert_eq!(
            settled_by_votes(Outcome::Denied, &denied).as_deref(),
            Some("denied by bob: not during the freeze, OPS-12")
        );
        assert_eq!(settled_by_votes(Outcome::Expired, &denied), None);
    }

    #[test]
    fn comments_are_one_bounded_line_of_visible_text() {
        assert!(check_comment("not during the freeze, OPS-12").is_ok());
        assert!(check_comment(&"x".repeat(501)).is_err());
        for bad in ["a\nb", "ok\x1b[2K", "hi \u{202E}", "a\u{200B}b"] {
            assert!(check_comment(bad).is_err(), "{bad:?}");
        }
    }
}
