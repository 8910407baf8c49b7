//! Policy: from an assessment (and a whitelist hit) to a [`Decision`].
//!
//! Pure and synchronous so that `airlock policy check` and the gateway take the very same
//! decision. The session never re-derives a decision; it acts on this value.

use airlock_classifier::{Assessment, Tier};
use serde::Serialize;

use crate::model::WhitelistEntry;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Run at once.
    Allow { why: String },
    /// Block until `quorum` distinct reviewers approve (any deny or the timeout denies).
    Ask { quorum: u32, reasons: Vec<String> },
    /// Never run.
    Deny { reason: String },
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// Low-tier commands run without asking.
    pub auto_allow_low: bool,
    /// Approvals needed for medium commands.
    pub medium_quorum: u32,
    /// Distinct approvals needed for high commands.
    pub high_quorum: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            auto_allow_low: true,
            medium_quorum: 1,
            high_quorum: 2,
        }
    }
}

impl Policy {
    /// Whether a whitelist entry could change the decision for `a`: only for a command that
    /// would otherwise ask reviewers and may be whitelisted at all. The gate skips the lookup
    /// otherwise (every low command would pay two queries for nothing).
    pub fn consults_whitelist(&self, a: &Assessment, max_tier: Tier) -> bool {
        a.tier <= max_tier
            && match a.tier {
                Tier::Low => !self.auto_allow_low,
                Tier::Medium => true,
                Tier::High => false,
            }
    }

    /// Approvals from anyone a command of `tier` needs when no `[[approval_rule]]` says more:
    /// `medium_quorum` (at least 1) below high, `high_quorum` (at least 2) for high.
    pub fn quorum_for(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Low | Tier::Medium => self.medium_quorum.max(1),
            Tier::High => self.high_quorum.max(2),
        }
    }

    /// `max_tier` is the highest tier this agent may even ask for (from the agent's config).
    pub fn decide(
        &self,
        a: &Assessment,
        whitelisted: Option<&WhitelistEntry>,
        max_tier: Tier,
    ) -> Decision {
        let reasons: Vec<String> = a.reasons.iter().map(|r| r.text.clone()).collect();
        if a.tier > max_tier {
            return Decision::Deny {
                reason: format!(
                    "{} commands are not allowed for this agent (limit: {max_tier})",
                    a.tier
                ),
            };
        }
        match a.tier {
            Tier::Low if self.auto_allow_low => Decision::Allow {
                why: "low risk".into(),
            },
            // High is never whitelisted, whatever an entry says.
            Tier::Low | Tier::Medium if whitelisted.is_some() => Decision::Allow {
                why: format!(
                    "whitelisted (entry {})",
                    whitelisted.map(|w| w.id.as_str()).unwrap_or_default()
                ),
            },
            Tier::Low | Tier::Medium | Tier::High => Decision::Ask {
                quorum: self.quorum_for(a.tier),
                reasons,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_classifier::{Classifier, Context};

    fn assess(cmd: &str) -> Assessment {
        Classifier::builtin().classify(cmd, &Context::default())
    }

    fn entry() -> WhitelistEntry {
        WhitelistEntry {
            id: "w1".into(),
            agent: None,
            target: None,
            command: String::new(),
            glob: false,
            tier: Tier::Medium,
            created_by: "alice".into(),
            created_at: 0,
            expires_at: None,
        }
    }

    #[test]
    fn decisions() {
        let p = Policy::default();
        assert!(matches!(
            p.decide(&assess("ls"), None, Tier::High),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            p.decide(&assess("touch x"), None, Tier::High),
            Decision::Ask { quorum: 1, .. }
        ));
        assert!(matches!(
            p.decide(&assess("touch x"), Some(&entry()), Tier::High),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            p.decide(&assess("rm -rf /"), None, Tier::High),
            Decision::Ask { quorum: 2, .. }
        ));
        assert!(matches!(
            p.decide(&assess("rm -rf /"), Some(&entry()), Tier::High),
            Decision::Ask { quorum: 2, .. }
        ));
        assert!(matches!(
            p.decide(&assess("rm -rf /"), None, Tier::Medium),
            Decision::Deny { .. }
        ));
        let strict = Policy {
            auto_allow_low: false,
            ..Policy::default()
        };
        assert!(matches!(
            strict.decide(&assess("ls"), None, Tier::High),
            Decision::Ask { quorum: 1, .. }
        ));
    }

    #[test]
    fn whitelist_is_consulted_only_where_it_can_matter() {
        let p = Policy::default();
        assert!(!p.consults_whitelist(&assess("ls"), Tier::High));
        assert!(p.consults_whitelist(&assess("touch x"), Tier::High));
        assert!(!p.consults_whitelist(&assess("touch x"), Tier::Low));
        assert!(!p.consults_whitelist(&assess("rm -rf /"), Tier::High));
        let strict = Policy {
            auto_allow_low: false,
            ..Policy::default()
        };
        assert!(strict.consults_whitelist(&assess("ls"), Tier::High));
    }

    #[test]
    fn high_quorum_is_never_below_two() {
        let p = Policy {
            high_quorum: 1,
            ..Policy::default()
        };
        assert!(matches!(
            p.decide(&assess("rm -rf /"), None, Tier::High),
            Decision::Ask { quorum: 2, .. }
        ));
    }
}
