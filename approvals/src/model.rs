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
    /// `pending` or an [`Outcome`] name.
    pub status: String,
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
