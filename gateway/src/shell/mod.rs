//! The gated interactive shell (`ssh -t TARGET@gateway` with no command).
//!
//! The agent types into Airlock's own line editor; each finished line goes through the same
//! gate as an exec command (classifier → whitelist → policy → reviewers), and only approved
//! lines reach the persistent shell on the target ([`crate::target::shell`]), one at a time:
//! a pasted block is decided and run line by line. While a command runs, keystrokes and
//! resizes go to it (ctrl-c interrupts it); while a line waits for reviewers the agent sees a
//! countdown and ctrl-c withdraws the request. Everything the agent sees and types is recorded.

pub mod editor;

use std::collections::VecDeque;
use std::time::Duration;

use airlock_approvals::{Decision, Outcome, now_ms};
use airlock_recorder::task::Stream;
use airlock_recorder::{Header, Recorder};
use russh::{ChannelMsg, ChannelReadHalf};
use tokio::time::{Instant, Interval};

use crate::config::TargetKind;
use crate::gate;
use crate::session::{DENIED_EXIT, SessionCtx, Tx, clamp16};
use crate::target::shell::{Done, Shell};
use crate::target::{self, Control, Exit, Output, PtyParams};
use editor::{Editor, Event};

/// After a command's end record arrives, output it wrote may still be in the PTY buffer:
/// wait until it has been quiet this long (at most [`DRAIN_MAX`]) before the next prompt.
const DRAIN_QUIET: Duration = Duration::from_millis(30);
const DRAIN_MAX: Duration = Duration::from_millis(300);

/// Why a session ended.
enum End {
    /// ctrl-d on an empty line.
    Eof,
    ClientGone,
    ShellExited(Exit),
    Idle(Duration),
    MaxLength(Duration),
    Recorder(String),
    Error(String),
}

/// Everything that can happen while the session waits.
enum Ev {
    Keys(Vec<u8>),
    Resize(u16, u16),
    Signal(i32),
    ClientGone,
    Output(Vec<u8>),
    Done(Done),
    ShellExited(Exit),
    RecorderFailed(String),
    Tick,
}

struct Sh {
    ctx: SessionCtx,
    id: String,
    recorder: Recorder,
    tx: Tx,
    shell: Shell,
    editor: Editor,
    /// Lines submitted (a paste) but not yet judged, and whether the agent already saw each
    /// one echoed.
    queue: VecDeque<(String, bool)>,
    /// Terminal width, so status lines never wrap.
    cols: u16,
    cwd: String,
    last_activity: Instant,
    deadline: Instant,
    ticker: Interval,
    output_open: bool,
    done_open: bool,
    exit: Option<Exit>,
}

/// Start a gated shell on `ctx.target` for `ctx.agent`, and run it to the end.
pub async fn run(ctx: SessionCtx, mut rx: ChannelReadHalf, tx: Tx, pty: PtyParams) {
    let gw = ctx.gw.clone();
    let tx_ref = &tx;
    let refuse = move |why: String| async move { crate::session::refuse(tx_ref, true, &why).await };
    let Some(target) = gw.config.target(&ctx.target).cloned() else {
        return refuse(format!("unknown target {:?}", ctx.target)).await;
    };
    if !ctx.agent.may_use(&ctx.target) {
        return refuse(format!(
            "agent {} may not use target {}",
            ctx.agent.name, ctx.target
        ))
        .await;
    }
    let Ok(id) = airlock_approvals::ids::new_id() else {
        return refuse("no randomness available for a session id".into()).await;
    };
    let store = gw.broker.store().clone();
    if let Err(e) = store
        .open_session(
            &id,
            &ctx.agent.name,
            &ctx.target,
            "shell",
            None,
            &ctx.peer.to_string(),
            now_ms(),
        )
        .await
    {
        tracing::error!(error = %e, "cannot record session; refusing shell");
        return refuse("session store unavailable".into()).await;
    }
    let peer = ctx.peer.to_string();
    if let Err(why) =
        crate::audit::session_opened(&gw, &id, &ctx.agent.name, &ctx.target, "shell", &peer).await
    {
        let _ = store
            .close_session(&id, "error", None, None, None, now_ms())
            .await;
        return refuse(why).await;
    }
    let mut header = Header::new(u32::from(pty.cols), u32::from(pty.rows));
    header.timestamp = Some((now_ms() / 1000) as u64);
    header.title = Some(format!(
        "{}@{} shell (session {id})",
        ctx.agent.name, ctx.target
    ));
    header.env.insert("TERM".into(), pty.term.clone());
    header.env.insert("SHELL".into(), "airlock".into());
    let path = gw.config.recordings_dir().join(format!("{id}.cast"));
    let recorder = match Recorder::create(&path, header).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start recording; refusing shell");
            let _ = store
                .close_session(&id, "error", None, None, None, now_ms())
                .await;
            return refuse("recording unavailable; sessions never run unrecorded".into()).await;
        }
    };
    let spawned = match &target.kind {
        TargetKind::Local { bash, cwd, .. } => Shell::spawn(bash, cwd.as_deref(), &pty, &id).await,
        TargetKind::Ssh(up) => {
            let gw = ctx.gw.clone();
            Shell::spawn_upstream(&gw.upstream, &target.name, up, &pty, &id).await
        }
    };
    let (shell, cwd) = match spawned {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the target shell");
            let _ = recorder.marker(&format!("session ended: {e}")).await;
            let _ = recorder.close().await;
            let _ = store
                .close_session(&id, "error", None, None, None, now_ms())
                .await;
            return refuse(format!("cannot start a shell on {}: {e}", ctx.target)).await;
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let now = Instant::now();
    let mut sh = Sh {
        deadline: now + gw.config.max_session,
        ctx,
        id,
        recorder,
        tx,
        shell,
        editor: Editor::new(),
        queue: VecDeque::new(),
        cols: pty.cols,
        cwd,
        last_activity: now,
        ticker,
        output_open: true,
        done_open: true,
        exit: None,
    };
    tracing::info!(session = %sh.id, "gated shell started");
    let end = sh.main(&mut rx).await;
    sh.finish(end).await;
}

/// What `next` saw, before the bookkeeping it implies.
enum Raw {
    Ev(Ev),
    OutputClosed,
    DoneClosed,
    Skip,
}

impl Sh {
    fn prompt_text(&self) -> String {
        let home = std::env::var("HOME").unwrap_or_default();
        let cwd = match self.cwd.strip_prefix(&home) {
            Some(rest) if !home.is_empty() => format!("~{rest}"),
            _ => self.cwd.clone(),
        };
        format!(
            "\x1b[1;36mairlock\x1b[0m {}@{}:{}$ ",
            self.ctx.agent.name, self.ctx.target, cwd
        )
    }

    /// Show bytes to the agent, recording them first: what is not recorded is not shown.
    async fn show(&mut self, bytes: &[u8]) -> Result<(), End> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.recorder
            .output(Stream::Stdout, bytes)
            .await
            .map_err(|e| End::Recorder(e.to_string()))?;
        self.tx
            .data_bytes(bytes.to_vec())
            .await
            .map_err(|_| End::ClientGone)
    }

    async fn say(&mut self, line: &str) -> Result<(), End> {
        self.show(format!("\r\x1b[K{line}\r\n").as_bytes()).await
    }

    async fn mark(&mut self, label: &str) -> Result<(), End> {
        self.recorder
            .marker(label)
            .await
            .map_err(|e| End::Recorder(e.to_string()))
    }

    async fn next(&mut self, rx: &mut ChannelReadHalf) -> Ev {
        let rec = self.recorder.clone();
        loop {
            let Sh {
                shell,
                output_open,
                done_open,
                exit,
                ticker,
                ..
            } = &mut *self;
            let (output, done, proc_exit) = shell.parts();
            let raw = tokio::select! {
                m = rx.wait() => match m {
                    Some(ChannelMsg::Data { data }) => Raw::Ev(Ev::Keys(data.to_vec())),
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        Raw::Ev(Ev::Resize(clamp16(col_width), clamp16(row_height)))
                    }
                    Some(ChannelMsg::Signal { signal }) => match target::signals::from_russh(&signal) {
                        Some(s) => Raw::Ev(Ev::Signal(s as i32)),
                        None => Raw::Skip,
                    },
                    None | Some(ChannelMsg::Eof | ChannelMsg::Close) => Raw::Ev(Ev::ClientGone),
                    Some(_) => Raw::Skip,
                },
                o = output.recv(), if *output_open => match o {
                    Some(Output::Stdout(b) | Output::Stderr(b)) => Raw::Ev(Ev::Output(b)),
                    None => Raw::OutputClosed,
                },
                d = done.recv(), if *done_open => match d {
                    Some(d) => Raw::Ev(Ev::Done(d)),
                    None => Raw::DoneClosed,
                },
                e = proc_exit, if exit.is_none() => {
                    let e = e.unwrap_or(Exit::Code(255));
                    *exit = Some(e.clone());
                    Raw::Ev(Ev::ShellExited(e))
                },
                err = rec.failed() => Raw::Ev(Ev::RecorderFailed(err.to_string())),
                _ = ticker.tick() => Raw::Ev(Ev::Tick),
            };
            match raw {
                Raw::Ev(ev) => return ev,
                Raw::OutputClosed => self.output_open = false,
                Raw::DoneClosed => self.done_open = false,
                Raw::Skip => {}
            }
        }
    }

    /// Handle what every state handles the same way; returns the events left to the state.
    async fn common(&mut self, ev: Ev, idle_applies: bool) -> Result<Option<Ev>, End> {
        match ev {
            Ev::ClientGone => Err(End::ClientGone),
            Ev::ShellExited(e) => Err(End::ShellExited(e)),
            Ev::RecorderFailed(e) => Err(End::Recorder(e)),
            Ev::Resize(cols, rows) => {
                self.cols = cols;
                let _ = self.recorder.resize(u32::from(cols), u32::from(rows)).await;
                let _ = self
                    .shell
                    .process
                    .control
                    .send(Control::Resize { cols, rows })
                    .await;
                Ok(None)
            }
            Ev::Output(b) => {
                self.last_activity = Instant::now();
                self.show(&b).await?;
                Ok(None)
            }
            Ev::Tick => {
                let now = Instant::now();
                let cfg = &self.ctx.gw.config;
                if now >= self.deadline {
                    return Err(End::MaxLength(cfg.max_session));
                }
                if idle_applies && now.duration_since(self.last_activity) >= cfg.idle_timeout {
                    return Err(End::Idle(cfg.idle_timeout));
                }
                Ok(Some(Ev::Tick))
            }
            Ev::Keys(k) => {
                self.last_activity = Instant::now();
                self.recorder
                    .input(&k)
                    .await
                    .map_err(|e| End::Recorder(e.to_string()))?;
                Ok(Some(Ev::Keys(k)))
            }
            other => Ok(Some(other)),
        }
    }

    async fn main(&mut self, rx: &mut ChannelReadHalf) -> End {
        let banner = format!(
            "airlock: gated shell on {} as {}: every line is checked before it runs; ctrl-d ends the session",
            self.ctx.target, self.ctx.agent.name
        );
        if let Err(end) = self.say(&banner).await {
            return end;
        }
        loop {
            let line = match self.read_line(rx).await {
                Ok(l) => l,
                Err(end) => return end,
            };
            match self.decide(&line, rx).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(end) => return end,
            }
            if let Err(end) = self.run_line(&line, rx).await {
                return end;
            }
        }
    }

    /// The next line to judge: from a pasted block, or typed at a fresh prompt.
    async fn read_line(&mut self, rx: &mut ChannelReadHalf) -> Result<String, End> {
        let prompt = self.prompt_text();
        let shown = self.editor.prompt(&prompt);
        self.show(&shown).await?;
        loop {
            if let Some((line, echoed)) = self.queue.pop_front() {
                if line.trim().is_empty() {
                    if !echoed {
                        let shown = self.editor.prompt(&prompt);
                        self.show(&shown).await?;
                    }
                    continue;
                }
                if !echoed {
                    // A later line of a pasted block: show which one is judged now.
                    self.show(format!("\r\x1b[K{prompt}{line}\r\n").as_bytes())
                        .await?;
                }
                return Ok(line);
            }
            let ev = self.next(rx).await;
            let Some(ev) = self.common(ev, true).await? else {
                continue;
            };
            match ev {
                Ev::Keys(k) => {
                    for e in self.editor.feed(&k) {
                        match e {
                            Event::Output(b) => {
                                // Echo of a pasted block is shown once, not line by line.
                                if self.queue.is_empty() {
                                    self.show(&b).await?;
                                }
                            }
                            Event::Submit(l) => {
                                let echoed = self.queue.is_empty();
                                self.queue.push_back((l, echoed));
                            }
                            Event::Interrupt => {
                                self.queue.clear();
                                let shown = self.editor.prompt(&prompt);
                                self.show(&shown).await?;
                            }
                            Event::Eof => {
                                self.show(b"\r\n").await?;
                                return Err(End::Eof);
                            }
                        }
                    }
                }
                Ev::Signal(_) | Ev::Done(_) | Ev::Tick => {}
                _ => {}
            }
        }
    }

    /// Judge a line; wait for reviewers if needed. `Ok(true)`: run it.
    async fn decide(&mut self, line: &str, rx: &mut ChannelReadHalf) -> Result<bool, End> {
        self.mark(&format!("command: {line}")).await?;
        let gw = self.ctx.gw.clone();
        let judged = match gate::judge(&gw, &self.id, &self.ctx.agent, &self.ctx.target, line).await
        {
            Ok(j) => j,
            Err(why) => return self.refused(&why).await,
        };
        let a = judged.assessment;
        let target = judged.target;
        tracing::info!(session = %self.id, tier = %a.tier, score = a.score, "line classified");
        let quorum = match judged.decision {
            Decision::Allow { why } => {
                self.mark(&format!("decision: allowed ({why})")).await?;
                return Ok(true);
            }
            Decision::Deny { reason } => return self.refused(&reason).await,
            Decision::Ask { quorum, .. } => quorum,
        };
        let timeout = gw.config.approval_timeout;
        let req = gate::new_request(
            &self.ctx.gw.config.node,
            &self.id,
            &self.ctx.agent.name,
            &target,
            self.ctx.reason.as_deref(),
            line,
            &a,
            quorum,
            timeout,
        );
        let mut ticket = match gw.broker.submit(req).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot submit request; denying");
                return self.refused("approval store unavailable").await;
            }
        };
        let rid = ticket.request.id.clone();
        self.mark(&format!("approval requested: {rid}")).await?;
        let started = Instant::now();
        let who = if quorum == 1 {
            "1 reviewer".to_owned()
        } else {
            format!("{quorum} reviewers")
        };
        let first = a
            .reasons
            .first()
            .map(|r| r.text.clone())
            .unwrap_or_default();
        self.say(&format!(
            "airlock: {} (score {}): {first} · request {rid} needs {who}",
            a.tier, a.score
        ))
        .await?;
        let cols = usize::from(self.cols.max(20)) - 1;
        let status = |left: Duration| {
            let text = format!(
                "airlock: waiting for approval ({} {}, {who}, {} left, ctrl-c withdraws)",
                a.tier,
                a.score,
                gate::human_duration(left)
            );
            format!("\r\x1b[K{}", text.chars().take(cols).collect::<String>())
        };
        self.show(status(timeout).as_bytes()).await?;
        let outcome: Result<airlock_approvals::broker::Verdict, (End, &str)> = {
            let wait = ticket.wait(timeout);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    v = &mut wait => break Ok(v),
                    ev = self.next(rx) => match self.common(ev, false).await {
                        Err(end) => break Err((end, "session ended while waiting")),
                        Ok(Some(Ev::Keys(k))) if k.contains(&0x03) => {
                            break Err((End::Error(String::new()), "withdrawn by the agent (ctrl-c)"));
                        }
                        Ok(Some(Ev::Tick)) => {
                            let left = timeout.saturating_sub(started.elapsed());
                            if let Err(end) = self.show(status(left).as_bytes()).await {
                                break Err((end, "session ended while waiting"));
                            }
                        }
                        // Other keys while waiting are dropped: nothing reaches the shell
                        // until this line is decided.
                        Ok(_) => {}
                    },
                }
            }
        };
        let verdict = match outcome {
            Ok(v) => v,
            Err((end, why)) => {
                let v = ticket.withdraw(why).await;
                self.mark(&format!("decision: {} ({})", v.outcome.as_str(), v.why))
                    .await?;
                if matches!(&end, End::Error(m) if m.is_empty()) {
                    self.show(b"^C").await?;
                    self.say(&format!("airlock: request {rid} withdrawn"))
                        .await?;
                    return Ok(false);
                }
                return Err(end);
            }
        };
        self.mark(&format!(
            "decision: {} ({})",
            verdict.outcome.as_str(),
            verdict.why
        ))
        .await?;
        match verdict.outcome {
            Outcome::Approved => {
                self.say(&format!("airlock: {}", verdict.why)).await?;
                Ok(true)
            }
            Outcome::Expired => {
                let why = format!(
                    "no reviewer decided within {} (request {rid} expired)",
                    gate::human_duration(timeout)
                );
                self.say(&format!("airlock: denied: {why}")).await?;
                Ok(false)
            }
            Outcome::Denied | Outcome::Withdrawn => {
                self.say(&format!("airlock: denied: {}", verdict.why))
                    .await?;
                Ok(false)
            }
        }
    }

    async fn refused(&mut self, why: &str) -> Result<bool, End> {
        tracing::info!(session = %self.id, reason = why, "line denied");
        self.mark(&format!("decision: denied ({why})")).await?;
        self.say(&format!("airlock: denied: {why}")).await?;
        Ok(false)
    }

    /// Hand an approved line to the shell and relay the terminal until it finishes.
    async fn run_line(&mut self, line: &str, rx: &mut ChannelReadHalf) -> Result<(), End> {
        if let Err(why) = crate::audit::exec_started(&self.ctx.gw, &self.id, line).await {
            // Not in the audit trail, so it does not run; the session itself goes on.
            self.mark(&format!("denied: {why}")).await?;
            return self.say(&format!("airlock: denied: {why}")).await;
        }
        self.show(editor::PASTE_OFF).await?;
        self.shell
            .run(line)
            .await
            .map_err(|e| End::Error(format!("cannot reach the shell: {e}")))?;
        self.mark("started").await?;
        // Whether the command's output ended a line, so the prompt starts on a fresh one.
        let mut line_open = false;
        loop {
            let ev = self.next(rx).await;
            let Some(ev) = self.common(ev, true).await? else {
                continue;
            };
            match ev {
                Ev::Output(b) => {
                    line_open = b.last().is_some_and(|&c| c != b'\n');
                    self.last_activity = Instant::now();
                    self.show(&b).await?;
                }
                Ev::Keys(k) => {
                    let _ = self.shell.process.control.send(Control::Stdin(k)).await;
                }
                Ev::Signal(s) => {
                    let _ = self.shell.process.control.send(Control::Signal(s)).await;
                }
                Ev::Done(d) => {
                    if let Some(last) = self.drain().await? {
                        line_open = last != b'\n';
                    }
                    self.cwd = d.cwd;
                    self.mark(&format!("exit {}", d.status)).await?;
                    let status = u32::try_from(d.status).unwrap_or(255);
                    crate::audit::exec_exited(&self.ctx.gw, &self.id, &Exit::Code(status)).await;
                    if line_open {
                        self.show(b"\r\n").await?;
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    /// Relay output still in the PTY after a command's end record; returns the last byte.
    async fn drain(&mut self) -> Result<Option<u8>, End> {
        let stop = Instant::now() + DRAIN_MAX;
        let mut last = None;
        while self.output_open && Instant::now() < stop {
            match tokio::time::timeout(DRAIN_QUIET, self.shell.process.output.recv()).await {
                Ok(Some(Output::Stdout(b) | Output::Stderr(b))) => {
                    last = b.last().copied().or(last);
                    self.show(&b).await?;
                }
                Ok(None) => self.output_open = false,
                Err(_) => break,
            }
        }
        Ok(last)
    }

    async fn finish(mut self, end: End) {
        let (message, status, outcome) = match &end {
            End::Eof => (
                Some("airlock: session ended (ctrl-d)".to_owned()),
                0,
                "ended",
            ),
            End::ClientGone => (None, 0, "disconnected"),
            End::ShellExited(Exit::Code(c)) => (None, *c, "ended"),
            End::ShellExited(Exit::Signal { name, .. }) => (
                Some(format!("airlock: the shell was killed by signal {name}")),
                255,
                "ended",
            ),
            End::Idle(d) => (
                Some(format!(
                    "airlock: session ended: no activity for {}",
                    gate::human_duration(*d)
                )),
                DENIED_EXIT,
                "idle",
            ),
            End::MaxLength(d) => (
                Some(format!(
                    "airlock: session ended: it reached the maximum length of {}",
                    gate::human_duration(*d)
                )),
                DENIED_EXIT,
                "max-length",
            ),
            End::Recorder(e) => (
                Some(format!("airlock: recording failed ({e}); session ended")),
                DENIED_EXIT,
                "error",
            ),
            End::Error(e) => (
                Some(format!("airlock: session ended: {e}")),
                DENIED_EXIT,
                "error",
            ),
        };
        let label = message
            .as_deref()
            .map(|m| m.trim_start_matches("airlock: ").to_owned())
            .unwrap_or_else(|| format!("session {outcome}"));
        tracing::info!(session = %self.id, end = %label, "gated shell finished");
        let _ = self.recorder.marker(&label).await;
        if let Some(m) = &message {
            // Recording may be what failed (then this is not recorded); the agent still
            // hears why.
            let bytes = format!("\r\n{m}\r\n").into_bytes();
            let _ = self.recorder.output(Stream::Stdout, &bytes).await;
            let _ = self.tx.data_bytes(bytes).await;
        }
        if self.exit.is_none() {
            let _ = self.shell.process.control.send(Control::Kill).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(5), &mut self.shell.process.exit).await;
        }
        if !matches!(end, End::ClientGone) {
            let _ = self
                .recorder
                .output(Stream::Stdout, editor::PASTE_OFF)
                .await;
            let _ = self.tx.data_bytes(editor::PASTE_OFF.to_vec()).await;
            let _ = self.tx.exit_status(status).await;
            let _ = self.tx.eof().await;
            let _ = self.tx.close().await;
        }
        let store = self.ctx.gw.broker.store().clone();
        let closed = self.recorder.close().await;
        if let Err(e) = &closed {
            tracing::error!(error = %e, "recording did not close cleanly");
        }
        let rec = closed.as_ref().ok().map(|c| {
            (
                c.path.to_string_lossy().into_owned(),
                c.size,
                c.sha256.clone(),
            )
        });
        let code = match &end {
            End::ShellExited(Exit::Code(c)) => Some(i64::from(*c)),
            _ => None,
        };
        crate::audit::session_closed(&self.ctx.gw, &self.id, outcome, code, closed.as_ref().ok())
            .await;
        if let Err(e) = store
            .close_session(
                &self.id,
                outcome,
                code,
                None,
                rec.as_ref().map(|(p, s, h)| (p.as_str(), *s, h.as_str())),
                now_ms(),
            )
            .await
        {
            tracing::error!(error = %e, "cannot close session row");
        }
    }
}
