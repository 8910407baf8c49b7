//! What the gateway writes to the audit ledger, in one place, so every event has one shape.
//! The ledger itself (chain, checkpoints, export, verify) is `airlock_approvals::ledger`.
//!
//! Events on the way to running something return `Err` when they cannot be written: the
//! caller then refuses (fail closed). Events after the fact are logged on failure.

use airlock_recorder::Closed;
use serde_json::{Value, json};

use crate::server::Gateway;
use crate::target::Exit;

async fn must(gw: &Gateway, kind: &str, payload: Value) -> Result<(), String> {
    gw.broker
        .ledger()
        .append(kind, payload)
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(error = %e, kind, "cannot append to the audit ledger");
            "audit ledger unavailable".to_owned()
        })
}

async fn best_effort(gw: &Gateway, kind: &str, payload: Value) {
    if let Err(e) = gw.broker.ledger().append(kind, payload).await {
        tracing::error!(error = %e, kind, "event not in the audit ledger");
    }
}

pub async fn auth(
    gw: &Gateway,
    agent: Option<&str>,
    target: &str,
    fingerprint: &str,
    peer: &str,
) -> Result<(), String> {
    let payload = json!({
        "agent": agent, "target": target, "key": fingerprint, "peer": peer,
        "outcome": if agent.is_some() { "accepted" } else { "refused" },
    });
    if agent.is_some() {
        must(gw, "auth", payload).await
    } else {
        best_effort(gw, "auth", payload).await;
        Ok(())
    }
}

/// An upstream showed a host key that is not pinned: the connection was refused.
pub async fn upstream_host_key_mismatch(gw: &Gateway, target: &str, fingerprint: &str) {
    best_effort(
        gw,
        "upstream.host_key_mismatch",
        json!({ "target": target, "presented": fingerprint }),
    )
    .await;
}

pub async fn session_opened(
    gw: &Gateway,
    session: &str,
    agent: &str,
    target: &str,
    kind: &str,
    peer: &str,
) -> Result<(), String> {
    must(
        gw,
        "session.open",
        json!({ "session": session, "agent": agent, "target": target, "kind": kind, "peer": peer }),
    )
    .await
}

/// Written before anything runs: without it, the command does not start.
pub async fn exec_started(gw: &Gateway, session: &str, command: &str) -> Result<(), String> {
    must(
        gw,
        "exec.start",
        json!({ "session": session, "command": command }),
    )
    .await
}

pub async fn exec_exited(gw: &Gateway, session: &str, exit: &Exit) {
    let payload = match exit {
        Exit::Code(c) => json!({ "session": session, "status": c }),
        Exit::Signal { name, .. } => json!({ "session": session, "signal": name }),
    };
    best_effort(gw, "exec.exit", payload).await;
}

pub async fn session_closed(
    gw: &Gateway,
    session: &str,
    outcome: &str,
    exit_status: Option<i64>,
    recording: Option<&Closed>,
) {
    if let Some(c) = recording {
        let file = c
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        best_effort(
            gw,
            "recording.closed",
            json!({ "session": session, "file": file, "size": c.size, "sha256": c.sha256 }),
        )
        .await;
    }
    best_effort(
        gw,
        "session.close",
        json!({ "session": session, "outcome": outcome, "exit_status": exit_status }),
    )
    .await;
}
