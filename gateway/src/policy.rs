//! `airlock policy check` and `airlock policy lint`: the gateway's decision and the validity of
//! a config, without starting the gateway — so both can gate a CI pipeline.
//!
//! `check` runs the same [`gate::assess`](crate::gate::assess) and
//! [`Policy::decide`](airlock_approvals::Policy::decide) the gateway runs; only the whitelist,
//! which lives in the database, is not consulted (an entry can only turn "ask" into "allow").

use std::path::Path;

use airlock_approvals::Decision;
use airlock_classifier::Assessment;

use crate::config::{Config, TargetKind, read_authorized_keys};
use crate::gate;

/// A usage or config problem: `policy check` exits 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown agent {0:?} (not in [[agent]] nor in the authorized_keys file)")]
    UnknownAgent(String),
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// What the gateway would do with one command.
#[derive(Debug)]
pub struct Check {
    /// `None` when the command was refused before classification (access, size, empty).
    pub assessment: Option<Assessment>,
    pub decision: Decision,
    /// For an ask: who must approve (the matched `[[approval_rule]]` or the tier default) and
    /// how long they have.
    pub needs: Option<(airlock_approvals::Quorum, std::time::Duration)>,
}

impl Check {
    /// 0 for allow or gated, 1 for deny.
    pub fn exit_code(&self) -> u8 {
        match self.decision {
            Decision::Allow { .. } | Decision::Ask { .. } => 0,
            Decision::Deny { .. } => 1,
        }
    }
}

/// The decision the gateway would make for `agent` running `command` on `target`.
pub fn check(
    config: &Config,
    agent: &str,
    target: &str,
    command: &str,
) -> Result<Check, CheckError> {
    let agent = config
        .agent_named(agent)
        .ok_or_else(|| CheckError::UnknownAgent(agent.to_owned()))?;
    if config.target(target).is_none() {
        return Err(CheckError::UnknownTarget(target.to_owned()));
    }
    Ok(
        match gate::assess(config, &config.classifier()?, &agent, target, command) {
            Err(deny) => Check {
                assessment: None,
                decision: Decision::Deny {
                    reason: deny.to_string(),
                },
                needs: None,
            },
            Ok((judgement, t)) => {
                let a = judgement.assessment;
                let decision = config.policy().decide(&a, None, agent.max_tier);
                let needs = match &decision {
                    Decision::Ask { quorum, .. } => {
                        Some(gate::requirement(config, &agent, &t, &a, *quorum))
                    }
                    _ => None,
                };
                Check {
                    assessment: Some(a),
                    decision,
                    needs,
                }
            }
        },
    )
}

/// One lint finding; errors make the config unusable, warnings deserve a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub error: bool,
    pub message: String,
}

/// Validate a config and every rule pack it loads (the builtin ones included), and run the
/// packs' `[[example]]` entries.
pub fn lint(path: &Path) -> (Option<Config>, Vec<Finding>) {
    let mut findings = Vec::new();
    // The rule packs compile on first use: lint asks for the classifier so a bad one is found.
    let loaded = Config::load(Some(path)).and_then(|c| c.classifier().map(|k| (c, k)));
    let (config, classifier) = match loaded {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding {
                error: true,
                message: e.to_string(),
            });
            return (None, findings);
        }
    };
    for (e, got) in classifier.failing_examples() {
        findings.push(Finding {
            error: true,
            message: format!(
                "{}:{}: example {:?} should be {} but is {got}",
                e.pack, e.line, e.command, e.tier
            ),
        });
    }
    for (id, earlier, later) in classifier.pack().overrides() {
        let same_file = earlier == later;
        findings.push(Finding {
            error: false,
            message: if same_file {
                format!("{later}: rule {id} is defined twice; the later definition wins")
            } else {
                format!("{later}: rule {id} overrides the rule of the same id in {earlier}")
            },
        });
    }
    for t in &config.targets {
        let warning = match &t.kind {
            TargetKind::Ssh(up) if up.runner.is_none() => Some(format!(
                "target {}: no runner: low commands there are classified but not enforced (they run with write access); install airlock on the upstream and set runner = \"/path/to/airlock\"",
                t.name
            )),
            TargetKind::Local(l) if l.unconfined => Some(format!(
                "target {}: unconfined = true: commands run without the sandbox and can read and change the gateway's own files",
                t.name
            )),
            TargetKind::Local(l) if l.user.is_none() => Some(format!(
                "target {}: no user: commands run as the gateway's own user (in the sandbox); a production local target should name a user",
                t.name
            )),
            _ => None,
        };
        if let Some(message) = warning {
            findings.push(Finding {
                error: false,
                message,
            });
        }
    }
    if config.agents.is_empty() && read_authorized_keys(&config.authorized_keys).is_empty() {
        findings.push(Finding {
            error: false,
            message: format!(
                "{}: no agents: add [[agent]] entries or keys to {}",
                config.source,
                config.authorized_keys.display()
            ),
        });
    }
    for message in config.authority.lint() {
        findings.push(Finding {
            error: false,
            message: format!("{}: {message}", config.source),
        });
    }
    if !config.auto_allow_low {
        findings.push(Finding {
            error: false,
            message: format!(
                "{}: auto_allow_low = false: every command, even `ls`, waits for a reviewer",
                config.source
            ),
        });
    }
    (Some(config), findings)
}
