//! Why a gated shell session ends, what the agent is told, and why a unit still running then
//! was ended: one place for the wording the session's last line, its outcome and the
//! ledger's `exec.exit` use.

use std::time::Duration;

use airlock_approvals::SessionOutcome;

use super::super::DENIED_EXIT;
use crate::deny::{Deny, human_duration};
use crate::targets::Exit;

/// Why a session ended.
pub(super) enum End {
    /// ctrl-d on an empty line.
    CtrlD,
    /// The input ended and everything received before has run.
    InputDone,
    ClientGone,
    ShellExited(Exit),
    Idle(Duration),
    MaxLength(Duration),
    Recorder(String),
    Error(String),
    /// The gateway stopped (a unit still running after the grace period was killed).
    Shutdown,
    /// The access grant the session ran under expired or was revoked (or could not be
    /// checked); a running unit was killed.
    GrantEnded(Deny),
}

impl End {
    /// The agent's last line (if any), the session's exit status and its recorded outcome.
    pub(super) fn summary(&self, last_status: u32) -> (Option<String>, u32, SessionOutcome) {
        match self {
            End::CtrlD => (
                Some("airlock: session ended (ctrl-d)".to_owned()),
                0,
                SessionOutcome::Ended,
            ),
            End::InputDone => (None, last_status, SessionOutcome::Ended),
            End::ClientGone => (None, 0, SessionOutcome::Disconnected),
            End::ShellExited(Exit::Code(c)) => (None, *c, SessionOutcome::Ended),
            End::ShellExited(Exit::Signal { name, .. }) => (
                Some(format!("airlock: the shell was killed by signal {name}")),
                255,
                SessionOutcome::Ended,
            ),
            End::Idle(d) => (
                Some(format!(
                    "airlock: session ended: no activity for {}",
                    human_duration(*d)
                )),
                DENIED_EXIT,
                SessionOutcome::Idle,
            ),
            End::MaxLength(d) => (
                Some(format!(
                    "airlock: session ended: it reached the maximum length of {}",
                    human_duration(*d)
                )),
                DENIED_EXIT,
                SessionOutcome::MaxLength,
            ),
            End::Recorder(e) => (
                {
                    tracing::error!(error = %e, "recording failed; ending the shell");
                    Some(
                        "airlock: recording failed, so the session ended (the operator's log says why)"
                            .to_owned(),
                    )
                },
                DENIED_EXIT,
                SessionOutcome::Error,
            ),
            End::Error(e) => (
                Some(format!("airlock: session ended: {e}")),
                DENIED_EXIT,
                SessionOutcome::Error,
            ),
            End::Shutdown => (
                Some("airlock: session ended: the gateway is shutting down".to_owned()),
                DENIED_EXIT,
                SessionOutcome::Shutdown,
            ),
            End::GrantEnded(deny) => (
                Some(format!("airlock: session ended: {deny}")),
                DENIED_EXIT,
                SessionOutcome::GrantEnded,
            ),
        }
    }

    /// Why the gateway ends a unit still running when the session ends this way, for its
    /// `exec.exit`; `None` when the unit is already ended and recorded (a grant ending, a
    /// shutdown past its grace) or ended the shell itself.
    pub(super) fn kill_reason(&self) -> Option<String> {
        match self {
            End::GrantEnded(_) | End::Shutdown | End::ShellExited(_) => None,
            End::ClientGone => Some("the client disconnected".into()),
            End::Recorder(_) => Some("the recording failed".into()),
            End::Idle(d) => Some(format!("no activity for {}", human_duration(*d))),
            End::MaxLength(d) => Some(format!(
                "the session reached its maximum length of {}",
                human_duration(*d)
            )),
            End::Error(e) => Some(e.clone()),
            End::CtrlD | End::InputDone => Some("the session ended".into()),
        }
    }
}
