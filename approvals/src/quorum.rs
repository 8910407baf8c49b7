//! What a request needs and where it stands: [`Quorum`] (its `require` entries, fixed when it
//! opens) and [`Progress`] (who fills which place). Split from [`crate::authority`], which
//! decides *which* quorum a request gets and who may vote; this module only counts.
//!
//! Counting is a maximum bipartite matching of approvers to places, so one person fills one
//! place even when they sit in two required groups, and a later vote can still complete a
//! quorum by moving an earlier approver to the other place they qualify for.

use serde::{Deserialize, Serialize};

use crate::model::{Vote, VoteDecision};

/// More places than any config can ask for (`require` entries × their count cap).
const MAX_SLOTS: u32 = 10_000;

/// One `require` entry: `count` distinct approvers from `group` (`None`: from anyone who may
/// act on the request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub count: u32,
}

impl Need {
    pub fn label(&self) -> &str {
        self.group.as_deref().unwrap_or("any")
    }
}

/// What a request needs, fixed when it is opened and stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// The `[[approval_rule]]` that set it; `None`: the tier default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub needs: Vec<Need>,
    /// People who never count (the agent's owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

impl Default for Quorum {
    fn default() -> Self {
        Self::anyone(1)
    }
}

impl Quorum {
    /// `count` approvals from anyone: the tier defaults, and requests stored before rules.
    pub fn anyone(count: u32) -> Self {
        Self {
            rule: None,
            needs: vec![Need {
                group: None,
                count: count.max(1),
            }],
            excluded: Vec::new(),
        }
    }

    /// Distinct approvers needed in all.
    pub fn total(&self) -> u32 {
        // Saturating: a stored row is data; `Authority::new` keeps configured counts small.
        self.needs
            .iter()
            .fold(0u32, |sum, n| sum.saturating_add(n.count))
    }

    /// One approval from anyone: what a whitelist entry (one reviewer's remembered
    /// approval) may stand in for. Anything more — two people, a named group — may not.
    pub fn is_single(&self) -> bool {
        self.total() <= 1 && self.is_anyone()
    }

    /// Whether it only asks for approvals from anyone (no group named).
    pub fn is_anyone(&self) -> bool {
        self.needs.iter().all(|n| n.group.is_none())
    }

    /// The groups a reviewer must be in to count (empty when anyone counts).
    pub fn groups(&self) -> Vec<&str> {
        if self.needs.iter().any(|n| n.group.is_none()) {
            return Vec::new();
        }
        self.needs
            .iter()
            .filter_map(|n| n.group.as_deref())
            .collect()
    }

    /// Who counts for which need, from the approving votes in voting order. Each approver
    /// fills at most one place (a maximum bipartite matching: earlier voters keep their place
    /// unless moving them lets a later one count too).
    pub fn progress(&self, votes: &[Vote]) -> Progress {
        let approvers: Vec<&Vote> = votes
            .iter()
            .filter(|v| v.decision == VoteDecision::Approve)
            .filter(|v| {
                !self
                    .excluded
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(&v.reviewer))
            })
            .collect();
        // One slot per needed approval, labelled with its need's index. A stored quorum beyond
        // any configurable size (a damaged row) is never met rather than allocated.
        if self.total() > MAX_SLOTS {
            return Progress {
                entries: self
                    .needs
                    .iter()
                    .map(|n| NeedProgress {
                        label: n.label().to_owned(),
                        count: n.count,
                        approvers: Vec::new(),
                    })
                    .collect(),
                met: false,
            };
        }
        let slots: Vec<usize> = self
            .needs
            .iter()
            .enumerate()
            .flat_map(|(i, n)| std::iter::repeat_n(i, n.count as usize))
            .collect();
        let fits = |v: &Vote, need: usize| match &self.needs[need].group {
            None => true,
            Some(g) => v.groups.iter().any(|h| h == g),
        };
        let mut holder: Vec<Option<usize>> = vec![None; slots.len()];
        for a in 0..approvers.len() {
            let mut seen = vec![false; slots.len()];
            augment(a, &approvers, &slots, &fits, &mut holder, &mut seen);
        }
        let entries = self
            .needs
            .iter()
            .enumerate()
            .map(|(i, n)| NeedProgress {
                label: n.label().to_owned(),
                count: n.count,
                approvers: slots
                    .iter()
                    .zip(&holder)
                    .filter(|(s, _)| **s == i)
                    .filter_map(|(_, h)| h.map(|a| approvers[a].reviewer.clone()))
                    .collect(),
            })
            .collect::<Vec<_>>();
        let met = entries.iter().all(|e| e.approvers.len() as u32 >= e.count);
        Progress { entries, met }
    }

    /// `1 from dba and 1 from sre`, `2 reviewers`, for the agent's waiting line.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .needs
            .iter()
            .map(|n| match &n.group {
                None if self.needs.len() == 1 => {
                    if n.count == 1 {
                        "1 reviewer".to_owned()
                    } else {
                        format!("{} reviewers", n.count)
                    }
                }
                None => format!("{} more from anyone", n.count),
                Some(g) => format!("{} from {g}", n.count),
            })
            .collect();
        // " and " only (no commas, no parentheses): the agent's waiting line is parsed by
        // clients (`airlock mcp`) at its ", " separators.
        parts.join(" and ")
    }
}

/// Kuhn's augmenting path from approver `a`; `holder[slot]` is the approver in it.
fn augment(
    a: usize,
    approvers: &[&Vote],
    slots: &[usize],
    fits: &dyn Fn(&Vote, usize) -> bool,
    holder: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for s in 0..slots.len() {
        if seen[s] || !fits(approvers[a], slots[s]) {
            continue;
        }
        seen[s] = true;
        let free = match holder[s] {
            None => true,
            Some(other) => augment(other, approvers, slots, fits, holder, seen),
        };
        if free {
            holder[s] = Some(a);
            return true;
        }
    }
    false
}

/// Where one need stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedProgress {
    /// The group, or `any`.
    pub label: String,
    pub count: u32,
    /// Who fills it, in voting order.
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub entries: Vec<NeedProgress>,
    /// Every need is filled.
    pub met: bool,
}

impl std::fmt::Display for Progress {
    /// `dba 0/1 · sre 1/1 (bob)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" · ")?;
            }
            write!(f, "{} {}/{}", e.label, e.approvers.len(), e.count)?;
            if !e.approvers.is_empty() {
                write!(f, " ({})", e.approvers.join(", "))?;
            }
        }
        Ok(())
    }
}
