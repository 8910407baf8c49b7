//! Approval authority: who may see and decide which request, and how many of whom it needs.
//!
//! Pure and synchronous, like [`crate::policy`]: the gateway, the reviewer listener and
//! `airlock policy check` ask the same [`Authority`] the same questions. It owns three ideas:
//! - **groups** (`[[reviewer_group]]`): named sets of reviewers (by name, or by an identity
//!   provider's groups claim), each optionally limited to a [`Scope`] of targets and labels;
//! - **rules** (`[[approval_rule]]`): the first rule matching a request's tier, agent, target
//!   and labels says what its quorum is — a list of [`Need`]s, AND across entries;
//! - **owners** (`[[agent]] owner`): the human responsible for an agent never counts toward
//!   its requests.
//!
//! A request carries its [`Quorum`] (stored with it), so every node counts the same votes the
//! same way whatever its config says later; a vote carries the groups its reviewer counted for
//! when it was cast. [`Quorum::progress`] assigns approvers to needs with a bipartite matching,
//! so one person counts once overall even when they sit in two required groups.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use airlock_classifier::Tier;
use serde::{Deserialize, Serialize};

use crate::model::RequestView;
pub use crate::quorum::{Need, NeedProgress, Progress, Quorum};

/// High-risk commands always need this many distinct people, whatever a rule says.
pub const MIN_HIGH_APPROVERS: u32 = 2;

/// Most approvals one `require` entry may ask for: beyond it a quorum is a typo, and sums of
/// counts stay far from overflowing.
pub const MAX_COUNT: u32 = 100;

/// Where a group may act: targets (glob names, `*` and `?`) and labels that must all hold.
/// Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Scope {
    pub fn covers(&self, target: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.targets.is_empty() || self.targets.iter().any(|g| glob(g, target)))
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
    }
}

/// `*` any run of characters, `?` one character; everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerGroup {
    pub name: String,
    /// Reviewer names (token reviewers and signed-in users alike).
    pub members: Vec<String>,
    /// Groups-claim values of the identity provider whose holders are members.
    pub oidc_groups: Vec<String>,
    /// `None`: the group may act on every request.
    pub scope: Option<Scope>,
}

/// What a rule applies to; every given part must hold, empty parts match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleMatch {
    pub tiers: Vec<Tier>,
    pub targets: Vec<String>,
    pub agents: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl RuleMatch {
    fn matches(&self, r: &Subject<'_>) -> bool {
        (self.tiers.is_empty() || self.tiers.contains(&r.tier))
            && (self.targets.is_empty() || self.targets.iter().any(|g| glob(g, r.target)))
            && (self.agents.is_empty() || self.agents.iter().any(|g| glob(g, r.agent)))
            && self
                .labels
                .iter()
                .all(|(k, v)| r.labels.get(k).is_some_and(|have| have == v))
    }

    /// Whether a request of tier `t` could match (the tier part only).
    fn admits_tier(&self, t: Tier) -> bool {
        self.tiers.is_empty() || self.tiers.contains(&t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    pub name: String,
    pub matches: RuleMatch,
    pub require: Vec<Need>,
    /// Overrides `[approval] timeout` for the requests it matches.
    pub timeout: Option<Duration>,
}

/// Whether every request `later` matches is also matched by `earlier` (conservatively: a
/// `true` is always right, a `false` may miss an exotic overlap).
fn subsumes(earlier: &RuleMatch, later: &RuleMatch) -> bool {
    let tiers = earlier.tiers.is_empty()
        || (!later.tiers.is_empty() && later.tiers.iter().all(|t| earlier.tiers.contains(t)));
    // A glob list covers another when each later pattern, read as text, is matched by an
    // earlier pattern (`db-*` covers `db-main` and `db-*`).
    let globs = |e: &[String], l: &[String]| {
        e.is_empty() || (!l.is_empty() && l.iter().all(|p| e.iter().any(|g| glob(g, p))))
    };
    let labels = earlier
        .labels
        .iter()
        .all(|(k, v)| later.labels.get(k) == Some(v));
    tiers
        && globs(&earlier.targets, &later.targets)
        && globs(&earlier.agents, &later.agents)
        && labels
}

/// A signed-in reviewer: name and the groups they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    pub name: String,
    pub groups: BTreeSet<String>,
}

/// Why a reviewer may not vote on a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("request {id} is outside the scope of your reviewer groups")]
    OutOfScope { id: String },
    #[error("you own agent {agent}: your vote does not count on its requests")]
    Owner { agent: String },
    #[error("request {id} needs {needs}; you are in none of those groups")]
    NotRequired { id: String, needs: String },
}

impl Refusal {
    /// Stable machine-readable code for the reviewer protocol.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::OutOfScope { .. } => "out_of_scope",
            Refusal::Owner { .. } => "agent_owner",
            Refusal::NotRequired { .. } => "not_required",
        }
    }
}

/// A config problem, named by the group or rule it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthorityError(pub String);

/// What a rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub agent: &'a str,
    pub target: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub tier: Tier,
}

/// The quorum a request gets, with the rule's timeout if it sets one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub quorum: Quorum,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authority {
    groups: Vec<ReviewerGroup>,
    rules: Vec<ApprovalRule>,
    /// Agent name → its owner's reviewer name.
    owners: BTreeMap<String, String>,
    /// Target name → its labels, for scoping what is known by target only (sessions,
    /// recordings, screens).
    targets: BTreeMap<String, BTreeMap<String, String>>,
}

impl Authority {
    /// Checks what makes a config unusable: duplicate or unknown group names, empty or zero
    /// requirements, and any rule that could let a high-risk command run on fewer than
    /// [`MIN_HIGH_APPROVERS`] people.
    pub fn new(
        groups: Vec<ReviewerGroup>,
        rules: Vec<ApprovalRule>,
        owners: BTreeMap<String, String>,
    ) -> Result<Self, AuthorityError> {
        let mut names = BTreeSet::new();
        for g in &groups {
            if g.name == "any" {
                return Err(AuthorityError(
                    "reviewer_group \"any\": the name is reserved (`any = true` in a require entry)"
                        .into(),
                ));
            }
            if !names.insert(g.name.as_str()) {
                return Err(AuthorityError(format!(
                    "reviewer_group {:?} is defined twice",
                    g.name
                )));
            }
        }
        let mut rule_names = BTreeSet::new();
        for r in &rules {
            if !rule_names.insert(r.name.as_str()) {
                return Err(AuthorityError(format!(
                    "approval_rule {:?} is defined twice",
                    r.name
                )));
            }
            if r.require.is_empty() {
                return Err(AuthorityError(format!(
                    "approval_rule {:?}: `require` is empty; a rule must ask for at least one approval",
                    r.name
                )));
            }
            for n in &r.require {
                if n.count == 0 || n.count > MAX_COUNT {
                    return Err(AuthorityError(format!(
                        "approval_rule {:?}: a require entry for {} has count {}; counts go from 1 to {MAX_COUNT}",
                        r.name,
                        n.label(),
                        n.count
                    )));
                }
                if let Some(g) = &n.group
                    && !names.contains(g.as_str())
                {
                    return Err(AuthorityError(format!(
                        "approval_rule {:?} requires group {g:?}, which no [[reviewer_group]] defines",
                        r.name
                    )));
                }
            }
            let total: u32 = r.require.iter().map(|n| n.count).sum();
            if r.matches.admits_tier(Tier::High) && total < MIN_HIGH_APPROVERS {
                return Err(AuthorityError(format!(
                    "approval_rule {:?} can match high-risk commands but requires only {total} approval; \
                     high needs at least {MIN_HIGH_APPROVERS} distinct people. Add `tier = \"medium\"` (or \
                     [\"low\", \"medium\"]) to its match, or require {MIN_HIGH_APPROVERS}",
                    r.name
                )));
            }
        }
        Ok(Self {
            groups,
            rules,
            owners,
            targets: BTreeMap::new(),
        })
    }

    /// The configured targets' labels (sessions and recordings are scoped by target name).
    pub fn with_targets(mut self, targets: BTreeMap<String, BTreeMap<String, String>>) -> Self {
        self.targets = targets;
        self
    }

    /// Whether `r` may see what happened on `target` (sessions, recordings, screens). An
    /// unknown target (removed from the config) is visible only to unscoped reviewers.
    pub fn may_see_target(&self, r: &Reviewer, target: &str) -> bool {
        match self.targets.get(target) {
            Some(labels) => self.may_see(r, target, labels),
            None => self.unscoped(r),
        }
    }

    /// No scope limits `r`: in no group, or in a group without a scope (may act on any
    /// target, even one no config names: an any-target whitelist entry, a removed target).
    pub fn unscoped(&self, r: &Reviewer) -> bool {
        r.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| r.groups.contains(&g.name) && g.scope.is_none())
    }

    pub fn groups(&self) -> &[ReviewerGroup] {
        &self.groups
    }

    pub fn rules(&self) -> &[ApprovalRule] {
        &self.rules
    }

    pub fn owner_of(&self, agent: &str) -> Option<&str> {
        self.owners.get(agent).map(String::as_str)
    }

    /// Whether any group or rule is configured (otherwise every reviewer sees everything and
    /// quorums are the tier defaults, as before groups existed).
    pub fn is_configured(&self) -> bool {
        !self.groups.is_empty() || !self.rules.is_empty()
    }

    /// A reviewer's groups: by name in `members`, or by a groups-claim value in `oidc_groups`.
    pub fn reviewer(&self, name: &str, claimed: &[String]) -> Reviewer {
        let groups = self
            .groups
            .iter()
            .filter(|g| {
                g.members.iter().any(|m| m == name)
                    || g.oidc_groups.iter().any(|o| claimed.contains(o))
            })
            .map(|g| g.name.clone())
            .collect();
        Reviewer {
            name: name.to_owned(),
            groups,
        }
    }

    /// The first rule matching `s`, if any.
    pub fn rule_for(&self, s: &Subject<'_>) -> Option<&ApprovalRule> {
        self.rules.iter().find(|r| r.matches.matches(s))
    }

    /// The quorum a request gets: its rule's, or `default` approvals from anyone (never below
    /// [`MIN_HIGH_APPROVERS`] for high).
    pub fn requirement(&self, s: &Subject<'_>, default: u32) -> Requirement {
        let mut quorum = match self.rule_for(s) {
            Some(r) => Quorum {
                rule: Some(r.name.clone()),
                needs: r.require.clone(),
                excluded: Vec::new(),
            },
            None => Quorum::anyone(default),
        };
        if s.tier == Tier::High && quorum.total() < MIN_HIGH_APPROVERS {
            // Unreachable through `new` for rules; the default is clamped here too.
            quorum = Quorum::anyone(MIN_HIGH_APPROVERS);
        }
        if let Some(o) = self.owner_of(s.agent) {
            quorum.excluded.push(o.to_owned());
        }
        Requirement {
            timeout: self.rule_for(s).and_then(|r| r.timeout),
            quorum,
        }
    }

    /// The groups of `r` whose scope covers `target`/`labels`. `None`: none does, so the
    /// request is out of scope. A reviewer in no group at all is unscoped (`Some(empty)`);
    /// the sign-in front-ends decide whether such a reviewer may sign in at all.
    pub fn groups_covering(
        &self,
        r: &Reviewer,
        target: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Vec<String>> {
        if r.groups.is_empty() {
            return Some(Vec::new());
        }
        let covering: Vec<String> = self
            .groups
            .iter()
            .filter(|g| r.groups.contains(&g.name))
            .filter(|g| g.scope.as_ref().is_none_or(|s| s.covers(target, labels)))
            .map(|g| g.name.clone())
            .collect();
        (!covering.is_empty()).then_some(covering)
    }

    /// What deserves an operator's look (`airlock policy lint`): rules an earlier rule
    /// always wins over, groups nobody can be in, needs larger than their group, scopes and
    /// rules naming no configured target.
    pub fn lint(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, later) in self.rules.iter().enumerate() {
            if let Some(earlier) = self.rules[..i]
                .iter()
                .find(|e| subsumes(&e.matches, &later.matches))
            {
                out.push(format!(
                    "approval_rule {:?} is unreachable: approval_rule {:?} before it matches everything it could",
                    later.name, earlier.name
                ));
            }
            for n in &later.require {
                let Some(g) = n.group.as_deref() else {
                    continue;
                };
                let Some(group) = self.groups.iter().find(|x| x.name == g) else {
                    continue;
                };
                if let Some(scope) = &group.scope {
                    let matched: Vec<_> = self
                        .targets
                        .iter()
                        .filter(|(t, labels)| {
                            (later.matches.targets.is_empty()
                                || later.matches.targets.iter().any(|p| glob(p, t)))
                                && later
                                    .matches
                                    .labels
                                    .iter()
                                    .all(|(k, v)| labels.get(k) == Some(v))
                        })
                        .collect();
                    if !matched.is_empty() && !matched.iter().any(|(t, l)| scope.covers(t, l)) {
                        out.push(format!(
                            "approval_rule {:?} needs group {g:?}, whose scope covers none of the targets the rule matches: its requests can never be approved",
                            later.name
                        ));
                    }
                }
                if group.oidc_groups.is_empty() && (group.members.len() as u32) < n.count {
                    out.push(format!(
                        "approval_rule {:?} needs {} from group {g:?}, which has only {} member(s): its requests can never be approved",
                        later.name,
                        n.count,
                        group.members.len()
                    ));
                }
            }
            self.lint_targets(
                &mut out,
                &format!("approval_rule {:?}", later.name),
                &later.matches.targets,
            );
        }
        if !self.groups.is_empty() {
            for (agent, owner) in &self.owners {
                if !self.groups.iter().any(|g| g.members.contains(owner)) {
                    out.push(format!(
                        "agent {agent:?} owner {owner:?} is a member of no reviewer_group: check the spelling (names are case-sensitive); only that exact name is excluded"
                    ));
                }
            }
        }
        for g in &self.groups {
            if g.members.is_empty() && g.oidc_groups.is_empty() {
                out.push(format!(
                    "reviewer_group {:?} has no members and no oidc_groups: nobody is in it",
                    g.name
                ));
            }
            if let Some(s) = &g.scope {
                self.lint_targets(
                    &mut out,
                    &format!("reviewer_group {:?} scope", g.name),
                    &s.targets,
                );
            }
        }
        out
    }

    fn lint_targets(&self, out: &mut Vec<String>, what: &str, globs: &[String]) {
        if self.targets.is_empty() {
            return;
        }
        for g in globs {
            if !self.targets.keys().any(|t| glob(g, t)) {
                out.push(format!(
                    "{what}: target pattern {g:?} matches no configured target"
                ));
            }
        }
    }

    /// Whether `r` may see `request` (queue, pushes, history, recordings, screen).
    pub fn may_see(&self, r: &Reviewer, target: &str, labels: &BTreeMap<String, String>) -> bool {
        self.groups_covering(r, target, labels).is_some()
    }

    /// Whether `r` may vote on `req`, and if so the groups the vote counts for.
    pub fn standing(
        &self,
        r: &Reviewer,
        req: &RequestView,
        quorum: &Quorum,
    ) -> Result<Vec<String>, Refusal> {
        let s = Subject {
            agent: &req.agent,
            target: &req.target,
            labels: &req.labels,
            tier: req.tier,
        };
        self.standing_on(r, &req.id, &s, quorum)
    }

    /// [`Authority::standing`] for a request described by `s` (not stored yet, or not at hand).
    pub fn standing_on(
        &self,
        r: &Reviewer,
        id: &str,
        s: &Subject<'_>,
        quorum: &Quorum,
    ) -> Result<Vec<String>, Refusal> {
        let groups = self
            .groups_covering(r, s.target, s.labels)
            .ok_or_else(|| Refusal::OutOfScope { id: id.to_owned() })?;
        let same = |x: &str| x.eq_ignore_ascii_case(&r.name);
        if quorum.excluded.iter().any(|x| same(x)) || self.owner_of(s.agent).is_some_and(same) {
            return Err(Refusal::Owner {
                agent: s.agent.to_owned(),
            });
        }
        let required = quorum.groups();
        if !required.is_empty() && !groups.iter().any(|g| required.contains(&g.as_str())) {
            return Err(Refusal::NotRequired {
                id: id.to_owned(),
                needs: quorum.describe(),
            });
        }
        Ok(groups)
    }
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
