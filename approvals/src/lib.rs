//! What sits between the classifier and the reviewers: the store, the policy, the whitelist and
//! the approval broker.
//!
//! One crate because these share one model (requests, votes, reviewers, whitelist entries) and
//! one database; the gateway asks it for decisions and the reviewer listener feeds it votes.
//! Nothing here knows about SSH or WebSockets.

pub mod authority;
pub mod broker;
pub mod cluster;
pub mod grants;
pub mod ids;
pub mod ledger;
pub mod model;
pub mod notify;
pub mod policy;
pub mod presence;
pub mod proposals;
pub mod quorum;
pub mod scripts;
pub mod store;
pub mod whitelist;

pub use authority::{Authority, Need, Progress, Quorum, Refusal, Reviewer};
pub use broker::{Broker, BrokerEvent, DecideAck, DecideError, Ticket, Verdict};
pub use ledger::Ledger;
pub use model::{
    Outcome, RequestKind, RequestStatus, RequestView, SessionKind, SessionOutcome, Vote,
    VoteDecision, WhitelistEntry,
};
pub use policy::{Decision, Policy};
pub use presence::{NobodyOnline, Presence, Seat};
pub use store::NewRequest;
pub use store::{NewWhitelist, PinnedMatch, SessionFilter, SessionRow, Store, StoreError};
pub use whitelist::{Remember, WhitelistError, WhitelistRules};

/// Milliseconds since the Unix epoch; every stored time uses this unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 rendering of a stored time, for messages and the CLI.
pub fn rfc3339(ms: i64) -> String {
    /// 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
    const LAST: i64 = 253_402_300_799_999;
    if ms > LAST {
        // Never from this gateway (TTLs are capped), but a row is data: show it, never panic.
        return format!("after year 9999 ({ms} ms since the epoch)");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
