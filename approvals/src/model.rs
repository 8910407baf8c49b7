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
    /// Distinct approvals needed.
    pub quorum: u32,
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
    pub votes: Vec<Vote>,
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
