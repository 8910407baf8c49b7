//! Sessions: one task per SSH session channel, from its first request to its exit status.
//!
//! [`run`] reads the channel's requests in order and picks the front-end: [`exec`] for one
//! command, [`shell`] for the gated shell (with a terminal) or a script on stdin (without).
//! Every front-end has the same life: open a [`Witness`](crate::record::Witness), judge each
//! command at the [`Gate`](crate::gate::Gate), ask reviewers through the one
//! [`conversation`], run on the [`Targets`](crate::targets::Targets), close the record. A new
//! front-end (MCP, a control target) is one more module here using the same pieces.
//!
//! Touches: [`Shared`] only. Whatever fails before a command starts is a deny
//! (`airlock: denied: …`, exit status 77).

pub mod access;
pub mod control;
pub mod conversation;
pub mod exec;
pub mod shell;

use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelWriteHalf};

use crate::config::Agent;
use crate::deny::Deny;
use crate::gate;
use crate::record::Who;
use crate::state::{Alive, Shared};
use crate::targets::PtyParams;

/// Exit status an agent gets when Airlock refuses to run its command (sysexits EX_NOPERM).
pub const DENIED_EXIT: u32 = 77;

/// The environment variable an agent sets (`ssh -o SetEnv=AIRLOCK_REASON=…`) to tell
/// reviewers why it runs a command.
pub const REASON_VAR: &str = "AIRLOCK_REASON";

/// A client that parses the gateway's lines (`airlock mcp`) sends a random value here
/// (`ssh -o SetEnv=AIRLOCK_MARK=…`): every line the gateway writes on that channel then starts
/// `airlock[VALUE]:` instead of `airlock:`. The value never reaches the command, so the
/// command's own stderr cannot forge a gateway line (an approval, a denial, a reviewer's words).
pub const MARK_VAR: &str = "AIRLOCK_MARK";

tokio::task_local! {
    /// This session channel's mark, once the client sent one.
    static MARK: std::cell::RefCell<Option<String>>;
}

/// A mark is 16 to 64 hex digits.
fn valid_mark(v: &str) -> bool {
    (16..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a session task knows about its connection.
pub struct SessionCtx {
    pub shared: Arc<Shared>,
    pub agent: Agent,
    /// The SSH user name, i.e. the target the agent asked for.
    pub target: String,
    pub peer: SocketAddr,
    /// For exit-signal, which the channel half cannot send.
    pub handle: Handle,
    /// The key it logged in with (`SHA256:…`).
    pub key: String,
    /// What the agent says it is doing (`AIRLOCK_REASON`), shown to reviewers.
    pub reason: Option<String>,
    /// Keeps the shutdown drain waiting until this session has closed its record.
    pub alive: Alive,
}

impl SessionCtx {
    pub fn who(&self) -> Who {
        Who {
            agent: self.agent.name.clone(),
            target: self.target.clone(),
            peer: self.peer.to_string(),
        }
    }
}

pub(crate) type Tx = ChannelWriteHalf<Msg>;

/// Drive one session channel.
pub async fn run(ctx: SessionCtx, channel: Channel<Msg>) {
    MARK.scope(std::cell::RefCell::new(None), drive(ctx, channel))
        .await;
}

async fn drive(mut ctx: SessionCtx, channel: Channel<Msg>) {
    let (mut rx, tx) = channel.split();
    let mut pty: Option<PtyParams> = None;
    let shutdown = ctx.shared.shutdown.clone();
    loop {
        let msg = tokio::select! {
            m = rx.wait() => m,
            // A channel still choosing what to run when the gateway stops gets nothing.
            () = shutdown.requested() => {
                return refuse(&tx, pty.is_some(), &Deny::ShuttingDown).await;
            }
        };
        let Some(msg) = msg else { return };
        let refused =
            |what: &str| Deny::NotOffered(format!("{what} is not allowed through Airlock"));
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
            ChannelMsg::Exec { command, .. } if ctx.target == control::CONTROL_TARGET => {
                return control::run(ctx, rx, tx, pty.is_some(), command).await;
            }
            ChannelMsg::Exec { .. } | ChannelMsg::RequestShell { .. }
                if let Some(deny) = ctx.shared.gate.refusal() =>
            {
                return refuse(&tx, pty.is_some(), &deny).await;
            }
            ChannelMsg::Exec { command, .. } => {
                return exec::run(ctx, rx, tx, pty, command).await;
            }
            ChannelMsg::RequestShell { .. } if ctx.target == control::CONTROL_TARGET => {
                let why = Deny::NotOffered(format!(
                    "the control target `{}` answers one verb per command: ssh {}@GATEWAY 'whoami | targets | explain --target T -- CMD | status ID | request-access T DURATION REASON'",
                    control::CONTROL_TARGET,
                    control::CONTROL_TARGET
                ));
                return refuse(&tx, pty.is_some(), &why).await;
            }
            ChannelMsg::RequestShell { .. } => return shell::run(ctx, rx, tx, pty).await,
            ChannelMsg::AgentForward { .. } => {
                return refuse(&tx, pty.is_some(), &refused("agent forwarding")).await;
            }
            ChannelMsg::RequestX11 { .. } => {
                return refuse(&tx, pty.is_some(), &refused("X11 forwarding")).await;
            }
            ChannelMsg::RequestSubsystem { name, .. } => {
                let why = Deny::NotOffered(format!(
                    "the {name:?} subsystem is not available: file transfer would bypass the gate"
                ));
                return refuse(&tx, pty.is_some(), &why).await;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            // The handler accepts only these two variables; they never reach the command.
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } if variable_name == MARK_VAR => {
                if !valid_mark(&variable_value) {
                    let why = Deny::NotOffered(format!("{MARK_VAR} must be 16 to 64 hex digits"));
                    return refuse(&tx, pty.is_some(), &why).await;
                }
                let _ = MARK.try_with(|m| *m.borrow_mut() = Some(variable_value));
            }
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } if variable_name == REASON_VAR => match gate::stated_reason(&variable_value) {
                Ok(reason) => ctx.reason = reason,
                Err(deny) => return refuse(&tx, pty.is_some(), &deny).await,
            },
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

/// A line as the agent's terminal wants it (with the channel's mark on the gateway's own
/// `airlock:` lines, when the client asked for one).
pub(crate) fn line(pty: bool, text: &str) -> Vec<u8> {
    let end = if pty { "\r\n" } else { "\n" };
    let mark = MARK.try_with(|m| m.borrow().clone()).ok().flatten();
    match (mark, text.strip_prefix("airlock:")) {
        (Some(mark), Some(rest)) => format!("airlock[{mark}]:{rest}{end}").into_bytes(),
        _ => format!("{text}{end}").into_bytes(),
    }
}

/// Refuse the channel before any record exists: the deny line on stderr, 77, close.
pub(crate) async fn refuse(tx: &Tx, pty: bool, deny: &Deny) {
    tracing::info!(reason = %deny, code = deny.code(), "session refused");
    end_with(tx, pty, &deny.line(), DENIED_EXIT).await;
}

/// End the channel with a last line on stderr and an exit status.
pub(crate) async fn end_with(tx: &Tx, pty: bool, message: &str, status: u32) {
    let _ = tx.extended_data_bytes(1, line(pty, message)).await;
    let _ = tx.exit_status(status).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}
