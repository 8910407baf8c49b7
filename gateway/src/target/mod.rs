//! Where approved commands run. A target turns a command into a [`Process`]: a stream of
//! output chunks, a way to feed stdin, resize and signal, and an exit status. The session
//! drives every target the same way, so gating, recording and exit propagation are written once.

pub mod local;
pub mod shell;
pub mod signals;
pub mod upstream;

use tokio::sync::{mpsc, oneshot};

/// One chunk of output, kept apart by stream when the target can (pipes), merged on a PTY.
#[derive(Debug)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(u32),
    /// Signal name as SSH spells it (`TERM`, `KILL`, …) and whether core was dumped.
    Signal {
        name: String,
        core_dumped: bool,
    },
}

/// Requests from the session to the running process.
#[derive(Debug)]
pub enum Control {
    Stdin(Vec<u8>),
    /// The client sent EOF: close the process's stdin.
    CloseStdin,
    Resize {
        cols: u16,
        rows: u16,
    },
    /// Deliver a signal (by number) to the process group.
    Signal(i32),
    /// The client went away: end the process group.
    Kill,
}

/// A running command.
pub struct Process {
    /// Output until every stream is closed.
    pub output: mpsc::Receiver<Output>,
    pub control: mpsc::Sender<Control>,
    pub exit: oneshot::Receiver<Exit>,
}

/// Terminal parameters from the client's `pty-req`.
#[derive(Debug, Clone)]
pub struct PtyParams {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}
