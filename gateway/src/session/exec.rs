//! The exec front-end (`ssh TARGET@gateway 'COMMAND'`): one command, judged, maybe approved,
//! run on the target with its output relayed and recorded, its exit status returned.
//!
//! Stdin and resizes that arrive while the command waits are kept (up to a bound) and handed
//! to it when it starts. If recording fails while it runs, the command is killed; if the agent
//! goes away, it is killed; if the gateway stops, it gets the shutdown grace, then is killed;
//! if the access grant it runs under ends, it is killed at once (see `crate::grants`).

use std::time::Duration;

use airlock_approvals::{SessionKind, SessionOutcome};
use airlock_recorder::task::Stream;
use russh::{ChannelMsg, ChannelReadHalf};
use tokio::time::Instant;

use super::conversation::{self, Go, Gone, Interrupt, Waiting};
use super::{DENIED_EXIT, SessionCtx, Tx, clamp16, end_with, line, refuse};
use crate::deny::{Deny, human_duration};
use crate::grants::GrantWatch;
use crate::record::Witness;
use crate::scripts::{self, Bound, TargetReader};
use crate::targets::{self, Control, Exit, Output, Process, PtyParams};

/// Stdin an agent may send while its command waits for approval; beyond this it must wait.
const MAX_STDIN_WHILE_WAITING: usize = 1024 * 1024;
/// After a PTY command exits, how long to keep reading output its children may still write.
const PTY_DRAIN: Duration = Duration::from_millis(250);

struct Exec {
    ctx: SessionCtx,
    witness: Witness,
    rx: ChannelReadHalf,
    tx: Tx,
    /// The terminal; a resize while waiting applies to the one the command will get.
    pty: Option<PtyParams>,
    stdin: Vec<u8>,
    stdin_eof: bool,
}

pub async fn run(
    ctx: SessionCtx,
    rx: ChannelReadHalf,
    tx: Tx,
    pty: Option<PtyParams>,
    raw: Vec<u8>,
) {
    let is_pty = pty.is_some();
    let Ok(command) = String::from_utf8(raw) else {
        return refuse(&tx, is_pty, &Deny::NotUtf8).await;
    };
    if let Err(deny) = ctx.shared.gate.length_ok(&command) {
        return refuse(&tx, is_pty, &deny).await;
    }
    let shared = ctx.shared.clone();
    let opened = shared
        .records
        .open(&ctx.who(), SessionKind::Exec, Some(&command), pty.as_ref())
        .await;
    let witness = match opened {
        Ok(w) => w,
        Err(deny) => return refuse(&tx, is_pty, &deny).await,
    };
    let mut ex = Exec {
        ctx,
        witness,
        rx,
        tx,
        pty,
        stdin: Vec::new(),
        stdin_eof: false,
    };
    let (outcome, exit) = ex.go(&command).await;
    ex.witness.close(outcome, exit.as_ref()).await;
}

impl Exec {
    fn is_pty(&self) -> bool {
        self.pty.is_some()
    }

    /// Tell the agent something on stderr, recorded first (reviewers see it live, too).
    async fn say(&self, text: &str) -> Result<(), Gone> {
        let bytes = line(self.is_pty(), text);
        let _ = self.witness.output(Stream::Stderr, &bytes).await;
        self.tx
            .extended_data_bytes(1, bytes)
            .await
            .map_err(|_| Gone)
    }

    /// Deny: record it, tell the agent, exit 77.
    async fn deny(&self, deny: Deny) -> (SessionOutcome, Option<Exit>) {
        tracing::info!(reason = %deny, code = deny.code(), "command denied");
        self.witness.denied(&deny).await;
        let message = deny.line();
        let _ = self
            .witness
            .output(Stream::Stderr, &line(self.is_pty(), &message))
            .await;
        end_with(&self.tx, self.is_pty(), &message, DENIED_EXIT).await;
        (SessionOutcome::Denied, None)
    }

    async fn go(&mut self, command: &str) -> (SessionOutcome, Option<Exit>) {
        let shared = self.ctx.shared.clone();
        let (target, mode, seen) = match conversation::decide(command, self).await {
            Go::Run(t, mode, seen) => (t, mode, seen),
            Go::Refused(deny) => return self.deny(deny).await,
            Go::Withdrawn | Go::Gone => return (SessionOutcome::Withdrawn, None),
        };
        if shared.shutdown.is_requested() {
            return self.deny(Deny::ShuttingDown).await;
        }
        if let Err(deny) = self.witness.started(command, mode).await {
            return self.deny(deny).await;
        }
        // What runs is what was judged: the files it runs still hold the bytes reviewers saw,
        // and (local targets) those bytes are pinned at their paths while it runs.
        let reader = TargetReader {
            targets: &shared.targets,
            cwd: None,
        };
        if let Err(deny) = scripts::verify(&target, &seen, &reader).await {
            return self.deny(deny).await;
        }
        let bound = if matches!(target.kind, crate::config::TargetKind::Local(_)) {
            match Bound::write(shared.targets.pin_dir(), &seen) {
                Ok(b) => b,
                Err(deny) => return self.deny(deny).await,
            }
        } else {
            Bound::default()
        };
        let grant = shared
            .grants
            .watch(&self.ctx.agent.name, &target.name, target.requires_grant);
        let proc = match shared
            .targets
            .spawn_pinned(&target, command, self.pty.as_ref(), mode, &bound.pins)
            .await
        {
            Ok(p) => p,
            Err(deny) => return self.deny(deny).await,
        };
        let ended = self.relay(proc, grant).await;
        drop(bound);
        ended
    }

    /// Relay output and input until the command has exited and its output is drained.
    async fn relay(
        &mut self,
        mut proc: Process,
        mut grant: GrantWatch,
    ) -> (SessionOutcome, Option<Exit>) {
        let shared = self.ctx.shared.clone();
        let grace = shared.limits.shutdown_grace;
        if !self.stdin.is_empty() {
            let _ = proc
                .control
                .send(Control::Stdin(std::mem::take(&mut self.stdin)))
                .await;
        }
        if self.stdin_eof {
            let _ = proc.control.send(Control::CloseStdin).await;
        }
        let mut output_open = true;
        let mut client_open = true;
        let mut exit: Option<Exit> = None;
        let mut recording_error: Option<String> = None;
        let mut killed: Option<String> = None;
        let far = Instant::now() + Duration::from_secs(3600 * 24 * 365);
        let drain = tokio::time::sleep_until(far);
        let kill_at = tokio::time::sleep_until(far);
        let mut stopping = false;
        let mut grant_ended = false;
        tokio::pin!(drain, kill_at);
        let recorder = self.witness.recorder();
        let failed = recorder.failed();
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
                        if let Err(e) = self.witness.output(stream, &sent).await {
                            recording_error = Some(e.to_string());
                            break;
                        }
                        let delivered = match stream {
                            Stream::Stderr => self.tx.extended_data_bytes(1, sent).await,
                            _ => self.tx.data_bytes(sent).await,
                        };
                        if delivered.is_err() && client_open {
                            client_open = false;
                            killed.get_or_insert_with(|| "the agent disconnected".into());
                            let _ = proc.control.send(Control::Kill).await;
                        }
                    }
                    None => output_open = false,
                },
                e = &mut proc.exit, if exit.is_none() => {
                    exit = Some(e.unwrap_or(Exit::Code(255)));
                    if self.is_pty() {
                        drain.as_mut().reset(Instant::now() + PTY_DRAIN);
                    }
                },
                () = &mut drain, if exit.is_some() && output_open => output_open = false,
                () = shared.shutdown.requested(), if !stopping && exit.is_none() => {
                    stopping = true;
                    kill_at.as_mut().reset(Instant::now() + grace);
                    tracing::info!(grace = %human_duration(grace), "gateway stopping; the command may finish within the grace period");
                }
                why = grant.ended(), if exit.is_none() && !grant_ended => {
                    grant_ended = true;
                    let why = why.to_string();
                    let _ = self.say(&format!("airlock: {why}; command killed")).await;
                    killed = Some(why);
                    let _ = proc.control.send(Control::Kill).await;
                }
                () = &mut kill_at, if stopping && exit.is_none() && killed.is_none() => {
                    let why = shared.limits.shutdown_kill_reason();
                    let _ = self.say(&format!("airlock: {why}; command killed")).await;
                    killed = Some(why);
                    let _ = proc.control.send(Control::Kill).await;
                }
                msg = self.rx.wait(), if client_open => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if self.is_pty() {
                            let _ = self.witness.input(&data).await;
                        }
                        let _ = proc.control.send(Control::Stdin(data.to_vec())).await;
                    }
                    Some(ChannelMsg::Eof) => { let _ = proc.control.send(Control::CloseStdin).await; }
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        let (cols, rows) = (clamp16(col_width), clamp16(row_height));
                        self.witness.resize(cols, rows).await;
                        let _ = proc.control.send(Control::Resize { cols, rows }).await;
                    }
                    Some(ChannelMsg::Signal { signal }) => {
                        if let Some(s) = targets::signals::from_russh(&signal) {
                            let _ = proc.control.send(Control::Signal(s as i32)).await;
                        }
                    }
                    None | Some(ChannelMsg::Close) => {
                        client_open = false;
                        killed.get_or_insert_with(|| "the agent disconnected".into());
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
            let exit = tokio::time::timeout(Duration::from_secs(5), &mut proc.exit)
                .await
                .ok()
                .and_then(Result::ok);
            if let Some(e) = &exit {
                self.witness.exited(e, Some("recording failed")).await;
            }
            // The cause (a path, a disk) is the operator's: it is in the log, not the agent's line.
            let message = "airlock: recording failed, so the command was stopped and the session ended (the operator's log says why)";
            end_with(&self.tx, self.is_pty(), message, DENIED_EXIT).await;
            return (SessionOutcome::Error, exit);
        }
        let exit = exit.unwrap_or(Exit::Code(255));
        tracing::info!(exit = %exit.label(), "command finished");
        self.witness.exited(&exit, killed.as_deref()).await;
        if client_open {
            match &exit {
                Exit::Code(c) => {
                    let _ = self.tx.exit_status(*c).await;
                }
                Exit::Signal { name, core_dumped } => {
                    let _ = self
                        .ctx
                        .handle
                        .exit_signal_request(
                            self.tx.id(),
                            targets::signals::to_russh(name),
                            *core_dumped,
                            String::new(),
                            "en".into(),
                        )
                        .await;
                }
            }
            let _ = self.tx.eof().await;
            let _ = self.tx.close().await;
        }
        let outcome = match (&killed, client_open) {
            (_, false) => SessionOutcome::Disconnected,
            (Some(_), true) if grant_ended => SessionOutcome::GrantEnded,
            (Some(_), true) => SessionOutcome::Shutdown,
            (None, true) => SessionOutcome::Ran,
        };
        (outcome, Some(exit))
    }
}

impl Waiting for Exec {
    type Ev = Option<ChannelMsg>;

    async fn next(&mut self) -> Option<ChannelMsg> {
        if self.stdin.len() >= MAX_STDIN_WHILE_WAITING {
            // Enough buffered: the agent waits (window flow control) until the verdict.
            return std::future::pending().await;
        }
        self.rx.wait().await
    }

    async fn handle(&mut self, ev: Option<ChannelMsg>) -> Option<Interrupt> {
        match ev {
            Some(ChannelMsg::Data { data }) => self.stdin.extend_from_slice(&data),
            Some(ChannelMsg::Eof) => self.stdin_eof = true,
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(p) = self.pty.as_mut() {
                    p.cols = clamp16(col_width);
                    p.rows = clamp16(row_height);
                }
            }
            None | Some(ChannelMsg::Close) => return Some(Interrupt::Gone),
            Some(_) => {}
        }
        None
    }

    async fn tell(&mut self, line: &str) -> Result<(), Gone> {
        self.say(line).await
    }

    async fn countdown(&mut self, _text: &str) -> Result<(), Gone> {
        Ok(())
    }

    fn witness(&self) -> &Witness {
        &self.witness
    }

    fn ctx(&self) -> &SessionCtx {
        &self.ctx
    }
}
