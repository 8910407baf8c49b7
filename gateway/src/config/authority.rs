//! `[[reviewer_group]]`, `[[approval_rule]]` and `[[agent]] owner`: the config's side of
//! approval authority. This file only turns TOML into an
//! [`Authority`](airlock_approvals::Authority); what the groups and rules mean lives in
//! `approvals/src/authority.rs`, which also refuses configs that could let a high-risk command
//! run on fewer than two people.

use std::collections::BTreeMap;

use airlock_approvals::Authority;
use airlock_approvals::authority::{ApprovalRule, Need, ReviewerGroup, RuleMatch, Scope};
use airlock_classifier::Tier;
use serde::Deserialize;

use super::{Target, valid_name};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewerGroupFile {
    name: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    oidc_groups: Vec<String>,
    #[serde(default)]
    scope: Option<ScopeFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFile {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalRuleFile {
    name: String,
    #[serde(rename = "match", default)]
    matches: MatchFile,
    require: Vec<RequireFile>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchFile {
    #[serde(default)]
    tier: Option<OneOrMany>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// `tier = "high"` or `tier = ["low", "medium"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequireFile {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    any: Option<bool>,
    count: u32,
}

/// The authority the config describes. `owners` maps `[[agent]]` names to their `owner`.
pub(super) fn parse(
    groups: Vec<ReviewerGroupFile>,
    rules: Vec<ApprovalRuleFile>,
    owners: BTreeMap<String, String>,
    targets: &[Target],
) -> Result<Authority, String> {
    let mut out_groups = Vec::new();
    for g in groups {
        if !valid_name(&g.name) {
            return Err(format!(
                "reviewer_group name {:?}: use letters, digits, '.', '_' or '-' (at most 64)",
                g.name
            ));
        }
        for m in &g.members {
            if !valid_name(m) {
                return Err(format!(
                    "reviewer_group {:?}: member {m:?} is not a valid reviewer name",
                    g.name
                ));
            }
        }
        if let Some(s) = &g.scope {
            super::sections::check_labels(&format!("reviewer_group {}", g.name), &s.labels)?;
        }
        out_groups.push(ReviewerGroup {
            name: g.name,
            members: g.members,
            oidc_groups: g.oidc_groups,
            scope: g.scope.map(|s| Scope {
                targets: s.targets,
                labels: s.labels,
            }),
        });
    }
    let mut out_rules = Vec::new();
    for r in rules {
        let what = format!("approval_rule {:?}", r.name);
        if !valid_name(&r.name) {
            return Err(format!(
                "{what}: use letters, digits, '.', '_' or '-' (at most 64) in its name"
            ));
        }
        let tiers = match r.matches.tier {
            None => Vec::new(),
            Some(OneOrMany::One(t)) => vec![tier(&what, &t)?],
            Some(OneOrMany::Many(ts)) => {
                if ts.is_empty() {
                    return Err(format!(
                        "{what}: `tier = []` matches nothing; leave it out to match every tier"
                    ));
                }
                ts.iter()
                    .map(|t| tier(&what, t))
                    .collect::<Result<_, _>>()?
            }
        };
        let mut require = Vec::new();
        for n in r.require {
            let group = match (n.group, n.any) {
                (Some(g), None | Some(false)) => Some(g),
                (None, Some(true)) => None,
                (Some(_), Some(true)) => {
                    return Err(format!(
                        "{what}: a require entry has both `group` and `any = true`; pick one"
                    ));
                }
                (None, _) => {
                    return Err(format!(
                        "{what}: a require entry needs `group = \"NAME\"` or `any = true`"
                    ));
                }
            };
            require.push(Need {
                group,
                count: n.count,
            });
        }
        let timeout = match r.timeout {
            None => None,
            Some(t) => match humantime::parse_duration(&t) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => return Err(format!("{what}: timeout must be greater than zero")),
                Err(e) => return Err(format!("{what}: timeout = {t:?}: {e}")),
            },
        };
        super::sections::check_labels(&what, &r.matches.labels)?;
        out_rules.push(ApprovalRule {
            name: r.name,
            matches: RuleMatch {
                tiers,
                targets: r.matches.targets,
                agents: r.matches.agents,
                labels: r.matches.labels,
            },
            require,
            timeout,
        });
    }
    let target_labels = targets
        .iter()
        .map(|t| (t.name.clone(), t.labels.clone()))
        .collect();
    Authority::new(out_groups, out_rules, owners)
        .map(|a| a.with_targets(target_labels))
        .map_err(|e| e.to_string())
}

fn tier(what: &str, t: &str) -> Result<Tier, String> {
    t.parse()
        .map_err(|e: String| format!("{what}: match tier {t:?}: {e}"))
}
