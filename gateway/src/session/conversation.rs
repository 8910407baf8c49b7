//! The one approval conversation: ask reviewers → wait (interruptible by the agent's ctrl-c,
//! its going away, or the gateway stopping) → a typed [`Answer`]. Exec, the gated shell and
//! scripts all use it; the texts the agent sees while it waits are written here, once.
//!
//! A front-end plugs in through [`Waiting`]: how to read the agent's side while the request
//! waits, and how to show a line. Every way out that is not an approval is a deny, and a
//! request whose waiter leaves is withdrawn, so it can never be approved later.

use std::time::Duration;

use airlock_approvals::ledger::Event;
use airlock_approvals::{NewRequest, NobodyOnline, Outcome, Quorum, RequestKind, now_ms};
use airlock_classifier::{Assessment, Reason, Tier};
use tokio::time::Instant;

use super::SessionCtx;
use crate::config::Target;
use crate::deny::{Deny, human_duration};
use crate::gate::{Judged, Verdict};
use crate::record::Witness;
use crate::scripts::{Seen, TargetReader};
use crate::state::Shared;
use crate::targets::Mode;

/// What matters while a request waits, as the front-end reads its channel.
pub enum Interrupt {
    /// A second passed: refresh the countdown.
    Tick,
    /// The agent withdrew the request (ctrl-c).
    Withdraw,
    /// The agent's connection is gone.
    Gone,
}

/// The agent went away (its channel cannot be written).
#[derive(Debug)]
pub struct Gone;

/// A front-end's side of the conversation.
pub trait Waiting {
    type Ev;
    /// The next raw event from the agent's side. Must be cancel-safe: it races the verdict.
    fn next(&mut self) -> impl Future<Output = Self::Ev> + Send;
    /// Act on an event (buffer keys, apply a resize, show output); `Some` stops or refreshes
    /// the wait.
    fn handle(&mut self, ev: Self::Ev) -> impl Future<Output = Option<Interrupt>> + Send;
    /// Show the agent one line (recorded first).
    fn tell(&mut self, line: &str) -> impl Future<Output = Result<(), Gone>> + Send;
    /// Redraw a live countdown in place (terminals; others ignore it).
    fn countdown(&mut self, text: &str) -> impl Future<Output = Result<(), Gone>> + Send;
    /// The session's record.
    fn witness(&self) -> &Witness;
    /// Who asks, for what target, and why.
    fn ctx(&self) -> &SessionCtx;
    /// The directory the command will start in, when it is not where every command starts
    /// (the gated shell after a `cd`): relative paths of the files it runs resolve from here.
    fn cwd(&self) -> Option<&str> {
        None
    }
}

/// How the conversation ended.
#[derive(Debug)]
pub enum Answer {
    /// Quorum reached (request `request`): run it, or show the grant.
    Approved { request: String },
    /// Not run; tell the agent [`Deny::line`].
    Denied(Deny),
    /// The agent withdrew it with ctrl-c (it has been told).
    Withdrawn,
    /// The agent is gone; the request was withdrawn.
    Gone,
}

/// What reviewers are asked about: a judged command, or access to the target for a while.
enum Subject<'a> {
    Command(&'a Assessment),
    /// An access request (matched against approval rules as medium; no classifier score).
    Access {
        duration: Duration,
    },
}

/// What is asked.
struct Ask<'a> {
    /// The command, or `request-access TARGET DURATION` for an access request.
    pub command: &'a str,
    pub subject: Subject<'a>,
    pub target: &'a Target,
    /// Who must approve.
    pub needs: Quorum,
    /// How long reviewers have.
    pub timeout: Duration,
    /// The agent's stated reason (`AIRLOCK_REASON`).
    pub reason: Option<&'a str>,
    /// The files the command runs, as reviewers will see them.
    pub scripts: Vec<airlock_approvals::scripts::ScriptFile>,
}

/// `1 reviewer`, `2 reviewers`, or `1 from dba and 1 from sre by rule prod-db`.
fn reviewers(needs: &Quorum) -> String {
    match &needs.rule {
        Some(rule) => format!("{} by rule {rule}", needs.describe()),
        None => needs.describe(),
    }
}

/// The line an agent gets when its command starts waiting; `present` is how many reviewers who
/// could decide are connected now.
/// `head` is what is asked: `medium, score 49`, or `access to prod for 1h`.
pub fn waiting_text(
    head: &str,
    needs: &Quorum,
    present: usize,
    timeout: Duration,
    rid: &str,
) -> String {
    format!(
        "airlock: waiting for approval ({head}, needs {}, {present} connected, times out in {}) … request {rid}",
        reviewers(needs),
        human_duration(timeout)
    )
}

/// The countdown a terminal shows in place while the request waits.
pub fn countdown_text(head: &str, needs: &Quorum, present: usize, left: Duration) -> String {
    format!(
        "airlock: waiting for approval ({head}, needs {}, {present} connected, {} left, ctrl-c withdraws)",
        reviewers(needs),
        human_duration(left)
    )
}

/// Where a command stands once judged and, if needed, asked about.
#[derive(Debug)]
pub enum Go {
    /// Run it on this target: read-only when no human approved it and it was judged low (what
    /// "low" claims is then enforced by the sandbox), read-write otherwise; the files it runs
    /// must still hold what was judged ([`crate::scripts::verify`]).
    Run(Target, Mode, Vec<Seen>),
    /// Not run; tell the agent [`Deny::line`].
    Refused(Deny),
    /// The agent withdrew it with ctrl-c (it has been told).
    Withdrawn,
    /// The agent is gone; nothing runs.
    Gone,
}

/// The whole decision for one command, the same for every front-end: judge it at the gate,
/// write what was judged, and ask reviewers if policy says so.
pub async fn decide<W: Waiting>(command: &str, ui: &mut W) -> Go {
    let ctx = ui.ctx();
    let (shared, agent, target, reason) = (
        ctx.shared.clone(),
        ctx.agent.clone(),
        ctx.target.clone(),
        ctx.reason.clone(),
    );
    let reader = TargetReader {
        targets: &shared.targets,
        cwd: ui.cwd(),
    };
    let judged = shared.gate.judge(&agent, &target, command, &reader).await;
    if let Err(deny) = ui.witness().judged(command, &judged).await {
        return Go::Refused(deny);
    }
    let (assessment, target, verdict, scripts) = match judged {
        Judged::Refused(deny) => return Go::Refused(deny),
        Judged::Classified {
            assessment,
            target,
            verdict,
            scripts,
        } => (assessment, *target, verdict, scripts),
    };
    tracing::info!(tier = %assessment.tier, score = assessment.score, "command classified");
    let (needs, timeout) = match verdict {
        Verdict::Deny(deny) => return Go::Refused(deny),
        // A whitelist entry at medium runs as medium: someone approved writing.
        Verdict::Allow { .. } => {
            let mode = match assessment.tier {
                Tier::Low => Mode::ReadOnly,
                Tier::Medium | Tier::High => Mode::ReadWrite,
            };
            return Go::Run(target, mode, scripts);
        }
        Verdict::Ask { needs, timeout } => (needs, timeout),
    };
    let question = Ask {
        command,
        subject: Subject::Command(&assessment),
        target: &target,
        needs,
        timeout,
        reason: reason.as_deref(),
        scripts: scripts.iter().map(|s| s.file.clone()).collect(),
    };
    match ask(&shared, question, ui).await {
        // The access grant may have ended while reviewers decided.
        Answer::Approved { .. } => match shared.gate.grant_ok(&agent, &target.name).await {
            Ok(()) => Go::Run(target, Mode::ReadWrite, scripts),
            Err(deny) => Go::Refused(deny),
        },
        Answer::Denied(deny) => Go::Refused(deny),
        Answer::Withdrawn => Go::Withdrawn,
        Answer::Gone => Go::Gone,
    }
}

/// Ask reviewers to grant the agent access to `target` for `duration` (the `request-access`
/// verb of the control target): the same request, wait, countdown, withdrawal and verdict as
/// a command, with `command` the readable `request-access TARGET DURATION`.
pub async fn ask_access<W: Waiting>(
    ui: &mut W,
    command: &str,
    target: &Target,
    duration: Duration,
    reason: &str,
    (needs, timeout): (Quorum, Duration),
) -> Answer {
    let shared = ui.ctx().shared.clone();
    let question = Ask {
        command,
        subject: Subject::Access { duration },
        target,
        needs,
        timeout,
        reason: Some(reason),
        scripts: Vec::new(),
    };
    ask(&shared, question, ui).await
}

/// Ask reviewers about `ask` and wait for their answer (or the deadline, or an interrupt).
async fn ask<W: Waiting>(shared: &Shared, ask: Ask<'_>, ui: &mut W) -> Answer {
    let timeout = ask.timeout;
    // What reviewers see and rules match: a command's tier, score and reasons; an access
    // request is medium, with no score or reasons of the classifier's.
    let (tier, score, reasons, kind, head) = match ask.subject {
        Subject::Command(a) => (
            a.tier,
            a.score,
            a.reasons.clone(),
            RequestKind::Command,
            format!("{}, score {}", a.tier, a.score),
        ),
        Subject::Access { duration } => (
            Tier::Medium,
            0,
            Vec::<Reason>::new(),
            RequestKind::Access {
                duration_s: duration.as_secs(),
            },
            format!(
                "access to {} for {}",
                ask.target.name,
                airlock_approvals::grants::humanize(duration)
            ),
        ),
    };
    let agent = ui.witness().who().agent.clone();
    let presence = shared.broker.presence().clone();
    // Reviewers who could count toward this request: in scope, not the owner, in a required
    // group (a peer node's reviewers by their config groups).
    let authority = shared.broker.authority().clone();
    let subject_labels = ask.target.labels.clone();
    let subject_target = ask.target.name.clone();
    let needs = ask.needs.clone();
    let could_count = |name: &str, groups: Option<&std::collections::BTreeSet<String>>| {
        let mut r = authority.reviewer(name, &[]);
        if let Some(g) = groups {
            r.groups.extend(g.iter().cloned());
        }
        let s = airlock_approvals::authority::Subject {
            agent: &agent,
            target: &subject_target,
            labels: &subject_labels,
            tier,
        };
        authority.standing_on(&r, "", &s, &needs).is_ok()
    };
    let mut present = presence.eligible_where(&agent, could_count);
    if present == 0 && shared.limits.when_nobody_online == NobodyOnline::Deny {
        tracing::info!("no reviewer connected; denied at once (when_nobody_online = deny)");
        return Answer::Denied(Deny::NobodyOnline);
    }
    // Whether anyone who could decide was connected at any point of the wait.
    let mut anyone = present > 0;
    if let Err(deny) = ui.witness().recording_ok().await {
        return Answer::Denied(deny);
    }
    let req = NewRequest {
        scripts: ask.scripts.clone(),
        node: shared.limits.node.clone(),
        session_id: ui.witness().id().to_owned(),
        agent: agent.clone(),
        target: ask.target.name.clone(),
        reason: ask.reason.map(str::to_owned),
        labels: ask.target.labels.clone(),
        command: ask.command.to_owned(),
        tier,
        score,
        reasons: reasons.clone(),
        kind,
        needs: ask.needs.clone(),
        expires_at: now_ms() + timeout.as_millis() as i64,
    };
    let mut ticket = match shared.broker.submit(req).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot submit request; denying");
            return Answer::Denied(Deny::ApprovalsUnavailable);
        }
    };
    let rid = ticket.request.id.clone();
    tracing::Span::current().record("request", rid.as_str());
    if let RequestKind::Access { duration_s } = kind {
        // Reviewers decide an access request only once its ask is in the ledger.
        let logged = shared
            .records
            .audit(Event::GrantRequested {
                request: rid.clone(),
                session: ui.witness().id().to_owned(),
                agent: agent.clone(),
                target: ask.target.name.clone(),
                duration_s,
                reason: ask.reason.unwrap_or_default().to_owned(),
            })
            .await;
        if let Err(deny) = logged {
            let v = ticket.withdraw("audit ledger unavailable").await;
            ui.witness().decided(&v).await;
            return Answer::Denied(deny);
        }
    }
    ui.witness().request_opened(&rid).await;
    let started = Instant::now();
    let told = ui
        .tell(&waiting_text(&head, &ask.needs, present, timeout, &rid))
        .await;
    enum Stop {
        Withdraw,
        Gone,
        Shutdown,
    }
    let stopped = if told.is_err() {
        Err(Stop::Gone)
    } else {
        let _ = ui
            .countdown(&countdown_text(&head, &ask.needs, present, timeout))
            .await;
        let wait = ticket.wait(timeout);
        tokio::pin!(wait);
        loop {
            let ev = tokio::select! {
                v = &mut wait => break Ok(v),
                () = shared.shutdown.requested() => break Err(Stop::Shutdown),
                ev = ui.next() => ev,
            };
            match ui.handle(ev).await {
                None => {}
                Some(Interrupt::Tick) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    present = presence.eligible_where(&agent, could_count);
                    anyone |= present > 0;
                    let text = countdown_text(&head, &ask.needs, present, left);
                    if ui.countdown(&text).await.is_err() {
                        break Err(Stop::Gone);
                    }
                }
                Some(Interrupt::Withdraw) => break Err(Stop::Withdraw),
                Some(Interrupt::Gone) => break Err(Stop::Gone),
            }
        }
    };
    let verdict = match stopped {
        Ok(v) => v,
        Err(stop) => {
            let why = match stop {
                Stop::Withdraw => "withdrawn by the agent (ctrl-c)",
                Stop::Gone => "agent disconnected while waiting",
                Stop::Shutdown => "the gateway is shutting down",
            };
            let v = ticket.withdraw(why).await;
            tracing::info!(request = %rid, outcome = %v.outcome, why, "request withdrawn");
            ui.witness().decided(&v).await;
            return match stop {
                Stop::Withdraw => {
                    let _ = ui.tell(&format!("airlock: request {rid} withdrawn")).await;
                    Answer::Withdrawn
                }
                Stop::Gone => Answer::Gone,
                Stop::Shutdown => Answer::Denied(Deny::ShuttingDownWhileWaiting(rid)),
            };
        }
    };
    ui.witness().decided(&verdict).await;
    // Every denial names what was asked: the tier, the rule that decided it, who had to approve.
    let context = match ask.subject {
        Subject::Command(_) => {
            let rule = reasons
                .iter()
                .find(|r| r.tier == tier)
                .or(reasons.first())
                .map(|r| format!(", rule {}", r.rule))
                .unwrap_or_default();
            format!("{tier} risk{rule}, needed {}", reviewers(&ask.needs))
        }
        Subject::Access { .. } => format!("{head}, needed {}", reviewers(&ask.needs)),
    };
    match verdict.outcome {
        Outcome::Approved => {
            tracing::info!(request = %rid, by = %verdict.by, "approved");
            if ui.tell(&format!("airlock: {}", verdict.why)).await.is_err() {
                return Answer::Gone;
            }
            Answer::Approved { request: rid }
        }
        Outcome::Expired => Answer::Denied(Deny::Expired {
            request: rid,
            after: timeout,
            nobody: !(anyone || presence.eligible_where(&agent, could_count) > 0),
            context,
        }),
        // A reviewer's deny names them; a failure while waiting (the store) says what failed.
        Outcome::Denied if verdict.by != "airlock" => {
            Answer::Denied(Deny::Reviewer(format!("{} — {context}", verdict.why)))
        }
        Outcome::Denied => Answer::Denied(Deny::Withdrawn(verdict.why)),
        Outcome::Withdrawn => Answer::Denied(Deny::Withdrawn(verdict.why)),
    }
}
