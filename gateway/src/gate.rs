//! The gate: command text in, [`Judged`] out — access, limits, classifier, whitelist, policy.
//!
//! Owns the decision and nothing else: it writes no audit entry and runs nothing (the session
//! record writes what was judged; the session acts on the value). Touches: the config's agents
//! and targets, the classifier, the policy, and the store's whitelist and access grants (read
//! only).

use std::sync::Arc;

use airlock_approvals::authority::Subject;
use airlock_approvals::{Decision, Policy, Quorum, Store, now_ms};
use airlock_classifier::{Assessment, Classifier, Context, Judgement};

use crate::config::{Agent, Config, Target};
use crate::continuity::Continuity;
use crate::deny::Deny;
use crate::scripts::{self, Reader, Seen};

/// What the gate decided, as a value the session acts on.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Run at once.
    Allow {
        why: String,
        /// The whitelist entry that allowed it (id, expiry in ms), when one did.
        entry: Option<(String, Option<i64>)>,
    },
    /// Ask reviewers: who must approve (the matched `[[approval_rule]]` or the tier
    /// default) and how long they have.
    Ask {
        needs: Quorum,
        timeout: std::time::Duration,
    },
    Deny(Deny),
}

/// A judged command.
#[derive(Debug, Clone)]
pub enum Judged {
    /// Refused before classification (access, size, empty).
    Refused(Deny),
    /// What the classifier saw and what policy made of it.
    Classified {
        assessment: Assessment,
        /// The target the command will run on, resolved once here (boxed: a target carries its
        /// environment, labels and credentials).
        target: Box<Target>,
        verdict: Verdict,
        /// The files it runs, as read and judged (empty for most commands).
        scripts: Vec<Seen>,
    },
}

/// Who must approve a command the policy sends to reviewers with `quorum` (the tier
/// default): the first matching `[[approval_rule]]` decides, with the agent's owner excluded;
/// and how long the request may wait. Pure, shared by the gate and `airlock policy check`.
pub fn requirement(
    config: &Config,
    agent: &Agent,
    target: &Target,
    assessment: &Assessment,
    quorum: u32,
) -> (Quorum, std::time::Duration) {
    let r = config.authority.requirement(
        &Subject {
            agent: &agent.name,
            target: &target.name,
            labels: &target.labels,
            tier: assessment.tier,
        },
        quorum,
    );
    (r.quorum, r.timeout.unwrap_or(config.approval_timeout))
}

/// The part of judging that needs only the config: access, limits and classification. Pure, so
/// `airlock policy check` gives exactly the gateway's answer.
pub fn assess(
    config: &Config,
    classifier: &Classifier,
    agent: &Agent,
    target: &str,
    command: &str,
) -> Result<(Judgement, Target), Deny> {
    let Some(t) = config.target(target) else {
        return Err(Deny::UnknownTarget(target.to_owned()));
    };
    if !agent.may_use(target) {
        return Err(Deny::TargetNotAllowed {
            agent: agent.name.clone(),
            target: target.to_owned(),
        });
    }
    if command.len() > config.max_command_bytes {
        return Err(Deny::TooLong {
            len: command.len(),
            limit: config.max_command_bytes,
        });
    }
    if command.trim().is_empty() {
        return Err(Deny::Empty);
    }
    // bash cannot take a NUL in its `-c` argument: refuse before anyone is asked.
    if command.contains('\0') {
        return Err(Deny::Nul);
    }
    let ctx = Context {
        agent: agent.name.clone(),
        target: target.to_owned(),
        labels: t.labels.clone(),
    };
    Ok((classifier.judge(command, &ctx), t.clone()))
}

/// What the gate needs, and nothing more.
#[derive(Clone)]
pub struct Gate {
    config: Arc<Config>,
    classifier: Arc<Classifier>,
    policy: Policy,
    /// Read for whitelist entries only.
    store: Store,
    /// Whether the database is still the one opened (refuses everything when not).
    continuity: Arc<Continuity>,
    /// Where the classifier's latency is counted (`None`: not counted, as in `policy check`).
    metrics: Option<crate::metrics::Metrics>,
}

impl Gate {
    /// `Err` when the rule packs do not compile (start-up reports it, naming the pack).
    pub fn new(
        config: Arc<Config>,
        store: Store,
        continuity: Arc<Continuity>,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            classifier: Arc::new(config.classifier()?),
            policy: config.policy(),
            config,
            store,
            continuity,
            metrics: None,
        })
    }

    /// Count the classifier's latency into `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Check access and that the target exists, before a session opens anything.
    pub fn admit(&self, agent: &Agent, target: &str) -> Result<Target, Deny> {
        let t = self
            .config
            .target(target)
            .ok_or_else(|| Deny::UnknownTarget(target.to_owned()))?;
        if !agent.may_use(target) {
            return Err(Deny::TargetNotAllowed {
                agent: agent.name.clone(),
                target: target.to_owned(),
            });
        }
        Ok(t.clone())
    }

    /// Judge `command` for `agent` on `target`. Never fails: every failure is a
    /// [`Verdict::Deny`].
    /// The targets `agent` may use, in config order (the control target's `targets`).
    pub fn targets_for(&self, agent: &Agent) -> Vec<&Target> {
        self.config
            .targets
            .iter()
            .filter(|t| agent.may_use(&t.name))
            .collect()
    }

    /// Why nothing may run right now, if the database is not the one the gateway opened
    /// (checked before a session opens its record, which would write to it).
    pub fn refusal(&self) -> Option<Deny> {
        self.continuity.broken().map(Deny::DatabaseGone)
    }

    /// Refuse a command over `[ssh] max_command_bytes` before anything is stored about it.
    pub fn length_ok(&self, command: &str) -> Result<(), Deny> {
        if command.len() > self.config.max_command_bytes {
            return Err(Deny::TooLong {
                len: command.len(),
                limit: self.config.max_command_bytes,
            });
        }
        Ok(())
    }

    /// On a `requires_grant` target the agent may use, a live access grant — else
    /// [`Deny::NoGrant`], or [`Deny::GrantsUnavailable`] when the store cannot say (fail
    /// closed). Other targets, unknown ones and ones the agent may not use pass here (the
    /// access checks that follow refuse the latter two). The control target is never one.
    pub async fn grant_ok(&self, agent: &Agent, target: &str) -> Result<(), Deny> {
        let Some(t) = self.config.target(target) else {
            return Ok(());
        };
        if !t.requires_grant || !agent.may_use(target) {
            return Ok(());
        }
        match self.store.active_grant(&agent.name, target, now_ms()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Deny::NoGrant {
                target: target.to_owned(),
            }),
            Err(e) => Err(Deny::GrantsUnavailable(e.to_string())),
        }
    }

    /// How long a request waits for reviewers.
    pub fn approval_timeout(&self) -> std::time::Duration {
        self.config.approval_timeout
    }

    /// Who must approve an access request for `target`, and how long it may wait: the first
    /// `[[approval_rule]]` matching it as a medium-tier request, else 1 approval from anyone
    /// (the agent's owner excluded either way).
    pub fn access_requirement(
        &self,
        agent: &Agent,
        target: &Target,
    ) -> (Quorum, std::time::Duration) {
        let r = self.config.authority.requirement(
            &Subject {
                agent: &agent.name,
                target: &target.name,
                labels: &target.labels,
                tier: airlock_classifier::Tier::Medium,
            },
            1,
        );
        (r.quorum, r.timeout.unwrap_or(self.config.approval_timeout))
    }

    /// `[grants] max_duration`: the longest access an agent may ask for.
    pub fn grant_max_duration(&self) -> std::time::Duration {
        self.config.grant_max_duration
    }

    /// Judge `command` for `agent` on `target`, reading the files it runs with `files`.
    pub async fn judge<R: Reader>(
        &self,
        agent: &Agent,
        target: &str,
        command: &str,
        files: &R,
    ) -> Judged {
        if let Some(why) = self.continuity.broken() {
            return Judged::Refused(Deny::DatabaseGone(why));
        }
        // Before classification: without a live grant nothing runs, not even a low or
        // whitelisted command.
        if let Err(deny) = self.grant_ok(agent, target).await {
            return Judged::Refused(deny);
        }
        let started = std::time::Instant::now();
        let assessed = assess(&self.config, &self.classifier, agent, target, command);
        if let (Some(m), Ok(_)) = (&self.metrics, &assessed) {
            m.classified(started.elapsed());
        }
        let (judgement, t) = match assessed {
            Ok(v) => v,
            Err(deny) => return Judged::Refused(deny),
        };
        let mut assessment = judgement.assessment;
        let mut seen = Vec::new();
        if !assessment.files.is_empty() {
            let ctx = Context {
                agent: agent.name.clone(),
                target: t.name.clone(),
                labels: t.labels.clone(),
            };
            seen = scripts::inspect(&self.classifier, &ctx, &t, &mut assessment, files).await;
        }
        // A whitelist entry covers a command that runs files only with those files, byte for
        // byte; one that runs a file the gateway could not read whole is never covered.
        let pins: Option<Vec<_>> = seen.iter().map(Seen::pin).collect();
        // Who would have to approve it (used if policy asks). A whitelist entry may not stand
        // in for an `[[approval_rule]]` that asks for more than one approval from anyone (two
        // people, or a named group): the rule wins.
        let quorum = self.policy.quorum_for(assessment.tier);
        let (needs, timeout) = requirement(&self.config, agent, &t, &assessment, quorum);
        let governed = needs.rule.is_some() && !needs.is_single();
        let whitelisted = match pins {
            Some(pins)
                if !governed && self.policy.consults_whitelist(&assessment, agent.max_tier) =>
            {
                let argv = judgement.plain_argv;
                match self
                    .store
                    .whitelist_match_pinned(
                        &agent.name,
                        target,
                        command,
                        argv.as_deref(),
                        assessment.tier,
                        now_ms(),
                        &pins,
                    )
                    .await
                {
                    Ok(m) => {
                        if m.entry.is_none() && !m.approved.is_empty() {
                            self.previous_versions(&mut seen, &m.approved).await;
                        }
                        m.entry
                    }
                    Err(e) => {
                        return Judged::Classified {
                            assessment,
                            target: Box::new(t),
                            verdict: Verdict::Deny(Deny::WhitelistUnavailable(e.to_string())),
                            scripts: seen,
                        };
                    }
                }
            }
            _ => None,
        };
        let verdict = match self
            .policy
            .decide(&assessment, whitelisted.as_ref(), agent.max_tier)
        {
            // The whitelist is only looked up where it can decide (see `consults_whitelist`), so
            // an allow with an entry in hand is that entry's doing.
            Decision::Allow { why } => Verdict::Allow {
                why,
                entry: whitelisted.as_ref().map(|w| (w.id.clone(), w.expires_at)),
            },
            // `decide` asks for `quorum_for(tier)`, the quorum `needs` was built from.
            Decision::Ask { .. } => Verdict::Ask { needs, timeout },
            Decision::Deny { reason } => Verdict::Deny(Deny::Policy(reason)),
        };
        Judged::Classified {
            assessment,
            target: Box::new(t),
            verdict,
            scripts: seen,
        }
    }

    /// Show reviewers what changed: for each file a whitelist entry approved at another
    /// version (same resolved path, other hash), that version's hash and a diff from it.
    async fn previous_versions(
        &self,
        seen: &mut [Seen],
        approved: &[airlock_approvals::scripts::ScriptPin],
    ) {
        for s in seen.iter_mut() {
            let Some(old) = approved
                .iter()
                .find(|p| p.path == s.file.resolved && Some(&p.sha256) != s.file.sha256.as_ref())
            else {
                continue;
            };
            let diff = match (self.store.script_text(&old.sha256).await, &s.file.content) {
                (Ok(Some(before)), Some(now)) => {
                    airlock_approvals::scripts::unified_diff(&before, now)
                }
                _ => String::new(),
            };
            s.file.previous = Some(airlock_approvals::scripts::Previous {
                sha256: old.sha256.clone(),
                diff,
            });
        }
    }
}

/// Longest stated reason an agent may send.
pub const MAX_REASON_CHARS: usize = 500;

/// An agent's `AIRLOCK_REASON`, kept as sent (every view shows it through
/// `airlock_classifier::visible`, which makes control and invisible characters visible);
/// `None` when blank, an error when too long — never cut silently.
pub fn stated_reason(raw: &str) -> Result<Option<String>, Deny> {
    let text = raw.trim();
    let len = text.chars().count();
    if len > MAX_REASON_CHARS {
        return Err(Deny::ReasonTooLong {
            var: crate::session::REASON_VAR,
            len,
            limit: MAX_REASON_CHARS,
        });
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}
