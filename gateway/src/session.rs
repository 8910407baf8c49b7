//! One SSH session channel, from its first request to its exit status.
//!
//! The task owns everything about the channel, so there are no locks: it reads the channel's
//! requests in order, refuses what Airlock does not offer, and for `exec` runs the whole path —
//! session row, recording, gate, (waiting for reviewers), execution, exit status, close.
//! Whatever fails before the command starts is a deny (`airlock: denied: …`, exit status 77);
//! if recording fails while it runs, the command is killed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::broker::Verdict;
use airlock_approvals::{Decision, Outcome, now_ms};
use airlock_recorder::task::Stream;
use airlock_recorder::{Header, Recorder};
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::config::{Agent, Target, TargetKind};
use crate::gate;
use crate::server::Gateway;
use crate::target::{self, Control, Exit, Output, Process, PtyParams};

/// Exit status an agent gets when Airlock refuses to run its command (sysexits EX_NOPERM).
pub const DENIED_EXIT: u32 = 77;
/// Stdin an agent may send while its command waits for approval; beyond this it must wait.
const MAX_STDIN_WHILE_WAITING: usize = 1024 * 1024;
/// After a PTY command exits, how long to keep reading output its children may still write.
const PTY_DRAIN: Duration = Duration::from_millis(250);

/// What a session task knows about its connection.
pub struct SessionCtx {
    pub gw: Arc<Gateway>,
    pub agent: Agent,
    /// The SSH user name, i.e. the target the agent asked for.
    pub target: String,
    pub peer: SocketAddr,
    /// For exit-signal, which the channel half cannot send.
    pub handle: Handle,
    /// What the agent says it is doing (`AIRLOCK_REASON`), shown to reviewers.
    pub reason: Option<String>,
}

/// The environment variable an agent sets (`ssh -o SetEnv=AIRLOCK_REASON=…`) to tell
/// reviewers why it runs a command.
pub const REASON_VAR: &str = "AIRLOCK_REASON";

pub(crate) type Tx = ChannelWriteHalf<Msg>;

pub async fn run(mut ctx: SessionCtx, channel: Channel<Msg>) {
    let (mut rx, tx) = channel.split();
    let mut pty: Option<PtyParams> = None;
    while let Some(msg) = rx.wait().await {
        match msg {
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            } => {
                // A client that is not itself on a terminal (`ssh -tt` from a script) sends
                // 0×0; give programs the classic 80×24 rather than a one-column screen.
                pty = Some(PtyParams {
                    term,
                    cols: or_default(clamp16(col_width), 80),
                    rows: or_default(clamp16(row_height), 24),
                });
            }
            ChannelMsg::Exec { command, .. } => return exec(ctx, rx, tx, pty, command).await,
            ChannelMsg::RequestShell { .. } => {
                return match pty {
                    Some(p) => crate::shell::run(ctx, rx, tx, p).await,
                    None => {
                        refuse(&tx, false, "a shell needs a terminal: use ssh -t, or run commands as: ssh TARGET@gateway 'COMMAND'").await
                    }
                };
            }
            ChannelMsg::AgentForward { .. } => {
                return refuse(
                    &tx,
                    pty.is_some(),
                    "agent forwarding is not allowed through Airlock",
                )
                .await;
            }
            ChannelMsg::RequestX11 { .. } => {
                return refuse(
                    &tx,
                    pty.is_some(),
                    "X11 forwarding is not allowed through Airlock",
                )
                .await;
            }
            ChannelMsg::RequestSubsystem { name, .. } => {
                let why = format!(
                    "the {name:?} subsystem is not available: file transfer would bypass the gate"
                );
                return refuse(&tx, pty.is_some(), &why).await;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            // The handler accepts only this variable; it never reaches the command.
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } if variable_name == REASON_VAR => ctx.reason = gate::stated_reason(&variable_value),
            // Other env requests are refused by the handler; data before a request has
            // nowhere to go.
            _ => {}
        }
    }
}

fn or_default(v: u16, default: u16) -> u16 {
    if v == 0 { default } else { v }
}

pub(crate) fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn line(pty: bool, text: &str) -> Vec<u8> {
    format!("{text}{}", if pty { "\r\n" } else { "\n" }).into_bytes()
}

/// Refuse the channel: `airlock: denied: WHY` on stderr, exit status 77, close.
pub(crate) async fn refuse(tx: &Tx, pty: bool, why: &str) {
    tracing::info!(reason = why, "session refused");
    end_refused(tx, pty, &format!("airlock: denied: {why}")).await;
}

/// The one way a channel ends without the command's own status: a line, 77, EOF, close.
async fn end_refused(tx: &Tx, pty: bool, message: &str) {
    let _ = tx.extended_data_bytes(1, line(pty, message)).await;
    let _ = tx.exit_status(DENIED_EXIT).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

/// An allowed command and what arrived for it while it waited.
struct Ready {
    command: String,
    target: Target,
    stdin: Vec<u8>,
    stdin_eof: bool,
}

/// Bookkeeping of one exec, so every way out closes the row and the recording.
struct Exec {
    ctx: SessionCtx,
    id: String,
    pty: Option<PtyParams>,
    recorder: Recorder,
}

async fn exec(ctx: SessionCtx, rx: ChannelReadHalf, tx: Tx, pty: Option<PtyParams>, raw: Vec<u8>) {
    let is_pty = pty.is_some();
    let Ok(command) = String::from_utf8(raw) else {
        return refuse(&tx, is_pty, "command is not valid UTF-8").await;
    };
    let gw = ctx.gw.clone();
    let store = gw.broker.store();
    let Ok(id) = airlock_approvals::ids::new_id() else {
        return refuse(&tx, is_pty, "no randomness available for a session id").await;
    };
    let peer = ctx.peer.to_string();
    if let Err(e) = store
        .open_session(
            &id,
            &ctx.agent.name,
            &ctx.target,
            "exec",
            Some(&command),
            &peer,
            now_ms(),
        )
        .await
    {
        tracing::error!(error = %e, "cannot record session; denying");
        return refuse(&tx, is_pty, "session store unavailable").await;
    }
    if let Err(why) =
        crate::audit::session_opened(&gw, &id, &ctx.agent.name, &ctx.target, "exec", &peer).await
    {
        let _ = store
            .close_session(&id, "error", None, None, None, now_ms())
            .await;
        return refuse(&tx, is_pty, &why).await;
    }
    let mut header = Header::new(
        pty.as_ref().map_or(80, |p| u32::from(p.cols)),
        pty.as_ref().map_or(24, |p| u32::from(p.rows)),
    );
    header.timestamp = Some((now_ms() / 1000) as u64);
    header.command = Some(command.clone());
    header.title = Some(format!("{}@{} (session {id})", ctx.agent.name, ctx.target));
    if let Some(p) = &pty {
        header.env.insert("TERM".into(), p.term.clone());
    }
    let path = gw.config.recordings_dir().join(format!("{id}.cast"));
    let recorder = match Recorder::create(&path, header).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start recording; denying");
            let _ = store
                .close_session(&id, "error", None, None, None, now_ms())
                .await;
            return refuse(
                &tx,
                is_pty,
                "recording unavailable; commands never run unrecorded",
            )
            .await;
        }
    };
    let ex = Exec {
        ctx,
        id,
        pty,
        recorder,
    };
    ex.run(rx, tx, command).await;
}

impl Exec {
    fn is_pty(&self) -> bool {
        self.pty.is_some()
    }

    /// Tell the agent something on stderr. What the gateway says is part of what the agent
    /// saw, so it is recorded first (reviewers see it in the live screen, too).
    async fn say(&self, tx: &Tx, text: &str) {
        let bytes = line(self.is_pty(), text);
        let _ = self.recorder.output(Stream::Stderr, &bytes).await;
        let _ = tx.extended_data_bytes(1, bytes).await;
    }

    /// Deny: tell the agent, record it, close everything.
    async fn deny(self, tx: &Tx, why: &str) {
        tracing::info!(reason = why, "command denied");
        let message = format!("airlock: denied: {why}");
        let _ = self.recorder.marker(&format!("denied: {why}")).await;
        let _ = self
            .recorder
            .output(Stream::Stderr, &line(self.is_pty(), &message))
            .await;
        end_refused(tx, self.is_pty(), &message).await;
        self.finish("denied", None).await;
    }

    async fn finish(self, outcome: &str, exit: Option<&Exit>) {
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
        let (code, sig) = match exit {
            Some(Exit::Code(c)) => (Some(i64::from(*c)), None),
            Some(Exit::Signal { name, .. }) => (None, Some(name.as_str())),
            None => (None, None),
        };
        crate::audit::session_closed(&self.ctx.gw, &self.id, outcome, code, closed.as_ref().ok())
            .await;
        if let Err(e) = store
            .close_session(
                &self.id,
                outcome,
                code,
                sig,
                rec.as_ref().map(|(p, s, h)| (p.as_str(), *s, h.as_str())),
                now_ms(),
            )
            .await
        {
            tracing::error!(error = %e, "cannot close session row");
        }
    }

    async fn run(self, mut rx: ChannelReadHalf, tx: Tx, command: String) {
        let gw = self.ctx.gw.clone();
        if self
            .recorder
            .marker(&format!("command: {command}"))
            .await
            .is_err()
        {
            return self.deny(&tx, "recording failed").await;
        }
        let judged =
            match gate::judge(&gw, &self.id, &self.ctx.agent, &self.ctx.target, &command).await {
                Ok(j) => j,
                Err(why) => return self.deny(&tx, &why).await,
            };
        let a = &judged.assessment;
        tracing::info!(tier = %a.tier, score = a.score, "command classified");
        let mut stdin_buf: Vec<u8> = Vec::new();
        // A resize while waiting applies to the PTY the command will get.
        let mut pty_size = self.pty.clone();
        let mut stdin_eof = false;
        match judged.decision {
            Decision::Allow { why } => {
                let _ = self
                    .recorder
                    .marker(&format!("decision: allowed ({why})"))
                    .await;
            }
            Decision::Deny { reason } => return self.deny(&tx, &reason).await,
            Decision::Ask { quorum, .. } => {
                let timeout = gw.config.approval_timeout;
                let req = gate::new_request(
                    &self.ctx.gw.config.node,
                    &self.id,
                    &self.ctx.agent.name,
                    &judged.target,
                    self.ctx.reason.as_deref(),
                    &command,
                    a,
                    quorum,
                    timeout,
                );
                let mut ticket = match gw.broker.submit(req).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot submit request; denying");
                        return self.deny(&tx, "approval store unavailable").await;
                    }
                };
                let rid = ticket.request.id.clone();
                let _ = self
                    .recorder
                    .marker(&format!("approval requested: {rid}"))
                    .await;
                let who = if quorum == 1 {
                    "1 reviewer".to_owned()
                } else {
                    format!("{quorum} reviewers")
                };
                self.say(
                    &tx,
                    &format!(
                        "airlock: waiting for approval ({}, score {}, needs {who}, times out in {}) … request {rid}",
                        a.tier,
                        a.score,
                        gate::human_duration(timeout)
                    ),
                )
                .await;
                let verdict = {
                    let wait = ticket.wait(timeout);
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            v = &mut wait => break Some(v),
                            msg = rx.wait(), if stdin_buf.len() < MAX_STDIN_WHILE_WAITING => match msg {
                                Some(ChannelMsg::Data { data }) => stdin_buf.extend_from_slice(&data),
                                Some(ChannelMsg::Eof) => stdin_eof = true,
                                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                                    if let Some(p) = pty_size.as_mut() {
                                        p.cols = clamp16(col_width);
                                        p.rows = clamp16(row_height);
                                    }
                                }
                                None | Some(ChannelMsg::Close) => break None,
                                _ => {}
                            },
                        }
                    }
                };
                let verdict: Verdict = match verdict {
                    Some(v) => v,
                    None => {
                        let v = ticket.withdraw("agent disconnected while waiting").await;
                        tracing::info!(request = %rid, outcome = v.outcome.as_str(), "agent left while waiting");
                        let _ = self
                            .recorder
                            .marker(&format!("decision: {} ({})", v.outcome.as_str(), v.why))
                            .await;
                        return self.finish("withdrawn", None).await;
                    }
                };
                let _ = self
                    .recorder
                    .marker(&format!(
                        "decision: {} ({})",
                        verdict.outcome.as_str(),
                        verdict.why
                    ))
                    .await;
                match verdict.outcome {
                    Outcome::Approved => {
                        tracing::info!(request = %rid, by = %verdict.by, "approved");
                        self.say(&tx, &format!("airlock: {}", verdict.why)).await;
                    }
                    Outcome::Expired => {
                        return self
                            .deny(
                                &tx,
                                &format!(
                                    "no reviewer decided within {} (request {rid} expired)",
                                    gate::human_duration(timeout)
                                ),
                            )
                            .await;
                    }
                    Outcome::Denied | Outcome::Withdrawn => {
                        return self.deny(&tx, &verdict.why).await;
                    }
                }
            }
        }
        let mut this = self;
        this.pty = pty_size;
        let ready = Ready {
            command,
            target: judged.target,
            stdin: stdin_buf,
            stdin_eof,
        };
        this.execute(rx, tx, ready).await;
    }

    async fn execute(self, mut rx: ChannelReadHalf, tx: Tx, ready: Ready) {
        let Ready {
            command,
            target,
            stdin,
            stdin_eof,
        } = ready;
        let command = command.as_str();
        if let Err(why) = crate::audit::exec_started(&self.ctx.gw, &self.id, command).await {
            return self.deny(&tx, &why).await;
        }
        let spawned: Result<Process, String> = match &target.kind {
            TargetKind::Local { shell, cwd, .. } => match &self.pty {
                Some(p) => target::local::spawn_pty(shell, cwd.as_deref(), Some(command), p),
                None => target::local::spawn_pipes(shell, cwd.as_deref(), command),
            }
            .map_err(|e| e.to_string()),
            TargetKind::Ssh(up) => {
                let gw = self.ctx.gw.clone();
                match gw
                    .upstream
                    .spawn(&target.name, up, command, self.pty.as_ref())
                    .await
                {
                    Ok(p) => Ok(p),
                    Err(e) => {
                        if let target::upstream::UpstreamError::HostKey { fingerprint, .. } = &e {
                            crate::audit::upstream_host_key_mismatch(
                                &gw,
                                &target.name,
                                fingerprint,
                            )
                            .await;
                        }
                        Err(e.to_string())
                    }
                }
            }
        };
        let mut proc: Process = match spawned {
            Ok(p) => p,
            Err(e) => return self.deny(&tx, &e).await,
        };
        let _ = self.recorder.marker("started").await;
        if !stdin.is_empty() {
            let _ = proc.control.send(Control::Stdin(stdin)).await;
        }
        if stdin_eof {
            let _ = proc.control.send(Control::CloseStdin).await;
        }
        let mut output_open = true;
        let mut client_open = true;
        let mut exit: Option<Exit> = None;
        let mut recording_error: Option<String> = None;
        let drain = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(drain);
        let watcher = self.recorder.clone();
        let failed = watcher.failed();
        tokio::pin!(failed);
        loop {
            if exit.is_some() && !output_open {
                break;
            }
            tokio::select! {
                out = proc.output.recv(), if output_open => match out {
                    Some(out) => {
                        let (stream, sent) = match out {
                            Output::Stdout(b) => (Stream::Stdout, b),
                            Output::Stderr(b) => (Stream::Stderr, b),
                        };
                        if let Err(e) = self.recorder.output(stream, &sent).await {
                            recording_error = Some(e.to_string());
                            break;
                        }
                        let delivered = match stream {
                            Stream::Stderr => tx.extended_data_bytes(1, sent).await,
                            _ => tx.data_bytes(sent).await,
                        };
                        if delivered.is_err() {
                            client_open = false;
                            let _ = proc.control.send(Control::Kill).await;
                        }
                    }
                    None => output_open = false,
                },
                e = &mut proc.exit, if exit.is_none() => {
                    exit = Some(e.unwrap_or(Exit::Code(255)));
                    if self.is_pty() {
                        drain.as_mut().reset(tokio::time::Instant::now() + PTY_DRAIN);
                    }
                },
                () = &mut drain, if exit.is_some() && output_open => output_open = false,
                msg = rx.wait(), if client_open => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if self.is_pty() {
                            let _ = self.recorder.input(&data).await;
                        }
                        let _ = proc.control.send(Control::Stdin(data.to_vec())).await;
                    }
                    Some(ChannelMsg::Eof) => { let _ = proc.control.send(Control::CloseStdin).await; }
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        let (cols, rows) = (clamp16(col_width), clamp16(row_height));
                        let _ = self.recorder.resize(u32::from(cols), u32::from(rows)).await;
                        let _ = proc.control.send(Control::Resize { cols, rows }).await;
                    }
                    Some(ChannelMsg::Signal { signal }) => {
                        if let Some(s) = target::signals::from_russh(&signal) {
                            let _ = proc.control.send(Control::Signal(s as i32)).await;
                        }
                    }
                    None | Some(ChannelMsg::Close) => {
                        client_open = false;
                        let _ = proc.control.send(Control::Kill).await;
                    }
                    _ => {}
                },
                err = &mut failed => {
                    recording_error = Some(err.to_string());
                    break;
                }
            }
        }
        if let Some(err) = recording_error {
            tracing::error!(error = %err, "recording failed; ending session");
            let _ = proc.control.send(Control::Kill).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut proc.exit).await;
            let message = format!("airlock: recording failed ({err}); session ended");
            end_refused(&tx, self.is_pty(), &message).await;
            return self.finish("error", None).await;
        }
        let exit = exit.unwrap_or(Exit::Code(255));
        let label = match &exit {
            Exit::Code(c) => format!("exit {c}"),
            Exit::Signal { name, .. } => format!("signal {name}"),
        };
        tracing::info!(exit = %label, "command finished");
        crate::audit::exec_exited(&self.ctx.gw, &self.id, &exit).await;
        let _ = self.recorder.marker(&label).await;
        if client_open {
            match &exit {
                Exit::Code(c) => {
                    let _ = tx.exit_status(*c).await;
                }
                Exit::Signal { name, core_dumped } => {
                    let _ = self
                        .ctx
                        .handle
                        .exit_signal_request(
                            tx.id(),
                            target::signals::to_russh(name),
                            *core_dumped,
                            String::new(),
                            "en".into(),
                        )
                        .await;
                }
            }
            let _ = tx.eof().await;
            let _ = tx.close().await;
        }
        self.finish("ran", Some(&exit)).await;
    }
}
