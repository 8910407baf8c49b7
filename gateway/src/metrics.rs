//! The gateway's Prometheus metrics (every one is documented in docs/metrics.md).
//!
//! One registry behind a cheap handle, [`Metrics`], cloned into the few layers that count:
//! the session record (commands by tier and decision, time to a decision, sessions,
//! recordings) and the gate (classifier latency). What describes the present — requests
//! pending, reviewers connected, upstream connections — is read when scraped
//! ([`Metrics::encode`] takes it as a [`Now`]), and the ledger's append counters are read
//! from the ledger itself, so none of them can drift from the truth.
//!
//! Labels are closed sets (tiers, decisions, outcomes, session kinds, configured target
//! names): nothing an agent types becomes a label, so a scrape stays small whatever agents do.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use airlock_approvals::Outcome;
use airlock_approvals::broker::Verdict as BrokerVerdict;
use airlock_approvals::ledger::Counts;
use airlock_classifier::Tier;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Seconds from a request's opening to its decision: reviewers answer in seconds to minutes,
/// and the longest configurable wait is hours.
const APPROVAL_BUCKETS: [f64; 12] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
];
/// Seconds the classifier takes on one command: tens of microseconds typically, up to its
/// input limits' worst case of some milliseconds.
const CLASSIFIER_BUCKETS: [f64; 11] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// How a judged command ended up, as the `decision` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Ran without anyone asked: the policy allows its tier (low).
    Auto,
    /// Ran without anyone asked: a whitelist entry allowed it.
    Whitelist,
    /// Reviewers approved it.
    Approved,
    /// A reviewer denied it.
    Denied,
    /// Nobody decided before the deadline.
    Expired,
    /// The agent withdrew it (ctrl-c, disconnect) or the gateway shut down while it waited.
    Withdrawn,
    /// Refused by the gateway itself: access, limits, policy, or a failure on the way to a
    /// decision (store, ledger, recording, nobody online with `when_nobody_online = "deny"`).
    Refused,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Auto => "auto",
            Decision::Whitelist => "whitelist",
            Decision::Approved => "approved",
            Decision::Denied => "denied",
            Decision::Expired => "expired",
            Decision::Withdrawn => "withdrawn",
            Decision::Refused => "refused",
        }
    }

    /// What a broker verdict means for the command (a deny "by" the gateway is a refusal).
    pub fn of(v: &BrokerVerdict) -> Self {
        match v.outcome {
            Outcome::Approved => Decision::Approved,
            Outcome::Denied if v.by == "airlock" => Decision::Refused,
            Outcome::Denied => Decision::Denied,
            Outcome::Expired => Decision::Expired,
            Outcome::Withdrawn => Decision::Withdrawn,
        }
    }
}

/// The `tier` label: the classifier's tier, or `none` for a command refused before it was
/// classified.
pub fn tier_label(tier: Option<Tier>) -> &'static str {
    match tier {
        Some(Tier::Low) => "low",
        Some(Tier::Medium) => "medium",
        Some(Tier::High) => "high",
        None => "none",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    tier: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

/// What is true right now, gathered by the caller for one scrape.
#[derive(Debug, Default)]
pub struct Now {
    /// Requests waiting for reviewers (every node's, in a cluster: they share the database).
    pub pending: i64,
    /// Distinct reviewers connected to this node.
    pub reviewers: i64,
    /// Per upstream target (`kind = "ssh"`): whether its connection is up.
    pub upstream: Vec<(String, bool)>,
}

/// The registry handle. Cloning is cheap; every clone counts into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// Filled once in [`Metrics::new`], then only read (encoded) at each scrape.
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    approval: Family<DecisionLabels, Histogram>,
    classifier: Histogram,
    sessions: Family<KindLabels, Counter>,
    sessions_active: Gauge,
    recorded_bytes: Counter,
    recording_failures: Counter,
    pending: Gauge,
    reviewers: Gauge,
    upstream: Family<TargetLabels, Gauge>,
}

/// The ledger's own counters, read at each scrape.
#[derive(Debug)]
struct LedgerCounts(Arc<Counts>);

impl Collector for LedgerCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "airlock_ledger_appends",
                "Events appended to the audit ledger",
                self.0.appended.load(Ordering::Relaxed),
            ),
            (
                "airlock_ledger_append_failures",
                "Appends to the audit ledger that failed (a command that needed one was refused)",
                self.0.failed.load(Ordering::Relaxed),
            ),
        ] {
            let c = ConstCounter::new(value);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// A registry with every metric at zero; `ledger` is the gateway ledger's counters.
    pub fn new(ledger: Arc<Counts>) -> Self {
        let mut r = Registry::default();
        let commands = Family::<CommandLabels, Counter>::default();
        r.register(
            "airlock_commands",
            "Commands judged, by tier and by how it was decided",
            commands.clone(),
        );
        let approval = Family::<DecisionLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(APPROVAL_BUCKETS)) as fn() -> Histogram,
        );
        r.register_with_unit(
            "airlock_approval_duration",
            "Time from a command's request to reviewers to its decision, by decision",
            Unit::Seconds,
            approval.clone(),
        );
        let classifier = Histogram::new(CLASSIFIER_BUCKETS);
        r.register_with_unit(
            "airlock_classifier_duration",
            "Time the classifier took to judge one command",
            Unit::Seconds,
            classifier.clone(),
        );
        let sessions = Family::<KindLabels, Counter>::default();
        r.register(
            "airlock_sessions",
            "Sessions opened, by kind (exec, shell, script)",
            sessions.clone(),
        );
        let sessions_active = Gauge::default();
        r.register(
            "airlock_sessions_active",
            "Sessions open now",
            sessions_active.clone(),
        );
        let recorded_bytes = Counter::default();
        r.register_with_unit(
            "airlock_recorded",
            "Size of the session recordings closed so far",
            Unit::Bytes,
            recorded_bytes.clone(),
        );
        let recording_failures = Counter::default();
        r.register(
            "airlock_recording_failures",
            "Sessions whose recording failed (could not start, write, sync or close)",
            recording_failures.clone(),
        );
        let pending = Gauge::default();
        r.register(
            "airlock_requests_pending",
            "Requests waiting for reviewers now",
            pending.clone(),
        );
        let reviewers = Gauge::default();
        r.register(
            "airlock_reviewers_connected",
            "Distinct reviewers connected to this gateway now",
            reviewers.clone(),
        );
        let upstream = Family::<TargetLabels, Gauge>::default();
        r.register(
            "airlock_upstream_up",
            "Whether the connection to an upstream target is open (1) or not (0)",
            upstream.clone(),
        );
        r.register_collector(Box::new(LedgerCounts(ledger)));
        Self {
            inner: Arc::new(Inner {
                registry: r,
                commands,
                approval,
                classifier,
                sessions,
                sessions_active,
                recorded_bytes,
                recording_failures,
                pending,
                reviewers,
                upstream,
            }),
        }
    }

    /// One judged command, decided: `tier` as the classifier said (`None` when refused before).
    pub fn command(&self, tier: Option<Tier>, decision: Decision) {
        self.inner
            .commands
            .get_or_create(&CommandLabels {
                tier: tier_label(tier),
                decision: decision.as_str(),
            })
            .inc();
    }

    /// A request to reviewers was decided `waited` after it opened.
    pub fn approval(&self, decision: Decision, waited: Duration) {
        self.inner
            .approval
            .get_or_create(&DecisionLabels {
                decision: decision.as_str(),
            })
            .observe(waited.as_secs_f64());
    }

    /// The classifier judged one command in `took`.
    pub fn classified(&self, took: Duration) {
        self.inner.classifier.observe(took.as_secs_f64());
    }

    /// A session opened; it counts as active until the returned guard is dropped.
    pub fn session(&self, kind: &'static str) -> Active {
        self.inner
            .sessions
            .get_or_create(&KindLabels { kind })
            .inc();
        self.inner.sessions_active.inc();
        Active {
            gauge: self.inner.sessions_active.clone(),
        }
    }

    /// A recording of `bytes` was closed.
    pub fn recorded(&self, bytes: u64) {
        self.inner.recorded_bytes.inc_by(bytes);
    }

    /// A session's recording failed.
    pub fn recording_failed(&self) {
        self.inner.recording_failures.inc();
    }

    /// Every metric as text, with the present state `now`: OpenMetrics 1.0 when `openmetrics`,
    /// else the Prometheus text format 0.0.4.
    pub fn encode(&self, now: &Now, openmetrics: bool) -> Result<String, std::fmt::Error> {
        self.inner.pending.set(now.pending);
        self.inner.reviewers.set(now.reviewers);
        for (target, up) in &now.upstream {
            self.inner
                .upstream
                .get_or_create(&TargetLabels {
                    target: target.clone(),
                })
                .set(i64::from(*up));
        }
        let registry = &self.inner.registry;
        let mut out = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
        }
        Ok(out)
    }
}

/// A session counted in `airlock_sessions_active` while this lives.
pub struct Active {
    gauge: Gauge,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_under_their_labels_and_sessions_leave_the_gauge() {
        let m = Metrics::new(Arc::default());
        m.command(Some(Tier::Medium), Decision::Approved);
        m.command(Some(Tier::Medium), Decision::Approved);
        m.command(None, Decision::Refused);
        m.approval(Decision::Approved, Duration::from_secs(3));
        let s = m.session("exec");
        let text = m.encode(&Now::default(), false).expect("encode");
        assert!(
            text.contains("airlock_commands_total{tier=\"medium\",decision=\"approved\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("airlock_commands_total{tier=\"none\",decision=\"refused\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "airlock_approval_duration_seconds_bucket{decision=\"approved\",le=\"5\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("airlock_sessions_active 1"), "{text}");
        assert!(text.contains("airlock_ledger_appends_total 0"), "{text}");
        drop(s);
        let text = m.encode(&Now::default(), true).expect("encode");
        assert!(text.contains("airlock_sessions_active 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
