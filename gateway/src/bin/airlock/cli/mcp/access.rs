//! `request_access`: ask reviewers for a time-boxed grant, through the control target's
//! `request-access --json TARGET DURATION REASON`, watched like `run_command` (the gateway's
//! waiting line becomes progress notifications; closing the channel withdraws the request).
//!
//! Why it exists: an agent that meets `no access grant` needs one call that asks, waits for a
//! person, and returns the grant's id and expiry — or the denial, as a tool error. What it
//! owns: shaping that result from the control target's JSON answer.

use serde_json::Value;

use super::link::{Link, LinkError};
use super::run::{self, Progress, RunSpec};

/// The reserved target that answers about the agent's own world.
const CONTROL_TARGET: &str = "airlock";

/// Ask for `duration` of access to `target`: `(is_error, text, structured)`.
pub async fn request(
    link: &Link,
    target: &str,
    duration: &str,
    reason: &str,
    progress: Option<impl Progress>,
    cancelled: impl Future<Output = ()>,
) -> Result<(bool, String, Value), LinkError> {
    let spec = RunSpec {
        target: CONTROL_TARGET.to_owned(),
        // `target` and `duration` are single words (checked); the reason is the rest of the
        // line, taken verbatim by the control target.
        command: format!("request-access --json {target} {duration} {reason}"),
        reason: None,
        timeout: None,
    };
    let (is_error, text, structured) = run::run(link, &spec, progress, cancelled).await?;
    let answer: Option<Value> = structured["stdout"]
        .as_str()
        .and_then(|s| serde_json::from_str(s.trim()).ok());
    let status = structured["exit_status"].as_u64();
    match answer {
        Some(v) if !is_error && status == Some(0) && v["granted"] == Value::Bool(true) => {
            let g = &v["grant"];
            let text = format!(
                "access to {target} granted until {} (grant {}, by {}). run_command works on {target} until then; every command is still judged.",
                g["expires_at"].as_str().unwrap_or("?"),
                g["id"].as_str().unwrap_or("?"),
                g["by"].as_str().unwrap_or("?"),
            );
            Ok((false, text, v))
        }
        // Not granted: the gateway's line (a denial, or "does not need an access grant")
        // leads the text.
        Some(v) => {
            let why = v["why"].as_str().unwrap_or_default();
            Ok((true, format!("{why}\n{text}"), v))
        }
        None => Ok((true, text, structured)),
    }
}
