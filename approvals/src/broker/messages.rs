//! What the broker says: events for reviewers ([`BrokerEvent`]), a vote's result
//! ([`DecideAck`]) or refusal ([`DecideError`], with stable codes for the protocol), and the
//! final word a waiting session gets ([`Verdict`]).

use crate::authority::{Progress, Refusal};
use crate::model::{Outcome, RequestStatus, RequestView, VoteDecision};
use crate::store::StoreError;

/// What reviewers are told.
#[derive(Debug, Clone)]
pub enum BrokerEvent {
    Requested(Box<RequestView>),
    Voted {
        id: String,
        reviewer: String,
        decision: VoteDecision,
        approvals: Vec<String>,
        /// Who fills which need so far (`dba 0/1 · sre 1/1 (bob)`).
        progress: Progress,
    },
    Resolved {
        id: String,
        outcome: Outcome,
        /// The vote that settled it, or `airlock`.
        by: String,
        /// Every approving reviewer, in voting order.
        approvers: Vec<String>,
        /// The settling vote's comment.
        comment: Option<String>,
        /// What the agent was told (`approved by alice and bob`, `denied by bob: …`).
        why: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("unknown request {0}")]
    UnknownRequest(String),
    #[error("request {id} is already {status}")]
    AlreadyResolved { id: String, status: RequestStatus },
    #[error("you have already voted on request {0}")]
    AlreadyVoted(String),
    #[error("you cannot vote on your own request {0}")]
    OwnRequest(String),
    #[error("{0}")]
    BadComment(String),
    /// Scope, ownership or group membership keeps this reviewer from voting on it.
    #[error("{0}")]
    Refused(Refusal),
    #[error(
        "your approval of request {0} is stored, but its outcome could not be written to the audit ledger, so the request was denied"
    )]
    Unaudited(String),
    /// An approved access request whose grant could not be stored or audited: denied.
    #[error("request {id} was approved, but {why}, so it was denied")]
    NotGranted { id: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DecideError {
    /// Stable machine-readable code for the reviewer protocol.
    pub fn code(&self) -> &'static str {
        match self {
            DecideError::UnknownRequest(_) => "unknown_request",
            DecideError::AlreadyResolved { .. } => "already_resolved",
            DecideError::AlreadyVoted(_) => "already_voted",
            DecideError::OwnRequest(_) => "own_request",
            DecideError::BadComment(_) => "bad_comment",
            DecideError::Refused(r) => r.code(),
            DecideError::Store(_) | DecideError::Unaudited(_) | DecideError::NotGranted { .. } => {
                "internal"
            }
        }
    }
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideAck {
    Counted {
        approvals: Vec<String>,
        needed: u32,
        progress: Progress,
    },
    /// It settled the request; who approved it (in voting order) of how many were needed.
    Resolved {
        outcome: Outcome,
        approvals: Vec<String>,
        needed: u32,
        progress: Progress,
    },
}

/// The final word on a request, as the waiting session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Who settled it (reviewer name, or `airlock` for timeouts and failures).
    pub by: String,
    /// Human explanation for the agent's `airlock: denied: …` line.
    pub why: String,
}
