//! Teaching the whitelist: what may be remembered, for how long, and the entry it makes.
//!
//! The same rules hold for a reviewer pressing R, `airlock whitelist add` and `import`: high
//! commands are never remembered, a TTL is `1h`/`1d`/`7d`/… or `never`, and an operator can
//! cap it. Every entry made here is in the audit ledger with who made it.

use std::time::Duration;

use crate::ledger::Event;
use airlock_classifier::Tier;
use serde::{Deserialize, Serialize};

use crate::model::{RequestView, WhitelistEntry};
use crate::store::{NewWhitelist, StoreError};
use crate::{Broker, now_ms};

/// A reviewer's "approve and remember" choice (protocol field `remember`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remember {
    /// For every agent, not only the one that asked.
    #[serde(default)]
    pub any_agent: bool,
    /// On every target, not only this one.
    #[serde(default)]
    pub any_target: bool,
    /// `1h`, `1d`, `7d`, … or `never`; absent: the configured default.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// Operator limits on remembering (config `[whitelist]`).
#[derive(Debug, Clone)]
pub struct WhitelistRules {
    /// Lifetime of an entry when nobody chose one; `None` is never.
    pub default_ttl: Option<Duration>,
    /// Longest lifetime anyone may choose; `None`: no cap (and `never` is allowed).
    pub max_ttl: Option<Duration>,
}

impl Default for WhitelistRules {
    fn default() -> Self {
        Self {
            default_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
            max_ttl: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    #[error("high-risk commands can never be whitelisted; they always need reviewers")]
    HighTier,
    #[error("an access request is not a command: it cannot be remembered (approve it alone)")]
    AccessRequest,
    #[error(
        "this request needs {0}; remembering it would let one approval stand in for that next time"
    )]
    NeedsMore(String),
    #[error(
        "this command runs {path}, which an entry could not be bound to ({why}): approve it each time"
    )]
    UnboundScript { path: String, why: String },
    #[error("bad TTL {0:?}: use e.g. 1h, 1d, 7d or never")]
    BadTtl(String),
    #[error("TTL {asked} is longer than the configured maximum {max}")]
    TooLong { asked: String, max: String },
    #[error("the entry could not be put in the audit ledger ({0}), so it was not kept")]
    Unaudited(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WhitelistError {
    /// Stable code for the reviewer protocol.
    pub fn code(&self) -> &'static str {
        match self {
            WhitelistError::HighTier
            | WhitelistError::NeedsMore(_)
            | WhitelistError::AccessRequest
            | WhitelistError::UnboundScript { .. } => "not_rememberable",
            WhitelistError::BadTtl(_) | WhitelistError::TooLong { .. } => "bad_ttl",
            WhitelistError::Store(_) | WhitelistError::Unaudited(_) => "internal",
        }
    }
}

/// The longest finite TTL (100 years): longer ones are refused, not wrapped or stored past
/// what a date can say.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `never` → `None`; otherwise a positive duration of at most [`MAX_TTL`].
pub fn parse_ttl(s: &str) -> Result<Option<Duration>, WhitelistError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match humantime::parse_duration(s) {
        // Longer than MAX_TTL is not a TTL; "never" says that honestly.
        Ok(d) if !d.is_zero() && d <= MAX_TTL => Ok(Some(d)),
        _ => Err(WhitelistError::BadTtl(s.to_owned())),
    }
}

impl WhitelistRules {
    /// The expiry time for a chosen TTL (or the default), checked against the cap.
    pub fn expiry(&self, ttl: Option<&str>, now: i64) -> Result<Option<i64>, WhitelistError> {
        let chosen = match ttl {
            Some(t) => parse_ttl(t)?,
            None => self.default_ttl,
        };
        if let Some(max) = self.max_ttl
            && chosen.is_none_or(|c| c > max)
        {
            return Err(WhitelistError::TooLong {
                asked: ttl.unwrap_or("default").to_owned(),
                max: humantime::format_duration(max).to_string(),
            });
        }
        match chosen {
            None => Ok(None),
            Some(d) => i64::try_from(d.as_millis())
                .ok()
                .and_then(|ms| now.checked_add(ms))
                .map(Some)
                .ok_or_else(|| WhitelistError::BadTtl(ttl.unwrap_or("default").to_owned())),
        }
    }

    /// Whether `request` may be remembered as `choice` asks; `Ok` is the entry's expiry.
    /// Checked before the reviewer's vote is cast, so a refusal leaves no vote behind.
    pub fn check_remember(
        &self,
        request: &RequestView,
        choice: &Remember,
        now: i64,
    ) -> Result<Option<i64>, WhitelistError> {
        if request.kind != crate::model::RequestKind::Command {
            return Err(WhitelistError::AccessRequest);
        }
        if request.tier == Tier::High {
            return Err(WhitelistError::HighTier);
        }
        if !request.needs.is_single() {
            return Err(WhitelistError::NeedsMore(request.needs.describe()));
        }
        for f in &request.scripts {
            if let Some(why) = f.not_rememberable() {
                return Err(WhitelistError::UnboundScript {
                    path: f.path.clone(),
                    why,
                });
            }
        }
        self.expiry(choice.ttl.as_deref(), now)
    }
}

/// The audit entry for a new whitelist entry; `request` when a reviewer's approval made it.
pub fn added_event(e: &WhitelistEntry, by: &str, request: Option<&str>) -> Event {
    Event::WhitelistAdd {
        id: e.id.clone(),
        agent: e.agent.clone(),
        target: e.target.clone(),
        command: e.command.clone(),
        glob: e.glob,
        tier: e.tier,
        expires_at: e.expires_at,
        by: by.to_owned(),
        request: request.map(str::to_owned),
    }
}

impl Broker {
    /// Remember `request` (which `reviewer` approved) as an exact whitelist entry expiring at
    /// `expires_at`, as [`WhitelistRules::check_remember`] allowed.
    pub async fn remember(
        &self,
        reviewer: &str,
        request: &RequestView,
        choice: &Remember,
        expires_at: Option<i64>,
    ) -> Result<WhitelistEntry, WhitelistError> {
        if request.kind != crate::model::RequestKind::Command {
            return Err(WhitelistError::AccessRequest);
        }
        if request.tier == Tier::High {
            return Err(WhitelistError::HighTier);
        }
        // The entry is bound to the bytes reviewers saw: a file not read whole cannot be.
        let mut pins = Vec::new();
        for f in &request.scripts {
            match (f.not_rememberable(), f.pin()) {
                (None, Some(p)) => pins.push(p),
                (why, _) => {
                    return Err(WhitelistError::UnboundScript {
                        path: f.path.clone(),
                        why: why.unwrap_or_else(|| "it was not read whole".into()),
                    });
                }
            }
        }
        let now = now_ms();
        let entry = self
            .store()
            .add_whitelist(&NewWhitelist {
                scripts: &pins,
                agent: (!choice.any_agent).then_some(request.agent.as_str()),
                target: (!choice.any_target).then_some(request.target.as_str()),
                pattern: &request.command,
                words: None,
                tier: request.tier,
                created_by: reviewer,
                created_at: now,
                expires_at,
            })
            .await?;
        let logged = self
            .ledger()
            .append(&added_event(&entry, reviewer, Some(&request.id)))
            .await;
        if let Err(e) = logged {
            // An entry nobody can account for must not stay in force.
            let _ = self.store().revoke_whitelist(&entry.id).await;
            return Err(WhitelistError::Unaudited(e.to_string()));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("never").unwrap(), None);
        assert_eq!(parse_ttl("1h").unwrap(), Some(Duration::from_secs(3600)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").is_err());
        let r = WhitelistRules::default();
        assert_eq!(r.expiry(None, 0).unwrap(), Some(7 * 24 * 3600 * 1000));
        assert_eq!(r.expiry(Some("never"), 0).unwrap(), None);
        let capped = WhitelistRules {
            default_ttl: Some(Duration::from_secs(3600)),
            max_ttl: Some(Duration::from_secs(86400)),
        };
        assert!(capped.expiry(Some("7d"), 0).is_err());
        assert!(capped.expiry(Some("never"), 0).is_err());
        assert_eq!(capped.expiry(Some("1d"), 0).unwrap(), Some(86_400_000));
        for absurd in ["300000y", "1000000000d", "18446744073709551615s"] {
            assert!(r.expiry(Some(absurd), 0).is_err(), "{absurd}");
        }
        assert_eq!(
            crate::rfc3339(i64::MAX),
            format!("after year 9999 ({} ms since the epoch)", i64::MAX)
        );
    }
}
