//! Whitelist proposals: entries copied from staging (or from another agent) that allow nothing
//! until people accept them ("staging first", docs/whitelist-promotion.md).
//!
//! Who may accept, and how many must, is decided here and nowhere else, for the web page and
//! the CLI alike:
//! - an entry at low needs one person, at medium two distinct people; high is never whitelisted;
//! - the entry's agent (and the agent's owner) never counts;
//! - a reviewer's scope must cover the entry's target, and an entry for every target needs a
//!   reviewer no scope limits;
//! - the operator (`airlock whitelist review`, named `cli:$USER` like every operator change)
//!   is unscoped and counts as the person `$USER`: `cli:alice` and the reviewer `alice` are one
//!   person, so one human cannot make a medium entry live alone by using both front-ends.
//!
//! Anyone who may accept may reject. Every step is in the audit ledger; an acceptance whose
//! audit entry cannot be written is undone (fail closed).

use std::fmt;
use std::str::FromStr;

use airlock_classifier::Tier;
use serde::{Deserialize, Serialize};

use crate::authority::{Authority, Reviewer};
use crate::ledger::{Event, Ledger};
use crate::model::WhitelistEntry;
use crate::store::{Accepted, Store, StoreError};
use crate::whitelist::added_event;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    /// In force (the gate matches it).
    Live,
    /// Waiting for acceptance; allows nothing.
    Proposed,
    /// Rejected; allows nothing, ever.
    Rejected,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Live => "live",
            ProposalStatus::Proposed => "proposed",
            ProposalStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProposalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(ProposalStatus::Live),
            "proposed" => Ok(ProposalStatus::Proposed),
            "rejected" => Ok(ProposalStatus::Rejected),
            other => Err(format!("bad whitelist status {other:?}")),
        }
    }
}

/// A whitelist entry with its proposal state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(flatten)]
    pub entry: WhitelistEntry,
    pub status: ProposalStatus,
    pub proposed_by: Option<String>,
    /// Where it came from ("promoted from target staging", "copied from agent a").
    pub source: Option<String>,
    /// The people who accepted it so far (person names: `cli:` dropped).
    pub accepted_by: Vec<String>,
}

impl Proposal {
    /// How many distinct people must accept it; `None`: it can never go live.
    pub fn needed(&self) -> Option<usize> {
        needed(self.entry.tier)
    }
}

/// People needed to make an entry of `tier` live: one at low, two at medium, never at high.
pub fn needed(tier: Tier) -> Option<usize> {
    match tier {
        Tier::Low => Some(1),
        Tier::Medium => Some(2),
        Tier::High => None,
    }
}

/// Who is accepting or rejecting.
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    /// A reviewer of the web page or API, with their groups.
    Reviewer(&'a Reviewer),
    /// The operator at the CLI (`cli:$USER`): unscoped.
    Operator(&'a str),
}

impl Actor<'_> {
    /// The name the ledger shows.
    pub fn name(&self) -> &str {
        match self {
            Actor::Reviewer(r) => &r.name,
            Actor::Operator(n) => n,
        }
    }

    /// The person behind the name: `cli:alice` is `alice`.
    pub fn person(&self) -> &str {
        let n = self.name();
        n.strip_prefix("cli:").unwrap_or(n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("no proposed whitelist entry {0}")]
    NotFound(String),
    #[error("whitelist entry {id} is {status}, not proposed")]
    NotProposed { id: String, status: ProposalStatus },
    #[error("{who} already accepted whitelist entry {id}; it needs another person")]
    Again { id: String, who: String },
    #[error("{0} is the entry's agent (or its owner) and cannot accept or reject it")]
    OwnAgent(String),
    #[error("whitelist entry {0} is outside the scope of your reviewer groups")]
    OutOfScope(String),
    #[error("whitelist entry {0} is high risk: it can never be whitelisted")]
    HighTier(String),
    #[error(
        "the change could not be put in the audit ledger ({0}); an acceptance is undone, a rejection stands"
    )]
    Unaudited(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProposalError {
    /// Stable code for the API and the CLI's JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ProposalError::NotFound(_) => "not_found",
            ProposalError::NotProposed { .. } => "not_proposed",
            ProposalError::Again { .. } => "already_accepted",
            ProposalError::OwnAgent(_) => "own_agent",
            ProposalError::OutOfScope(_) => "out_of_scope",
            ProposalError::HighTier(_) => "not_rememberable",
            ProposalError::Unaudited(_) | ProposalError::Store(_) => "internal",
        }
    }
}

/// Whether `actor` may see `p` at all (the web list shows only these).
pub fn may_see(authority: &Authority, actor: &Actor<'_>, p: &WhitelistEntry) -> bool {
    let Actor::Reviewer(r) = actor else {
        return true;
    };
    match &p.target {
        Some(t) => authority.may_see_target(r, t),
        None => authority.unscoped(r),
    }
}

/// Whether `actor` may accept or reject `e`: in scope, and not its agent or the agent's owner.
pub fn may_decide(
    authority: &Authority,
    actor: &Actor<'_>,
    e: &WhitelistEntry,
) -> Result<(), ProposalError> {
    if !may_see(authority, actor, e) {
        return Err(ProposalError::OutOfScope(e.id.clone()));
    }
    if let Some(agent) = &e.agent
        && (agent.eq_ignore_ascii_case(actor.person())
            || agent.eq_ignore_ascii_case(actor.name())
            || authority
                .owner_of(agent)
                .is_some_and(|o| o.eq_ignore_ascii_case(actor.person())))
    {
        return Err(ProposalError::OwnAgent(actor.name().to_owned()));
    }
    Ok(())
}

/// What an acceptance did.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptOutcome {
    pub id: String,
    pub accepted_by: Vec<String>,
    pub needed: usize,
    /// This acceptance made the entry live.
    pub live: bool,
}

async fn proposed(store: &Store, id: &str) -> Result<Proposal, ProposalError> {
    let p = store
        .proposal(id)
        .await?
        .ok_or_else(|| ProposalError::NotFound(id.to_owned()))?;
    if p.status != ProposalStatus::Proposed {
        return Err(ProposalError::NotProposed {
            id: id.to_owned(),
            status: p.status,
        });
    }
    Ok(p)
}

/// `actor` accepts proposal `id`; the last person needed makes it live.
pub async fn accept(
    store: &Store,
    ledger: &Ledger,
    authority: &Authority,
    actor: &Actor<'_>,
    id: &str,
    now: i64,
) -> Result<AcceptOutcome, ProposalError> {
    let p = proposed(store, id).await?;
    may_decide(authority, actor, &p.entry)?;
    let needed = p
        .needed()
        .ok_or_else(|| ProposalError::HighTier(id.to_owned()))?;
    let person = actor.person();
    let accepted = match store.accept_proposal(id, person, needed, now).await? {
        Accepted::Counted { accepted, live } => (accepted, live),
        Accepted::Again => {
            return Err(ProposalError::Again {
                id: id.to_owned(),
                who: person.to_owned(),
            });
        }
        Accepted::NotProposed(None) => return Err(ProposalError::NotFound(id.to_owned())),
        Accepted::NotProposed(Some(status)) => {
            return Err(ProposalError::NotProposed {
                id: id.to_owned(),
                status,
            });
        }
    };
    let (accepted_by, live) = accepted;
    let event = Event::WhitelistProposalAccepted {
        id: id.to_owned(),
        by: actor.name().to_owned(),
        accepted: u32::try_from(accepted_by.len()).unwrap_or(u32::MAX),
        needed: u32::try_from(needed).unwrap_or(u32::MAX),
    };
    let mut logged = ledger.append(&event).await.map(|_| ());
    if logged.is_ok() && live {
        logged = ledger
            .append(&added_event(&p.entry, actor.name(), None))
            .await
            .map(|_| ());
    }
    if let Err(e) = logged {
        // An acceptance (or a live entry) nobody can account for must not stand.
        if let Err(undo) = store.undo_acceptance(id, person).await {
            tracing::error!(error = %undo, id, "could not undo an unaudited acceptance");
        }
        return Err(ProposalError::Unaudited(e.to_string()));
    }
    Ok(AcceptOutcome {
        id: id.to_owned(),
        accepted_by,
        needed,
        live,
    })
}

/// `actor` rejects proposal `id`: it will never be live.
pub async fn reject(
    store: &Store,
    ledger: &Ledger,
    authority: &Authority,
    actor: &Actor<'_>,
    id: &str,
) -> Result<(), ProposalError> {
    let p = proposed(store, id).await?;
    may_decide(authority, actor, &p.entry)?;
    if !store.reject_proposal(id).await? {
        let status = store
            .proposal(id)
            .await?
            .map(|p| p.status)
            .ok_or_else(|| ProposalError::NotFound(id.to_owned()))?;
        return Err(ProposalError::NotProposed {
            id: id.to_owned(),
            status,
        });
    }
    // A rejection only takes power away: written after the fact, and its failure reported.
    ledger
        .append(&Event::WhitelistProposalRejected {
            id: id.to_owned(),
            by: actor.name().to_owned(),
        })
        .await
        .map_err(|e| ProposalError::Unaudited(e.to_string()))?;
    Ok(())
}

/// The audit entry for a new proposal.
pub fn proposed_event(e: &WhitelistEntry, by: &str, source: &str) -> Event {
    Event::WhitelistProposed {
        id: e.id.clone(),
        agent: e.agent.clone(),
        target: e.target.clone(),
        command: e.command.clone(),
        glob: e.glob,
        tier: e.tier,
        expires_at: e.expires_at,
        by: by.to_owned(),
        source: source.to_owned(),
    }
}

#[cfg(test)]
#[path = "proposals_tests.rs"]
mod tests;
