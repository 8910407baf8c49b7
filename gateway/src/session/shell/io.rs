//! What the shell front-end reads and shows: one event stream over the agent's channel, the
//! target shell's output, end records and exit, the recorder and a one-second tick; and the
//! ways of showing bytes and lines, recorded first, on a terminal or (for a script) on
//! stdout/stderr as `bash -s` would.

use airlock_recorder::task::Stream;
use russh::ChannelMsg;
use tokio::time::Instant;

use super::{End, Sh};
use crate::record::Witness;
use crate::session::conversation::{Gone, Interrupt, Waiting};
use crate::session::{SessionCtx, clamp16};
use crate::targets::shell::Done;
use crate::targets::{self, Control, Exit, Output};

/// Everything that can happen while the session waits.
pub(super) enum Ev {
    Keys(Vec<u8>),
    /// The agent's input ended (channel EOF): what was received is still judged and run.
    InputEnded,
    Resize(u16, u16),
    Signal(i32),
    ClientGone,
    Output(Stream, Vec<u8>),
    Done(Done),
    ShellExited(Exit),
    RecorderFailed(String),
    Tick,
    Shutdown,
    /// The access grant this session runs under ended.
    GrantEnded(crate::deny::Deny),
}

/// What `next` saw, before the bookkeeping it implies.
enum Raw {
    Ev(Ev),
    OutputClosed,
    DoneClosed,
    Skip,
}

impl Sh {
    /// Show bytes to the agent, recording them first: what is not recorded is not shown.
    pub(super) async fn show_on(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), End> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.witness
            .output(stream, bytes)
            .await
            .map_err(|e| End::Recorder(e.to_string()))?;
        let sent = match stream {
            Stream::Stderr if !self.terminal => {
                self.tx.extended_data_bytes(1, bytes.to_vec()).await
            }
            _ => self.tx.data_bytes(bytes.to_vec()).await,
        };
        sent.map_err(|_| End::ClientGone)
    }

    pub(super) async fn show(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.show_on(Stream::Stdout, bytes).await
    }

    /// One line from the gateway: on its own terminal line, or on stderr for a script.
    pub(super) async fn say(&mut self, line: &str) -> Result<(), End> {
        if self.terminal {
            self.show(format!("\r\x1b[K{line}\r\n").as_bytes()).await
        } else {
            self.show_on(Stream::Stderr, format!("{line}\n").as_bytes())
                .await
        }
    }

    pub(super) async fn next(&mut self) -> Ev {
        let rec = self.witness.recorder();
        loop {
            let shutdown_seen = self.shutdown_seen;
            let Sh {
                shell,
                rx,
                output_open,
                done_open,
                exit,
                ticker,
                input_open,
                ctx,
                grant,
                ..
            } = &mut *self;
            let shutdown = ctx.shared.shutdown.clone();
            let (output, done, proc_exit) = shell.parts();
            let raw = tokio::select! {
                // Watched after EOF too: a client that closes must still end the session.
                m = rx.wait() => match m {
                    Some(ChannelMsg::Data { .. }) if !*input_open => Raw::Skip,
                    Some(ChannelMsg::Data { data }) => Raw::Ev(Ev::Keys(data.to_vec())),
                    Some(ChannelMsg::Eof) if !*input_open => Raw::Skip,
                    Some(ChannelMsg::Eof) => {
                        *input_open = false;
                        Raw::Ev(Ev::InputEnded)
                    }
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        Raw::Ev(Ev::Resize(clamp16(col_width), clamp16(row_height)))
                    }
                    Some(ChannelMsg::Signal { signal }) => match targets::signals::from_russh(&signal) {
                        Some(s) => Raw::Ev(Ev::Signal(s as i32)),
                        None => Raw::Skip,
                    },
                    None | Some(ChannelMsg::Close) => Raw::Ev(Ev::ClientGone),
                    Some(_) => Raw::Skip,
                },
                o = output.recv(), if *output_open => match o {
                    Some(Output::Stdout(b)) => Raw::Ev(Ev::Output(Stream::Stdout, b)),
                    Some(Output::Stderr(b)) => Raw::Ev(Ev::Output(Stream::Stderr, b)),
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
                () = shutdown.requested(), if !shutdown_seen => {
                    Raw::Ev(Ev::Shutdown)
                }
                why = grant.ended() => Raw::Ev(Ev::GrantEnded(why)),
                _ = ticker.tick() => Raw::Ev(Ev::Tick),
            };
            match raw {
                Raw::Ev(Ev::Shutdown) => {
                    self.shutdown_seen = true;
                    return Ev::Shutdown;
                }
                Raw::Ev(ev) => return ev,
                Raw::OutputClosed => self.output_open = false,
                Raw::DoneClosed => self.done_open = false,
                Raw::Skip => {}
            }
        }
    }

    /// Handle what every state handles the same way; returns the events left to the state.
    pub(super) async fn common(&mut self, ev: Ev, idle_applies: bool) -> Result<Option<Ev>, End> {
        match ev {
            Ev::ClientGone => Err(End::ClientGone),
            Ev::ShellExited(e) => Err(End::ShellExited(e)),
            Ev::RecorderFailed(e) => Err(End::Recorder(e)),
            Ev::GrantEnded(deny) => Err(End::GrantEnded(deny)),
            Ev::Resize(cols, rows) => {
                self.cols = cols;
                self.witness.resize(cols, rows).await;
                let _ = self
                    .shell
                    .process
                    .control
                    .send(Control::Resize { cols, rows })
                    .await;
                Ok(None)
            }
            Ev::Output(stream, b) => {
                self.last_activity = Instant::now();
                self.line_open = b.last().is_some_and(|&c| c != b'\n');
                self.show_on(stream, &b).await?;
                Ok(None)
            }
            Ev::Tick => {
                let now = Instant::now();
                let limits = &self.ctx.shared.limits;
                if now >= self.deadline {
                    return Err(End::MaxLength(limits.max_session));
                }
                if idle_applies && now.duration_since(self.last_activity) >= limits.idle_timeout {
                    return Err(End::Idle(limits.idle_timeout));
                }
                Ok(Some(Ev::Tick))
            }
            Ev::Keys(k) => {
                self.last_activity = Instant::now();
                self.witness
                    .input(&k)
                    .await
                    .map_err(|e| End::Recorder(e.to_string()))?;
                Ok(Some(Ev::Keys(k)))
            }
            other => Ok(Some(other)),
        }
    }
}

/// While a line waits for reviewers: ctrl-c withdraws it; other keys are kept for the
/// next prompt (as a terminal keeps typeahead); output of background jobs is shown.
impl Waiting for Sh {
    type Ev = Ev;

    async fn next(&mut self) -> Ev {
        Sh::next(self).await
    }

    async fn handle(&mut self, ev: Ev) -> Option<Interrupt> {
        match self.common(ev, false).await {
            Err(End::ClientGone) => Some(Interrupt::Gone),
            Err(end) => {
                self.pending_end = Some(end);
                Some(Interrupt::Gone)
            }
            Ok(Some(Ev::Keys(k))) if self.terminal && k.contains(&0x03) => {
                self.typeahead.clear();
                Some(Interrupt::Withdraw)
            }
            Ok(Some(Ev::Keys(k))) => {
                self.absorb(&k);
                None
            }
            Ok(Some(Ev::InputEnded)) => {
                // Not a hang-up: the request goes on waiting, the session ends after it.
                self.input_ended();
                None
            }
            Ok(Some(Ev::Tick)) => Some(Interrupt::Tick),
            Ok(_) => None,
        }
    }

    async fn tell(&mut self, line: &str) -> Result<(), Gone> {
        self.say(line).await.map_err(|_| Gone)
    }

    async fn countdown(&mut self, text: &str) -> Result<(), Gone> {
        if !self.terminal {
            return Ok(());
        }
        let cols = usize::from(self.cols.max(20)) - 1;
        let line = format!("\r\x1b[K{}", text.chars().take(cols).collect::<String>());
        self.show(line.as_bytes()).await.map_err(|_| Gone)
    }

    fn witness(&self) -> &Witness {
        &self.witness
    }

    fn ctx(&self) -> &SessionCtx {
        &self.ctx
    }

    fn cwd(&self) -> Option<&str> {
        Some(&self.cwd)
    }
}
