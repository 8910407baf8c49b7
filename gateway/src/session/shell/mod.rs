//! The shell front-end: the gated interactive shell (`ssh -t TARGET@gateway`) and, for a shell
//! request without a terminal, a script on stdin (`ssh TARGET@gateway < plan.sh`).
//!
//! Input is cut into the units bash would run ([`units`]): on a terminal, lines come from
//! Airlock's own line editor; for a script, straight from the channel. Each unit goes through
//! the same decision as an exec command ([`conversation::decide`]), and only approved units
//! reach the persistent bash on the target ([`crate::targets::shell`]), one at a time.
//!
//! Input order is kept as bash would read it:
//! - EOF from the client is not a hang-up: every unit received before it is still judged and
//!   run in order (a waiting one keeps waiting), then the session ends with the last status.
//! - Keys typed while a unit waits for reviewers are kept and become the next prompt's input;
//!   ctrl-c withdraws the waiting unit and drops them (bash flushes typeahead on ^C too).
//! - Keys typed while a unit runs go to its terminal; what the command did not read is taken
//!   back from the terminal's input queue when it ends and judged as the next lines.
//! - A script's commands read an empty stdin; the script itself is never their input.

mod editor;
mod end;
mod io;
mod units;

use std::time::Duration;

use airlock_approvals::{SessionKind, SessionOutcome};
use airlock_recorder::task::Stream;
use russh::ChannelReadHalf;
use tokio::time::{Instant, Interval};

use super::conversation::{self, Go};
use super::{DENIED_EXIT, SessionCtx, Tx, refuse};
use crate::deny::Deny;
use crate::grants::GrantWatch;
use crate::record::Witness;
use crate::scripts::{self, TargetReader};
use crate::targets::shell::Shell;
use crate::targets::{Control, Exit, Mode, Output, PtyParams};
use editor::{Editor, Event};
use end::End;
use io::Ev;
use units::Units;

/// After a command's end record arrives, output it wrote may still be in the PTY buffer:
/// wait until it has been quiet this long (at most [`DRAIN_MAX`]) before the next prompt.
const DRAIN_QUIET: Duration = Duration::from_millis(30);
const DRAIN_MAX: Duration = Duration::from_millis(300);

struct Sh {
    ctx: SessionCtx,
    witness: Witness,
    tx: Tx,
    rx: ChannelReadHalf,
    shell: Shell,
    /// A terminal (gated shell) or not (script).
    terminal: bool,
    editor: Editor,
    units: Units,
    /// Keys that arrived while a unit waited or ran, for the next prompt (terminal).
    typeahead: Vec<u8>,
    /// Units already shown to the agent as typed (a pasted block shows each when judged).
    echoed: usize,
    /// Terminal width, so status lines never wrap.
    cols: u16,
    cwd: String,
    last_activity: Instant,
    deadline: Instant,
    ticker: Interval,
    output_open: bool,
    done_open: bool,
    /// Until the client's EOF.
    input_open: bool,
    /// Whether the last output left a line open, so the prompt starts on a fresh one.
    line_open: bool,
    shutdown_seen: bool,
    /// An end found while the conversation waited (recording failure, shell exit).
    pending_end: Option<End>,
    exit: Option<Exit>,
    /// `$?` of the last unit (denied units count as 77), the status at end of input.
    last_status: u32,
    /// Ends the session when the access grant it runs under ends (`crate::grants`).
    grant: GrantWatch,
}

/// Run a shell session: with `pty`, the gated interactive shell; without, a script on stdin.
pub async fn run(ctx: SessionCtx, rx: ChannelReadHalf, tx: Tx, pty: Option<PtyParams>) {
    let shared = ctx.shared.clone();
    let terminal = pty.is_some();
    let target = match shared.gate.admit(&ctx.agent, &ctx.target) {
        Ok(t) => t,
        Err(deny) => return refuse(&tx, terminal, &deny).await,
    };
    // Without a live grant every unit would be denied: refuse the session outright.
    if let Err(deny) = shared.gate.grant_ok(&ctx.agent, &ctx.target).await {
        return refuse(&tx, terminal, &deny).await;
    }
    let grant = shared
        .grants
        .watch(&ctx.agent.name, &target.name, target.requires_grant);
    let kind = if terminal {
        SessionKind::Shell
    } else {
        SessionKind::Script
    };
    let witness = match shared
        .records
        .open(&ctx.who(), kind, None, pty.as_ref())
        .await
    {
        Ok(w) => w,
        Err(deny) => return refuse(&tx, terminal, &deny).await,
    };
    let (shell, cwd) = match shared
        .targets
        .spawn_shell(&target, pty.as_ref(), witness.id())
        .await
    {
        Ok(s) => s,
        Err(deny) => {
            witness.mark(&format!("session ended: {deny}")).await;
            witness.close(SessionOutcome::Error, None).await;
            return refuse(&tx, terminal, &deny).await;
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let now = Instant::now();
    let mut sh = Sh {
        deadline: now + shared.limits.max_session,
        ctx,
        witness,
        tx,
        rx,
        shell,
        terminal,
        editor: Editor::new(),
        units: Units::default(),
        typeahead: Vec::new(),
        echoed: 0,
        cols: pty.as_ref().map_or(80, |p| p.cols),
        cwd,
        last_activity: now,
        ticker,
        output_open: true,
        done_open: true,
        input_open: true,
        line_open: false,
        shutdown_seen: false,
        pending_end: None,
        exit: None,
        last_status: 0,
        grant,
    };
    tracing::info!(session = %sh.witness.id(), terminal, "shell session started");
    let end = sh.main().await;
    sh.finish(end).await;
}

impl Sh {
    fn prompt_text(&self) -> String {
        if self.units.continuing() {
            return "> ".to_owned();
        }
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

    async fn main(&mut self) -> End {
        if self.terminal {
            let banner = format!(
                "airlock: gated shell on {} as {}: every line is checked before it runs; ctrl-d ends the session",
                self.ctx.target, self.ctx.agent.name
            );
            if let Err(end) = self.say(&banner).await {
                return end;
            }
        }
        loop {
            let unit = match self.read_unit().await {
                Ok(u) => u,
                Err(end) => return end,
            };
            let command = match unit {
                Ok(c) => c,
                Err(deny) => {
                    if let Err(end) = self.refused(deny).await {
                        return end;
                    }
                    continue;
                }
            };
            let go = conversation::decide(&command, self).await;
            if let Some(end) = self.pending_end.take() {
                return end;
            }
            let step = match go {
                Go::Run(target, mode, seen) => {
                    // The files it runs must still hold what was judged. The persistent shell
                    // runs units in one long-lived namespace, so they are checked, not pinned.
                    let reader = TargetReader {
                        targets: &self.ctx.shared.targets,
                        cwd: Some(&self.cwd),
                    };
                    match scripts::verify(&target, &seen, &reader).await {
                        Ok(()) => self.run_unit(&command, mode).await,
                        Err(deny) => self.refused(deny).await,
                    }
                }
                Go::Refused(deny) => self.refused(deny).await,
                Go::Withdrawn => {
                    self.last_status = 130;
                    Ok(())
                }
                Go::Gone => Err(End::ClientGone),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The agent's input ended: what is left is the last unit.
    fn input_ended(&mut self) {
        if self.terminal {
            let partial = self.editor.line();
            if !partial.is_empty() {
                self.units.push_line(&partial);
            }
        }
        self.units.finish();
    }

    /// Keys that are input for later prompts (typed while a unit waited or ran).
    fn absorb(&mut self, keys: &[u8]) {
        if self.terminal {
            self.typeahead.extend_from_slice(keys);
        } else {
            self.units.feed(keys);
        }
    }

    /// Feed terminal keys to the line editor; finished lines go to the units.
    /// Returns how many lines were submitted.
    async fn type_keys(&mut self, keys: &[u8]) -> Result<usize, End> {
        let mut submitted = 0;
        for e in self.editor.feed(keys) {
            match e {
                Event::Output(b) => {
                    // Echo of a pasted block is shown once, not line by line.
                    if self.units.is_empty() {
                        self.show(&b).await?;
                    }
                }
                Event::Submit(l) => {
                    submitted += 1;
                    let before = self.units.is_empty();
                    self.units.push_line(&l);
                    if before && !self.units.is_empty() {
                        self.echoed += 1;
                    }
                }
                Event::Interrupt => {
                    self.units.discard_open();
                    while self.units.pop().is_some() {}
                    self.echoed = 0;
                    let prompt = self.prompt_text();
                    let shown = self.editor.prompt(&prompt);
                    self.show(&shown).await?;
                }
                Event::Eof => {
                    self.show(b"\r\n").await?;
                    return Err(End::CtrlD);
                }
            }
        }
        Ok(submitted)
    }

    /// The next unit to judge: already received, or read at a fresh prompt.
    async fn read_unit(&mut self) -> Result<Result<String, Deny>, End> {
        if self.ctx.shared.shutdown.is_requested() {
            return Err(End::Shutdown);
        }
        if self.terminal {
            let prompt = self.prompt_text();
            let shown = self.editor.prompt(&prompt);
            self.show(&shown).await?;
            let keys = std::mem::take(&mut self.typeahead);
            if self.type_keys(&keys).await? > 0 && self.units.is_empty() {
                let prompt = self.prompt_text();
                let shown = self.editor.prompt(&prompt);
                self.show(&shown).await?;
            }
        }
        loop {
            if let Some(unit) = self.units.pop() {
                if self.terminal {
                    if self.echoed > 0 {
                        self.echoed -= 1;
                    } else if let Ok(text) = &unit {
                        // A later unit of a pasted block: show which one is judged now.
                        let prompt = self.prompt_text();
                        let shown = text.replace('\n', "\r\n> ");
                        self.show(format!("\r\x1b[K{prompt}{shown}\r\n").as_bytes())
                            .await?;
                    }
                }
                return Ok(unit);
            }
            if !self.input_open {
                return Err(End::InputDone);
            }
            let ev = self.next().await;
            let Some(ev) = self.common(ev, true).await? else {
                continue;
            };
            match ev {
                Ev::Keys(k) if self.terminal => {
                    // A line that did not finish a unit: the continuation prompt.
                    let submitted = self.type_keys(&k).await?;
                    if submitted > 0 && self.units.is_empty() {
                        let prompt = self.prompt_text();
                        let shown = self.editor.prompt(&prompt);
                        self.show(&shown).await?;
                    }
                }
                Ev::Keys(k) => self.units.feed(&k),
                Ev::InputEnded => self.input_ended(),
                Ev::Shutdown => return Err(End::Shutdown),
                _ => {}
            }
        }
    }

    async fn refused(&mut self, deny: Deny) -> Result<(), End> {
        tracing::info!(session = %self.witness.id(), reason = %deny, code = deny.code(), "unit denied");
        self.witness
            .mark(&format!("decision: denied ({deny})"))
            .await;
        self.last_status = DENIED_EXIT;
        self.say(&deny.line()).await
    }

    /// Hand an approved unit to the shell and relay until it finishes.
    async fn run_unit(&mut self, command: &str, mode: Mode) -> Result<(), End> {
        if let Err(deny) = self.witness.started(command, mode).await {
            // Not in the audit trail, so it does not run; the session itself goes on.
            return self.refused(deny).await;
        }
        let Err(end) = self.relay_unit(command, mode).await else {
            return Ok(());
        };
        // Whatever ended the session while the unit ran ended the unit first, in the ledger
        // too: every `exec.start` gets its `exec.exit`.
        match (&end, end.kill_reason()) {
            // The unit ended the shell (`exit 3`, `exec true`, a kill of `$$`).
            (End::ShellExited(e), _) => self.witness.exited(e, None).await,
            (_, Some(why)) => self.kill_unit(&why).await,
            // Already killed and recorded, with the reason.
            (_, None) => {}
        }
        Err(end)
    }

    /// Start the unit in the shell and relay its I/O until its end record arrives.
    async fn relay_unit(&mut self, command: &str, mode: Mode) -> Result<(), End> {
        if self.terminal {
            self.show(editor::PASTE_OFF).await?;
        }
        self.shell
            .run(command, mode)
            .await
            .map_err(|e| End::Error(format!("cannot reach the shell: {e}")))?;
        let grace = self.ctx.shared.limits.shutdown_grace;
        let mut kill_at: Option<Instant> = self
            .ctx
            .shared
            .shutdown
            .is_requested()
            .then(|| Instant::now() + grace);
        self.line_open = false;
        loop {
            let ev = match kill_at {
                Some(at) => match tokio::time::timeout_at(at, self.next()).await {
                    Ok(ev) => ev,
                    Err(_) => return self.kill_for_shutdown().await,
                },
                None => self.next().await,
            };
            if let Ev::GrantEnded(deny) = ev {
                // Killed at once and recorded; the session's last line says why.
                self.kill_unit(&deny.to_string()).await;
                return Err(End::GrantEnded(deny));
            }
            let Some(ev) = self.common(ev, true).await? else {
                continue;
            };
            match ev {
                Ev::Keys(k) if self.terminal => {
                    let _ = self.shell.process.control.send(Control::Stdin(k)).await;
                }
                Ev::Keys(k) => self.units.feed(&k),
                Ev::InputEnded => self.input_ended(),
                Ev::Signal(s) => {
                    let _ = self.shell.process.control.send(Control::Signal(s)).await;
                }
                Ev::Shutdown => kill_at = Some(Instant::now() + grace),
                Ev::Done(d) => {
                    if let Some(last) = self.drain().await? {
                        self.line_open = last != b'\n';
                    }
                    self.cwd = d.cwd;
                    let status = u32::try_from(d.status).unwrap_or(255);
                    self.last_status = status;
                    self.witness.exited(&Exit::Code(status), None).await;
                    // What the command did not read is the next prompt's input.
                    self.typeahead.extend_from_slice(&d.unread);
                    if self.line_open && self.terminal {
                        self.show(b"\r\n").await?;
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    /// The grace period is over and the unit still runs: end it (and its shell).
    async fn kill_for_shutdown(&mut self) -> Result<(), End> {
        let why = self.ctx.shared.limits.shutdown_kill_reason();
        self.kill_unit(&why).await;
        Err(End::Shutdown)
    }

    /// Kill the running unit (and its shell) and record why.
    async fn kill_unit(&mut self, why: &str) {
        if let Some(exit) = self.exit.clone() {
            // The shell is already gone (its exit was taken): record how it ended.
            self.witness.exited(&exit, Some(why)).await;
            return;
        }
        let _ = self.shell.process.control.send(Control::Kill).await;
        let exit = tokio::time::timeout(Duration::from_secs(5), &mut self.shell.process.exit)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Exit::Signal {
                name: "KILL".into(),
                core_dumped: false,
            });
        self.exit = Some(exit.clone());
        self.witness.exited(&exit, Some(why)).await;
    }

    /// Relay output still in the PTY after a command's end record; returns the last byte.
    async fn drain(&mut self) -> Result<Option<u8>, End> {
        let stop = Instant::now() + DRAIN_MAX;
        let mut last = None;
        while self.output_open && Instant::now() < stop {
            match tokio::time::timeout(DRAIN_QUIET, self.shell.process.output.recv()).await {
                Ok(Some(Output::Stdout(b))) => {
                    last = b.last().copied().or(last);
                    self.show(&b).await?;
                }
                Ok(Some(Output::Stderr(b))) => {
                    last = b.last().copied().or(last);
                    self.show_on(Stream::Stderr, &b).await?;
                }
                Ok(None) => self.output_open = false,
                Err(_) => break,
            }
        }
        Ok(last)
    }

    async fn finish(mut self, end: End) {
        let (message, status, outcome) = end.summary(self.last_status);
        let label = message
            .as_deref()
            .map(|m| m.trim_start_matches("airlock: ").to_owned())
            .unwrap_or_else(|| format!("session {outcome}"));
        tracing::info!(session = %self.witness.id(), end = %label, "shell session finished");
        self.witness.mark(&label).await;
        if let Some(m) = &message {
            // Recording may be what failed (then this is not recorded); the agent still
            // hears why.
            let (stream, bytes) = if self.terminal {
                (Stream::Stdout, format!("\r\n{m}\r\n"))
            } else {
                (Stream::Stderr, format!("{m}\n"))
            };
            let _ = self.witness.output(stream, bytes.as_bytes()).await;
            let _ = match stream {
                Stream::Stderr => self.tx.extended_data_bytes(1, bytes.into_bytes()).await,
                _ => self.tx.data_bytes(bytes.into_bytes()).await,
            };
        }
        if self.exit.is_none() {
            let _ = self.shell.process.control.send(Control::Kill).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(5), &mut self.shell.process.exit).await;
        }
        if !matches!(end, End::ClientGone) {
            if self.terminal {
                let _ = self.show(editor::PASTE_OFF).await;
            }
            let _ = self.tx.exit_status(status).await;
            let _ = self.tx.eof().await;
            let _ = self.tx.close().await;
        }
        let exit = match &end {
            End::ShellExited(e) => Some(e.clone()),
            End::InputDone => Some(Exit::Code(status)),
            _ => None,
        };
        self.witness.close(outcome, exit.as_ref()).await;
    }
}
