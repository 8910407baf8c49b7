//! The session record ("witness"): one value that owns a session's id, its recording, its store
//! row and its ledger entries, with one method per lifecycle step. Each step writes the
//! recording marker, the ledger entry and the store row that belong to it, together, so "what
//! is written when" lives here and nowhere else.
//!
//! The fail-closed rule lives here too: [`Records::open`], [`Witness::judged`] and
//! [`Witness::started`] return `Err(Deny)` when what must be written before anything runs
//! (session row, `session.open`, recording, `command.submitted`, `exec.start`) was not; the
//! front-end then refuses. Steps after the fact log their failures and go on.
//!
//! It also counts what it writes into the gateway's [`Metrics`]: every judged command once, by
//! tier and decision (a command that waited is counted when its verdict comes, or as refused
//! when it ends without one), the time reviewers took, sessions, recorded bytes and failed
//! recordings.
//!
//! Touches: the store (sessions table), the audit handle, the recordings directory, metrics.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use airlock_approvals::broker::Verdict as BrokerVerdict;
use airlock_approvals::ledger::Event;
use airlock_approvals::ledger::event::Verdict as LedgerVerdict;
use airlock_approvals::{SessionKind, SessionOutcome, Store, now_ms};
use airlock_recorder::task::Stream;
use airlock_recorder::{Header, Recorder, RecorderError};

use crate::audit::Audit;
use crate::deny::Deny;
use crate::gate::{Judged, Verdict};
use crate::metrics::{Active, Decision, Metrics};
use crate::scripts::Seen;
use crate::targets::Mode;
use crate::targets::{Exit, PtyParams};

/// Who a session is for.
#[derive(Debug, Clone)]
pub struct Who {
    pub agent: String,
    /// The target name the agent asked for (the SSH user).
    pub target: String,
    pub peer: String,
}

/// Opens session records. Shared by every front-end.
#[derive(Clone)]
pub struct Records {
    store: Store,
    audit: Audit,
    dir: PathBuf,
    metrics: Metrics,
}

impl Records {
    /// An event that belongs to no session record (the control target's `explain`).
    pub async fn audit(&self, event: Event) -> Result<(), Deny> {
        self.audit.write(event).await
    }

    pub fn new(store: Store, audit: Audit, recordings: PathBuf, metrics: Metrics) -> Self {
        Self {
            store,
            audit,
            dir: recordings,
            metrics,
        }
    }

    /// Open a session: store row, `session.open`, then the recording. Any failure refuses the
    /// session (and closes what was opened).
    pub async fn open(
        &self,
        who: &Who,
        kind: SessionKind,
        command: Option<&str>,
        pty: Option<&PtyParams>,
    ) -> Result<Witness, Deny> {
        let id = airlock_approvals::ids::new_id().map_err(|_| Deny::NoRandomness)?;
        // Every later log line of this session carries its id (the `session` span's field).
        tracing::Span::current().record("session", id.as_str());
        if let Err(e) = self
            .store
            .open_session(
                &id,
                &who.agent,
                &who.target,
                kind,
                command,
                &who.peer,
                now_ms(),
            )
            .await
        {
            tracing::error!(error = %e, "cannot record session; refusing");
            return Err(Deny::StoreUnavailable);
        }
        let opened = self
            .audit
            .write(Event::SessionOpen {
                session: id.clone(),
                agent: who.agent.clone(),
                target: who.target.clone(),
                kind,
                peer: who.peer.clone(),
            })
            .await;
        if let Err(deny) = opened {
            self.close_row(&id, SessionOutcome::Error, None, None).await;
            return Err(deny);
        }
        let mut header = Header::new(
            pty.map_or(80, |p| u32::from(p.cols)),
            pty.map_or(24, |p| u32::from(p.rows)),
        );
        header.timestamp = Some((now_ms() / 1000) as u64);
        header.command = command.map(str::to_owned);
        header.title = Some(match kind {
            SessionKind::Exec => format!("{}@{} (session {id})", who.agent, who.target),
            other => format!(
                "{}@{} {} (session {id})",
                who.agent,
                who.target,
                other.as_str()
            ),
        });
        if let Some(p) = pty {
            header.env.insert("TERM".into(), p.term.clone());
        }
        if kind != SessionKind::Exec {
            header.env.insert("SHELL".into(), "airlock".into());
        }
        let path = self.dir.join(format!("{id}.cast"));
        let recorder = match Recorder::create(&path, header).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start recording; refusing");
                self.metrics.recording_failed();
                self.close_row(&id, SessionOutcome::Error, None, None).await;
                let _ = self
                    .audit
                    .write(Event::SessionClose {
                        session: id.clone(),
                        outcome: SessionOutcome::Error,
                        exit_status: None,
                    })
                    .await;
                return Err(Deny::RecordingUnavailable);
            }
        };
        Ok(Witness {
            id,
            who: who.clone(),
            records: self.clone(),
            recorder,
            active: self.metrics.session(kind.as_str()),
            asked: Mutex::new(None),
            recording_failed: AtomicBool::new(false),
        })
    }

    /// Close the session's row; a failure is logged (the session is over either way).
    async fn close_row(
        &self,
        id: &str,
        outcome: SessionOutcome,
        exit: Option<&Exit>,
        recording: Option<(&str, u64, &str)>,
    ) {
        let res = self
            .store
            .close_session(
                id,
                outcome,
                exit.and_then(Exit::code).map(i64::from),
                exit.and_then(Exit::signal),
                recording,
                now_ms(),
            )
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, session = id, "cannot close session row");
        }
    }
}

/// A command as the recording and the ledger keep it: whole, unless the gate refused it for
/// its length — then its first `limit` bytes and its size, so an agent cannot fill the ledger
/// with commands that were never allowed to run.
pub fn as_recorded<'a>(command: &'a str, judged: &Judged) -> std::borrow::Cow<'a, str> {
    match judged {
        Judged::Refused(Deny::TooLong { len, limit }) => {
            let mut end = (*limit).min(command.len());
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            format!(
                "{}… ({len} bytes in all; refused: longer than {limit})",
                &command[..end]
            )
            .into()
        }
        _ => command.into(),
    }
}

/// One open session. Dropping it without [`Witness::close`] leaves the row open; the next
/// start marks it interrupted.
pub struct Witness {
    id: String,
    who: Who,
    records: Records,
    recorder: Recorder,
    /// Counts this session in `airlock_sessions_active` until the witness is gone.
    #[allow(dead_code)]
    active: Active,
    /// The command that went to reviewers and is not counted yet: its tier, and when its
    /// request opened (a std mutex: held for a swap, never across an await).
    asked: Mutex<Option<Asked>>,
    /// Whether the recording failed at some step (counted once, at close).
    recording_failed: AtomicBool,
}

/// A command waiting for its verdict, for the metrics.
struct Asked {
    tier: airlock_classifier::Tier,
    opened: Option<Instant>,
}

impl Witness {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn who(&self) -> &Who {
        &self.who
    }

    /// A handle on the recording, for its `failed()` watch.
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Record what the agent is shown. What is not recorded must not be shown.
    pub async fn output(&self, stream: Stream, bytes: &[u8]) -> Result<(), RecorderError> {
        let res = self.recorder.output(stream, bytes).await;
        if res.is_err() {
            self.recording_failed.store(true, Ordering::Relaxed);
        }
        res
    }

    /// Record keys the agent typed on a terminal.
    pub async fn input(&self, bytes: &[u8]) -> Result<(), RecorderError> {
        self.recorder.input(bytes).await
    }

    pub async fn resize(&self, cols: u16, rows: u16) {
        let _ = self.recorder.resize(u32::from(cols), u32::from(rows)).await;
    }

    /// The gate judged `command`: marker, then `command.submitted`. `Err` when either could
    /// not be written (the command is then refused); otherwise the gate's own verdict stands.
    pub async fn judged(&self, command: &str, judged: &Judged) -> Result<(), Deny> {
        self.settle_unanswered();
        let tier = match judged {
            Judged::Refused(_) => None,
            Judged::Classified { assessment, .. } => Some(assessment.tier),
        };
        let res = self.write_judged(command, judged).await;
        self.count_judged(tier, res.is_ok(), judged);
        res
    }

    /// Count a judged command: at once when it was decided here, or later (see
    /// [`Witness::decided`]) when it went to reviewers.
    fn count_judged(&self, tier: Option<airlock_classifier::Tier>, written: bool, judged: &Judged) {
        let metrics = &self.records.metrics;
        let verdict = match judged {
            Judged::Classified { verdict, .. } if written => verdict,
            _ => return metrics.command(tier, Decision::Refused),
        };
        match (verdict, tier) {
            (Verdict::Allow { entry: Some(_), .. }, _) => {
                metrics.command(tier, Decision::Whitelist)
            }
            (Verdict::Allow { entry: None, .. }, _) => metrics.command(tier, Decision::Auto),
            (Verdict::Ask { .. }, Some(tier)) => {
                *self.asked.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Asked { tier, opened: None });
            }
            (Verdict::Deny(_), _) | (Verdict::Ask { .. }, None) => {
                metrics.command(tier, Decision::Refused)
            }
        }
    }

    /// A command that went to reviewers and ended without a verdict (nobody online, the store,
    /// ledger or recording failed before the request opened) was refused: count it so.
    fn settle_unanswered(&self) {
        let asked = self.asked.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(a) = asked {
            self.records
                .metrics
                .command(Some(a.tier), Decision::Refused);
        }
    }

    async fn write_judged(&self, command: &str, judged: &Judged) -> Result<(), Deny> {
        let command = &*as_recorded(command, judged);
        self.recorder
            // A label for people replaying it: the display form (the ledger keeps the bytes).
            .marker(&format!(
                "command: {}",
                airlock_classifier::visible::Shown::of(command).one_line()
            ))
            .await
            .map_err(|_| {
                self.recording_failed.store(true, Ordering::Relaxed);
                Deny::RecordingFailed
            })?;
        let (a, verdict, scripts) = match judged {
            Judged::Refused(d) => (None, &Verdict::Deny(d.clone()), &[][..]),
            Judged::Classified {
                assessment,
                verdict,
                scripts,
                ..
            } => (Some(assessment), verdict, &scripts[..]),
        };
        let (decision, why, quorum) = match verdict {
            Verdict::Allow { why, .. } => (LedgerVerdict::Allow, Some(why.clone()), None),
            Verdict::Ask { needs, .. } => (
                LedgerVerdict::Ask,
                Some(match &needs.rule {
                    Some(rule) => format!("needs {} (approval_rule {rule})", needs.describe()),
                    None => format!("needs {}", needs.describe()),
                }),
                Some(needs.total()),
            ),
            Verdict::Deny(d) => (LedgerVerdict::Deny, Some(d.to_string()), None),
        };
        self.records
            .audit
            .write(Event::CommandSubmitted {
                session: self.id.clone(),
                agent: self.who.agent.clone(),
                target: self.who.target.clone(),
                command: command.to_owned(),
                tier: a.map(|a| a.tier),
                score: a.map(|a| a.score),
                rules: a
                    .map(|a| a.reasons.iter().map(|r| r.rule.clone()).collect())
                    .unwrap_or_default(),
                decision,
                why,
                quorum,
                scripts: scripts.iter().filter_map(Seen::pin).collect(),
            })
            .await?;
        for f in scripts.iter().map(|s| &s.file) {
            self.mark(&format!(
                "script: {} ({}, {} bytes, sha256 {})",
                airlock_classifier::visible::Shown::of(&f.path).one_line(),
                f.kind.as_str(),
                f.size,
                f.sha256.as_deref().unwrap_or("not read")
            ))
            .await;
        }
        if let Verdict::Allow { why, .. } = verdict {
            self.mark(&format!("decision: allowed ({why})")).await;
        }
        Ok(())
    }

    /// Before reviewers are asked: what was recorded so far is on disk. A command whose
    /// recording is already lost (a full disk) is denied here, never offered for approval.
    pub async fn recording_ok(&self) -> Result<(), Deny> {
        self.recorder.sync().await.map_err(|e| {
            tracing::error!(error = %e, "recording failed before asking reviewers; denying");
            self.recording_failed.store(true, Ordering::Relaxed);
            Deny::RecordingFailed
        })
    }

    /// A request for reviewers was opened (the broker wrote `request.opened`).
    pub async fn request_opened(&self, request: &str) {
        if let Some(a) = self
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            a.opened = Some(Instant::now());
        }
        self.mark(&format!("approval requested: {request}")).await;
    }

    /// The reviewers' (or the deadline's) verdict (the broker wrote `request.outcome`).
    pub async fn decided(&self, v: &BrokerVerdict) {
        // Only a judged command's request is counted (not an access request).
        let asked = self.asked.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(a) = asked {
            let decision = Decision::of(v);
            self.records.metrics.command(Some(a.tier), decision);
            if let Some(opened) = a.opened {
                self.records.metrics.approval(decision, opened.elapsed());
            }
        }
        self.mark(&format!("decision: {} ({})", v.outcome, v.why))
            .await;
    }

    /// Refused: the marker the replay shows.
    pub async fn denied(&self, deny: &Deny) {
        self.settle_unanswered();
        self.mark(&format!("denied: {deny}")).await;
    }

    /// About to run `command`: `exec.start` must be in the ledger first.
    pub async fn started(&self, command: &str, mode: Mode) -> Result<(), Deny> {
        self.records
            .audit
            .write(Event::ExecStart {
                session: self.id.clone(),
                command: command.to_owned(),
                sandbox: Some(mode.as_str().to_owned()),
            })
            .await?;
        self.mark(&format!("started ({})", mode.as_str())).await;
        Ok(())
    }

    /// The command ended; `killed` says why the gateway ended it, if it did.
    pub async fn exited(&self, exit: &Exit, killed: Option<&str>) {
        let _ = self
            .records
            .audit
            .write(Event::ExecExit {
                session: self.id.clone(),
                status: exit.code(),
                signal: exit.signal().map(str::to_owned),
                killed: killed.map(str::to_owned),
            })
            .await;
        match killed {
            Some(why) => {
                self.mark(&format!("{} (killed: {why})", exit.label()))
                    .await
            }
            None => self.mark(&exit.label()).await,
        }
    }

    /// A free-form marker (session ends, withdrawals).
    pub async fn mark(&self, label: &str) {
        if let Err(e) = self.recorder.marker(label).await {
            tracing::warn!(error = %e, "marker not recorded");
        }
    }

    /// Close the recording, then write `recording.closed`, `session.close` and the row.
    pub async fn close(self, outcome: SessionOutcome, exit: Option<&Exit>) {
        self.settle_unanswered();
        let closed = self.recorder.close().await;
        if let Err(e) = &closed {
            tracing::error!(error = %e, "recording did not close cleanly");
        }
        if let Ok(c) = &closed {
            self.records.metrics.recorded(c.size);
        }
        if closed.is_err() || self.recording_failed.load(Ordering::Relaxed) {
            self.records.metrics.recording_failed();
        }
        let closed = closed.ok();
        let audit = &self.records.audit;
        // The raw data file (bytes the cast cannot hold) first, then the cast that indexes it:
        // each is hashed into the ledger on its own, so `ledger verify --recordings` checks both.
        let mut files: Vec<&airlock_recorder::Closed> = Vec::new();
        if let Some(c) = &closed {
            files.extend(c.raw.as_deref());
            files.push(c);
        }
        for c in files {
            let file = c
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = audit
                .write(Event::RecordingClosed {
                    session: self.id.clone(),
                    file,
                    size: c.size,
                    sha256: c.sha256.clone(),
                })
                .await;
        }
        let _ = audit
            .write(Event::SessionClose {
                session: self.id.clone(),
                outcome,
                exit_status: exit.and_then(Exit::code).map(i64::from),
            })
            .await;
        let path = closed
            .as_ref()
            .map(|c| c.path.to_string_lossy().into_owned());
        let rec = closed
            .as_ref()
            .zip(path.as_deref())
            .map(|(c, p)| (p, c.size, c.sha256.as_str()));
        self.records.close_row(&self.id, outcome, exit, rec).await;
        tracing::info!(session = %self.id, %outcome, "session closed");
    }
}
