//! Time-boxed access grants: the pure part (types and the duration rule). A target marked
//! `requires_grant = true` runs nothing for an agent without a live grant; see docs/grants.md.
//! Persistence is in `store/grants.rs`.

use std::time::Duration;

use crate::ledger::Event;

/// The longest grant when `[grants] max_duration` is not set.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(8 * 3600);

/// One grant row: `agent` may use `target` from `created_at` until `expires_at` (ms since the
/// epoch), unless it was revoked first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    pub id: String,
    pub agent: String,
    pub target: String,
    /// Why it was granted ('' when nobody said).
    pub reason: String,
    /// The operator (`cli:<user>`) or the reviewer who approved the access request.
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// The access request this grant answers (`None` from the operator CLI).
    pub request_id: Option<String>,
}

/// Where a grant stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Active,
    Expired,
    Revoked,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
        }
    }
}

impl Grant {
    /// Active, expired or revoked at `now` (a revocation wins over an expiry).
    pub fn state(&self, now: i64) -> GrantState {
        if self.revoked_at.is_some() {
            GrantState::Revoked
        } else if self.expires_at <= now {
            GrantState::Expired
        } else {
            GrantState::Active
        }
    }

    pub fn is_active(&self, now: i64) -> bool {
        self.state(now) == GrantState::Active
    }
}

impl Grant {
    /// Its `grant.added` ledger event.
    pub fn added_event(&self) -> Event {
        Event::GrantAdded {
            id: self.id.clone(),
            agent: self.agent.clone(),
            target: self.target.clone(),
            expires_at: self.expires_at,
            by: self.created_by.clone(),
            reason: self.reason.clone(),
            request: self.request_id.clone(),
        }
    }

    /// Its `grant.revoked` event (`by` as stored, or `by_default` if it has none).
    pub fn revoked_event(&self, by_default: &str) -> Event {
        Event::GrantRevoked {
            id: self.id.clone(),
            agent: self.agent.clone(),
            target: self.target.clone(),
            by: self
                .revoked_by
                .clone()
                .unwrap_or_else(|| by_default.to_owned()),
        }
    }

    /// Its `grant.expired` event.
    pub fn expired_event(&self) -> Event {
        Event::GrantExpired {
            id: self.id.clone(),
            agent: self.agent.clone(),
            target: self.target.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// A grant to create (`Store::add_grant` sets its id and `created_at`).
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub agent: String,
    pub target: String,
    pub reason: String,
    pub created_by: String,
    pub expires_at: i64,
    pub request_id: Option<String>,
}

/// A grant duration that may not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("a grant must last at least one second")]
    Zero,
    #[error(
        "{} is longer than [grants] max_duration ({})",
        humanize(*asked),
        humanize(*max)
    )]
    TooLong { asked: Duration, max: Duration },
}

/// Refuse a zero duration or one above `max` (`[grants] max_duration`).
pub fn check_duration(asked: Duration, max: Duration) -> Result<(), DurationError> {
    if asked < Duration::from_secs(1) {
        // Stored in whole seconds: less than one would be a grant of nothing.
        Err(DurationError::Zero)
    } else if asked > max {
        Err(DurationError::TooLong { asked, max })
    } else {
        Ok(())
    }
}

/// `2h`, `90m`, `1h30m`, `45s`: whole seconds in the largest units that fit.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_above_the_maximum_are_refused() {
        let max = DEFAULT_MAX_DURATION;
        assert_eq!(check_duration(Duration::from_secs(3600), max), Ok(()));
        assert_eq!(check_duration(max, max), Ok(()));
        assert_eq!(
            check_duration(Duration::ZERO, max),
            Err(DurationError::Zero)
        );
        for sub_second in [Duration::from_nanos(1), Duration::from_millis(999)] {
            assert_eq!(
                check_duration(sub_second, max),
                Err(DurationError::Zero),
                "{sub_second:?} would be stored as a grant of 0 s"
            );
        }
        let e = check_duration(max + Duration::from_secs(1), max).unwrap_err();
        assert_eq!(
            e.to_string(),
            "8h1s is longer than [grants] max_duration (8h)"
        );
    }

    #[test]
    fn state_prefers_revoked_over_expired() {
        let mut g = Grant {
            id: "g".into(),
            agent: "a".into(),
            target: "t".into(),
            reason: String::new(),
            created_by: "x".into(),
            created_at: 0,
            expires_at: 100,
            revoked_at: None,
            revoked_by: None,
            request_id: None,
        };
        assert_eq!(g.state(99), GrantState::Active);
        assert_eq!(g.state(100), GrantState::Expired);
        g.revoked_at = Some(50);
        assert_eq!(g.state(10), GrantState::Revoked);
        assert_eq!(g.state(200), GrantState::Revoked);
    }
}
